"""Uploading local files and folders into artifacts and downloading them, on both stacks."""

from __future__ import annotations

import os

import pytest
from fsspec.callbacks import Callback

from catalogstore.artifacts import get_artifact, new_artifact
from catalogstore.artifacts.transfer import CHUNK_SIZE, RichProgressCallback
from catalogstore.errors import CorruptArtifactError, InvalidNameError, LocalPathError
from catalogstore.storage.checksum import checksum_bytes


class Recorder(Callback):
    """Keeps what a transfer reports."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []
        self.updates: list[int] = []

    def set_size(self, size):
        self.sizes.append(size)
        super().set_size(size)

    def relative_update(self, inc=1):
        self.updates.append(inc)
        super().relative_update(inc)


class FailAfter(Callback):
    """Raises once more than ``limit`` bytes went through: a transfer broken midway."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def relative_update(self, inc=1):
        super().relative_update(inc)
        if self.value > self.limit:
            raise RuntimeError("connection lost")


def storage_listing(stack, artifact) -> set[str]:
    """The user's files in the artifact's folder (``.artifact.json`` aside)."""
    fs = stack.filesystem()
    fs.invalidate_cache()
    return {p.rsplit("/", 1)[-1] for p in fs.ls(artifact.path, detail=False)} - {
        ".artifact.json"}


def staged(stack) -> list[str]:
    fs = stack.filesystem()
    fs.invalidate_cache()
    return fs.find(f"{stack.root}/.catalogstore/staging")


@pytest.fixture
def folder(tmp_path):
    """A local folder of three files: a multi-chunk one, a text one and an empty one."""
    path = tmp_path / "local"
    path.mkdir()
    contents = {"big.bin": os.urandom(2 * CHUNK_SIZE + 12345),
                "notes.txt": "héllo\n".encode(), "empty": b""}
    for name, data in contents.items():
        (path / name).write_bytes(data)
    return path, contents


def test_file_round_trip_streams_and_records_checksum(stack, tmp_path):
    data = os.urandom(3 * CHUNK_SIZE + 777)
    source = tmp_path / "model.bin"
    source.write_bytes(data)
    artifact = new_artifact("weights")
    recorder = Recorder()
    [file] = artifact.upload(source, callback=recorder)
    assert file.name == "model.bin"
    assert recorder.sizes == [len(data)]
    assert sum(recorder.updates) == len(data)
    assert max(recorder.updates) <= CHUNK_SIZE, "the file must stream in chunks"
    again = get_artifact("weights").get_file("model.bin")
    assert again.size == len(data) and again.checksum == checksum_bytes(data)

    recorder = Recorder()
    out = again.download(tmp_path / "copy.bin", callback=recorder)
    assert out.read_bytes() == data
    assert recorder.sizes == [len(data)] and sum(recorder.updates) == len(data)
    (tmp_path / "into").mkdir()
    assert again.download(tmp_path / "into") == tmp_path / "into" / "model.bin"
    assert (tmp_path / "into" / "model.bin").read_bytes() == data


def test_upload_under_another_name_replaces(stack, tmp_path):
    source = tmp_path / "has spaces & symbols!.csv"
    source.write_bytes(b"a,b\n")
    artifact = new_artifact("renamed")
    artifact.new_file("table.csv", content="old")
    with pytest.raises(InvalidNameError, match="under another name"):
        artifact.upload(source)
    [file] = artifact.upload(source, name="table.csv")
    assert file.read() == b"a,b\n"
    assert [f.name for f in get_artifact("renamed").list_files()] == ["table.csv"]
    with pytest.raises(InvalidNameError):
        artifact.upload(source, name="../escape")


def test_folder_round_trip(stack, folder, tmp_path):
    path, contents = folder
    artifact = new_artifact("dataset")
    recorder = Recorder()
    files = artifact.upload(path, callback=recorder)
    assert [f.name for f in files] == sorted(contents)
    assert recorder.sizes == [sum(len(d) for d in contents.values())]
    assert sum(recorder.updates) == recorder.sizes[0]
    stored = {f.name: f for f in get_artifact("dataset").list_files()}
    assert {name: (f.size, f.checksum) for name, f in stored.items()} == {
        name: (len(data), checksum_bytes(data)) for name, data in contents.items()}
    assert storage_listing(stack, artifact) == set(contents)

    recorder = Recorder()
    written = get_artifact("dataset").download(tmp_path / "out" / "nested", callback=recorder)
    assert [p.name for p in written] == sorted(contents)
    assert {p.name: p.read_bytes() for p in (tmp_path / "out" / "nested").iterdir()} == contents
    assert recorder.sizes == [sum(len(d) for d in contents.values())]


def test_many_files_move_concurrently_and_count_once(stack, tmp_path):
    # On S3 the files' copies overlap (FileStore.for_each); the progress, the catalog
    # and the storage must still see each file exactly once.
    source = tmp_path / "many"
    source.mkdir()
    contents = {f"part-{i:03d}": bytes([i]) * (100 + i) for i in range(40)}
    for name, data in contents.items():
        (source / name).write_bytes(data)
    recorder = Recorder()
    artifact = new_artifact("many")
    artifact.upload(source, callback=recorder)
    assert recorder.value == recorder.sizes[0] == sum(len(d) for d in contents.values())
    assert {f.name: f.read() for f in get_artifact("many").list_files()} == contents
    assert storage_listing(stack, artifact) == set(contents)
    assert staged(stack) == []
    recorder = Recorder()
    get_artifact("many").download(tmp_path / "back", callback=recorder)
    assert recorder.value == recorder.sizes[0]
    assert {p.name: p.read_bytes() for p in (tmp_path / "back").iterdir()} == contents


def test_folder_upload_checks_everything_first(stack, folder):
    path, _ = folder
    artifact = new_artifact("flat")
    artifact.new_file("keep", content=b"keep")
    artifact["k"] = "v"
    (path / "sub").mkdir()
    with pytest.raises(InvalidNameError, match="sub-folder 'sub'"):
        artifact.upload(path)
    (path / "sub").rmdir()
    (path / "bad:name").write_bytes(b"x")
    with pytest.raises(InvalidNameError, match="bad:name"):
        artifact.upload(path)
    (path / "bad:name").unlink()
    with pytest.raises(InvalidNameError, match="own names"):
        artifact.upload(path, name="other")
    again = get_artifact("flat")
    assert [f.name for f in again.list_files()] == ["keep"]
    assert again.metadata == {"k": "v"}
    assert storage_listing(stack, artifact) == {"keep"}


def test_folder_upload_failing_midway_changes_nothing(stack, folder):
    path, contents = folder
    artifact = new_artifact("atomic")
    artifact.new_file("empty", content=b"previous")
    # The big file sorts first: it is staged whole before the transfer breaks.
    with pytest.raises(RuntimeError, match="connection lost"):
        artifact.upload(path, callback=FailAfter(len(contents["big.bin"])))
    again = get_artifact("atomic")
    assert [f.name for f in again.list_files()] == ["empty"]
    assert again.get_file("empty").read() == b"previous"
    assert storage_listing(stack, artifact) == {"empty"}
    assert staged(stack) == [], "staged files of the failed upload must be removed"


def test_missing_local_paths(stack, tmp_path):
    artifact = new_artifact("missing")
    with pytest.raises(LocalPathError, match="No such file") as info:
        artifact.upload(tmp_path / "nothing")
    assert isinstance(info.value, OSError)
    artifact.new_file("f", content=b"data")
    with pytest.raises(LocalPathError):
        artifact.get_file("f").download(tmp_path / "no" / "such" / "folder" / "f")
    assert not (tmp_path / "no").exists()


def test_failed_download_leaves_no_partial_file(stack, tmp_path):
    data = os.urandom(CHUNK_SIZE + 10)
    artifact = new_artifact("corrupt")
    file = artifact.new_file("f", content=data)
    stack.filesystem().pipe_file(file.path, b"changed behind the catalog's back")
    (tmp_path / "out").mkdir()
    dest = tmp_path / "out" / "f"
    dest.write_bytes(b"previous download")
    with pytest.raises(CorruptArtifactError, match="checksum"):
        file.download(dest)
    assert dest.read_bytes() == b"previous download"
    assert [p.name for p in dest.parent.iterdir()] == ["f"], "no temporary file is left"


def test_rich_progress_callback_counts(stack):
    # The terminal bar is only drawn on a terminal; its bookkeeping works anywhere.
    with RichProgressCallback("copy", min_bytes=0) as bar:
        bar.set_size(10)
        bar.relative_update(4)
        bar.relative_update(6)
        assert (bar.size, bar.value) == (10, 10)
