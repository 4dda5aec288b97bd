"""Catalog rows edited by hand (issue 6): never followed as paths, reported, never a crash.

- Journal rows whose namespace, name, file names or staged paths break the rules
  (``..``, ``/``, absolute paths, another artifact's file as a staged file or
  folder, a payload that is not the journal's JSON) are refused by recovery (on opening the
  catalog, by ``gc``, by ``verify --repair``): logged, reported by ``verify``, left
  in the journal, and nothing in storage moves or goes; a valid row beside them is
  still rolled forward.
- ``verify`` on a catalog whose artifact, namespace and file rows break the naming
  rules reports each of them as ``unexpected`` and checks the rest; with
  ``--repair`` it leaves them, and storage, alone.

Both stacks (SQLite + local disk, PostgreSQL + S3); rows are inserted with SQL.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from test_cli import run
from test_maintenance import put

from catalogstore import maintenance
from catalogstore.artifacts import new_artifact
from catalogstore.catalog.engine import make_engine
from catalogstore.names import STAGING_DIR
from catalogstore.storage.checksum import checksum_bytes
from catalogstore.txn.workspace import close_workspaces, get_workspace

STAGED = f"{STAGING_DIR}/{'ab' * 16}"  # well formed, as the file store names staged files
EVIL = b"written by whoever edited the catalog"
MOMENT = datetime(2026, 1, 1, tzinfo=timezone.utc)


def snapshot(stack: Any) -> dict[str, bytes]:
    """Every object below the storage root, with its content."""
    fs = stack.filesystem()
    fs.invalidate_cache()
    root = stack.root.rstrip("/")
    return {path[len(root) + 1:]: fs.cat_file(path) for path in fs.find(root)}


def execute(stack: Any, statement: str, rows: list[dict[str, Any]]) -> None:
    """Plain SQL; a ``:t`` parameter is a timestamp, stored as catalogstore stores one."""
    engine = make_engine(stack.catalog_url)
    sql = sa.text(statement)
    if ":t" in statement:
        sql = sql.bindparams(sa.bindparam("t", type_=sa.DateTime(timezone=True)))
    with engine.begin() as conn:
        conn.execute(sql, [{**row, "t": MOMENT} for row in rows])
    engine.dispose()


def journal_rows(rows: list[tuple[str, str, Any]]) -> list[dict[str, Any]]:
    return [{"ns": ns, "name": name,
             "payload": payload if isinstance(payload, str) else json.dumps(payload)}
            for ns, name, payload in rows]


INSERT_JOURNAL = ("INSERT INTO catalog_journal (namespace, name, payload, created_at) "
                  "VALUES (:ns, :name, :payload, :t)")


def hostile_journal(outside: str) -> list[tuple[str, str, Any]]:
    """Rows that would move or delete what is not theirs if they were followed."""
    nothing = {"moves": [], "removes": [], "delete": False}
    evil = checksum_bytes(EVIL)
    return [
        ("..", "..", {**nothing, "delete": True}),  # artifacts/../.. is the storage root
        ("other", "../other", {**nothing, "delete": True}),
        ("default", "/victim", {**nothing, "delete": True}),
        ("default", "victim", {**nothing, "moves": [
            ["artifacts/other/bystander/g", "f", evil]]}),  # another artifact's file as staged
        ("default", "victim", {**nothing, "moves": [[STAGED, "../../other/bystander/g", evil]]}),
        ("default", "victim", {**nothing, "moves": [[outside, "f", evil]]}),
        ("default", "victim", {**nothing, "removes": ["../../other/bystander/g"]}),
        ("default", "victim", {**nothing, "removes": [outside]}),
        ("default", "victim", {**nothing, "removes": ["sub/f"]}),
        ("default", "victim", "not json at all"),
        ("default", "victim", {"moves": "x", "removes": [], "delete": False}),
        ("default", "victim", {"moves": [[STAGED, "f"]], "removes": [], "delete": False}),
        ("default", "victim", {**nothing, "delete": "yes"}),
        # A staged folder (a new artifact's) is placed whole: it must be the staging
        # area's, and its moves come from it.
        ("default", "victim", {**nothing, "folder": "artifacts/other/bystander"}),
        ("default", "victim", {**nothing, "folder": f"{STAGED}/.."}),
        ("default", "victim", {**nothing, "folder": outside}),
        ("default", "victim", {**nothing, "folder": ["x"]}),
        ("default", "victim", {**nothing, "folder": STAGED, "moves": [
            [f"{STAGING_DIR}/{'cd' * 16}/f", "f", evil]]}),  # from another staged folder
        ("default", "victim", {**nothing, "folder": STAGED, "moves": [
            [f"{STAGED}/../../../artifacts/other/bystander/g", "f", evil]]}),
        ("default", "victim", {**nothing, "folder": STAGED, "moves": [
            [f"{STAGED}/f", "../../other/bystander/g", evil]]}),
    ]


def test_recovery_refuses_journal_rows_that_break_the_rules(stack, tmp_path, caplog):
    victim = new_artifact("victim")
    victim.new_file("f", content=b"victim's")
    new_artifact("bystander", "other").new_file("g", content=b"bystander's")
    put(stack, STAGED, EVIL)  # a staged file a hostile row would move over another's file
    put(stack, "artifacts/default/victim/stale", b"left by a crash")
    outside = tmp_path / "precious"
    outside.write_bytes(b"outside the storage root")
    hostile = hostile_journal(str(outside))
    # The hostile move names a file the catalog lists with the staged file's checksum.
    execute(stack, "INSERT INTO artifact_files (artifact_id, name, size, checksum, "
            "created_at, updated_at) SELECT id, :name, :size, :checksum, created_at, "
            "updated_at FROM artifacts WHERE name = 'victim'",
            [{"name": "../../other/bystander/g", "size": len(EVIL),
              "checksum": checksum_bytes(EVIL)}])
    # A valid row beside them: a crash left a removed file behind.
    execute(stack, INSERT_JOURNAL, journal_rows(
        [*hostile, ("default", "victim", {"moves": [], "removes": ["stale"],
                                          "delete": False})]))
    before = snapshot(stack)
    close_workspaces()

    caplog.set_level(logging.WARNING, logger="catalogstore.txn.workspace")
    entries = get_workspace().journal()  # opening the catalog recovers
    refused = [r for r in caplog.records if "is refused" in r.getMessage()]
    assert len(refused) == len(hostile)
    assert len(entries) == len(hostile) and all(e.problem for e in entries)
    after = snapshot(stack)
    del before["artifacts/default/victim/stale"]  # the valid row's removal, and only it
    assert after == before
    assert outside.read_bytes() == b"outside the storage root"

    report = maintenance.verify()
    found = [d for d in report.differences if "is refused" in d.detail]
    assert len(found) == len(hostile) and {d.kind for d in found} == {"unexpected"}
    assert not report.ok
    cli = run("verify", "--repair", code=1).stdout
    assert cli.count("is refused") == len(hostile)
    assert maintenance.gc(grace=0).journal_entries == 0
    assert any("(journal)" in b.path for b in maintenance.reindex().broken)
    assert snapshot(stack) == after  # the staged file stays: refused rows still name it
    assert outside.read_bytes() == b"outside the storage root"
    assert len(get_workspace().journal()) == len(hostile)
    print(f"\n[{stack.name}] {len(hostile)} hostile journal rows refused and reported; "
          "storage unchanged")


def test_verify_reports_catalog_rows_that_break_the_naming_rules(stack, tmp_path):
    new_artifact("fine").new_file("data", content=b"12345")
    new_artifact("changed", "team").new_file("data", content=b"abc")
    new_artifact("victim").new_file("f", content=b"victim's")
    outside = tmp_path / "precious"
    outside.write_bytes(b"outside the storage root")
    bad_artifacts = [("../up", "x"), ("default", "../../.."), ("default", "a/b"),
                     ("/abs", "n"), (str(tmp_path), "n"), ("default", "caf\u00e9"),
                     ("default", "..")]
    execute(stack, "INSERT INTO artifacts (namespace, name, created_at, updated_at) "
            "VALUES (:ns, :name, :t, :t)",
            [{"ns": ns, "name": name} for ns, name in bad_artifacts])
    bad_files = ["../../../precious", str(outside), "sub/x", ".artifact.json", ".."]
    execute(stack, "INSERT INTO artifact_files (artifact_id, name, size, checksum, created_at, "
            "updated_at) SELECT id, :name, 24, 'xxh128:00', created_at, updated_at "
            "FROM artifacts WHERE namespace = 'default' AND name = 'victim'",
            [{"name": name} for name in bad_files])
    put(stack, "artifacts/team/changed/data", b"abcd")  # a real difference, behind its back
    before = snapshot(stack)

    for repair in (False, True):
        report = maintenance.verify(repair=repair)
        unexpected = {d.where for d in report.differences if d.kind == "unexpected"}
        assert unexpected == {f"{ns}/{name}" if ns == "default" else ns
                              for ns, name in bad_artifacts} | {
            f"default/victim/{name}" for name in bad_files}
        assert all("breaks the naming rules" in d.detail
                   for d in report.differences if d.kind == "unexpected")
        # The rest is checked as usual: the one real difference, nothing else.
        assert {(d.kind, d.where) for d in report.differences
                if d.kind != "unexpected"} == {("size", "team/changed/data")}
        assert report.artifacts == 3 and not report.ok
        assert snapshot(stack) == before
    cli = run("verify", code=1).stdout
    assert cli.count("breaks the naming rules") == len(bad_artifacts) + len(bad_files)
    assert "size" in cli and "team/changed/data" in cli
    assert outside.read_bytes() == b"outside the storage root"
