"""The catalog contract (:mod:`catalogstore.testing.catalog`) on a SQLite file and on
the PostgreSQL server."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalogstore.testing.catalog import CatalogContract


class TestSQLite(CatalogContract):
    @pytest.fixture
    def catalog_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'catalog.db'}"


@pytest.mark.postgres
class TestPostgres(CatalogContract):
    @pytest.fixture
    def catalog_url(self, migrated_pg_url: str) -> str:
        return migrated_pg_url
