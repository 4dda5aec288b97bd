"""The check that refuses names differing only by case (issue 6), on both databases.

- Its queries use the index on (lower(namespace), lower(name)): SQLite's
  ``EXPLAIN QUERY PLAN`` as it plans without statistics, PostgreSQL's ``EXPLAIN``
  after ``ANALYZE`` with sequential scans disabled (the technique of
  ``test_query_sql``), on a catalog of 5000 artifacts.
- 8 processes creating the first artifact of ``Team`` or of ``team`` at the same
  moment (a barrier starts them together), round after round: exactly one
  spelling of the namespace ends up in the catalog each time.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection

from catalogstore.catalog import collisions
from catalogstore.catalog.catalog import A
from catalogstore.catalog.engine import make_engine
from catalogstore.catalog.migrate import upgrade
from catalogstore.testing.catalog import analyze_sql, query_plan

INDEX = "ix_artifacts_lower_namespace_name"
N = 5000


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty catalog at the schema head: a SQLite file, or a PostgreSQL schema."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'catalog.db'}"
    else:
        url = str(request.getfixturevalue("pg_url"))
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


# -- the queries use the index -----------------------------------------------------------


def _load(conn: Connection) -> None:
    """N artifacts in 5 namespaces (one of them in two spellings, as reindex may record)."""
    now = datetime(2024, 1, 1, tzinfo=timezone.utc)
    conn.execute(A.insert(), [{"namespace": f"team-{i % 5}", "name": f"Run-{i:05d}",
                               "created_at": now, "updated_at": now} for i in range(N)])


def test_case_check_queries_use_the_index(catalog_url):
    engine = make_engine(catalog_url)
    try:
        with engine.begin() as conn:
            _load(conn)
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql(analyze_sql())
                conn.exec_driver_sql("SET enable_seqscan = off")
            plans = {
                "same names": query_plan(conn, collisions._SAME_NAMES, {
                    "lower": "team-1", "lowers": ["run-00001", "run-00006"],
                    "ns": "team-1", "names": ["Run-00001", "run-00006"]}),
                "namespace variant": query_plan(conn, collisions._NAMESPACE_VARIANT, {
                    "lower": "team-1", "ns": "Team-1"}),
            }
            # Whether a namespace existed, on PostgreSQL: its first names, in index order.
            first = query_plan(conn, collisions._FIRST_NAMES, {"ns": "team-1", "n": 2})
            # The answers, on a namespace recorded in two spellings.
            moment = datetime(2024, 1, 2, tzinfo=timezone.utc)
            conn.execute(A.insert().values(namespace="Team-1", name="x", created_at=moment,
                                           updated_at=moment))
            found = conn.execute(collisions._NAMESPACE_VARIANT,
                                 {"lower": "team-1", "ns": "team-1"}).scalar()
            assert found == "Team-1"
            rows = conn.execute(collisions._SAME_NAMES, {
                "lower": "team-1", "lowers": ["run-00001", "x"], "ns": "team-1",
                "names": ["run-00001", "x"]}).all()
            assert sorted(rows) == [("Team-1", "x", 1), ("team-1", "Run-00001", 0),
                                    ("team-1", "Run-00001", 1)]
            conn.rollback()
    finally:
        engine.dispose()
    unique = "sqlite_autoindex_artifacts_1" if "SEARCH" in first else "uq_artifacts_namespace_name"
    assert unique in first and "SORT" not in first and "Sort" not in first, first
    for label, plan in plans.items():
        assert INDEX in plan, f"{label}: no {INDEX} in\n{plan}"
        assert "Seq Scan" not in plan and "SCAN artifacts" not in plan.replace(
            "SCAN artifacts USING", ""), f"{label}:\n{plan}"
    print(f"\n[{engine.dialect.name}] case check plans:\n" + "\n".join(
        f"  {label}: {' | '.join(p.strip() for p in plan.splitlines())}"
        for label, plan in plans.items()))


# -- two spellings of a new namespace at the same moment ------------------------------------

PROCESSES = 8
ROUNDS = 10
_barrier: Any = None


def _init(barrier: Any) -> None:
    global _barrier
    _barrier = barrier


def _create_first(env: dict[str, str], namespace: str, name: str) -> str:
    """Open the catalog, wait for the others, create ``namespace/name``: what happened."""
    from catalogstore.artifacts import new_artifact
    from catalogstore.errors import NameCollisionError
    from catalogstore.settings import reset_configuration
    from catalogstore.txn.workspace import close_workspaces, get_workspace

    os.environ.update(env)
    reset_configuration()
    try:
        get_workspace()  # connected and migrated before the start
        _barrier.wait(timeout=120)
        try:
            new_artifact(name, namespace)
        except NameCollisionError as exc:
            assert "differs only by case" in str(exc), exc
            return "refused"
        return "created"
    finally:
        close_workspaces()


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(PROCESSES, mp_context=ctx, initializer=_init,
                             initargs=(ctx.Barrier(PROCESSES),)) as executor:
        yield executor


@pytest.mark.slow
def test_case_variant_namespaces_created_at_once_one_wins(catalog_url, tmp_path, pool):
    env = {"CATALOGSTORE_CATALOG_URL": catalog_url,
           "CATALOGSTORE_STORAGE_URL": str(tmp_path / "storage")}
    outcomes = []
    for round_ in range(ROUNDS):
        spellings = [f"Team{round_}", f"team{round_}"]
        futures = [pool.submit(_create_first, env, spellings[w % 2], f"w{w}")
                   for w in range(PROCESSES)]
        results = [f.result(timeout=300) for f in futures]
        engine = make_engine(catalog_url)
        with engine.connect() as conn:
            rows = conn.execute(sa.select(A.c.namespace, A.c.name).where(
                sa.func.lower(A.c.namespace) == f"team{round_}")).all()
        engine.dispose()
        namespaces = {ns for ns, _ in rows}
        assert len(namespaces) == 1, f"round {round_}: both spellings in the catalog: {rows}"
        (winner,) = namespaces
        created = sorted(f"w{w}" for w, r in enumerate(results) if r == "created")
        assert created == sorted(name for _, name in rows)
        # Every creator of the winning spelling succeeded, every other one was refused.
        assert results == ["created" if spellings[w % 2] == winner else "refused"
                           for w in range(PROCESSES)]
        outcomes.append(winner)
    print(f"\n[{catalog_url.split(':')[0]}] {ROUNDS} rounds of {PROCESSES} "
          f"racing creators, winners: {outcomes}")
