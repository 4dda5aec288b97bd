"""Listing by metadata equality: cost follows the number of hits, not the namespace size.

Two namespaces in one SQLite catalog on local disk, 5,000 and 50,000 artifacts
(2,000 and 20,000 with ``--quick``), created through the API in
``catalogstore.transaction()`` batches of 1,000, each with the 3 keys of the other
benchmarks and a ``model`` key; in each namespace 50 artifacts have
``model = 'xgb'``. Timed round robin: ``list_artifacts(ns, where={"model": "xgb"})``
(``Artifact`` objects with their metadata) in each namespace, the same through
``filter=`` (not a bar), and the baseline: reading every ``.artifact.json`` of the
small namespace with ``orjson`` (``os.scandir``, read, parse, filter).

Bars (issue 11): the 50,000 namespace's listing costs <= 1.5x the 5,000 one's;
the listing in the 5,000 namespace is >= 100x faster than the orjson scan.
``orjson`` is not a dependency of catalogstore (``pip install orjson``, or the
``bench`` extra); without it the second bar fails with a note.

    .venv/bin/python bench/bench_where.py [--quick] [--repeat N]
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from _common import (
    exit_status,
    make_parser,
    measure,
    note,
    print_header,
    print_table,
    report_bar,
    sample_meta,
    temp_store,
)

HITS = 50
WHERE = {"model": "xgb"}


def create(namespace: str, count: int) -> None:
    """``count`` artifacts, ``HITS`` of them with ``model = 'xgb'`` spread evenly."""
    import catalogstore
    from catalogstore.artifacts import new_artifact

    step = count // HITS
    for start in range(0, count, 1000):
        with catalogstore.transaction():
            for i in range(start, min(count, start + 1000)):
                model = "xgb" if i % step == 0 else f"m{i % 97}"
                new_artifact(f"a{i:06d}", namespace).update_meta(
                    {**sample_meta(i), "model": model})


def listing(namespace: str, **options: Any) -> dict[str, dict[str, str]]:
    from catalogstore.artifacts import list_artifacts

    found = {a.name: a.metadata for a in list_artifacts(namespace, **options)}
    if len(found) != HITS:
        raise SystemExit(f"{namespace}: {len(found)} artifacts listed, expected {HITS}")
    return found


def orjson_scan(loads: Any, root: str, namespace: str) -> dict[str, dict[str, Any]]:
    """The file-only way at its fastest: read and parse every ``.artifact.json``."""
    found = {}
    with os.scandir(f"{root}/artifacts/{namespace}") as entries:
        for entry in entries:
            with open(f"{entry.path}/.artifact.json", "rb") as f:
                meta = loads(f.read())
            if meta.get("model") == "xgb":
                found[entry.name] = meta
    return found


def main(argv: list[str] | None = None) -> int:
    args = make_parser(__doc__).parse_args(argv)
    print_header("listing by metadata equality: namespace size versus hits")
    small, large = (2_000, 20_000) if args.quick else (5_000, 50_000)
    repeat = args.repeat or (20 if args.quick else 50)
    try:
        import orjson
    except ImportError:
        orjson = None
    with temp_store(args.dir) as store:
        started = time.perf_counter()
        for namespace, count in (("small", small), ("large", large)):
            print(f"   creating {count:,} artifacts in {namespace!r} through the API ...",
                  flush=True)
            create(namespace, count)
        print(f"   created {small + large:,} artifacts in {time.perf_counter() - started:.1f} s")
        root = str(store.tmp / "storage")
        cases = {
            f"list_artifacts(where=model=xgb), {small:,} artifacts":
                lambda _: listing("small", where=WHERE),
            f"list_artifacts(where=model=xgb), {large:,} artifacts":
                lambda _: listing("large", where=WHERE),
            f"list_artifacts(filter=\"meta.model = 'xgb'\"), {large:,} artifacts":
                lambda _: listing("large", filter="meta.model = 'xgb'"),
        }
        if orjson is not None:
            if orjson_scan(orjson.loads, root, "small") != listing("small", where=WHERE):
                raise SystemExit("the orjson scan and the catalog disagree")
            cases[f"orjson: read every .artifact.json of {small:,}, filter"] = \
                lambda _: orjson_scan(orjson.loads, root, "small")
        timings = list(measure(cases, repeat=repeat, warmup=2, collect=False).values())
        print_table(f"list the {HITS} artifacts with model = 'xgb', metadata included", timings)
    small_t, large_t = timings[0], timings[1]
    report_bar("where-namespace-size", large_t.median / small_t.median, 1.5,
               f"the listing's cost at {large:,} artifacts over {small:,}", at_most=True)
    if orjson is None:
        note("orjson is not installed (pip install orjson): the scan was not measured")
        report_bar("where-vs-orjson", 0, 100, "faster than the orjson scan (not measured)")
    else:
        report_bar("where-vs-orjson", timings[3].median / small_t.median, 100,
                   f"faster than reading every .artifact.json of {small:,} with orjson")
    return exit_status()


if __name__ == "__main__":
    sys.exit(main())
