"""Flowdapt reads the trees catalogstore writes, and catalogstore reads what Flowdapt writes back.

The real Flowdapt (``flowdapt==0.1.52``) runs in a venv of its own (see
``flowdapt_env``), on local disk and on S3 through the moto server, over the
very storage root that catalogstore wrote. Nothing here is mocked.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from flowdapt_env import flowdapt_interpreter, run_flowdapt

import catalogstore
from catalogstore.artifacts import get_artifact, list_artifacts, new_artifact
from catalogstore.names import METADATA_FILENAME
from catalogstore.record import metadata_from_json

pytestmark = pytest.mark.flowdapt


@pytest.fixture(scope="session")
def flowdapt_python() -> Path:
    """Flowdapt's interpreter, its venv built on first use and cached across runs."""
    return flowdapt_interpreter()

# What the tests write, as plain data: {namespace: {name: {"files": ..., "metadata": ...}}}.
Tree = dict[str, dict[str, dict[str, dict[str, Any]]]]

TEXT = "héllo wörld\nsecond line\r\n"
BLOB = bytes(range(256)) * 16
BATCH = 3

FLOWDAPT_VIEW = """
import base64
common = dict(protocol=args["protocol"], base_path=args["base_path"], **args["params"])
view = {}
for ns in args["namespaces"]:
    listed = {}
    for found in Artifact.list_artifacts(ns, **common):
        artifact = Artifact.get_artifact(found.name, namespace=ns, **common)
        listed[found.name] = {
            "files": {f.name: base64.b64encode(f.read()).decode() for f in artifact.list_files()},
            "metadata": artifact.metadata,
        }
    view[ns] = listed
reply(view)
"""

FLOWDAPT_EDIT = """
common = dict(protocol=args["protocol"], base_path=args["base_path"], **args["params"])
artifact = Artifact.get_artifact(args["name"], namespace=args["namespace"], **common)
artifact.set_meta("reviewed_by", "flowdapt")
if args.get("drop_key"):
    artifact["epochs"] = 3
    artifact.del_meta(args["drop_key"])
    artifact.new_file("from_flowdapt.txt", content="written by flowdapt")
reply(artifact.metadata)
"""


def flowdapt_args(stack: Any) -> dict[str, Any]:
    """How Flowdapt reaches the stack's storage root (``base_path`` has no protocol)."""
    protocol = "s3" if stack.storage_url.startswith("s3://") else "file"
    return {"protocol": protocol, "base_path": stack.root, "params": stack.storage_options}


def storage_files(stack: Any) -> set[str]:
    """Every file below the storage root, relative to it, read behind the API."""
    fs = stack.filesystem()
    fs.invalidate_cache()
    root = stack.root.rstrip("/")
    return {path[len(root) + 1:] for path in fs.find(root)}


def read_raw(stack: Any, relative: str) -> bytes:
    fs = stack.filesystem()
    fs.invalidate_cache()
    return fs.cat_file(f"{stack.root.rstrip('/')}/{relative}")


def write_through_catalogstore() -> Tree:
    """Exercise every kind of change; return what the storage must show afterwards."""
    kinds = new_artifact("kinds")
    kinds.new_file("greeting.txt", content=TEXT)
    kinds.new_file("blob.bin", content=BLOB)
    kinds.new_file("empty")
    kinds.new_file("overwritten", content=b"first")
    kinds.get_file("overwritten").write(b"second, longer content")
    with kinds.get_file("streamed.txt", create=True).open("w") as f:
        f.write("streamed " * 100)
    kinds.new_file("doomed", content=b"removed again").remove()
    kinds.set_meta("created_by", "catalogstore")
    kinds.set_meta("epochs", 12)
    kinds["note"] = "ünïcode, \"quotes\" and {braces}"
    kinds.update_meta({"stage": "train", "temporary": "x"})
    kinds.del_meta("temporary")

    new_artifact("bare")  # neither files nor metadata
    new_artifact("gone").new_file("f", content=b"x")
    get_artifact("gone").delete()

    with catalogstore.namespace("compat"):
        tx = new_artifact("tx")
        tx.new_file("kept", content=b"kept")
        with tx.transaction():
            tx.new_file("a.json", content='{"a": 1}')
            tx.get_file("kept").remove()
            tx.set_meta("phase", "committed")
        with pytest.raises(RuntimeError), tx.transaction():
            tx.new_file("never", content=b"rolled back")
            tx.set_meta("phase", "rolled back")
            raise RuntimeError("abort the transaction")
        with catalogstore.transaction():
            for i in range(BATCH):
                batched = new_artifact(f"batch-{i}")
                batched.new_file("data", content=f"row {i}\n" * (i + 1))
                batched["index"] = i

    return {
        "default": {
            "kinds": {
                "files": {
                    "greeting.txt": TEXT.encode(),
                    "blob.bin": BLOB,
                    "empty": b"",
                    "overwritten": b"second, longer content",
                    "streamed.txt": ("streamed " * 100).encode(),
                },
                "metadata": {"created_by": "catalogstore", "epochs": 12, "stage": "train",
                             "note": "ünïcode, \"quotes\" and {braces}"},
            },
            "bare": {"files": {}, "metadata": {}},
        },
        "compat": {
            "tx": {"files": {"a.json": b'{"a": 1}'}, "metadata": {"phase": "committed"}},
            **{f"batch-{i}": {"files": {"data": (f"row {i}\n" * (i + 1)).encode()},
                              "metadata": {"index": i}} for i in range(BATCH)},
        },
    }


def catalogstore_view(namespaces: list[str]) -> Tree:
    """The same shape as :func:`write_through_catalogstore`'s, read through the API."""
    view: Tree = {}
    for ns in namespaces:
        view[ns] = {}
        for artifact in list_artifacts(ns):
            files = {}
            for file in artifact.list_files():
                content = file.read()
                files[file.name] = content.encode() if isinstance(content, str) else content
            view[ns][artifact.name] = {"files": files, "metadata": artifact.metadata}
    return view


def flowdapt_view(python: Path, stack: Any, namespaces: list[str], cwd: Path) -> Tree:
    view = run_flowdapt(python, FLOWDAPT_VIEW, cwd, namespaces=namespaces, **flowdapt_args(stack))
    for artifacts in view.values():
        for entry in artifacts.values():
            entry["files"] = {k: base64.b64decode(v) for k, v in entry["files"].items()}
    return view


def layout(tree: Tree) -> set[str]:
    """The files under ``artifacts/``: the user's files and each ``.artifact.json``."""
    return {f"artifacts/{ns}/{name}/{file}"
            for ns, artifacts in tree.items() for name, entry in artifacts.items()
            for file in [*entry["files"], METADATA_FILENAME]}


def assert_layout(files: set[str], tree: Tree) -> None:
    """``artifacts/`` holds the user's files and ``.artifact.json``, nothing else."""
    assert {p for p in files if p.startswith("artifacts/")} == layout(tree)


def test_flowdapt_sees_what_catalogstore_wrote(stack, flowdapt_python, tmp_path):
    expected = write_through_catalogstore()
    namespaces = sorted(expected)
    assert catalogstore_view(namespaces) == expected

    # Look behind both APIs first: Flowdapt creates a missing .artifact.json when it
    # opens an artifact, which would hide a store that failed to write one.
    files = storage_files(stack)
    assert_layout(files, expected)
    for ns, artifacts in expected.items():
        for name, entry in artifacts.items():
            path = f"artifacts/{ns}/{name}/{METADATA_FILENAME}"
            assert json.loads(read_raw(stack, path)) == entry["metadata"]  # flat, strings

    assert flowdapt_view(flowdapt_python, stack, namespaces, tmp_path) == expected
    assert storage_files(stack) == files  # Flowdapt only read: it had nothing to add


def test_nothing_outside_artifacts_and_the_store_folder(stack):
    expected = write_through_catalogstore()
    files = storage_files(stack)
    outside = {p for p in files if not p.startswith(("artifacts/", ".catalogstore/"))}
    assert outside == set()
    fs = stack.filesystem()
    top = {p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(stack.root, detail=False)}
    assert top <= {"artifacts", ".catalogstore"}  # no stray folders either
    # Every commit moved its staged files: nothing waits in the staging area; the
    # store's folder holds only the bytes earlier versions keep (issue 15).
    assert {p for p in files if p.startswith(".catalogstore/")
            and not p.startswith(".catalogstore/versions/")} == set()
    assert_layout(files, expected)


def test_flowdapt_changes_keep_the_layout_and_the_record_shape(stack, flowdapt_python,
                                                                tmp_path):
    expected = write_through_catalogstore()
    kinds = expected["default"]["kinds"]
    folder = f"artifacts/default/kinds/{METADATA_FILENAME}"
    assert metadata_from_json(read_raw(stack, folder)) == kinds["metadata"]

    flowdapt_meta = run_flowdapt(flowdapt_python, FLOWDAPT_EDIT, tmp_path, name="kinds",
                                 namespace="default", drop_key="stage", **flowdapt_args(stack))

    want = {**kinds["metadata"], "reviewed_by": "flowdapt", "epochs": 3}
    del want["stage"]
    raw = read_raw(stack, folder)
    written = json.loads(raw)
    assert isinstance(written, dict)
    assert all(isinstance(v, (str, int, float, bool)) for v in written.values())  # flat
    assert written == flowdapt_meta
    assert metadata_from_json(raw) == want

    # The folder holds the user's files, Flowdapt's new one and .artifact.json, nothing else.
    expected["default"]["kinds"]["files"]["from_flowdapt.txt"] = b"written by flowdapt"
    assert_layout(storage_files(stack), expected)
    assert read_raw(stack, "artifacts/default/kinds/from_flowdapt.txt") == b"written by flowdapt"

    # Flowdapt tags the artifact that had neither files nor metadata.
    run_flowdapt(flowdapt_python, FLOWDAPT_EDIT, tmp_path, name="bare", namespace="default",
                 **flowdapt_args(stack))
    bare = read_raw(stack, f"artifacts/default/bare/{METADATA_FILENAME}")
    assert metadata_from_json(bare) == {"reviewed_by": "flowdapt"}
    assert_layout(storage_files(stack), expected)

    # What catalogstore wrote is still read back unchanged next to Flowdapt's changes.
    again = get_artifact("kinds")
    assert again.get_file("blob.bin").read() == BLOB
    assert again.get_file("greeting.txt").read() == TEXT
