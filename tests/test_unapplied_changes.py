"""Issue 13: every change committed while the storage refused it is rolled forward by
the next process's commit, by ``verify --repair`` and by ``gc`` — creations without
files, deletions and metadata changes included — and its journal row stays until then.

The storage fails for real: the writer runs in a mount namespace of its own where the
storage root is bind-mounted read-only (``unshare -m``; chmod would not stop root, which
these tests may run as). Without that privilege, a writer running as another user meets
a storage root without write permission instead; if neither is possible, the test is
skipped and says why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from catalogstore.artifacts import artifact_exists, get_artifact, new_artifact
from catalogstore.maintenance import verify
from catalogstore.settings import get_settings
from catalogstore.txn.workspace import Workspace, close_workspaces, get_workspace

pytestmark = pytest.mark.parametrize("stack", [
    "sqlite-local", pytest.param("postgres-local", marks=pytest.mark.postgres)],
    indirect=True)

WRITER = """
from catalogstore.artifacts import get_artifact, new_artifact
from catalogstore.errors import UnappliedCommitError

def attempt(what, fn):
    try:
        fn()
    except UnappliedCommitError as exc:
        print(what, "UnappliedCommitError", str(exc).splitlines()[0][:200])
    else:
        print(what, "applied")

attempt("create", lambda: new_artifact("z"))
attempt("delete", lambda: get_artifact("y").delete())
attempt("metadata", lambda: get_artifact("m").set_meta("stage", "evaluated"))
"""


def _read_only_prefix(root: Path) -> list[str] | None:
    """A command prefix that runs a program with ``root`` read-only, or None."""
    if os.geteuid() != 0:
        return []  # chmod does stop an ordinary user
    unshare, mount = shutil.which("unshare"), shutil.which("mount")
    if unshare is None or mount is None:
        return None
    probe = subprocess.run(
        [unshare, "-m", "sh", "-c", f'mount --bind -o ro "{root}" "{root}" && '
         f'! touch "{root}/.probe" 2>/dev/null'], capture_output=True, timeout=30)
    if probe.returncode != 0:
        return None
    return [unshare, "-m", "sh", "-c", f'mount --bind -o ro "{root}" "{root}" && exec "$0" "$@"']


def _fail_on_read_only_storage(stack, root: Path, code: str = WRITER) -> str:
    prefix = _read_only_prefix(root)
    if prefix is None:
        pytest.skip("cannot make the storage read-only for a writer: running as root without "
                    "the privilege to bind-mount it read-only (unshare -m)")
    env = {**os.environ, **stack.environ()}
    folders = [root, *(p for p in root.rglob("*") if p.is_dir())] if not prefix else []
    for folder in folders:  # an ordinary user: no folder of the storage is writable
        folder.chmod(0o555)
    try:
        proc = subprocess.run([*prefix, sys.executable, "-c", textwrap.dedent(code)],
                              env=env, capture_output=True, timeout=120, text=True)
    finally:
        for folder in folders:
            folder.chmod(0o755)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _run(stack, code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                          env={**os.environ, **stack.environ()}, capture_output=True,
                          timeout=120, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("by", ["new-process-commit", "verify-repair", "gc"])
def test_changes_refused_by_the_storage_are_rolled_forward(stack, by):
    root = Path(stack.storage_url)
    new_artifact("y").new_file("data", content=b"y's")
    new_artifact("m")["stage"] = "trained"
    close_workspaces()

    out = _fail_on_read_only_storage(stack, root)
    assert out.splitlines() == [line for line in out.splitlines()
                                if "UnappliedCommitError" in line], out
    assert len(out.splitlines()) == 3, out
    # Committed, not applied: the journal keeps a row for each of the three changes.
    # (Read without recovering: a workspace of this process would roll them forward.)
    untouched = Workspace(get_settings(), recover=False)
    assert sorted(e.name for e in untouched.journal()) == ["m", "y", "z"]
    untouched.close()
    differences = {(d.kind, d.name) for d in verify().differences}
    # (The folder z never got is reported as such: a folder removed by hand after the
    # change was applied would look the same.)
    assert {("missing-artifact", "z"), ("journal", "y"), ("journal", "m")} <= differences

    if by == "new-process-commit":
        _run(stack, 'from catalogstore.artifacts import new_artifact; new_artifact("other")')
    else:
        command = ["verify", "--repair"] if by == "verify-repair" else ["gc"]
        proc = subprocess.run([sys.executable, "-m", "catalogstore", *command],
                              env={**os.environ, **stack.environ()}, capture_output=True,
                              timeout=120, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr

    report = verify()
    assert report.ok and report.differences == [], report.differences
    assert get_workspace().journal() == []
    assert artifact_exists("z") and (root / "artifacts/default/z/.artifact.json").is_file()
    assert not artifact_exists("y") and not (root / "artifacts/default/y").exists()
    assert get_artifact("m").metadata == {"stage": "evaluated"}
    assert (root / "artifacts/default/m/.artifact.json").read_text() == \
        '{"stage":"evaluated"}'


def test_verify_repair_makes_the_folder_of_a_phantom_without_files(stack):
    """A catalog from before creations were journalled may list an artifact without files
    whose folder was never made: ``verify --repair`` makes it (committed files are never
    touched: one with files stays reported)."""
    root = Path(stack.storage_url)
    new_artifact("phantom")["stage"] = "made"
    new_artifact("lost").new_file("data", content=b"x")
    close_workspaces()  # the process ends: its applied journal rows are forgotten
    shutil.rmtree(root / "artifacts/default/phantom")
    shutil.rmtree(root / "artifacts/default/lost")
    assert {(d.kind, d.name) for d in verify().differences} == {
        ("missing-artifact", "phantom"), ("missing-artifact", "lost")}
    report = verify(repair=True)
    assert {(d.kind, d.name, d.repaired) for d in report.differences} == {
        ("missing-artifact", "phantom", True), ("missing-artifact", "lost", False)}
    assert (root / "artifacts/default/phantom/.artifact.json").read_text() == \
        '{"stage":"made"}'
    assert {(d.kind, d.name) for d in verify().differences} == {("missing-artifact", "lost")}


def test_a_refused_deletion_then_a_new_artifact_of_the_name(stack):
    """A process that was running before the deletion failed creates the name again
    (it has nothing to roll forward itself): the new artifact's files land beside the
    deleted one's. Rolling the deletion forward removes the deleted one's only."""
    root = Path(stack.storage_url)
    old = new_artifact("y")
    old.new_file("old-only", content=b"old")
    old.new_file("shared", content=b"old")
    get_workspace()  # this process runs on through the failure
    out = _fail_on_read_only_storage(stack, root, """
        from catalogstore.artifacts import get_artifact
        from catalogstore.errors import UnappliedCommitError
        try:
            get_artifact("y").delete()
        except UnappliedCommitError:
            print("refused")
    """)
    assert out.split() == ["refused"]
    new = new_artifact("y")
    new.new_file("shared", content=b"new")
    new.new_file("new-only", content=b"new")
    assert (root / "artifacts/default/y/old-only").exists()  # the deleted one's file
    proc = subprocess.run([sys.executable, "-m", "catalogstore", "gc"],
                          env={**os.environ, **stack.environ()}, capture_output=True,
                          timeout=120, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = verify()
    assert report.ok and report.differences == [], report.differences
    assert sorted(p.name for p in (root / "artifacts/default/y").iterdir()) == [
        ".artifact.json", "new-only", "shared"]
    assert {f.name: f.read() for f in get_artifact("y").list_files()} == {
        "new-only": b"new", "shared": b"new"}
