"""The file store: artifact bytes on any fsspec filesystem, rooted at the storage URL.

Every path given to :class:`FileStore` is relative to the root. New content is
first written to the staging area (outside ``artifacts/``, so neither Flowdapt
nor a listing sees it), hashed while it streams, and moved into the artifact
folder only after the catalog committed it. On local disk the move is an atomic
``os.replace``; on object stores a single PUT or copy is atomic per object.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import io
import os
import uuid
from collections.abc import Callable, Iterator
from typing import IO, Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from catalogstore.changes import StagedFile
from catalogstore.errors import StorageError
from catalogstore.names import METADATA_FILENAME, STAGING_DIR
from catalogstore.settings import credential_values, hide_in_logs, redact_options, redact_url

CHECKSUM_ALGORITHM = "xxh128"
"""XXH3-128: detects corruption at ~10 GB/s, so hashing never slows a stream down
(SHA-256 runs at ~1.7 GB/s here, slower than writing to disk). Tampering is a
different threat, answered by signing (not by this checksum)."""
# Chunks at least this large are hashed on a helper thread while the next write
# proceeds; hashlib and file writes both release the GIL.
_ASYNC_HASH_MIN = 1 << 20
_REMOTE_BLOCK = 8 << 20  # above S3's 5 MiB minimum part size
_hash_pool = concurrent.futures.ThreadPoolExecutor(max_workers=1,
                                                   thread_name_prefix="catalogstore-hash")


def new_hasher(algorithm: str = CHECKSUM_ALGORITHM) -> Any:
    """A hash object for a checksum's algorithm (``xxh128``, or any of :mod:`hashlib`)."""
    if algorithm == "xxh128":
        import xxhash

        return xxhash.xxh3_128()
    return hashlib.new(algorithm)


def checksum_bytes(data: bytes) -> str:
    """The checksum catalogstore records for ``data`` (``<algorithm>:<hex>``)."""
    hasher = new_hasher()
    hasher.update(data)
    return f"{CHECKSUM_ALGORITHM}:{hasher.hexdigest()}"


class StagedWriter(io.BufferedIOBase):
    """A binary stream into the staging area that records size and checksum.

    ``on_close`` receives the :class:`StagedFile` once all bytes are written;
    ``abort()`` (or an exception inside ``with``) removes what was written.
    """

    def __init__(self, store: FileStore, encoding: str | None,
                 on_close: Callable[[StagedFile], None]) -> None:
        super().__init__()
        self._store = store
        self.path = store.new_staging_path()
        self._encoding = encoding
        self._on_close = on_close
        self._hash = new_hasher()
        self._pending: concurrent.futures.Future[None] | None = None
        self._size = 0
        self._file: IO[bytes] = store.open_raw(self.path, "wb")
        self._done = False

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:  # type: ignore[override]
        if self.closed:
            raise ValueError("write to a closed file")
        view = memoryview(data).cast("B")
        n = view.nbytes
        if self._pending is not None:
            self._pending.result()
            self._pending = None
        if n >= _ASYNC_HASH_MIN:
            chunk = data if isinstance(data, bytes) else view.tobytes()
            self._pending = _hash_pool.submit(self._hash.update, chunk)
            self._file.write(chunk)
        else:
            self._hash.update(view)
            self._file.write(view)
        self._size += n
        return n

    def _finish_hash(self) -> str:
        if self._pending is not None:
            self._pending.result()
            self._pending = None
        return f"{CHECKSUM_ALGORITHM}:{self._hash.hexdigest()}"

    def abort(self) -> None:
        """Drop what was written; nothing is committed."""
        if self._done:
            return
        self._done = True
        self._finish_hash()
        self._file.close()
        self._store.remove_quietly(self.path)
        super().close()

    def close(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            checksum = self._finish_hash()
            self._file.close()
        except BaseException:
            self._store.remove_quietly(self.path)
            raise
        super().close()
        staged = StagedFile(self.path, self._size, checksum, self._encoding)
        try:
            self._on_close(staged)
        except BaseException:
            self._store.remove_quietly(self.path)
            raise

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()


class FileStore:
    """Files under one storage root, on any fsspec filesystem.

    Parameters
    ----------
    url
        fsspec URL or local path of the root.
    options
        Keyword arguments of the filesystem (``endpoint_url``, credentials, ...).
    """

    def __init__(self, url: str, options: dict[str, Any] | None = None) -> None:
        self.url = url
        self.options = options or {}
        hide_in_logs(*credential_values(self.options))
        try:
            self.fs, root = fsspec.core.url_to_fs(url, **self.options)
        except (ValueError, ImportError, TypeError) as exc:
            raise StorageError(f"cannot open storage {redact_url(url)}: {exc}") from None
        self.root = root.rstrip("/")
        self.is_local = isinstance(self.fs, LocalFileSystem)

    def __repr__(self) -> str:
        return f"FileStore({redact_url(self.url)!r}, {redact_options(self.options)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (FileStore, (self.url, self.options))

    def full_path(self, path: str) -> str:
        return f"{self.root}/{path}"

    def uri(self, path: str) -> str:
        return self.fs.unstrip_protocol(self.full_path(path))

    # -- low level -----------------------------------------------------------

    def open_raw(self, path: str, mode: str) -> IO[bytes]:
        """Open ``path`` in a binary mode, making parent folders when writing."""
        full = self.full_path(path)
        if self.is_local:
            if "w" in mode:
                try:
                    return open(full, mode)
                except FileNotFoundError:
                    os.makedirs(os.path.dirname(full), exist_ok=True)
            return open(full, mode)
        # fsspec's default object-store blocks (50 MiB on S3) would dominate memory.
        return self.fs.open(full, mode, block_size=_REMOTE_BLOCK)  # type: ignore[no-any-return]

    def read_bytes(self, path: str) -> bytes:
        """The whole content of ``path``, as it was at one moment.

        On an object store this is one GET: a stream would check the object's
        ETag on every block and fail if a writer replaced it between two blocks.
        """
        if not self.is_local:
            return self.fs.cat_file(self.full_path(path))  # type: ignore[no-any-return]
        with self.open_raw(path, "rb") as f:
            return f.read()

    def move(self, src: str, dst: str) -> None:
        """Move ``src`` over ``dst`` (atomic on local disk)."""
        if self.is_local:
            full_dst = self.full_path(dst)
            try:
                os.replace(self.full_path(src), full_dst)
            except FileNotFoundError:
                if not os.path.exists(self.full_path(src)):
                    raise
                os.makedirs(os.path.dirname(full_dst), exist_ok=True)
                os.replace(self.full_path(src), full_dst)
        else:
            self.fs.mv(self.full_path(src), self.full_path(dst))

    def exists(self, path: str) -> bool:
        if self.is_local:
            return os.path.exists(self.full_path(path))
        return bool(self.fs.exists(self.full_path(path)))

    def remove_quietly(self, path: str) -> None:
        """Remove ``path`` if it exists."""
        try:
            if self.is_local:
                os.remove(self.full_path(path))
            else:
                self.fs.rm_file(self.full_path(path))
        except FileNotFoundError:
            pass

    def remove_tree(self, path: str) -> None:
        """Remove a folder and everything below it, if it exists."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self.full_path(path), recursive=True)

    def makedirs(self, path: str) -> None:
        if self.is_local:
            full = self.full_path(path)
            try:
                os.mkdir(full)  # the parent usually exists: one system call
            except FileNotFoundError:
                os.makedirs(full, exist_ok=True)
            except FileExistsError:
                pass

    def walk_files(self, path: str) -> Iterator[str]:
        """Paths (relative to the root) of the files below ``path``."""
        full = self.full_path(path)
        if not self.fs.exists(full):
            return
        prefix = len(self.root) + 1
        for found in self.fs.find(full):
            yield found[prefix:] if found.startswith(self.root) else found

    # -- staging -------------------------------------------------------------

    def new_staging_path(self) -> str:
        return f"{STAGING_DIR}/{uuid.uuid4().hex}"

    def stage(self, encoding: str | None, on_close: Callable[[StagedFile], None]
              ) -> StagedWriter:
        """A writer into the staging area; see :class:`StagedWriter`."""
        return StagedWriter(self, encoding, on_close)

    def stage_bytes(self, data: bytes, encoding: str | None) -> StagedFile:
        result: list[StagedFile] = []
        with self.stage(encoding, result.append) as writer:
            writer.write(data)
        return result[0]

    def write_metadata(self, artifact_path: str, content: bytes) -> None:
        """Replace an artifact's ``.artifact.json`` with ``content``, whole.

        Object stores replace it atomically (one PUT); on local disk a new file
        is written in the staging area and renamed over it. A rewrite in place
        would show readers (Flowdapt reads this file as the metadata) an empty
        file for a moment after every commit.
        """
        path = f"{artifact_path}/{METADATA_FILENAME}"
        if self.is_local:
            tmp = self.new_staging_path()
            try:
                with self.open_raw(tmp, "wb") as f:
                    f.write(content)
                self.move(tmp, path)
            except BaseException:
                self.remove_quietly(tmp)
                raise
        else:
            self.fs.pipe_file(self.full_path(path), content)
