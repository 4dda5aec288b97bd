"""The object store's durable tier against diskcache, measured in the same run (issue 19).

diskcache (an SQLite index, small values inline, large ones in files) is what someone
keeping Python objects between the stages of a workflow on one machine reaches for
otherwise. Side by side, round robin, on the same disk:

- **small value** (a dict of 10 floats): ``object_store.put(key, value,
  artifact_only=True)`` and ``get(key, artifact_only=True)`` on the embedded defaults
  (SQLite catalog, local storage), against ``diskcache.Cache.set`` / ``get``; each
  sample is a run of puts (or gets) of the same key, as stages hand a value on, or
  of puts of keys never put before ("put new key", reported); a sample of
  catalogstore puts ends when the files its small values leave to the background
  writer are written (``flush``), so that work is counted as the put's. Bars: put and
  get at most 5x diskcache's.
- **100 MiB float64 array**: the same calls. Bars: get at most 1.0x diskcache's,
  put at least 1.5x faster than diskcache's. Dirty pages are flushed (``os.sync``,
  untimed) before each sample; reads come from the page cache for both.
- **PostgreSQL + S3** (the PostgreSQL server on 127.0.0.1:5432, a moto S3 server on
  loopback): the same small and large figures, reported without bars (network round
  trips dominate). Skipped when PostgreSQL is not reachable.

    .venv/bin/python bench/bench_cache.py [--only small|large|remote] [--quick]
        [--repeat N] [--dir DIR]
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import diskcache
import numpy as np
from _common import (
    MIB,
    create_bucket,
    exit_status,
    make_parser,
    measure,
    moto_s3,
    note,
    print_header,
    print_table,
    report_bar,
    scratch_dir,
    temp_store,
)

from catalogstore import object_store

SMALL = {f"f{i}": i * 0.5 for i in range(10)}
SMALL_OPS = 200
"""Calls per sample of the small cases (a sample of one call is mostly timer noise)."""


def _cases(put: Callable[[str, Any], Any], get: Callable[[str], Any], value: Any,
           key: str, ops: int, check: Callable[[Any], bool], new_keys: bool,
           finish: Callable[[], Any] = lambda: None) -> dict[str, Callable[[int], Any]]:
    """The put and get cases; ``finish`` ends a sample of puts (timed): catalogstore
    writes the files of its small values in the background, and that work is the
    put's, not the next sample's."""
    put(key, value)
    if not check(get(key)):
        raise SystemExit(f"{key} did not come back equal")

    def puts(_round: int) -> None:
        for _ in range(ops):
            put(key, value)
        finish()

    def gets(_round: int) -> None:
        for _ in range(ops):
            get(key)

    fresh = itertools.count()

    def puts_new(_round: int) -> None:  # a stage handing on a key never put before
        for _ in range(ops):
            put(f"{key}-{next(fresh)}", value)
        finish()
    return {"put": puts, "get": gets, **({"put new key": puts_new} if new_keys else {})}


def store_calls() -> tuple[Callable[[str, Any], Any], Callable[[str], Any]]:
    return (lambda key, value: object_store.put(key, value, artifact_only=True),
            lambda key: object_store.get(key, artifact_only=True))


def compare(title: str, value: Any, ops: int, repeat: int, check: Callable[[Any], bool],
            cache_dir: str | None, sync: bool, new_keys: bool = False) -> dict[str, float]:
    """Median per call of catalogstore's and diskcache's put and get (and ``new_keys``:
    put of keys never put before)."""
    cases: dict[str, Callable[[int], Any]] = {}
    put, get = store_calls()
    for op, fn in _cases(put, get, value, "value", ops, check, new_keys,
                         object_store.flush).items():
        cases[f"catalogstore {op}"] = fn
    with contextlib.ExitStack() as stack:
        if cache_dir is not None:
            cache = stack.enter_context(diskcache.Cache(cache_dir))
            for op, fn in _cases(cache.set, cache.get, value, "value", ops, check,
                                 new_keys).items():
                cases[f"diskcache {op}"] = fn
        timings = measure(cases, repeat=repeat, per=ops, warmup=1,
                          before=os.sync if sync else None, collect=sync)
    object_store.flush()  # the files of the Flowdapt layout, before the store goes
    print_table(title, list(timings.values()), "call")
    return {name: t.per_item for name, t in timings.items()}


def small(repeat: int, parent: str | None) -> None:
    with temp_store(parent) as store:
        got = compare("small dict (10 floats), SQLite + local disk", SMALL, SMALL_OPS, repeat,
                      lambda v: bool(v == SMALL), str(store.tmp / "diskcache"), sync=False,
                      new_keys=True)
    for op in ("put", "get"):
        ratio = got[f"catalogstore {op}"] / got[f"diskcache {op}"]
        report_bar(f"cache-small-{op}", ratio, 5.0,
                   f"catalogstore {op} / diskcache {op} (median per call)", at_most=True)
    note(f"put of a new key: {got['catalogstore put new key'] / got['diskcache put new key']:.2f}x"
         " diskcache's (no bar: a new artifact's rows and index entries, and its files, "
         "counted here though written in the background)")


def _array(nbytes: int) -> Any:
    return np.random.default_rng(19).random(nbytes // 8)


def large(repeat: int, parent: str | None, nbytes: int) -> None:
    arr = _array(nbytes)
    with temp_store(parent) as store:
        got = compare(f"{nbytes // MIB} MiB float64 array, SQLite + local disk", arr, 1,
                      repeat, lambda v: bool(np.array_equal(v, arr)),
                      str(store.tmp / "diskcache"), sync=True)
    report_bar("cache-large-get", got["catalogstore get"] / got["diskcache get"], 1.0,
               "catalogstore get / diskcache get (median)", at_most=True)
    report_bar("cache-large-put", got["diskcache put"] / got["catalogstore put"], 1.5,
               "faster than diskcache put (median)")


@contextlib.contextmanager
def remote_store(parent: str | None) -> Iterator[None]:
    """A fresh PostgreSQL schema as the catalog and a moto S3 bucket as the storage."""
    from bench_query import postgres_store

    import catalogstore
    from catalogstore.txn.workspace import close_workspaces

    with moto_s3() as options, postgres_store(parent) as workspace:
        bucket = create_bucket(options)
        close_workspaces()
        catalogstore.configure(catalog_url=workspace.catalog.url,
                               storage_url=f"s3://{bucket}/root", storage_options=options)
        yield


def remote(repeat: int, parent: str | None, nbytes: int) -> None:
    try:
        import psycopg
        from bench_query import PG_ADMIN_URL

        psycopg.connect(PG_ADMIN_URL.replace("postgresql+psycopg", "postgresql"),
                        connect_timeout=3).close()
    except Exception as exc:  # reported, not failed: the part needs a server
        note(f"PostgreSQL + S3 skipped: PostgreSQL not reachable ({exc})")
        return
    arr = _array(nbytes)
    with remote_store(parent):
        compare("small dict (10 floats), PostgreSQL + S3 (moto)", SMALL, SMALL_OPS // 4,
                repeat, lambda v: bool(v == SMALL), None, sync=False, new_keys=True)
        compare(f"{nbytes // MIB} MiB float64 array, PostgreSQL + S3 (moto)", arr, 1,
                max(2, repeat // 2), lambda v: bool(np.array_equal(v, arr)), None, sync=False)
    note("PostgreSQL + S3: no bars (network round trips dominate)")


def main() -> int:
    parser = make_parser(__doc__ or "", ("small", "large", "remote"))
    args = parser.parse_args()
    repeat = args.repeat or (3 if args.quick else 9)
    nbytes = (16 if args.quick else 100) * MIB
    print_header("The object store's durable tier against diskcache (issue 19)")
    note("diskcache " + diskcache.__version__ + "; put/get with artifact_only=True")
    with scratch_dir(args.dir) as tmp:
        parent = str(tmp)
        if args.only in (None, "small"):
            small(repeat, parent)
        if args.only in (None, "large"):
            large(max(3, repeat // 2), parent, nbytes)
        if args.only in (None, "remote"):
            remote(max(3, repeat // 2), parent, nbytes)
    return exit_status()


if __name__ == "__main__":
    sys.exit(main())
