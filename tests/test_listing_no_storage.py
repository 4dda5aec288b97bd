"""Listing and metadata read the catalog only: zero calls reach the storage (issue 2).

Three layers of counting, on both stacks:

- every public method of the workspace's fsspec filesystem instance (and, on S3,
  s3fs's ``_call_s3``, through which every S3 request goes);
- every method of the workspace's ``FileStore`` that touches the storage (on
  local disk it uses ``os`` directly, bypassing fsspec);
- on local disk, Python audit events (``open``, ``os.listdir``, ``os.scandir``,
  ``os.rename``, ...) naming a path under the storage root.

Each test also checks that the counters do see a real read, so a zero is not
the result of counting nothing.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from catalogstore.artifacts import (
    artifact_exists,
    get_artifact,
    list_artifacts,
    new_artifact,
)
from catalogstore.txn.workspace import get_workspace

NAMESPACE = "listing"
NAMES = ["a0", "a1", "a2"]
# FileStore methods that only compute paths; every other public one reaches the storage.
PATH_HELPERS = {"full_path", "uri"}
# fsspec methods that only compute strings.
FS_PATH_HELPERS = {"unstrip_protocol"}


def _counted(calls: Counter[str], label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def counted_async(*args: Any, **kwargs: Any) -> Any:
            calls[label] += 1
            return await fn(*args, **kwargs)
        return counted_async

    @functools.wraps(fn)
    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[label] += 1
        return fn(*args, **kwargs)
    return counted


# Audit hooks cannot be removed: one hook for the session, recording only while armed.
_audit: dict[str, Any] = {"root": None, "calls": None}


def _audit_hook(event: str, args: tuple[Any, ...]) -> None:
    root, calls = _audit["root"], _audit["calls"]
    if root is None:
        return
    for arg in args:
        if isinstance(arg, (str, os.PathLike)):
            path = os.fspath(arg)
            if path == root or path.startswith(root + os.sep):
                calls[f"audit {event}"] += 1
                return


_hook_installed: list[bool] = []


@pytest.fixture
def storage_calls(stack: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Counts of the calls that reach the storage of the configured workspace."""
    calls: Counter[str] = Counter()
    files = get_workspace().files
    for name in dir(type(files)):
        if name.startswith("_") or name in PATH_HELPERS:
            continue
        attr = getattr(files, name)
        if inspect.ismethod(attr):
            monkeypatch.setattr(files, name, _counted(calls, f"FileStore.{name}", attr))
    fs = files.fs
    for name in dir(fs):
        if name.startswith("_") or name in FS_PATH_HELPERS:
            continue
        if isinstance(inspect.getattr_static(fs, name), property):
            continue
        attr = getattr(fs, name)
        # Bound methods, and the sync wrappers async filesystems set on the instance.
        if inspect.ismethod(attr) or (inspect.isfunction(attr) and name in vars(fs)):
            monkeypatch.setattr(fs, name, _counted(calls, f"fs.{name}", attr))
    if hasattr(fs, "_call_s3"):  # s3fs: every S3 request
        monkeypatch.setattr(fs, "_call_s3", _counted(calls, "s3 request", fs._call_s3))
    if files.is_local:
        if not _hook_installed:
            sys.addaudithook(_audit_hook)
            _hook_installed.append(True)
        _audit.update(root=os.path.realpath(files.root), calls=calls)
    try:
        yield calls
    finally:
        _audit.update(root=None, calls=None)


@pytest.fixture
def artifacts(stack: Any) -> None:
    for i, name in enumerate(NAMES):
        artifact = new_artifact(name, NAMESPACE)
        artifact.new_file("data.bin", content=f"content {i}".encode())
        artifact.update_meta({"kind": "even" if i % 2 == 0 else "odd", "index": str(i),
                              "owner": "tests"})


def read_everything() -> None:
    """Every read of the API that is answered from the catalog."""
    listed = list_artifacts(NAMESPACE)
    assert [a.name for a in listed] == NAMES
    for i, artifact in enumerate(listed):
        assert artifact.metadata == {"kind": "even" if i % 2 == 0 else "odd",
                                     "index": str(i), "owner": "tests"}
        assert artifact.get_meta("index") == str(i)
        assert artifact.get_meta("missing", "default") == "default"
        assert artifact["owner"] == "tests"
        files = artifact.list_files()
        assert [f.name for f in files] == ["data.bin"]
        assert files[0].size == len(f"content {i}")
        assert files[0].checksum.startswith("xxh128:")
        assert artifact.has_file("data.bin")
        assert not artifact.has_file("missing.bin")
        assert "data.bin" in artifact
        assert not artifact.is_empty
        assert len(artifact) == 1
        assert artifact.get_file("data.bin").name == "data.bin"
    assert [a.name for a in list_artifacts(NAMESPACE, where={"kind": "even"})] == ["a0", "a2"]
    assert {a.name for a in list_artifacts(all_namespaces=True)} == set(NAMES)
    assert get_artifact("a1", NAMESPACE).get_meta("kind") == "odd"
    assert artifact_exists("a1", NAMESPACE)
    assert not artifact_exists("nope", NAMESPACE)


def test_listing_and_metadata_make_no_storage_call(
        artifacts: None, storage_calls: Counter[str]) -> None:
    read_everything()
    assert dict(storage_calls) == {}, "listing or metadata reached the storage"


def test_the_counters_see_a_file_read(artifacts: None, stack: Any,
                                      storage_calls: Counter[str]) -> None:
    assert get_artifact("a0", NAMESPACE).get_file("data.bin").read() == b"content 0"
    assert storage_calls["FileStore.read_bytes"] == 1
    if stack.name == "postgres-s3":
        assert storage_calls["fs.cat_file"] == 1  # one GET: a whole object, old or new
        assert storage_calls["s3 request"] >= 1
    else:
        assert storage_calls["audit open"] >= 1


def test_listing_works_with_the_storage_gone(artifacts: None, stack: Any) -> None:
    """Behind the API's back, remove every artifact folder: the catalog still answers."""
    fs = stack.filesystem()
    fs.rm(f"{stack.root}/artifacts", recursive=True)
    fs.invalidate_cache()
    assert not fs.exists(f"{stack.root}/artifacts/{NAMESPACE}/a0")
    read_everything()
