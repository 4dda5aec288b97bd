"""Search in SQL (issue 5): the README's plain SQL and the query plans, on both stacks.

- Every ``sql`` block of the README's schema section runs unchanged on SQLite and
  PostgreSQL and gives the expected rows (its first line names the question).
- ``EXPLAIN`` of the common searches, as the API runs them, shows the indexes
  that make them fast: SQLite's ``EXPLAIN QUERY PLAN`` as it plans without
  statistics, PostgreSQL's ``EXPLAIN`` after ``ANALYZE`` with sequential scans
  disabled (so the plan shows the index is usable, whatever the table size).
"""

from __future__ import annotations

import random
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, select, text

import catalogstore
from catalogstore.artifacts import list_artifacts, new_artifact
from catalogstore.catalog.catalog import A, M
from catalogstore.catalog.query.compile import compile_search
from catalogstore.record import json_text, value_number
from catalogstore.testing.catalog import analyze_sql
from catalogstore.txn.workspace import get_workspace

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_queries() -> dict[str, str]:
    """The ``sql`` blocks of the README's schema section, by their first comment line."""
    readme = README.read_text()
    section = readme[readme.index("## The catalog schema"):readme.index("## Command line")]
    blocks = re.findall(r"```sql\n(.*?)```", section, re.DOTALL)
    return {block.splitlines()[0].removeprefix("-- ").strip(): block for block in blocks}


EXPECTED: dict[str, list[tuple[Any, ...]]] = {
    "artifacts with a metadata value": [("team-a", "run-1", 2, 1600), ("team-b", "run-3", 0, 0)],
    "artifacts with a metadata value, through the view": [("team-a", "run-1", 2, 1600),
                                                          ("team-b", "run-3", 0, 0)],
    "artifacts with a numeric metadata value in a range": [("team-a", "run-2", "0.97"),
                                                           ("team-a", "run-1", "0.9")],
    "latest artifact per name pattern": [("team-a", "run-2"), ("team-b", "run-3")],
    "total size per namespace": [("team-a", 3, 3, 1700), ("team-b", 1, 0, 0)],
    "artifacts whose final flag is the boolean true, with the type of their note": [
        ("team-a", "run-1", "null"), ("team-a", "run-2", "missing")],
    # run-1: created (v1, pinned), then its files and metadata (v2, current).
    "every version of an artifact": [(1, 0, 1, 0, 0), (2, 1, 0, 2, 1600)],
    "the version an alias names, with its metadata": [
        ("team-a", "run-1", "prod", 2,
         '{"model":"xgb","accuracy":"0.9","final":true,"note":null}'),
        ("team-b", "run-3", "prod", 1, "{}")],
    "artifacts whose prod alias is behind the current version": [("team-b", "run-3", 1, 2)],
}


def test_the_readme_has_the_queries():
    assert set(readme_queries()) == set(EXPECTED)


def _plain(row: Any) -> tuple[Any, ...]:
    # PostgreSQL sums BIGINT as NUMERIC; compare the values.
    return tuple(int(v) if type(v).__name__ == "Decimal" else v for v in row)


def test_readme_sql_runs_on_both_databases(stack):
    a1 = new_artifact("run-1", "team-a")
    with a1.transaction():
        a1.new_file("weights.bin", content=b"\0" * 1500)
        a1.new_file("log.txt", content="x" * 100)
        a1.update_meta({"model": "xgb", "accuracy": "0.9", "final": True, "note": None})
    time.sleep(0.01)  # distinct creation times for "latest"
    a2 = new_artifact("run-2", "team-a")
    with a2.transaction():
        a2.new_file("weights.bin", content=b"\0" * 100)
        a2.update_meta({"model": "lgbm", "accuracy": "0.97", "final": True})
    new_artifact("exp-9", "team-a")["accuracy"] = "high"
    a3 = new_artifact("run-3", "team-b")
    a3.update_meta({"model": "xgb", "accuracy": "0.5", "final": "true", "note": "a string"})
    a1.set_alias("prod", 2)
    a1.pin(1)
    a3.set_alias("prod", 1)  # behind its current version, 2
    with get_workspace().catalog.engine.connect() as conn:
        # The driver's own cursor: the SQL exactly as written, no parameters.
        cursor = conn.connection.dbapi_connection.cursor()
        for question, sql in readme_queries().items():
            cursor.execute(sql)
            rows = [_plain(row) for row in cursor.fetchall()]
            if question == "latest artifact per name pattern":
                rows = [row[:2] for row in rows]
            assert rows == EXPECTED[question], question


# -- plans ---------------------------------------------------------------------------

N = 5000
BASE = datetime(2024, 1, 1, tzinfo=timezone.utc)


def bulk_load(conn: Connection) -> None:
    """N artifacts in 5 namespaces, each with batch (50 per value), model (10 values)
    and accuracy (uniform), inserted straight into the tables."""
    rng = random.Random(5)
    rows, documents = [], {}
    for i in range(1, N + 1):
        meta = {"batch": f"b{i % 100}", "model": f"m{i % 10}", "accuracy": repr(rng.random())}
        documents[i] = json_text(meta)  # as a commit writes it beside the rows
        for key, value in meta.items():
            rows.append({"artifact_id": i, "key": key, "value": value,
                         "number": value_number(value)})
    conn.execute(A.insert(), [
        {"id": i, "namespace": f"team-{i % 5}", "name": f"run-{i:05d}",
         "created_at": BASE + timedelta(seconds=i), "updated_at": BASE + timedelta(seconds=i),
         "metadata_json": documents[i]}
        for i in range(1, N + 1)])
    conn.execute(M.insert(), rows)


def explain(conn: Connection, statement: Any) -> str:
    compiled = statement.compile(conn, compile_kwargs={"render_postcompile": True})
    if conn.dialect.name == "sqlite":
        params = tuple(compiled.params[name] for name in compiled.positiontup)
        plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + compiled.string, params)
        return "\n".join(row[-1] for row in plan)
    plan = conn.exec_driver_sql("EXPLAIN " + compiled.string, compiled.params)
    return "\n".join(row[0] for row in plan)


# SQLite names the index of a UNIQUE constraint itself.
UNIQUE_SQLITE = "sqlite_autoindex_artifacts_1"
# search -> (filter, options, indexes the plan must use: SQLite, PostgreSQL)
PLANS: dict[str, tuple[str | None, dict[str, Any], list[str], list[str]]] = {
    "metadata equality": ("meta.batch = 'b7'", {},
                          ["ix_artifact_metadata_key_value"], ["ix_artifact_metadata_value"]),
    "metadata IN": ("meta.batch IN ('b7', 'b8')", {},
                    ["ix_artifact_metadata_key_value"], ["ix_artifact_metadata_value"]),
    "numeric range": ("meta.accuracy > 0.99", {},
                      ["ix_artifact_metadata_key_number"], ["ix_artifact_metadata_key_number"]),
    "two keys, equality and range": (
        "meta.model = 'm3' AND meta.accuracy > 0.95", {},
        ["ix_artifact_metadata_key_value", "ix_artifact_metadata_key_number"],
        ["ix_artifact_metadata_value", "ix_artifact_metadata_key_number"]),
    "key exists": ("meta.batch IS NOT NULL AND meta.model = 'm1'", {},
                   ["ix_artifact_metadata_key_value"], ["ix_artifact_metadata_"]),
    "name prefix across namespaces": ("name LIKE 'run-001%'", {},
                                      ["ix_artifacts_name"], ["ix_artifacts_name"]),
    "one namespace, by name": (None, {"namespaces": "team-1", "limit": 20},
                               [UNIQUE_SQLITE], ["uq_artifacts_namespace_name"]),
    "newest first": (None, {"order_by": "-created_at", "limit": 10},
                     ["ix_artifacts_created_at"], ["ix_artifacts_created_at"]),
    "recently changed": (None, {"order_by": "updated_at desc", "limit": 10},
                         ["ix_artifacts_updated_at"], ["ix_artifacts_updated_at"]),
    "recently changed, a common value": ("meta.batch IS NOT NULL",
                                         {"order_by": "updated_at desc", "limit": 10},
                                         ["ix_artifacts_updated_at"], ["ix_artifacts_updated_at"]),
}


@pytest.fixture
def loaded(stack: Any) -> Any:
    catalog = get_workspace().catalog
    with catalog.engine.begin() as conn:
        bulk_load(conn)
    if catalog.engine.dialect.name == "postgresql":  # SQLite plans without statistics
        with catalog.engine.connect() as conn:
            conn.exec_driver_sql(analyze_sql())
            conn.commit()
    return catalog


def test_common_searches_use_indexes(loaded):
    engine = loaded.engine
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SET enable_seqscan = off")
        for label, (filter, options, on_sqlite, on_postgres) in PLANS.items():
            search = compile_search(filter, dialect=engine.dialect.name, **options)
            # The ids it starts from (PostgreSQL reads them first), then the page.
            chosen = search.plan(conn)
            plan = explain(conn, search.statement(conn, chosen))
            if chosen.ids is not None and engine.dialect.name == "postgresql":
                plan = explain(conn, chosen.ids) + "\n" + plan
            for index in on_sqlite if engine.dialect.name == "sqlite" else on_postgres:
                assert index in plan, f"{label}: no {index} in\n{plan}"
            assert "Seq Scan" not in plan and not re.search(r"\bSCAN artifacts\b(?! USING)",
                                                            plan), f"{label}:\n{plan}"
        # Counting per namespace (catalogstore ls -A, the benchmark's third bar).
        plan = explain(conn, select(A.c.namespace, text("count(*)")).group_by(A.c.namespace))
        assert (UNIQUE_SQLITE if engine.dialect.name == "sqlite"
                else "uq_artifacts_namespace_name") in plan, plan


def test_a_metadata_equality_listing_starts_from_its_hits(loaded):
    """``list_artifacts(ns, where=...)`` reads the (key, value) index, then each hit's
    artifact by its id, filtered by namespace: never the namespace's artifacts (its
    cost follows the hits, whatever the namespace's size). Batch b7's 50 artifacts
    are all in team-2's 1,000."""
    engine = loaded.engine
    sqlite = engine.dialect.name == "sqlite"
    search = compile_search(None, dialect=engine.dialect.name, where={"batch": "b7"},
                            namespaces=["team-2"])
    with engine.connect() as conn:
        chosen = search.plan(conn)
        plan = explain(conn, search.statement(conn, chosen))
        if not sqlite:  # PostgreSQL reads the ids of the plan first
            plan = explain(conn, chosen.ids) + "\n" + plan
    hits, by_id, namespace_index = (
        ("ix_artifact_metadata_key_value", "USING INTEGER PRIMARY KEY", UNIQUE_SQLITE)
        if sqlite else ("ix_artifact_metadata_value", "pk_artifacts",
                        "uq_artifacts_namespace_name"))
    assert hits in plan and by_id in plan, plan
    assert namespace_index not in plan and "Seq Scan" not in plan \
        and not re.search(r"\bSCAN artifacts\b", plan), plan
    listed = list_artifacts("team-2", where={"batch": "b7"})
    assert len(listed) == 50 and all(a.metadata["batch"] == "b7" for a in listed)


def test_the_search_results_match_the_plans(loaded):
    """The plans above answer correctly (SQLite: the chosen intersection of index sets)."""
    with loaded.engine.connect() as conn:
        truth = {row.artifact_id for row in conn.execute(
            select(M.c.artifact_id).where(M.c.key == "accuracy", M.c.number > 0.95))}
        truth &= {row.artifact_id for row in conn.execute(
            select(M.c.artifact_id).where(M.c.key == "model", M.c.value == "m3"))}
    search = compile_search("meta.model = 'm3' AND meta.accuracy > 0.95",
                            dialect=loaded.engine.dialect.name)
    records, cursor = loaded.search(search)
    assert {r.id for r in records} == truth and cursor is None
    assert all(r.metadata["model"] == "m3" for r in records)


def test_views(stack):
    with catalogstore.transaction():
        artifact = new_artifact("viewed", "v")
        artifact.new_file("a", content=b"12345")
        artifact.update_meta({"k": "v", "n": "7"})
        new_artifact("bare", "v")
    with get_workspace().catalog.engine.connect() as conn:
        summary = conn.exec_driver_sql(
            "SELECT name, files, size FROM artifact_summary ORDER BY name").all()
        search = conn.exec_driver_sql(
            "SELECT name, key, value, number, files, size FROM artifact_search "
            "ORDER BY name, key").all()
    assert [_plain(r) for r in summary] == [("bare", 0, 0), ("viewed", 1, 5)]
    assert [_plain(r) for r in search] == [("viewed", "k", "v", None, 1, 5),
                                           ("viewed", "n", "7", 7.0, 1, 5)]
