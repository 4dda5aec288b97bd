"""A process killed (SIGKILL) inside a commit: all of it or none of it stays visible."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from catalogstore.artifacts import get_artifact, new_artifact
from catalogstore.txn.workspace import close_workspaces, get_workspace

# The child kills itself at one step of the write protocol: a real crash at a
# chosen point, not a simulated one.
CHILD = """
import os, signal
from catalogstore.txn import workspace
from catalogstore.artifacts import get_artifact

point = {point!r}

def crash(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

if point == "before-commit":
    workspace.Catalog.writing = crash
elif point == "after-commit":
    workspace.Workspace._apply_named = crash
elif point == "during-apply":
    from catalogstore.storage.filestore import FileStore
    FileStore.write_metadata = crash

artifact = get_artifact("victim")
with artifact.transaction():
    artifact.get_file("data").write(b"new content")
    artifact.new_file("added", content="added")
    artifact.get_file("gone").remove()
    artifact["state"] = "new"
raise SystemExit("the crash did not happen")
"""


def _run_child(stack, point: str) -> None:
    env = {**os.environ, **stack.environ()}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(CHILD.format(point=point))],
                          env=env, timeout=120, capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()


def _prepare() -> None:
    artifact = new_artifact("victim")
    with artifact.transaction():
        artifact.new_file("data", content=b"old content")
        artifact.new_file("gone", content=b"old")
        artifact["state"] = "old"


def _storage(stack) -> dict[str, bytes]:
    fs = stack.filesystem()
    fs.invalidate_cache()
    folder = f"{stack.root}/artifacts/default/victim"
    return {p.rsplit("/", 1)[-1]: fs.cat_file(p) for p in fs.ls(folder, detail=False)}


@pytest.mark.parametrize("point", ["before-commit", "after-commit", "during-apply"])
def test_killed_commit_is_all_or_nothing(stack, point):
    _prepare()
    close_workspaces()
    _run_child(stack, point)
    # A fresh process (here: a fresh workspace) rolls committed changes forward.
    artifact = get_artifact("victim")
    files = {f.name: f.read() for f in artifact.list_files()}
    if point == "before-commit":
        assert artifact.metadata == {"state": "old"}
        assert files == {"data": b"old content", "gone": b"old"}
        assert _storage(stack) == {"data": b"old content", "gone": b"old",
                                   ".artifact.json": b'{"state":"old"}'}
    else:
        assert artifact.metadata == {"state": "new"}
        assert files == {"data": b"new content", "added": "added"}
        assert _storage(stack) == {"data": b"new content", "added": b"added",
                                   ".artifact.json": b'{"state":"new"}'}
    assert get_workspace().journal() == []
    # The version before (issue 15) reads as it was: the roll-forward kept the bytes
    # the crashed commit replaced and removed before moving the new ones in.
    assert artifact.version == (2 if point == "before-commit" else 3)
    before = get_artifact("victim", version=2)
    assert before.metadata == {"state": "old"}
    assert {f.name: f.read() for f in before.list_files()} == \
        {"data": b"old content", "gone": b"old"}


def test_recover_is_idempotent(stack):
    _prepare()
    close_workspaces()
    _run_child(stack, "after-commit")
    workspace = get_workspace()
    assert workspace.recover() == 0  # done when the workspace opened
    before = _storage(stack)
    assert workspace.recover() == 0
    assert _storage(stack) == before
