"""Issue 13: a handle carries its artifact's identity. Once that artifact is deleted,
every use of the handle raises ArtifactNotFoundError, even after another artifact
took its id (SQLite reused the largest one) or its name; it never shows or changes
the other artifact."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from stacks import STACKS

import catalogstore
from catalogstore.artifacts import Artifact, get_artifact, new_artifact
from catalogstore.errors import ArtifactNotFoundError

pytestmark = pytest.mark.parametrize("stack", STACKS, indirect=True)


def uses(handle: Artifact, tmp: Path) -> dict[str, Callable[[], Any]]:
    """Every way of using an artifact handle, by name (``tmp``: a local folder)."""
    file = handle.file_handle("payroll.csv")
    upload = tmp / "upload.txt"
    upload.write_text("x")
    return {
        "list_files": handle.list_files,
        "has_file": lambda: handle.has_file("payroll.csv"),
        "contains": lambda: "payroll.csv" in handle,
        "len": lambda: len(handle),
        "get_file": lambda: handle.get_file("payroll.csv"),
        "read": file.read,
        "read-verified": lambda: file.read(verify=True),
        "open": lambda: file.open("rb").read(),
        "size": lambda: file.size,
        "checksum": lambda: file.checksum,
        "refresh": handle.refresh,
        "new_file": lambda: handle.new_file("intruder.txt", content="x"),
        "write": lambda: file.write("overwritten"),
        "remove-file": file.remove,
        "set_meta": lambda: handle.set_meta("owner", "mallory"),
        "update_meta": lambda: handle.update_meta({"owner": "mallory"}),
        "delete_file": lambda: handle.delete_file("payroll.csv"),
        "get_file-create": lambda: handle.get_file("new.txt", create=True),
        "upload": lambda: handle.upload(upload),
        "download": lambda: handle.download(tmp / "all"),
        "file-download": lambda: file.download(tmp / "one.csv"),
        "del_meta": lambda: handle.del_meta("owner"),
        "clear": handle.clear,
        "transaction": lambda: handle.transaction().__enter__(),
        "batch-write": lambda: _in_batch(lambda: handle.new_file("intruder.txt", content="x")),
        "delete": handle.delete,
    }


def _in_batch(fn: Callable[[], Any]) -> None:
    with catalogstore.transaction():
        fn()


def assert_gone_everywhere(handle: Artifact, tmp: Path, owner: str) -> None:
    """Every use raises. The metadata reads answer from the handle's snapshot with no
    catalog round trip: the handle's own artifact as loaded (``owner``), never the
    artifact that took its id or name — until a use finds it gone; then they raise."""
    try:
        assert handle.metadata == {"owner": owner}
        assert handle.get_meta("owner") == handle["owner"] == owner
    except ArtifactNotFoundError:
        pass  # deleted through this very handle
    for name, use in uses(handle, tmp).items():
        with pytest.raises(ArtifactNotFoundError):
            use()
            pytest.fail(f"{name} did not raise")
    for read in (lambda: handle.metadata, lambda: handle["owner"], lambda: handle.record):
        with pytest.raises(ArtifactNotFoundError):
            read()
    # Flowdapt's answers for a deleted artifact (issue 14): it is empty and absent.
    assert handle.is_empty and not handle.exists and not handle


def make(name: str, content: str, owner: str) -> Artifact:
    artifact = new_artifact(name)
    artifact.new_file("payroll.csv", content=content)
    artifact["owner"] = owner
    return artifact


def test_a_deleted_artifacts_handle_never_shows_the_next_one(stack, tmp_path):
    make("alice", "alice's", "alice")
    stale = get_artifact("alice")
    get_artifact("alice").delete()
    bob = make("bob", "salaries", "bob")
    assert_gone_everywhere(stale, tmp_path, "alice")
    assert bob.get_file("payroll.csv").read() == "salaries"
    assert get_artifact("bob").metadata == {"owner": "bob"}
    assert [f.name for f in get_artifact("bob").list_files()] == ["payroll.csv"]


def test_a_deleted_artifacts_handle_never_reaches_one_of_the_same_name(stack, tmp_path):
    make("alice", "old", "alice")
    stale = get_artifact("alice")
    stale_by_own_delete = get_artifact("alice")
    stale_by_own_delete.delete()
    make("alice", "new", "new alice")
    for handle in (stale, stale_by_own_delete):
        assert_gone_everywhere(handle, tmp_path, "alice")
    current = get_artifact("alice")
    assert current.get_file("payroll.csv").read() == "new"
    assert current.metadata == {"owner": "new alice"}
    assert [f.name for f in current.list_files()] == ["payroll.csv"]
