"""Metadata search: the catalog's queries at a million artifacts, and a query versus a storage scan.

(a) scale: 1,000,000 artifacts (100,000 with ``--quick``) in 20 namespaces, 5
metadata keys each, loaded by bulk inserts straight into a SQLite catalog (no
files; the load time is printed). Timed through ``query_artifacts``, which
returns ``Artifact`` objects with their metadata, each round with other values:

- equality on one key matching 100 artifacts (``meta.batch = 'b4242'``): < 20 ms
- two keys, an equality and a numeric range, 1 % each, about 100 matches
  (``meta.model = 'm7' AND meta.accuracy > 0.99``): < 50 ms
- counting artifacts per namespace (``Catalog.list_namespaces``): < 500 ms
- and, not bars: a numeric range alone, a name prefix across namespaces, the 50
  newest, a page of a namespace pattern.

The same workload on PostgreSQL (a fresh schema on 127.0.0.1:5432, database
``test``, loaded with COPY then ``VACUUM ANALYZE``, dropped at the end) is
reported beside it, not as bars.

(b) scan: 10,000 artifacts on local disk, created through the API in batches of
1,000, 5 metadata keys each; ``meta.bucket = '42'`` (1 %) through the catalog
versus the file-only way with fsspec: the walk of ``bench_listing.py`` (``ls`` of
the namespace, then per artifact ``exists``, ``ls`` and a read + parse of
``.artifact.json``), filtered. Bar: >= 100x faster. A bare scan (``ls``, then read
+ parse of each ``.artifact.json``) is timed beside it, not as a bar.

    .venv/bin/python bench/bench_query.py [--quick] [--repeat N] [--only scale|postgres|scan]
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import fsspec
from _common import (
    exit_status,
    fmt_time,
    make_parser,
    measure,
    note,
    print_header,
    print_table,
    report_bar,
    sample_meta,
    scratch_dir,
    temp_store,
)
from bench_listing import walk

from catalogstore.record import json_text
from catalogstore.testing.catalog import analyze_sql

PG_ADMIN_URL = os.environ.get("CATALOGSTORE_BENCH_PG_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")
NAMESPACES = 20
MODELS = 100
BASE = datetime(2024, 1, 1, tzinfo=timezone.utc)
_CHUNK = 50_000


# -- the data set --------------------------------------------------------------------


def artifact_rows(start: int, stop: int) -> Iterator[tuple[int, str, str, datetime]]:
    for i in range(start, stop):
        yield i, f"team-{i % NAMESPACES:02d}", f"run-{i:07d}", BASE + timedelta(milliseconds=i)


def metadata_rows(start: int, stop: int, count: int
                  ) -> Iterator[tuple[int, str, str, float | None]]:
    """5 keys: batch (100 artifacts per value), model (1 %), accuracy (uniform), epochs,
    owner."""
    rng = random.Random(start)
    batches = max(count // 100, 1)
    for i in range(start, stop):
        accuracy = rng.random()
        epochs = i % 200
        yield i, "batch", f"b{i % batches}", None
        yield i, "model", f"m{i % MODELS}", None
        yield i, "accuracy", repr(accuracy), accuracy
        yield i, "epochs", str(epochs), float(epochs)
        yield i, "owner", f"user{i % 1000}", None


def chunk_rows(start: int, stop: int, count: int
               ) -> tuple[list[tuple[int, str, str, datetime, str]],
                          list[tuple[int, str, str, float | None]]]:
    """The artifacts ``start`` to ``stop`` (with their metadata document, as a commit
    writes it beside the rows: ``artifacts.metadata_json``) and their metadata rows."""
    meta = list(metadata_rows(start, stop, count))
    documents: dict[int, dict[str, str]] = {}
    for i, key, value, _ in meta:
        documents.setdefault(i, {})[key] = value
    artifacts = [(i, ns, name, moment, json_text(documents.get(i, {})))
                 for i, ns, name, moment in artifact_rows(start, stop)]
    return artifacts, meta


def load_sqlite(engine: Any, count: int) -> None:
    """Bulk inserts with the driver, in one transaction, into the migrated schema."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA cache_size = -1000000")  # 1 GB of page cache for the load
        cursor.execute("BEGIN")
        for start in range(1, count + 1, _CHUNK):
            stop = min(start + _CHUNK, count + 1)
            artifacts, meta = chunk_rows(start, stop, count)
            cursor.executemany(
                "INSERT INTO artifacts (id, namespace, name, created_at, updated_at, "
                "metadata_json) VALUES (?, ?, ?, ?, ?, ?)",
                # SQLAlchemy's storage format for DateTime on SQLite (naive UTC).
                ((i, ns, name, s, s, doc) for i, ns, name, moment, doc in artifacts
                 for s in [moment.strftime("%Y-%m-%d %H:%M:%S.%f")]))
            cursor.executemany(
                "INSERT INTO artifact_metadata (artifact_id, key, value, number) "
                "VALUES (?, ?, ?, ?)", meta)
        cursor.execute("COMMIT")
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()


def load_postgres(engine: Any, count: int) -> float:
    """COPY into the migrated schema; returns the seconds ``VACUUM ANALYZE`` took."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for start in range(1, count + 1, _CHUNK):
            stop = min(start + _CHUNK, count + 1)
            artifacts, meta = chunk_rows(start, stop, count)
            with cursor.copy("COPY artifacts (id, namespace, name, created_at, updated_at, "
                             "metadata_json) FROM STDIN") as copy:
                for i, ns, name, moment, doc in artifacts:
                    copy.write_row((i, ns, name, moment, moment, doc))
            with cursor.copy("COPY artifact_metadata (artifact_id, key, value, number) "
                             "FROM STDIN") as copy:
                for row in meta:
                    copy.write_row(row)
        cursor.execute("SELECT setval(pg_get_serial_sequence('artifacts', 'id'), %s)",
                       (count,))
        raw.commit()
        raw.driver_connection.autocommit = True
        started = time.perf_counter()
        cursor.execute(analyze_sql(vacuum=True))
        return time.perf_counter() - started
    finally:
        raw.close()


# -- the timed searches --------------------------------------------------------------------


def searches(count: int) -> dict[str, Callable[[int], object]]:
    """The cases, each round with other values (no answer is served twice from a cache)."""
    from catalogstore.artifacts import query_artifacts
    from catalogstore.txn.workspace import get_workspace

    catalog = get_workspace().catalog
    batches = max(count // 100, 1)

    def expect(found: Any, low: int, high: int, what: str) -> Any:
        if not low <= len(found) <= high:
            raise SystemExit(f"{what}: {len(found)} artifacts, expected {low} to {high}")
        return found

    return {
        "equality, 100 matches": lambda r: expect(query_artifacts(
            f"meta.batch = 'b{(r * 7919) % batches}'"), 100, 100, "equality"),
        "= and numeric range, ~100 matches": lambda r: expect(query_artifacts(
            f"meta.model = 'm{r % MODELS}' AND meta.accuracy > 0.99"), 1, 10_000, "two keys"),
        "count per namespace": lambda r: expect(catalog.list_namespaces(), NAMESPACES,
                                                NAMESPACES, "namespaces"),
        "numeric range alone, 0.01 %": lambda r: query_artifacts(
            f"meta.accuracy > {0.9999 - r * 1e-7:.7f}"),
        "name prefix, 100 matches": lambda r: expect(query_artifacts(
            f"name LIKE 'run-{1 + (r * 31) % (count // 100 - 1):05d}%'"), 100, 100, "prefix"),
        "50 newest": lambda r: expect(query_artifacts(order_by="-created_at", limit=50),
                                      50, 50, "newest"),
        "page of 'team-1*' by name": lambda r: expect(query_artifacts(
            f"meta.epochs >= {100 + r % 50}", namespaces="team-1*", order_by="name",
            limit=50), 50, 50, "page"),
    }


BARS = {"equality, 100 matches": ("equality", 20),
        "= and numeric range, ~100 matches": ("two-keys", 50),
        "count per namespace": ("count-per-namespace", 500)}


def run_searches(label: str, count: int, repeat: int) -> dict[str, Any]:
    timings = measure(searches(count), repeat=repeat, warmup=2, collect=False)
    print_table(f"{label}: searches among {count:,} artifacts (query_artifacts, "
                "Artifact objects with metadata)", list(timings.values()))
    return timings


# -- (a) scale, on SQLite and on PostgreSQL ----------------------------------------------


def scale_sqlite(count: int, repeat: int, parent: str | None) -> None:
    with temp_store(parent) as store:
        print(f"   SQLite: loading {count:,} artifacts with 5 metadata keys each ...", flush=True)
        started = time.perf_counter()
        load_sqlite(store.workspace.catalog.engine, count)
        loaded = time.perf_counter() - started
        size = os.path.getsize(store.tmp / "catalog.db")
        print(f"   SQLite: loaded in {loaded:.1f} s ({count * 6 / loaded:,.0f} rows/s), "
              f"database {size / 2**20:,.0f} MiB")
        timings = run_searches("SQLite", count, repeat)
    for case, (name, need) in BARS.items():
        report_bar(f"query-{name}-sqlite", timings[case].median * 1e3, need,
                   f"median, {case}, {count:,} artifacts", at_most=True, unit="ms")


@contextlib.contextmanager
def postgres_store(parent: str | None, storage_url: str | None = None,
                   storage_options: dict[str, Any] | None = None) -> Iterator[Any]:
    """A fresh schema on the PostgreSQL server, configured as the catalog (the storage:
    ``storage_url``, else a scratch folder); dropped after."""
    from sqlalchemy import create_engine, text

    import catalogstore
    from catalogstore.catalog.engine import make_engine
    from catalogstore.catalog.migrate import upgrade
    from catalogstore.settings import reset_configuration
    from catalogstore.txn.runs import end_process_runs
    from catalogstore.txn.workspace import close_workspaces, get_workspace

    schema = f"cs_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        with scratch_dir(parent) as tmp:
            settings = catalogstore.configure(
                catalog_url=url, storage_url=storage_url or str(tmp / "storage"),
                storage_options=storage_options or {})
            try:
                yield get_workspace(settings)
            finally:
                end_process_runs()  # as the exit would, while the schema is still there
                close_workspaces()
                reset_configuration()
                for key in settings.to_environ():
                    os.environ.pop(key, None)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def scale_postgres(count: int, repeat: int, parent: str | None) -> None:
    try:
        with postgres_store(parent) as workspace:
            print(f"   PostgreSQL: loading {count:,} artifacts with 5 metadata keys each ...",
                  flush=True)
            started = time.perf_counter()
            vacuum = load_postgres(workspace.catalog.engine, count)
            loaded = time.perf_counter() - started
            print(f"   PostgreSQL: loaded in {loaded:.1f} s with COPY (VACUUM ANALYZE "
                  f"{vacuum:.1f} s of it)")
            timings = run_searches("PostgreSQL", count, repeat)
    except ImportError as exc:
        note(f"PostgreSQL not measured: {exc}")
        return
    except Exception as exc:  # the server is optional for the benchmark
        if type(exc).__module__.startswith(("sqlalchemy", "psycopg")):
            note(f"PostgreSQL not measured: {str(exc).splitlines()[0]}")
            return
        raise
    for case, (_, need) in BARS.items():
        median = timings[case].median * 1e3
        note(f"PostgreSQL {case}: {median:.1f} ms median (the SQLite bar is {need} ms; "
             f"{'within' if median <= need else 'over'} it; not a bar)")


# -- (b) a query versus a scan of every .artifact.json ------------------------------------

SCAN_NS = "scan"


def scan(fs: Any, root: str, key: str, value: str) -> set[str]:
    """The file-only way, as ``bench_listing.py`` walks a namespace (``ls``, then per
    artifact ``exists``, ``ls`` and a read + parse of ``.artifact.json``), filtered."""
    return {name for name, meta in walk(fs, root, SCAN_NS).items() if meta.get(key) == value}


def bare_scan(fs: Any, root: str, key: str, value: str) -> set[str]:
    """The least a scan can do: ``ls``, then read + parse every ``.artifact.json``."""
    fs.invalidate_cache()
    found = set()
    for path in fs.ls(f"{root}/artifacts/{SCAN_NS}", detail=False):
        with fs.open(f"{path}/.artifact.json", "rb") as f:
            if json.loads(f.read()).get(key) == value:
                found.add(path.rstrip("/").rsplit("/", 1)[-1])
    return found


def scan_case(count: int, repeat: int, parent: str | None) -> None:
    import catalogstore
    from catalogstore.artifacts import new_artifact, query_artifacts

    with temp_store(parent) as store:
        print(f"   local disk: creating {count:,} artifacts through the API ...", flush=True)
        started = time.perf_counter()
        for start in range(0, count, 1000):
            with catalogstore.transaction():
                for i in range(start, min(count, start + 1000)):
                    new_artifact(f"a{i:06d}", SCAN_NS).update_meta(
                        {**sample_meta(i), "bucket": str(i % 100), "score": str(i / count)})
        print(f"   local disk: created in {time.perf_counter() - started:.1f} s")
        fs = fsspec.filesystem("file", skip_instance_cache=True)
        root = str(store.tmp / "storage")

        def query(_: int) -> set[str]:
            return {a.name for a in query_artifacts("meta.bucket = '42'", namespaces=SCAN_NS)}

        expected = scan(fs, root, "bucket", "42")
        if query(0) != expected or bare_scan(fs, root, "bucket", "42") != expected \
                or len(expected) != count // 100:
            raise SystemExit("the scans and the catalog disagree")
        timings = measure({"catalog: query_artifacts(\"meta.bucket = '42'\")": query,
                           "scan: walk (ls, exists, ls, read .artifact.json), filter":
                               lambda _: scan(fs, root, "bucket", "42"),
                           "bare scan: ls, read .artifact.json, filter":
                               lambda _: bare_scan(fs, root, "bucket", "42")},
                          repeat=repeat, warmup=1, collect=False)
        print_table(f"local disk: find the 1 % of {count:,} artifacts with bucket = 42",
                    list(timings.values()))
        ours, walked, bare = timings.values()
        note(f"the walk costs {fmt_time(walked.median / count)} per artifact, the bare scan "
             f"{fmt_time(bare.median / count)}; the query is {bare.median / ours.median:.0f}x "
             "faster than the bare scan (not a bar)")
    report_bar("query-vs-scan-local", walked.median / ours.median, 100,
               "faster than scanning .artifact.json")


def main(argv: list[str] | None = None) -> int:
    args = make_parser(__doc__, ["scale", "postgres", "scan"]).parse_args(argv)
    print_header("metadata search: catalog queries at scale, and versus a storage scan")
    count = 100_000 if args.quick else 1_000_000
    repeat = args.repeat or (10 if args.quick else 30)
    if args.only in (None, "scale"):
        scale_sqlite(count, repeat, args.dir)
    if args.only in (None, "postgres"):
        scale_postgres(count, repeat, args.dir)
    if args.only in (None, "scan"):
        scan_case(10_000, args.repeat or (3 if args.quick else 7), args.dir)
    return exit_status()


if __name__ == "__main__":
    sys.exit(main())
