"""Artifacts created inside a transaction: on local disk their files are staged in a
folder of their own, which becomes the artifact's folder in one rename.

Whatever happens (a crash at any step, a folder already in the way, a block that
raises), the artifact ends up whole or absent, and the staging area empty; on
S3 the same creations go through per-file staging and must end up the same.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import catalogstore
from catalogstore import maintenance
from catalogstore.artifacts import artifact_exists, get_artifact, new_artifact
from catalogstore.names import METADATA_FILENAME, STAGING_DIR
from catalogstore.record import metadata_to_json
from catalogstore.txn.workspace import close_workspaces, get_workspace

# Each child kills itself at one step of creating "born": a real crash.
CHILD = """
import os, signal
import catalogstore
from catalogstore.txn import workspace
from catalogstore.artifacts import new_artifact
from catalogstore.storage.filestore import FileStore

def crash(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

point = {point!r}
if point == "before-commit":
    workspace.Catalog.writing = crash
elif point == "after-commit":
    workspace.Workspace._apply_named = crash
elif point == "placing":  # files under their names, .artifact.json written, not renamed
    FileStore.place_folder = crash
    FileStore.write_metadata = crash  # where there is no folder to place (S3)

with catalogstore.transaction():
    born = new_artifact("born")
    born.new_file("data", content=b"first")
    born.new_file("data", content=b"second")  # a rewrite takes another staged name
    with born.new_file("stream").open("wb") as f:
        f.write(b"streamed")
    born.new_file("dropped", content=b"x")
    born.delete_file("dropped")
    born.update_meta({{"stage": "train", "epochs": 3}})
raise SystemExit("the crash did not happen")
"""
EXPECTED_FILES = {"data": b"second", "stream": b"streamed"}
EXPECTED_META = {"stage": "train", "epochs": 3}


def _crash_child(stack, point: str) -> None:
    env = {**os.environ, **stack.environ()}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(CHILD.format(point=point))],
                          env=env, timeout=120, capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()


def _folder(stack, name: str = "born") -> dict[str, bytes]:
    """What storage holds in the artifact's folder ({} when there is none)."""
    fs = stack.filesystem()
    fs.invalidate_cache()
    folder = f"{stack.root.rstrip('/')}/artifacts/default/{name}"
    if not fs.exists(folder):
        return {}
    return {p.rsplit("/", 1)[-1]: fs.cat_file(p) for p in fs.find(folder)}


def _staging(stack) -> list[str]:
    """Everything in the staging area, folders included."""
    fs = stack.filesystem()
    fs.invalidate_cache()
    folder = f"{stack.root.rstrip('/')}/{STAGING_DIR}"
    found = fs.find(folder, withdirs=True) if fs.exists(folder) else []
    return sorted(p for p in found if p.rstrip("/") != folder)


def _whole(stack) -> None:
    artifact = get_artifact("born")
    assert {f.name: f.read() for f in artifact.list_files()} == EXPECTED_FILES
    assert artifact.metadata == EXPECTED_META
    assert _folder(stack) == {**EXPECTED_FILES,
                              METADATA_FILENAME: metadata_to_json(EXPECTED_META)}


def test_creation_in_a_transaction_places_the_whole_folder(stack):
    with catalogstore.transaction() as batch:
        born = new_artifact("born")
        born.new_file("data", content=b"first")
        born.new_file("data", content=b"second")
        with born.new_file("stream").open("wb") as f:
            f.write(b"streamed")
        born.new_file("dropped", content=b"x")
        born.delete_file("dropped")
        born.update_meta({"stage": "train", "epochs": 3})
        assert _folder(stack) == {}  # nothing in place before the commit
        staged = batch.changesets[("default", "born")].staged_folder
        staged_inode = os.stat(f"{stack.root}/{staged}").st_ino if staged else None
    _whole(stack)
    if stack.name == "sqlite-local":  # the staged folder itself became the artifact's
        assert staged_inode == os.stat(f"{stack.root}/artifacts/default/born").st_ino
    else:  # object stores have no folders: files are staged one by one
        assert staged is None
    assert _staging(stack) == []
    close_workspaces()  # forgets the journal rows of the changes it applied
    assert get_workspace().journal() == []
    assert maintenance.verify(grace=0).ok


def test_an_artifact_created_without_files_gets_its_folder(stack):
    with catalogstore.transaction():
        new_artifact("bare").update_meta({"k": "v"})
    assert _folder(stack, "bare") == {METADATA_FILENAME: metadata_to_json({"k": "v"})}
    assert _staging(stack) == []


@pytest.mark.parametrize("point", ["before-commit", "after-commit", "placing"])
def test_killed_creation_is_whole_or_absent(stack, point):
    close_workspaces()
    _crash_child(stack, point)
    # A fresh process (here: a fresh workspace) rolls a committed creation forward.
    if point == "before-commit":
        assert not artifact_exists("born")
        assert _folder(stack) == {}
        assert maintenance.verify().staged_in_use > 0  # young: a live writer's, maybe
        maintenance.gc(grace=0)
    else:
        _whole(stack)
    assert _staging(stack) == []
    assert get_workspace().journal() == []
    assert maintenance.verify(grace=0).ok


def test_a_folder_in_the_way_receives_the_files(stack):
    fs = stack.filesystem()
    folder = f"{stack.root.rstrip('/')}/artifacts/default/born"
    fs.makedirs(folder, exist_ok=True)
    fs.pipe_file(f"{folder}/stray", b"left behind")
    with catalogstore.transaction():
        born = new_artifact("born")
        born.new_file("data", content=b"second")
        born.new_file("stream", content=b"streamed")
        born.update_meta({"stage": "train", "epochs": 3})
    assert _folder(stack) == {**EXPECTED_FILES, "stray": b"left behind",
                              METADATA_FILENAME: metadata_to_json(EXPECTED_META)}
    assert _staging(stack) == []
    report = maintenance.verify(grace=0)
    assert [(d.kind, d.file) for d in report.differences] == [("extra-file", "stray")]


def test_a_block_that_raises_leaves_nothing_staged(stack):
    with pytest.raises(RuntimeError), catalogstore.transaction():
        born = new_artifact("born")
        born.new_file("data", content=b"second")
        with born.new_file("stream").open("wb") as f:
            f.write(b"streamed")
        raise RuntimeError("changed my mind")
    assert not artifact_exists("born")
    assert _folder(stack) == {}
    assert _staging(stack) == []


def test_gc_removes_a_staged_folder_emptied_of_a_killed_writers_files(local_stack):
    _crash_child(local_stack, "before-commit")
    staging = Path(local_stack.storage_url) / STAGING_DIR
    (folder,) = staging.iterdir()  # the new artifact's staged folder, with its two files
    assert folder.is_dir() and len(list(folder.iterdir())) == 2
    assert len(maintenance.gc(grace=0).removed) == 2
    assert list(staging.iterdir()) == []
