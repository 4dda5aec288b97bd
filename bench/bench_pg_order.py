"""Orderings across namespaces on PostgreSQL at 1,000,000 artifacts (issue 18).

A fresh schema on the PostgreSQL server (127.0.0.1:5432, database ``test``) gets
1,000,000 artifacts (100,000 with ``--quick``) in 20 namespaces by COPY, then
``VACUUM ANALYZE``; no metadata (the orderings read the artifacts' own columns, and
loading 5,000,000 metadata rows takes ``bench_query.py`` many minutes on a shared
machine). Timed through ``query_artifacts``, each a first page of 100 of the 11
namespaces ``team-1*`` (about half the artifacts): by name (ascending and
descending in turn), by ``updated_at``, by ``created_at``; and by name across all
namespaces. Baseline in the same run: the page by name again after
``DROP INDEX ix_artifacts_name_id`` (the schema before issue 18).
Bar: the first page by name under 20 ms (median).

    .venv/bin/python bench/bench_pg_order.py [--quick] [--repeat N]
"""

from __future__ import annotations

import sys
import time
from typing import Any

from _common import exit_status, make_parser, measure, note, print_header, print_table, report_bar
from bench_query import artifact_rows, postgres_store

NAME_PAGE = "first 100 of 'team-1*' by name"


def load(engine: Any, count: int) -> None:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        with cursor.copy("COPY artifacts (id, namespace, name, created_at, updated_at) "
                         "FROM STDIN") as copy:
            for i, ns, name, moment in artifact_rows(1, count + 1):
                copy.write_row((i, ns, name, moment, moment))
        cursor.execute("SELECT setval(pg_get_serial_sequence('artifacts', 'id'), %s)",
                       (count,))
        raw.commit()
        raw.driver_connection.autocommit = True
        cursor.execute("VACUUM ANALYZE artifacts")
    finally:
        raw.close()


def cases() -> dict[str, Any]:
    from catalogstore.artifacts import query_artifacts

    def page(namespaces: str, order_by: str) -> Any:
        found = query_artifacts(namespaces=namespaces, order_by=order_by, limit=100)
        if len(found) != 100:
            raise SystemExit(f"{namespaces} by {order_by}: {len(found)} artifacts, not 100")
        return found

    return {
        NAME_PAGE: lambda r: page("team-1*", "-name" if r % 2 else "name"),
        "first 100 of 'team-1*' by updated_at": lambda r: page("team-1*", "-updated_at"),
        "first 100 of 'team-1*' by created_at": lambda r: page("team-1*", "created_at"),
        "first 100 by name, all namespaces": lambda r: page("*", "name"),
    }


def main(argv: list[str] | None = None) -> int:
    args = make_parser(__doc__ or "").parse_args(argv)
    count = 100_000 if args.quick else 1_000_000
    repeat = args.repeat or 20
    print_header(f"PostgreSQL orderings across namespaces at {count:,} artifacts (issue 18)")
    with postgres_store(args.dir) as workspace:
        engine = workspace.catalog.engine
        started = time.perf_counter()
        load(engine, count)
        note(f"loaded {count:,} artifacts with COPY + VACUUM ANALYZE in "
             f"{time.perf_counter() - started:.1f} s")
        timings = measure(cases(), repeat=repeat, warmup=2, collect=False)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP INDEX ix_artifacts_name_id")
        without = measure({NAME_PAGE: cases()[NAME_PAGE]}, repeat=repeat, warmup=2,
                          collect=False)[NAME_PAGE]
    print_table(f"first pages among {count:,} artifacts (query_artifacts)",
                list(timings.values()))
    with_index = timings[NAME_PAGE].median
    note(f"{NAME_PAGE} without ix_artifacts_name_id (before issue 18), same data: "
         f"{without.median * 1e3:.1f} ms median, {without.median / with_index:.0f}x slower")
    report_bar("pg-order-by-name", with_index * 1e3, 20, f"{NAME_PAGE} at {count:,} "
               "artifacts, median", at_most=True, unit="ms")
    return exit_status()


if __name__ == "__main__":
    sys.exit(main())
