"""``reindex``, ``verify`` and ``gc`` on both stacks, against trees written behind the catalog.

Foreign trees are written with the raw fsspec filesystem (or by the real
Flowdapt in its own venv), crashes are real SIGKILLs of a writer process (the
technique of ``test_recovery``), and the CLI is run in process.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from flowdapt_env import flowdapt_interpreter, run_flowdapt
from test_cli import error_line, run
from test_recovery import _prepare, _run_child, _storage

import catalogstore
from catalogstore import maintenance
from catalogstore.artifacts import get_artifact, list_artifacts, new_artifact
from catalogstore.catalog.engine import make_engine
from catalogstore.catalog.models import ArtifactRow, FileRow, MetadataRow
from catalogstore.errors import InvalidNameError, StorageError
from catalogstore.maintenance import _reindex
from catalogstore.names import METADATA_FILENAME, STAGING_DIR
from catalogstore.record import metadata_to_json
from catalogstore.storage.checksum import checksum_bytes
from catalogstore.txn.workspace import close_workspaces, get_workspace


def put(stack: Any, relative: str, data: bytes) -> None:
    """Write a file below the storage root behind catalogstore's back."""
    fs = stack.filesystem()
    path = f"{stack.root.rstrip('/')}/{relative}"
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    fs.pipe_file(path, data)


def remove(stack: Any, relative: str) -> None:
    stack.filesystem().rm(f"{stack.root.rstrip('/')}/{relative}", recursive=True)


def staged_files(stack: Any) -> list[str]:
    fs = stack.filesystem()
    fs.invalidate_cache()
    folder = f"{stack.root.rstrip('/')}/{STAGING_DIR}"
    return sorted(fs.find(folder)) if fs.exists(folder) else []


def catalog_rows(stack: Any) -> dict[str, list[tuple]]:
    """Every row of the three public tables, read with SQL behind the API.

    A file's ``updated_at`` is left out: reindex refreshes it, without changing
    anything else, once a file it hashed right after it was written has settled.
    """
    engine = make_engine(stack.catalog_url)
    tables = {"artifacts": ArtifactRow.__table__, "metadata": MetadataRow.__table__,
              "files": FileRow.__table__}
    try:
        with engine.connect() as conn:
            return {name: [tuple(r) for r in conn.execute(
                table.select().with_only_columns(
                    *(c for c in table.c if not (name == "files" and c.name == "updated_at")))
                .order_by(table.c.id))] for name, table in tables.items()}
    finally:
        engine.dispose()


def kinds(report: maintenance.VerifyReport) -> set[tuple[str, str]]:
    return {(d.kind, d.where) for d in report.differences}


# -- reindex -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flowdapt_python() -> Path:
    return flowdapt_interpreter()


FLOWDAPT_WRITE = """
import base64
common = dict(protocol=args["protocol"], base_path=args["base_path"], **args["params"])
for ns, artifacts in args["tree"].items():
    for name, entry in artifacts.items():
        artifact = Artifact.new_artifact(name, ns, **common)
        for file, (kind, content) in entry["files"].items():
            artifact.new_file(file, content if kind == "text" else base64.b64decode(content))
        for key, value in entry["metadata"].items():
            artifact.set_meta(key, value)
reply(True)
"""

FLOWDAPT_EDIT = """
common = dict(protocol=args["protocol"], base_path=args["base_path"], **args["params"])
artifact = Artifact.get_artifact("model", namespace="fd", **common)
artifact.set_meta("reviewed", True)
artifact.del_meta("note")
artifact.new_file("report.txt", "looks good")
artifact.delete_file("weights.bin")
reply(artifact.metadata)
"""

BLOB = bytes(range(256)) * 64


def flowdapt_args(stack: Any) -> dict[str, Any]:
    protocol = "s3" if stack.storage_url.startswith("s3://") else "file"
    return {"protocol": protocol, "base_path": stack.root, "params": stack.storage_options}


@pytest.mark.flowdapt
def test_reindex_of_a_tree_written_by_flowdapt(stack, flowdapt_python, tmp_path):
    b64 = base64.b64encode(BLOB).decode()
    tree = {
        "fd": {
            "model": {"files": {"weights.bin": ["bytes", b64], "notes.txt": ["text", "héllo\n"]},
                      "metadata": {"epochs": 3, "accuracy": 0.93, "final": True,
                                   "model": "xgb", "note": "ünïcode \"quoted\""}},
            "empty": {"files": {}, "metadata": {}},
            "tagged": {"files": {"a": ["text", "a"]}, "metadata": {"tags": ["x", "y"]}},
        },
        "default": {"other": {"files": {"data": ["bytes", b64]}, "metadata": {"k": "v"}}},
    }
    run_flowdapt(flowdapt_python, FLOWDAPT_WRITE, tmp_path, tree=tree, **flowdapt_args(stack))

    report = maintenance.reindex()
    assert report.added == ["default/other", "fd/empty", "fd/model", "fd/tagged"]
    assert (report.changed, report.removed, report.skipped, report.broken) == ([], [], [], [])
    # Every JSON value is kept with its type (issue 14), lists too.
    assert get_artifact("tagged", "fd").metadata == {"tags": ["x", "y"]}

    assert [a.name for a in list_artifacts("fd")] == ["empty", "model", "tagged"]
    model = get_artifact("model", "fd")
    assert model.metadata == {"epochs": 3, "accuracy": 0.93, "final": True,
                              "model": "xgb", "note": "ünïcode \"quoted\""}
    assert model.get_file("weights.bin").read() == BLOB
    assert model.get_file("weights.bin").checksum == checksum_bytes(BLOB)
    # The tree does not say which files were text: they read back as bytes.
    assert model.get_file("notes.txt").read() == "héllo\n".encode()
    assert get_artifact("empty", "fd").metadata == {} and get_artifact("empty", "fd").is_empty
    assert list_artifacts(where={"k": "v"})[0].get_file("data").read(verify=True) == BLOB

    rows = catalog_rows(stack)
    again = maintenance.reindex()
    assert (again.changes, again.unchanged, len(again.broken)) == (0, 4, 0)
    assert catalog_rows(stack) == rows
    assert maintenance.verify("fd").ok

    # Flowdapt changes an artifact: the next reindex brings exactly that in.
    run_flowdapt(flowdapt_python, FLOWDAPT_EDIT, tmp_path, **flowdapt_args(stack))
    changed = maintenance.reindex("fd")
    assert (changed.added, changed.changed, changed.removed) == ([], ["fd/model"], [])
    model = get_artifact("model", "fd")
    assert model.metadata["reviewed"] is True and "note" not in model.metadata
    assert [f.name for f in model] == ["notes.txt", "report.txt"]
    assert model.get_file("report.txt").read() == b"looks good"

    remove(stack, "artifacts/fd/empty")
    gone = maintenance.reindex("fd")
    assert gone.removed == ["fd/empty"] and gone.changes == 1
    assert [a.name for a in list_artifacts("fd")] == ["model", "tagged"]


def test_broken_entries_are_reported_and_the_rest_indexed(stack):
    kept = new_artifact("kept", "ns")  # in the catalog; its .artifact.json breaks below
    kept.new_file("f", content=b"committed")
    kept["state"] = "committed"
    put(stack, "artifacts/ns/good/data.bin", b"good")
    put(stack, "artifacts/ns/good/.artifact.json", b'{"n": 1}')
    put(stack, "artifacts/ns/nested/top", b"top")
    put(stack, "artifacts/ns/nested/sub/deep", b"deep")
    put(stack, "artifacts/ns/named/ok", b"ok")
    put(stack, "artifacts/ns/named/bad%2Fname", b"x")
    put(stack, "artifacts/ns/listjson/.artifact.json", b"[1, 2]")
    put(stack, "artifacts/ns/invalid/.artifact.json", b"{not json")
    put(stack, "artifacts/ns/bad name/data", b"x")
    put(stack, "artifacts/ns/stray-file", b"x")
    put(stack, "artifacts/bad%name/a/b", b"x")
    put(stack, "artifacts/ns/kept/.artifact.json", b'"a string"')

    report = maintenance.reindex()
    # Issue 14: an artifact whose .artifact.json is not JSON (or not an object) is still
    # indexed, with its files; only its metadata is reported and left out.
    assert report.added == ["ns/good", "ns/invalid", "ns/listjson", "ns/named", "ns/nested"]
    assert report.changed == report.removed == []
    broken = {b.path: b.reason for b in report.broken}
    assert set(broken) == {
        "artifacts/bad%name/", "artifacts/ns/bad name/", "artifacts/ns/stray-file",
        "artifacts/ns/nested/sub/", "artifacts/ns/named/bad%2Fname",
        "artifacts/ns/listjson/.artifact.json", "artifacts/ns/invalid/.artifact.json",
        "artifacts/ns/kept/.artifact.json"}
    assert "invalid namespace" in broken["artifacts/bad%name/"]
    assert "sub-folder" in broken["artifacts/ns/nested/sub/"]
    assert "not valid JSON" in broken["artifacts/ns/invalid/.artifact.json"]
    assert "JSON object, not list" in broken["artifacts/ns/listjson/.artifact.json"]
    assert "the metadata is not imported" in broken["artifacts/ns/invalid/.artifact.json"]
    assert get_artifact("invalid", "ns").metadata == {} == get_artifact("listjson", "ns").metadata

    assert get_artifact("good", "ns").metadata == {"n": 1}
    assert [f.name for f in get_artifact("nested", "ns")] == ["top"]
    assert [f.name for f in get_artifact("named", "ns")] == ["ok"]
    # An artifact whose .artifact.json broke keeps what the catalog has.
    kept = get_artifact("kept", "ns")
    assert kept.metadata == {"state": "committed"} and kept.get_file("f").read() == b"committed"

    again = maintenance.reindex()
    assert again.changes == 0 and len(again.broken) == len(report.broken)


def test_a_catalog_row_edited_by_hand_is_reported_not_followed(stack):
    new_artifact("edited").new_file("f", content=b"x")
    engine = make_engine(stack.catalog_url)
    with engine.begin() as conn:
        conn.execute(ArtifactRow.__table__.update().values(name="../escape"))
    engine.dispose()
    report = maintenance.reindex()
    assert report.added == ["default/edited"] and report.removed == []  # its folder is there
    assert [b.path for b in report.broken] == ["default/../escape (catalog)"]
    assert "breaks the naming rules" in report.broken[0].reason
    found = maintenance.verify()
    assert ("unexpected", "default/../escape") in kinds(found)


def test_reindex_updates_and_removes(stack):
    a = new_artifact("a")
    a.new_file("text", content="written as text")
    a.new_file("gone", content=b"x")
    a.update_meta({"keep": "1", "drop": "2"})
    new_artifact("b").new_file("f", content=b"b")
    assert maintenance.reindex().changes == 0  # what catalogstore wrote is in agreement

    put(stack, "artifacts/default/a/text", b"rewritten")
    remove(stack, "artifacts/default/a/gone")
    put(stack, "artifacts/default/a/new", b"new")
    put(stack, "artifacts/default/a/.artifact.json", b'{"keep": "1", "added": 7}')
    remove(stack, "artifacts/default/b")
    report = maintenance.reindex("default")
    assert (report.added, report.changed, report.removed) == ([], ["default/a"], ["default/b"])
    a = get_artifact("a")
    assert a.metadata == {"keep": "1", "added": 7}
    assert {f.name: f.read() for f in a} == {"text": "rewritten", "new": b"new"}
    assert a.get_file("text").checksum == checksum_bytes(b"rewritten")
    assert list_artifacts() == [a]
    assert maintenance.reindex().changes == 0
    # The earlier versions' bytes of "text" and "gone" were overwritten or removed
    # behind the catalog's back: verify says so (never repaired); all else agrees.
    assert kinds(maintenance.verify()) == {("missing-version-file", "default/a/text"),
                                           ("missing-version-file", "default/a/gone")}


def test_reindex_leaves_out_an_artifact_a_writer_changed_meanwhile(stack, monkeypatch):
    new_artifact("busy").new_file("f", content=b"old")
    put(stack, "artifacts/default/busy/f", b"changed behind the catalog")
    put(stack, "artifacts/default/calm/f", b"calm")
    real_scan = _reindex.scan

    def scan_then_a_writer_commits(*args: Any) -> Any:
        found = real_scan(*args)
        get_artifact("busy")["by"] = "writer"  # commits after the catalog was read
        return found

    monkeypatch.setattr(_reindex, "scan", scan_then_a_writer_commits)
    report = maintenance.reindex()
    assert report.added == ["default/calm"] and report.changed == []
    assert [(b.path, "changed by a writer" in b.reason) for b in report.skipped] == [
        ("artifacts/default/busy/", True)]
    monkeypatch.undo()
    assert maintenance.reindex().changed == ["default/busy"]
    busy = get_artifact("busy")
    assert busy.metadata == {"by": "writer"}  # the writer's .artifact.json, read again
    assert busy.get_file("f").read() == b"changed behind the catalog"


def test_reindex_leaves_out_small_values_whose_files_are_pending(stack, monkeypatch):
    """A small object store value is committed before its files are written (issue 19):
    reindex must neither drop a new key whose folder is not there yet nor record the
    older file of a key as its value."""
    from catalogstore.object_store import flush
    from catalogstore.object_store import get as get_object
    from catalogstore.object_store import put as put_object
    from catalogstore.txn import mirror

    put_object("old", "first", artifact_only=True)
    flush()
    monkeypatch.setattr(mirror, "DELAY", 3600.0)  # this process's writer waits
    real_read = _reindex.read_namespace

    def puts_then_read(*args: Any) -> Any:  # after reindex's recovery, before its read
        put_object("old", "second", artifact_only=True)
        put_object("fresh", "new", artifact_only=True)
        return real_read(*args)

    monkeypatch.setattr(_reindex, "read_namespace", puts_then_read)
    report = maintenance.reindex()
    assert (report.added, report.changed, report.removed) == ([], [], [])
    assert sorted(b.path for b in report.skipped) == [
        "artifacts/default/fresh/", "artifacts/default/old/"]
    assert (get_object("old"), get_object("fresh")) == ("second", "new")
    monkeypatch.undo()
    flush()
    assert maintenance.reindex().changes == 0 and maintenance.verify().ok
    assert (get_object("old"), get_object("fresh")) == ("second", "new")


def test_reindex_refuses_storage_without_artifacts_for_a_full_catalog(stack):
    new_artifact("precious").new_file("f", content=b"x")
    remove(stack, "artifacts")
    with pytest.raises(StorageError, match="holds no artifacts/ folder"):
        maintenance.reindex()
    assert [a.name for a in list_artifacts()] == ["precious"]
    with pytest.raises(InvalidNameError):
        maintenance.reindex("../up")


# -- verify ----------------------------------------------------------------------------


def test_verify_finds_changes_behind_the_catalogs_back(stack):
    a = new_artifact("a")
    for name in ("same-size", "resized", "deleted"):
        a.new_file(name, content=b"12345")
    a.update_meta({"model": "xgb", "stage": "train"})
    new_artifact("b", "other")
    assert maintenance.verify().ok
    assert "catalog and storage agree" in run("verify").stdout

    put(stack, "artifacts/default/a/same-size", b"54321")
    put(stack, "artifacts/default/a/resized", b"123456")
    remove(stack, "artifacts/default/a/deleted")
    put(stack, "artifacts/default/a/extra", b"extra")
    put(stack, "artifacts/default/a/.artifact.json", b'{"model": "lgbm", "stage": "train"}')
    put(stack, "artifacts/default/ghost/f", b"x")
    remove(stack, "artifacts/other/b")

    report = maintenance.verify()
    assert not report.ok
    assert kinds(report) == {
        ("checksum", "default/a/same-size"), ("size", "default/a/resized"),
        ("missing-file", "default/a/deleted"), ("extra-file", "default/a/extra"),
        ("metadata-differs", f"default/a/{METADATA_FILENAME}"),
        ("extra-artifact", "default/ghost"), ("missing-artifact", "other/b")}
    differs = next(d for d in report.differences if d.kind == "metadata-differs")
    assert "'model': catalog 'xgb', file 'lgbm'" in differs.detail
    fast = maintenance.verify("default", fast=True)
    assert ("checksum", "default/a/same-size") not in kinds(fast)
    assert ("size", "default/a/resized") in kinds(fast) and fast.bytes_hashed == 0

    out = run("verify", code=1).stdout
    assert "checksum            default/a/same-size: the catalog records xxh128:" in out
    assert "never deleted" in out and "verify --repair" in out
    rows = json.loads(run("verify", "other", "--json", code=1).stdout)
    assert rows["ok"] is False and [(d["kind"], d["name"]) for d in rows["differences"]] == [
        ("missing-artifact", "b")]

    # --repair rewrites .artifact.json and touches nothing else.
    repaired = run("verify", "default", "--repair", code=1).stdout
    assert "(repaired)" in repaired
    fs = stack.filesystem()
    fs.invalidate_cache()
    root = stack.root.rstrip("/")
    assert fs.cat_file(f"{root}/artifacts/default/a/{METADATA_FILENAME}") == metadata_to_json(
        {"model": "xgb", "stage": "train"})
    assert fs.cat_file(f"{root}/artifacts/default/a/extra") == b"extra"
    assert fs.cat_file(f"{root}/artifacts/default/a/same-size") == b"54321"
    left = maintenance.verify("default")
    assert {k for k, _ in kinds(left)} == {"checksum", "size", "missing-file", "extra-file",
                                           "extra-artifact"}

    maintenance.reindex()  # storage is the truth now: the catalog follows it
    # ghost had no .artifact.json (reindex reads that as no metadata): --repair writes it.
    # The earlier versions' bytes of the files changed behind the catalog's back are
    # gone: reported, never repaired.
    lost = {("missing-version-file", f"default/a/{f}")
            for f in ("same-size", "resized", "deleted")}
    assert kinds(maintenance.verify()) == \
        {("metadata-missing", "default/ghost/.artifact.json")} | lost
    assert kinds(maintenance.verify(repair=True)) == \
        {("metadata-missing", "default/ghost/.artifact.json")} | lost
    assert kinds(maintenance.verify()) == lost
    assert not json.loads(run("verify", "--json", code=1).stdout)["ok"]


@pytest.mark.parametrize("point", ["after-commit", "during-apply"])
def test_verify_reports_what_a_writer_killed_after_its_commit_left(stack, point):
    _prepare()
    close_workspaces()
    _run_child(stack, point)  # committed, killed before storage followed (or half way)
    assert len(staged_files(stack)) == (2 if point == "after-commit" else 0)

    report = maintenance.verify(grace=0)
    if point == "after-commit":
        # The staged files belong to the journal entry: not orphans.
        assert kinds(report) == {("journal", "default/victim")}
        assert "2 staged file(s) not moved into place" in report.differences[0].detail
        skipped = maintenance.reindex()  # reindex leaves it alone and writes nothing
        assert skipped.changes == 0 and skipped.skipped[0].path == "artifacts/default/victim/"
        assert "journal entry" in run("verify", code=1).stdout
    else:  # files moved, .artifact.json not rewritten yet
        assert kinds(report) == {("metadata-differs", "default/victim/.artifact.json")}
        assert "'state': catalog 'new', file 'old'" in report.differences[0].detail

    out = run("verify", "--repair").stdout
    assert "default/victim" in out and "(repaired)" in out
    assert _storage(stack) == {"data": b"new content", "added": b"added",
                               ".artifact.json": b'{"state":"new"}'}
    assert staged_files(stack) == []
    assert maintenance.verify().ok
    assert get_workspace().journal() == []
    assert get_artifact("victim").metadata == {"state": "new"}


def test_gc_removes_what_a_writer_killed_before_its_commit_left(stack):
    _prepare()
    close_workspaces()
    before = _storage(stack)
    _run_child(stack, "before-commit")  # files staged, never committed
    assert len(staged_files(stack)) == 2

    young = maintenance.verify()
    assert young.ok and young.staged_in_use == 2  # a live writer might still commit them
    assert maintenance.gc().removed == []
    old = maintenance.verify(grace=0)
    assert {k for k, _ in kinds(old)} == {"orphan-staged"} and len(old.differences) == 2
    assert "no commit references it" in old.differences[0].detail

    out = run("gc", "--grace", "0").stdout
    assert "2 orphaned file(s) removed" in out
    assert staged_files(stack) == []
    assert _storage(stack) == before  # committed data untouched
    assert get_artifact("victim").get_file("data").read() == b"old content"
    assert maintenance.verify(grace=0).ok
    assert maintenance.gc(grace=0).removed == []


def test_cli_reindex(stack):
    put(stack, "artifacts/team/m1/w", b"w")
    put(stack, "artifacts/team/m1/.artifact.json", b'{"a": 1}')
    put(stack, "artifacts/team/bad..name/w", b"w")
    out = run("reindex", "team").stdout
    assert "added    team/m1" in out
    assert "broken   artifacts/team/bad..name/: invalid artifact name" in out
    assert "1 added, 0 changed, 0 removed, 0 unchanged, 1 broken" in out
    data = json.loads(run("reindex", "--json").stdout)
    assert (data["changes"], data["unchanged"], data["namespaces"]) == (0, 1, ["team"])
    assert "invalid namespace" in error_line(run("reindex", "a/b", code=1).stderr)
    assert "invalid namespace" in error_line(run("verify", "..", code=1).stderr)
    error_line(run("gc", "--grace", "-1", code=2).stderr)
    with catalogstore.namespace("team"):
        assert get_artifact("m1").metadata == {"a": 1}
    assert get_workspace().journal() == []
