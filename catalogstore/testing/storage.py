"""The storage gateway contract: what the layers above rely on from a :class:`FileStore`.

A backend's test module subclasses :class:`FileStoreContract` and provides a
``store`` fixture: a :class:`~catalogstore.storage.filestore.FileStore` rooted in an
empty folder of the backend, unique to the test, with ``scratch=`` (the names of its
temporary files: the unit of work passes its staging names, a test any unique
path). pytest then runs every test below on it::

    from catalogstore.storage.filestore import FileStore
    from catalogstore.testing.storage import FileStoreContract

    class TestMyFilesystem(FileStoreContract):
        @pytest.fixture
        def store(self):
            return FileStore(f"myfs://bucket/{uuid.uuid4().hex}", {"token": ...},
                             scratch=lambda: f"tmp/{uuid.uuid4().hex}")
"""

from __future__ import annotations

import pickle

import pytest

from catalogstore.errors import StorageError
from catalogstore.names import METADATA_FILENAME
from catalogstore.storage.checksum import checksum_bytes
from catalogstore.storage.filestore import FileStore
from catalogstore.storage.staged import StagedFile

ARTIFACT = "artifacts/ns/a"


def _scratch(store: FileStore) -> str:
    assert store.scratch is not None, "the store fixture must give FileStore a scratch="
    return store.scratch()


def _staged(store: FileStore, data: bytes) -> StagedFile:
    return store.stage_bytes(data, None, None, _scratch(store))


class FileStoreContract:
    """Tests every storage must pass. Subclasses provide ``store``."""

    def test_stage_bytes_then_move(self, store: FileStore) -> None:
        staged = store.stage_bytes(b"hello", "utf-8", "ns/a/f", _scratch(store))
        assert (staged.size, staged.checksum, staged.encoding) == \
            (5, checksum_bytes(b"hello"), "utf-8")
        assert store.exists(staged.path)
        store.move(staged.path, f"{ARTIFACT}/f")  # the parent folder is made on the way
        assert not store.exists(staged.path)
        assert store.read_bytes(f"{ARTIFACT}/f") == b"hello"

    def test_stage_stream(self, store: FileStore) -> None:
        closed: list[StagedFile] = []
        with store.stage(None, closed.append, "ns/a/f", _scratch(store)) as writer:
            writer.write(b"ab")
            writer.write(memoryview(b"cd"))
        [staged] = closed
        assert (staged.size, staged.checksum) == (4, checksum_bytes(b"abcd"))
        assert store.read_bytes(staged.path) == b"abcd"

    def test_stage_that_raises_leaves_nothing(self, store: FileStore) -> None:
        closed: list[StagedFile] = []
        path = _scratch(store)
        with pytest.raises(RuntimeError), store.stage(None, closed.append, None, path) as writer:
            writer.write(b"partial")
            raise RuntimeError("the caller failed mid-write")
        assert closed == []
        assert not store.exists(path)

    def test_open_read_streams(self, store: FileStore) -> None:
        data = bytes(range(256)) * 1000
        store.move(_staged(store, data).path, f"{ARTIFACT}/f")
        with store.open_read(f"{ARTIFACT}/f", "ns/a/f") as stream:
            assert stream.read(10) == data[:10]
            assert stream.read() == data[10:]

    def test_missing_file(self, store: FileStore) -> None:
        assert not store.exists(f"{ARTIFACT}/missing")
        with pytest.raises(FileNotFoundError):
            store.read_bytes(f"{ARTIFACT}/missing")
        with pytest.raises(OSError):  # FileNotFoundError, or StorageError naming ns/a/missing
            store.open_read(f"{ARTIFACT}/missing", "ns/a/missing").read()

    def test_move_over_replaces(self, store: FileStore) -> None:
        store.move(_staged(store, b"old").path, f"{ARTIFACT}/f")
        store.move_over(_staged(store, b"new").path, f"{ARTIFACT}/f")
        assert store.read_bytes(f"{ARTIFACT}/f") == b"new"

    def test_remove_quietly(self, store: FileStore) -> None:
        store.move(_staged(store, b"x").path, f"{ARTIFACT}/f")
        store.remove_quietly(f"{ARTIFACT}/f")
        assert not store.exists(f"{ARTIFACT}/f")
        store.remove_quietly(f"{ARTIFACT}/f")  # gone already: not an error
        assert store.discard_quietly(f"{ARTIFACT}/f") is True

    def test_remove_tree(self, store: FileStore) -> None:
        for name in ("f", "sub/g"):
            store.move(_staged(store, b"x").path, f"{ARTIFACT}/{name}")
        store.remove_tree(ARTIFACT)
        assert not store.exists(f"{ARTIFACT}/f")
        assert not store.exists(f"{ARTIFACT}/sub/g")
        store.remove_tree(ARTIFACT)  # gone already: not an error

    def test_makedirs_is_idempotent(self, store: FileStore) -> None:
        store.makedirs(f"{ARTIFACT}/sub")
        store.makedirs(f"{ARTIFACT}/sub")
        store.move(_staged(store, b"x").path, f"{ARTIFACT}/sub/f")
        assert store.read_bytes(f"{ARTIFACT}/sub/f") == b"x"

    def test_write_new_file(self, store: FileStore) -> None:
        if not store.is_local:
            pytest.skip("write_new_file writes local files only (stage_bytes elsewhere)")
        path = store.write_new_file(memoryview(b"abc"), _scratch(store))
        assert store.read_bytes(path) == b"abc"
        with pytest.raises(FileExistsError):  # never over an existing file
            store.write_new_file(b"other", path)
        assert store.read_bytes(path) == b"abc"

    def test_write_metadata_replaces_whole(self, store: FileStore) -> None:
        store.write_metadata(ARTIFACT, b'{"k": 1}')
        store.write_metadata(ARTIFACT, b'{"k": 2}')
        assert store.read_bytes(f"{ARTIFACT}/{METADATA_FILENAME}") == b'{"k": 2}'

    def test_failures_become_storage_errors(self, store: FileStore) -> None:
        with pytest.raises(StorageError, match="could not read ns/a/f") as caught, \
                store.errors("read ns/a/f"):
            raise ConnectionResetError("connection reset by peer")
        assert store.where in str(caught.value)
        assert isinstance(caught.value.__cause__, ConnectionResetError)

    def test_own_errors_pass_through(self, store: FileStore) -> None:
        # A bug or an error of catalogstore's own is not blamed on the storage.
        with pytest.raises(KeyError), store.errors("read ns/a/f"):
            raise KeyError("k")
        assert store.failure(KeyError("k"), "read ns/a/f") is None

    def test_uri_names_the_file(self, store: FileStore) -> None:
        assert store.uri(f"{ARTIFACT}/f").endswith(f"/{ARTIFACT}/f")
        assert "://" in store.uri(f"{ARTIFACT}/f") or store.is_local

    def test_pickle_round_trip(self, store: FileStore) -> None:
        # Stores travel to Ray and Dask workers inside artifacts and object stores.
        store.move(_staged(store, b"shared").path, f"{ARTIFACT}/f")
        copy = pickle.loads(pickle.dumps(store))
        assert (copy.url, copy.options) == (store.url, store.options)
        assert copy.read_bytes(f"{ARTIFACT}/f") == b"shared"
