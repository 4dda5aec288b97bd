"""The catalog contract: what the layers above rely on from a catalog database.

It runs through the public API (:mod:`catalogstore.artifacts`) on a local storage
folder, and reads the documented schema with plain SQL, so it holds for any
database SQLAlchemy reaches. A database's test module subclasses
:class:`CatalogContract` and provides ``catalog_url``: the SQLAlchemy URL of an empty
database (or schema) for the test, migrated to the current schema (``catalogstore db
upgrade``; a SQLite file migrates itself)::

    from catalogstore.testing.catalog import CatalogContract

    class TestMyDatabase(CatalogContract):
        @pytest.fixture
        def catalog_url(self):
            return "mydialect://user@host/db_for_this_test"
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import catalogstore
from catalogstore import settings
from catalogstore.artifacts import (
    artifact_exists,
    get_artifact,
    list_artifacts,
    new_artifact,
)
from catalogstore.errors import ArtifactExistsError, ArtifactNotFoundError
from catalogstore.storage.checksum import checksum_bytes
from catalogstore.txn.workspace import close_workspaces

TYPED = {"text": ("x", "x"), "int": (3, 3), "float": (0.25, 0.25), "true": (True, True),
         "unicode": ("héllo ✓", "héllo ✓"), "null": (None, None), "list": ((1, "a"), [1, "a"]),
         "object": ({"b": [False], "a": 1.5}, {"b": [False], "a": 1.5}),
         "nan": (float("nan"), None), "whole float": (2.0, 2.0)}
"""Metadata values of every type the artifacts accept, and what they read back as
(JSON values with their type; NaN is null, as Flowdapt writes it)."""


def _names(where: dict[str, Any] | None = None, namespace: str = "") -> list[str]:
    return [a.name for a in list_artifacts(namespace, where=where)]


def analyze_sql(*, vacuum: bool = False) -> str:
    """PostgreSQL's ``ANALYZE`` (``VACUUM ANALYZE`` with ``vacuum``: run it in autocommit)
    of the catalog's own tables, by name: a bare ``ANALYZE`` visits every schema of the
    database and waits for the locks of other sessions (another test's or benchmark's
    transaction left open)."""
    from catalogstore.catalog.models import Base

    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    return f"{'VACUUM ' if vacuum else ''}ANALYZE {tables}"


def query_plan(conn: Any, statement: Any, params: dict[str, Any]) -> str:
    """The plan the database chooses for ``statement`` run with ``params`` on ``conn``
    (a SQLAlchemy connection), as the driver receives it: SQLite's ``EXPLAIN QUERY
    PLAN`` or PostgreSQL's ``EXPLAIN``, one line per step."""
    state = statement.compile(conn).construct_expanded_state(params)
    if conn.dialect.name == "sqlite":
        values = tuple(state.parameters[name] for name in state.positiontup)
        return "\n".join(row[-1] for row in conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN " + state.statement, values))
    return "\n".join(row[0] for row in conn.exec_driver_sql(
        "EXPLAIN " + state.statement, state.parameters))


class CatalogContract:
    """Tests every catalog database must pass. Subclasses provide ``catalog_url``."""

    @pytest.fixture(autouse=True)
    def _configured(self, catalog_url: str, tmp_path: Path) -> Iterator[None]:
        catalogstore.configure(catalog_url=catalog_url, storage_url=str(tmp_path / "storage"),
                               namespace="contract")
        yield
        close_workspaces()
        settings.reset_configuration()

    def test_create_get_list(self) -> None:
        for name in ("b", "a", "c"):
            new_artifact(name)
        close_workspaces()  # what follows reads what the database holds
        assert _names() == ["a", "b", "c"]
        assert get_artifact("b").name == "b" and artifact_exists("c")
        assert not artifact_exists("d")
        with pytest.raises(ArtifactNotFoundError):
            get_artifact("d")
        with pytest.raises(ArtifactExistsError):
            new_artifact("a")

    def test_namespaces_are_separate(self) -> None:
        new_artifact("a")
        new_artifact("a", namespace="other")
        new_artifact("b", namespace="other")
        assert _names() == ["a"]
        assert _names(namespace="other") == ["a", "b"]
        assert {(a.namespace, a.name) for a in list_artifacts(all_namespaces=True)} == \
            {("contract", "a"), ("other", "a"), ("other", "b")}

    def test_metadata_round_trip(self) -> None:
        artifact = new_artifact("a")
        for key, (value, _) in TYPED.items():
            artifact.set_meta(key, value)
        close_workspaces()
        again = get_artifact("a")
        read = {key: again.get_meta(key, "absent") for key in TYPED}
        assert read == {key: text for key, (_, text) in TYPED.items()}
        assert {key: type(value) for key, value in read.items()} == \
            {key: type(text) for key, (_, text) in TYPED.items()}
        assert list(again.metadata) == list(TYPED)  # insertion order
        again.del_meta("int")
        close_workspaces()
        assert get_artifact("a").get_meta("int", "gone") == "gone"

    def test_listing_by_metadata(self) -> None:
        for i in range(6):
            new_artifact(f"a{i}").set_meta("model", "xgb" if i % 3 == 0 else "lr")
        new_artifact("plain")
        assert _names({"model": "xgb"}) == ["a0", "a3"]
        assert _names({"model": "none"}) == []
        assert len(list_artifacts(filter="meta.model = 'lr'")) == 4

    def test_delete(self) -> None:
        new_artifact("a").new_file("f", b"x")
        get_artifact("a").delete()
        close_workspaces()
        assert _names() == [] and not artifact_exists("a")
        new_artifact("a")  # the name is free again
        assert _names() == ["a"]

    def test_files_are_recorded(self) -> None:
        artifact = new_artifact("a")
        artifact.new_file("f", b"hello")
        artifact.new_file("g", "text")
        close_workspaces()
        files = {f.name: f for f in get_artifact("a").list_files()}
        assert sorted(files) == ["f", "g"]
        assert files["f"].read() == b"hello" and files["g"].read() == "text"

    def test_documented_schema(self) -> None:
        # Users query these tables with plain SQL (DESIGN.md, "Catalog schema").
        from sqlalchemy import create_engine, text

        artifact = new_artifact("a")
        artifact.new_file("f", b"hello")
        artifact.set_meta("k", "v")
        engine = create_engine(catalogstore.get_settings().catalog_url)
        try:
            with engine.connect() as conn:
                row = conn.execute(text(
                    "SELECT f.name, f.size, f.checksum, m.key, m.value FROM artifacts a "
                    "JOIN artifact_files f ON f.artifact_id = a.id "
                    "JOIN artifact_metadata m ON m.artifact_id = a.id "
                    "WHERE a.namespace = 'contract' AND a.name = 'a'")).one()
        finally:
            engine.dispose()
        assert tuple(row) == ("f", 5, checksum_bytes(b"hello"), "k", "v")
