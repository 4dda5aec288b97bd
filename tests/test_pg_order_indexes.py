"""PostgreSQL reads a page of an ordering across namespaces in index order (issue 18):
the planner's choice, checked with EXPLAIN on a catalog large enough that a sort of
every artifact would cost more than the index scan."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from catalogstore.catalog.query.compile import compile_search

pytestmark = pytest.mark.postgres


@pytest.fixture
def big_catalog(migrated_pg_url):
    from catalogstore.catalog.engine import make_engine

    engine = make_engine(migrated_pg_url)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO artifacts (namespace, name, created_at, updated_at) "
            "SELECT 'ns-' || (i % 500), 'run-' || i, now() - i * interval '1 s', now() "
            "FROM generate_series(1, 50000) AS i"))
        conn.execute(text("ANALYZE artifacts"))
    yield engine
    engine.dispose()


@pytest.mark.parametrize(("order_by", "index"), [
    ("name", "ix_artifacts_name_id"), ("name desc", "ix_artifacts_name_id"),
    ("created_at desc", "ix_artifacts_created_at"), ("updated_at", "ix_artifacts_updated_at")])
def test_first_page_across_namespaces_reads_an_index_in_order(big_catalog, order_by, index):
    search = compile_search(None, dialect="postgresql", namespaces="ns-*", order_by=order_by,
                            limit=100)
    with big_catalog.connect() as conn:
        statement = search.statement(conn).compile(conn)
        plan = "\n".join(row[0] for row in conn.exec_driver_sql(
            "EXPLAIN " + statement.string, statement.params))
    assert f"Index Scan Backward using {index}" in plan or \
        f"Index Scan using {index}" in plan, plan
    assert "Sort" not in plan, plan
