"""Small object store values kept in the catalog (issue 19).

A value whose serialized form is at most ``INLINE_LIMIT`` bytes is committed to the
catalog with the key's record; once the key's artifact holds one, a put is that one
commit, and its file and ``.artifact.json`` (Flowdapt's layout) are written after it.
Every promise of issues 12, 13 and 15 holds: trust by the catalog's record, the newest
value wins across processes, versions readable; a process killed right after a put
loses nothing, and ``verify --repair`` writes what it did not.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import numpy as np
import pytest
from sqlalchemy import text

import catalogstore
from catalogstore import maintenance
from catalogstore.errors import (
    CorruptArtifactError,
    NameCollisionError,
    SignatureError,
    UntrustedObjectError,
)
from catalogstore.object_store import INLINE_LIMIT, flush, get, put
from catalogstore.serializers import get_serializer
from catalogstore.settings import get_settings
from catalogstore.txn import mirror
from catalogstore.txn.workspace import Workspace, close_workspaces, get_workspace
from tests.conftest import Stack

VALUE = {f"f{i}": i * 0.5 for i in range(10)}


def _sql(query: str, **params: Any) -> list[Any]:
    with get_workspace().catalog.engine.begin() as conn:
        result = conn.execute(text(query), params)
        return list(result.all()) if result.returns_rows else []


def _kept(key: str) -> list[tuple[str, bool]]:
    """(checksum, mirrored) of the values the catalog keeps for ``key``'s artifact."""
    return [(c, bool(m)) for c, m in _sql(
        "SELECT v.checksum, v.mirrored FROM object_values v JOIN artifacts a "
        "ON a.id = v.artifact_id WHERE a.name = :key ORDER BY v.created_at", key=key)]


def _read(stack: Stack, path: str) -> bytes:
    data: bytes = stack.filesystem().cat_file(f"{stack.root}/artifacts/default/{path}")
    return data


def test_small_values_round_trip_through_the_catalog(stack: Stack) -> None:
    put("k", VALUE, artifact_only=True)  # creates the artifact, in the catalog alone
    assert _kept("k") == [(_sql("SELECT checksum FROM artifact_files")[0][0], False)]
    for i in range(3):
        put("k", {**VALUE, "i": i}, artifact_only=True)  # the catalog alone
        assert get("k") == {**VALUE, "i": i}
    assert len(_kept("k")) == 4
    # The rows are an object's as before: one file row, the object metadata, versions.
    assert _sql("SELECT name FROM artifact_files") == [("object",)]
    meta = catalogstore.artifacts.get_artifact("k").metadata
    assert meta["value_type"] == "object" and meta["serializer"] == "pickle"
    assert [v.version for v in catalogstore.artifacts.get_artifact("k").versions()] == \
        [1, 2, 3, 4]
    # Flowdapt's layout after the flush: the object file and .artifact.json.
    flush()
    assert mirror.pending(get_workspace()) == []
    assert pickle.loads(_read(stack, "k/object")) == {**VALUE, "i": 2}
    assert json.loads(_read(stack, "k/.artifact.json")) == meta
    assert maintenance.verify().ok


def test_the_first_put_of_a_key_is_one_commit_too(
        stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """A key's first put creates its object artifact in the catalog alone: no staging
    file, no journal entry, no folder until the background writer writes the Flowdapt
    layout; meanwhile get, the Artifact API, versions and verify see the value."""
    monkeypatch.setattr(mirror, "DELAY", 3600.0)  # the test writes the files itself
    fs = stack.filesystem()
    put("new", VALUE, artifact_only=True)
    assert not fs.exists(f"{stack.root}/artifacts/default/new")
    assert _sql("SELECT COUNT(*) FROM catalog_journal") == [(0,)]
    assert [mirrored for _, mirrored in _kept("new")] == [False]
    assert get("new") == VALUE
    artifact = catalogstore.artifacts.get_artifact("new")
    assert pickle.loads(artifact.get_file("object").read(verify=True)) == VALUE
    assert artifact.metadata["value_type"] == "object"
    assert [v.version for v in artifact.versions()] == [1]
    assert mirror.pending(get_workspace()) == [("default", "new")]
    flush()
    assert pickle.loads(_read(stack, "new/object")) == VALUE
    assert json.loads(_read(stack, "new/.artifact.json")) == artifact.metadata
    assert maintenance.verify().ok
    # The rules of a creation hold: no case variant of the name, nor of the namespace.
    with pytest.raises(NameCollisionError):
        put("NEW", VALUE, artifact_only=True)
    put("k", 1, namespace="team", artifact_only=True)
    with pytest.raises(NameCollisionError):
        put("k2", 1, namespace="Team", artifact_only=True)
    assert get("k", namespace="team") == 1
    # Deleted before its files were written: nothing is left for the writer.
    put("gone", VALUE, artifact_only=True)
    catalogstore.object_store.delete("gone")
    flush()
    assert not fs.exists(f"{stack.root}/artifacts/default/gone")
    assert maintenance.verify().ok


def test_the_same_value_again_rewrites_no_file(local_stack: Stack) -> None:
    """A put of the bytes and metadata the key holds is a new version and generation,
    and leaves the files in storage alone (they hold it); one that changes either is
    written again."""
    put("same", VALUE, artifact_only=True)
    flush()
    path = f"{local_stack.storage_url}/artifacts/default/same/object"
    before = os.stat(path)
    put("same", VALUE, artifact_only=True)
    assert _kept("same") == [(_kept("same")[0][0], True)]  # nothing pending
    assert mirror.pending(get_workspace()) == []
    flush()
    after = os.stat(path)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert [v.version for v in catalogstore.artifacts.get_artifact("same").versions()] == \
        [1, 2]
    put("same", VALUE, artifact_only=True, serializer="cloudpickle")  # other metadata
    assert mirror.pending(get_workspace()) == [("default", "same")]
    flush()
    assert json.loads(_read(local_stack, "same/.artifact.json"))["serializer"] == \
        "cloudpickle"
    put("same", {**VALUE, "x": 1}, artifact_only=True)  # other bytes
    assert mirror.pending(get_workspace()) == [("default", "same")]
    flush()
    assert pickle.loads(_read(local_stack, "same/object")) == {**VALUE, "x": 1}
    assert maintenance.verify().ok


def test_versions_of_small_values_are_read_from_the_catalog(stack: Stack) -> None:
    for i in range(4):
        put("v", [i] * 3, artifact_only=True)
    assert [get("v", version=n) for n in (1, 2, 3, 4)] == [[i] * 3 for i in range(4)]
    big = np.arange(INLINE_LIMIT, dtype=np.float64)  # a file again: the kept bytes stay
    put("v", big, artifact_only=True)
    flush()
    assert np.array_equal(get("v"), big)
    assert [get("v", version=n) for n in (2, 3, 4)] == [[i] * 3 for i in (1, 2, 3)]
    put("v", "small again", artifact_only=True)
    assert np.array_equal(get("v", version=5), big)
    assert get("v") == "small again"
    assert maintenance.verify(repair=True).ok and maintenance.verify().ok


def _pickled_size(value: Any) -> int:
    stream = io.BytesIO()
    get_serializer("pickle").dump(value, stream)
    return len(stream.getvalue())


def test_the_threshold_is_the_serialized_size(local_stack: Stack) -> None:
    overhead = _pickled_size(b"x" * 1000) - 1000
    at_limit, over = b"x" * (INLINE_LIMIT - overhead), b"x" * (INLINE_LIMIT - overhead + 1)
    assert _pickled_size(at_limit) == INLINE_LIMIT
    put("at", at_limit, artifact_only=True)
    put("over", over, artifact_only=True)
    assert len(_kept("at")) == 1 and _kept("over") == []
    assert get("at") == at_limit and get("over") == over


def test_an_inline_pickle_is_trusted_by_the_record_alone(local_stack: Stack) -> None:
    put("t", VALUE, artifact_only=True)
    put("t", {**VALUE, "x": 1}, artifact_only=True)
    _sql("UPDATE objects SET digest = :d", d="sha256:" + "0" * 64)
    with pytest.raises(UntrustedObjectError):
        get("t")
    put("t", VALUE, artifact_only=True)
    assert get("t") == VALUE
    _sql("UPDATE object_values SET data = :d", d=pickle.dumps("evil"))
    with pytest.raises(CorruptArtifactError):  # the bytes are not those recorded
        get("t")


def test_signed_inline_pickles(local_stack: Stack) -> None:
    catalogstore.configure(catalog_url=local_stack.catalog_url,
                           storage_url=local_stack.storage_url, signing_key="k" * 32)
    put("s", VALUE, artifact_only=True)
    put("s", {**VALUE, "y": 2}, artifact_only=True)
    assert get("s") == {**VALUE, "y": 2}
    assert catalogstore.artifacts.get_artifact("s").metadata["signature"].startswith("hmac")
    _sql("UPDATE artifact_metadata SET value = :v WHERE key = 'signature'",
         v="hmac-sha256:" + "0" * 64)
    with pytest.raises(SignatureError):
        get("s")


def test_large_values_are_files(local_stack: Stack) -> None:
    arr = np.arange(INLINE_LIMIT // 4, dtype=np.float64)  # 128 KiB
    put("a", arr, artifact_only=True)
    put("a", arr + 1, artifact_only=True)
    assert _kept("a") == []
    assert np.array_equal(get("a"), arr + 1)


def _python(stack: Stack, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                          env={**os.environ, **stack.environ()}, capture_output=True,
                          text=True, timeout=120)


def test_newest_value_wins_across_processes(stack: Stack) -> None:
    close_workspaces()
    for value in (0.5, 0.7):
        done = _python(stack, "from catalogstore.object_store import put\n"
                       f"put('threshold', {value}, artifact_only=True)")
        assert done.returncode == 0, done.stderr
    got = _python(stack, "from catalogstore.object_store import get\n"
                  "print(get('threshold'))")
    assert got.stdout.strip() == "0.7", got.stderr
    assert get("threshold") == 0.7


def _killed_after_put(stack: Stack, *values: Any) -> None:
    puts = "".join(f"put('model', {v!r}, artifact_only=True)\n" for v in values)
    killed = _python(stack, "import os, signal\nfrom catalogstore.object_store import put\n"
                     f"{puts}os.kill(os.getpid(), signal.SIGKILL)\n")
    assert killed.returncode == -9, killed.stderr


def test_a_kill_right_after_put_loses_nothing(stack: Stack) -> None:
    """SIGKILL once put returns, before the background writer wrote the mirror: get
    returns the value, verify reports the mirror pending, verify --repair writes it."""
    close_workspaces()
    _killed_after_put(stack, {"v": 1}, {"v": 2})
    unrecovered = Workspace(get_settings(), recover=False)
    assert mirror.pending(unrecovered) == [("default", "model")]
    report = maintenance.verify()
    assert [(d.kind, d.name) for d in report.differences] == [("mirror-pending", "model")]
    # Killed before the background writer ran: the key's folder was never written.
    assert not stack.filesystem().exists(f"{stack.root}/artifacts/default/model")
    repaired = maintenance.verify(repair=True)
    assert repaired.ok and [d.repaired for d in repaired.differences] == [True]
    assert pickle.loads(_read(stack, "model/object")) == {"v": 2}
    assert get("model") == {"v": 2}
    # Again, read first: the value comes from the catalog (and the new process's
    # recovery writes the mirror).
    close_workspaces()
    _killed_after_put(stack, {"v": 3})
    assert get("model") == {"v": 3}
    assert pickle.loads(_read(stack, "model/object")) == {"v": 3}
    assert maintenance.verify().ok
    unrecovered.close()


def test_the_artifact_api_reads_a_value_whose_files_are_pending(stack: Stack) -> None:
    """Before the background writer wrote the files of a small value, reading the key's
    artifact file through the Artifact API (checked) returns the catalog's bytes, as do
    the views of its earlier versions whose bytes only the catalog keeps."""
    from catalogstore.artifacts import Artifact, lookup
    from catalogstore.artifacts.versions import open_version

    close_workspaces()
    _killed_after_put(stack, {"v": 1}, {"v": 2}, {"v": 3})
    unrecovered = Workspace(get_settings(), recover=False)
    try:
        artifact = lookup.get(Artifact, unrecovered, "model", "default")
        assert pickle.loads(artifact.get_file("object").read(verify=True)) == {"v": 3}
        assert pickle.loads(open_version(artifact, 2).get_file("object").read()) == {"v": 2}
    finally:
        unrecovered.close()


def _staged_values(stack: Stack) -> list[Any]:
    """The values pickled in the files of the local staging area (``.artifact.json``
    written aside is no pickle)."""
    folder = f"{stack.root}/.catalogstore/staging"
    found = []
    for name in os.listdir(folder) if os.path.isdir(folder) else []:
        if os.path.isfile(f"{folder}/{name}"):
            with open(f"{folder}/{name}", "rb") as file:
                data = file.read()
            if data.startswith(b"\x80"):
                found.append(pickle.loads(data))
    return found


def test_the_background_writer_waits_for_no_disk_under_the_lock(
        local_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every put waits for its artifact's lock (on SQLite the catalog's one writer lock),
    so the writer of a small value's files writes them aside before it takes that lock,
    and under it only renames them into place; what they hold is the catalog's newest
    value, also when a put committed in between."""
    monkeypatch.setattr(mirror, "DELAY", 3600.0)  # the test writes the files itself
    ws = get_workspace()
    put("model", "by the artifact path", artifact_only=True)  # the key's first put
    for round_ in range(4):
        put("model", {"v": round_}, artifact_only=True)
        with ws.locked([("default", "model")]):
            writer = threading.Thread(target=mirror.write, args=(ws, "default", "model"))
            writer.start()
            deadline = time.monotonic() + 30
            while not _staged_values(local_stack) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert _staged_values(local_stack) == [{"v": round_}]  # before the lock
            assert writer.is_alive()  # waiting for the lock
        put("model", {"v": round_ + 0.5}, artifact_only=True)  # races the writer
        writer.join()
        flush()
        assert pickle.loads(_read(local_stack, "model/object")) == {"v": round_ + 0.5}
        assert mirror.pending(ws) == []
        assert _staged_values(local_stack) == []
    assert maintenance.verify().ok
