"""The direct SQLite path stores exactly what SQLAlchemy Core stores.

The same workload runs twice on fresh SQLite catalogs, once with the direct path
and once with every statement through Core, at the same frozen clock; the
tables must come out identical, byte for byte as SQLite holds them.
"""

from __future__ import annotations

import itertools
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import catalogstore
from catalogstore.artifacts import get_artifact, new_artifact
from catalogstore.catalog import catalog as catalog_module
from catalogstore.catalog import direct
from catalogstore.errors import ArtifactExistsError, NameCollisionError
from catalogstore.txn.workspace import close_workspaces

TABLES = {"artifacts": "id", "artifact_files": "artifact_id, name",
          "artifact_metadata": "artifact_id, key", "catalog_journal": "id"}


def workload() -> None:
    """Every kind of commit: creations alone and in batches, updates, removals, deletes,
    refused duplicates and case variants."""
    with catalogstore.transaction():
        first = new_artifact("first", "ns")
        first.new_file("data.bin", content=b"\x00\x01" * 300)
        first.new_file("notes.txt", content="h\u00e9llo")
        first.update_meta({"epochs": 10, "loss": "0.25", "quote": "it's \"x\"", "u": "\u00e9"})
    second = new_artifact("second", "ns")
    second.set_meta("n", 3)
    second.new_file("a", content=b"a")
    with second.transaction():
        second.new_file("b", content=b"b")
        second.delete_file("a")
        second.del_meta("n")
        second.set_meta("m", "1e3")
    with catalogstore.transaction():  # a batch past the direct path's IN-list length
        for i in range(40):
            artifact = new_artifact(f"bulk-{i:02d}", "bulk")
            artifact.new_file("x", content=str(i))
            artifact.update_meta({"i": i, "even": i % 2 == 0})
    with pytest.raises(ArtifactExistsError):
        new_artifact("first", "ns")
    with pytest.raises(NameCollisionError):
        new_artifact("FIRST", "ns")
    with pytest.raises(NameCollisionError):
        new_artifact("x", "NS")
    with pytest.raises(NameCollisionError):
        get_artifact("first", "ns").new_file("DATA.bin", content=b"")
    get_artifact("first", "ns").new_file("data.bin", content=b"rewritten")
    get_artifact("bulk-03", "bulk").delete()
    with catalogstore.transaction():
        for i in range(5, 25):
            get_artifact(f"bulk-{i:02d}", "bulk").delete()


def run_workload(root: Path, monkeypatch: pytest.MonkeyPatch, *, core_only: bool
                 ) -> dict[str, list[tuple[Any, ...]]]:
    start = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
    ticks = itertools.count()
    monkeypatch.setattr(catalog_module, "utcnow",
                        lambda: start + timedelta(microseconds=next(ticks)))
    if core_only:
        monkeypatch.setattr(direct, "_direct", lambda *_, **__: False)
    root.mkdir()  # a SQLite catalog's folder is never made (issue 12)
    # Without lineage: its flush runs on a timer thread, and a tick it took would shift
    # one run's timestamps against the other's.
    catalogstore.configure(catalog_url=f"sqlite:///{root / 'catalog.db'}",
                           storage_url=str(root / "storage"), lineage=False)
    used = []
    original = direct._prepare
    monkeypatch.setattr(direct, "_prepare", lambda *a: used.append(a[1]) or original(*a))
    workload()
    close_workspaces()
    monkeypatch.undo()
    assert bool(used) is not core_only  # the path under test was taken
    with sqlite3.connect(root / "catalog.db") as conn:
        return {table: conn.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()
                for table, order in TABLES.items()}


def test_direct_path_stores_what_core_stores(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    fast = run_workload(tmp_path / "direct", monkeypatch, core_only=False)
    core = run_workload(tmp_path / "core", monkeypatch, core_only=True)
    assert fast["artifacts"] and fast["artifact_files"] and fast["artifact_metadata"]
    # The journal holds staging paths (random names): compare everything else of it.
    for table in ("artifacts", "artifact_files", "artifact_metadata"):
        assert fast[table] == core[table], table
    assert [row[:3] for row in fast["catalog_journal"]] == \
        [row[:3] for row in core["catalog_journal"]]
    # Timestamps are stored as Core's SQLite DATETIME type writes them.
    assert fast["artifacts"][0][3] == "2026-01-02 03:04:05.678901"


def test_writer_connections_are_kept_per_thread(tmp_path: Path) -> None:
    """On a SQLite file each thread keeps its writer connection between commits; a dead
    thread's goes back to the pool, and closing the workspace closes the rest."""
    import gc
    import threading

    from catalogstore.txn.workspace import get_workspace

    catalogstore.configure(catalog_url=f"sqlite:///{tmp_path / 'catalog.db'}",
                           storage_url=str(tmp_path / "storage"))
    catalog = get_workspace().catalog
    new_artifact("a")
    first = catalog._kept.conn
    new_artifact("b").set_meta("k", "v")
    assert catalog._kept.conn is first  # kept between commits

    def create(i: int) -> None:
        new_artifact(f"t-{i}").new_file("f", content=b"x")

    threads = [threading.Thread(target=create, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    gc.collect()
    assert catalog.engine.pool.checkedout() == 1  # only this thread's is still out
    assert len(catalogstore.artifacts.list_artifacts()) == 6

    artifact = get_artifact("a")
    close_workspaces()
    assert first.closed
    artifact.set_meta("k", "w")  # a handle kept across the close gets a new connection
    assert get_artifact("a").metadata == {"k": "w"}


@pytest.mark.parametrize("order_by", [None, "-created_at", "meta.i", "updated_at desc"])
def test_a_page_read_directly_equals_cores(tmp_path: Path, order_by: str | None) -> None:
    """A listing's page through the direct path (``run_select``) is what Core returns,
    timestamps and sort keys included."""
    from catalogstore.catalog.query.compile import compile_search
    from catalogstore.txn.workspace import get_workspace

    catalogstore.configure(catalog_url=f"sqlite:///{tmp_path / 'catalog.db'}",
                           storage_url=str(tmp_path / "storage"))
    workload()
    catalog = get_workspace().catalog
    for where, filter in (({"even": True}, None), (None, "meta.i >= 30"), (None, None),
                          (None, "created_at > '2000-01-01' AND meta.i IN (1, 2, 33)")):
        search = compile_search(filter, dialect="sqlite", where=where, order_by=order_by,
                                limit=7)
        with catalog.engine.connect() as conn, conn.begin():
            statement = search.statement(conn)
            core = [tuple(row) for row in conn.execute(statement).all()]
            fast = direct.run_select(conn, statement, {})
        assert core and fast == core
        assert all(isinstance(row[3], datetime) and row[3].tzinfo for row in fast)
    close_workspaces()
