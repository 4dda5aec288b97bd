"""Writes on PostgreSQL against the same rows written with plain psycopg (issue 18).

On a fresh schema of the PostgreSQL server (127.0.0.1:5432, database ``test``) with
local storage, in the same run, round robin:

- atomic creation: one artifact with a 1 KiB file and 3 metadata keys inside one
  ``catalogstore.transaction()``, against psycopg on one connection inserting the same
  rows (the artifact with ``RETURNING id``, its file row, its 3 metadata rows with
  ``executemany``) and committing. Bar: at most 2.5x.
- ``set_meta`` of one key on an existing artifact, against a plain single-row upsert
  (``INSERT ... ON CONFLICT DO UPDATE``) and ``COMMIT``. Bar: at most 2x.

The round trips of each catalogstore form are counted on the wire
(:mod:`catalogstore.testing.roundtrips`) and printed.

To time another checkout of catalogstore (today's main, say) beside it, run this
file with that checkout first on ``PYTHONPATH``.

    .venv/bin/python bench/bench_pg_writes.py [--quick] [--repeat N]
"""

from __future__ import annotations

import sys
from typing import Any

from _common import (
    KIB,
    exit_status,
    make_parser,
    measure,
    note,
    print_header,
    print_table,
    report_bar,
)
from bench_query import PG_ADMIN_URL, postgres_store

PAYLOAD = b"x" * KIB
META = {"k1": "1", "k2": "two", "k3": "3.5"}


def raw_connection(workspace: Any) -> Any:
    """A plain psycopg connection to the workspace's schema (its search_path)."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(workspace.catalog.url)
    options = url.query.get("options")
    return psycopg.connect(host=url.host, port=url.port or 5432, user=url.username,
                           password=url.password or None, dbname=url.database,
                           options=options if isinstance(options, str) else None)


def cases(workspace: Any) -> tuple[dict[str, Any], dict[str, Any], Any]:
    import catalogstore
    from catalogstore.artifacts import new_artifact

    raw = raw_connection(workspace)
    shared = new_artifact("shared", "bench")
    new_artifact("raw-shared", "bench")
    (raw_id,) = raw.execute("SELECT id FROM artifacts WHERE name = 'raw-shared'").fetchone()
    checksum = "xxh128:" + "0" * 32

    def create(i: int) -> None:
        with catalogstore.transaction():
            artifact = new_artifact(f"a{i}", "bench")
            artifact.new_file("data.bin", content=PAYLOAD)
            artifact.update_meta(META)

    def raw_create(i: int) -> None:
        with raw.cursor() as cur:
            cur.execute("INSERT INTO artifacts (namespace, name, created_at, updated_at) "
                        "VALUES (%s, %s, now(), now()) RETURNING id", ("raw", f"r{i}"))
            (artifact_id,) = cur.fetchone()  # type: ignore[misc]
            cur.execute("INSERT INTO artifact_files (artifact_id, name, size, checksum, "
                        "created_at, updated_at) VALUES (%s, 'data.bin', %s, %s, now(), now())",
                        (artifact_id, len(PAYLOAD), checksum))
            cur.executemany("INSERT INTO artifact_metadata (artifact_id, key, value, number) "
                            "VALUES (%s, %s, %s, %s)",
                            [(artifact_id, k, v, None) for k, v in META.items()])
        raw.commit()

    def set_meta(i: int) -> None:
        shared.set_meta("k", str(i))

    def raw_upsert(i: int) -> None:
        raw.execute("INSERT INTO artifact_metadata (artifact_id, key, value, number) "
                    "VALUES (%s, 'k', %s, %s) ON CONFLICT (artifact_id, key) DO UPDATE "
                    "SET value = excluded.value, number = excluded.number",
                    (raw_id, str(i), float(i)))
        raw.commit()

    return ({"atomic creation": create, "raw INSERTs + COMMIT": raw_create},
            {"set_meta": set_meta, "raw upsert + COMMIT": raw_upsert}, raw)


def round_trips_of(create: Any, set_meta: Any) -> tuple[int, int] | None:
    try:
        from catalogstore.testing.roundtrips import round_trips
    except ImportError:  # a checkout from before issue 18
        return None
    from catalogstore.txn.workspace import close_workspaces

    close_workspaces()  # the catalog's connections are opened again, traced
    with round_trips() as counter:
        create(10**8)  # opens the catalog
        counter.mark()
        create(10**8 + 1)
        created = counter.count()
        counter.mark()
        set_meta(10**8)
        return created, counter.count()


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__ or "")
    args = parser.parse_args(argv)
    repeat = args.repeat or (50 if args.quick else 300)
    print_header("PostgreSQL writes versus plain psycopg (issue 18)")
    import catalogstore

    note(f"catalogstore from {catalogstore.__file__}; server {PG_ADMIN_URL}")
    with postgres_store(args.dir) as workspace:
        creating, setting, raw = cases(workspace)
        try:
            created = measure(creating, repeat=repeat, warmup=5, collect=False)
            set_ = measure(setting, repeat=repeat, warmup=5, collect=False)
            trips = round_trips_of(creating["atomic creation"], setting["set_meta"])
        finally:
            raw.close()
    print_table("one artifact (1 KiB file + 3 keys) created in one transaction",
                list(created.values()))
    print_table("one metadata key set", list(set_.values()))
    note("round trips: not counted (no catalogstore.testing.roundtrips)" if trips is None
         else f"round trips: atomic creation {trips[0]}, set_meta {trips[1]}")
    c, rc = created["atomic creation"], created["raw INSERTs + COMMIT"]
    m, rm = set_["set_meta"], set_["raw upsert + COMMIT"]
    report_bar("pg-create", c.median / rc.median, 2.5,
               "atomic creation / raw psycopg INSERTs + COMMIT (median)", at_most=True)
    report_bar("pg-set-meta", m.median / rm.median, 2.0,
               "set_meta / raw upsert + COMMIT (median)", at_most=True)
    return exit_status()


if __name__ == "__main__":
    sys.exit(main())
