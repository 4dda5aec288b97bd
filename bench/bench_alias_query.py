"""Searching the metadata of the version an alias names (issue 15), beside the same
search on the current metadata.

100,000 artifacts (10,000 with ``--quick``), bulk-inserted into a SQLite catalog and
into a fresh PostgreSQL schema (127.0.0.1:5432): each at version 2 with a ``model``
(1 % per value) and a uniform ``accuracy``, version 1 holding other values, and the
alias ``prod`` on version 1 of every artifact (the worst case: the alias is set
everywhere). Timed round robin through ``query_artifacts``: ``alias.prod.meta.accuracy
> X`` (~1 % of the artifacts) against ``meta.accuracy > X`` (the baseline: the typed
rows of the current version and their index), and each narrowed by ``meta.model =
'mN'``. No bar: the ratios say what reading versions' documents costs, where the
current version's keys have an index (``alias.prod.meta.KEY`` reads the document of
every version the alias names, once to plan and once to answer).

    .venv/bin/python bench/bench_alias_query.py [--quick] [--repeat N] [--only sqlite|postgres]
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from _common import make_parser, measure, note, print_header, print_table, temp_store
from bench_query import postgres_store

MODELS = 100
MOMENT = datetime(2024, 1, 1, tzinfo=timezone.utc)


def load(engine: Any, count: int) -> None:
    """The artifacts, their current metadata rows, both versions and the aliases."""
    from catalogstore.catalog.models import ALIASES, ARTIFACTS, METADATA, VERSIONS
    from catalogstore.record import json_text, value_columns
    from catalogstore.testing.catalog import analyze_sql

    rng = random.Random(15)
    artifacts, metadata, versions, aliases = [], [], [], []
    for i in range(1, count + 1):
        old = {"model": f"m{(i + 1) % MODELS}", "accuracy": rng.random()}
        new = {"model": f"m{i % MODELS}", "accuracy": rng.random()}
        artifacts.append({"id": i, "namespace": f"team-{i % 10}", "name": f"run-{i:07d}",
                          "created_at": MOMENT, "updated_at": MOMENT, "version": 2,
                          "metadata_json": json_text(new)})
        for key, value in new.items():
            kind, text, number = value_columns(value)
            metadata.append({"artifact_id": i, "key": key, "type": kind, "value": text,
                             "number": number})
        versions += [{"artifact_id": i, "version": v, "created_at": MOMENT,
                      "metadata_json": json_text(doc)} for v, doc in ((1, old), (2, new))]
        aliases.append({"artifact_id": i, "alias": "prod", "version": 1, "updated_at": MOMENT})
    with engine.begin() as conn:
        for table, rows in ((ARTIFACTS, artifacts), (METADATA, metadata), (VERSIONS, versions),
                            (ALIASES, aliases)):
            for start in range(0, len(rows), 10_000):
                conn.execute(table.insert(), rows[start:start + 10_000])
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                analyze_sql(vacuum=True))


def cases(count: int) -> dict[str, Callable[[int], object]]:
    """Each round with another threshold (no answer served twice from a cache)."""
    from catalogstore.artifacts import query_artifacts

    def found(text: str, low: int, high: int) -> int:
        hits = len(query_artifacts(text))
        if not low <= hits <= high:
            raise SystemExit(f"{text}: {hits} artifacts, expected {low} to {high}")
        return hits

    def at(r: int) -> str:
        return f"{0.99 - (r % 50) * 1e-5:.5f}"

    share = count // 100
    return {
        "meta.accuracy > X (~1 %)": lambda r: found(
            f"meta.accuracy > {at(r)}", share // 2, share * 2),
        "alias.prod.meta.accuracy > X (~1 %)": lambda r: found(
            f"alias.prod.meta.accuracy > {at(r)}", share // 2, share * 2),
        "meta.model = 'mN' AND meta.accuracy > 0.5": lambda r: found(
            f"meta.model = 'm{r % MODELS}' AND meta.accuracy > 0.5", 1, share),
        "meta.model = 'mN' AND alias.prod.meta.accuracy > 0.5": lambda r: found(
            f"meta.model = 'm{r % MODELS}' AND alias.prod.meta.accuracy > 0.5", 1, share),
    }


def run(label: str, engine: Any, count: int, repeat: int) -> None:
    print(f"   {label}: loading {count:,} artifacts with 2 versions and an alias ...",
          flush=True)
    load(engine, count)
    timings = measure(cases(count), repeat=repeat, warmup=2, collect=False)
    rows = list(timings.values())
    print_table(f"{label}: searches among {count:,} artifacts (query_artifacts)", rows)
    for base, aliased in ((rows[0], rows[1]), (rows[2], rows[3])):
        print(f"   {label}: {aliased.label}: {aliased.median / base.median:.1f}x "
              f"{base.label}")


def main(argv: list[str] | None = None) -> int:
    args = make_parser(__doc__, ["sqlite", "postgres"]).parse_args(argv)
    print_header("searching the metadata of aliased versions")
    count = 10_000 if args.quick else 100_000
    repeat = args.repeat or (5 if args.quick else 15)
    if args.only in (None, "sqlite"):
        with temp_store(args.dir) as store:
            run("SQLite", store.workspace.catalog.engine, count, repeat)
    if args.only in (None, "postgres"):
        try:
            with postgres_store(args.dir) as workspace:
                run("PostgreSQL", workspace.catalog.engine, count, repeat)
        except OSError as exc:
            note(f"PostgreSQL not reachable ({exc}): not measured")
    return 0


if __name__ == "__main__":
    sys.exit(main())
