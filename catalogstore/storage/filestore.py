"""The file store: artifact bytes on any fsspec filesystem, rooted at the storage URL.

Every path given to :class:`FileStore` is relative to the root. New content is
first written to the staging area (outside ``artifacts/``, so neither Flowdapt
nor a listing sees it), hashed while it streams, and moved into the artifact
folder only after the catalog committed it. On local disk the move is an atomic
rename; on object stores a single PUT or copy is atomic per object.

On local disk every call goes through :mod:`catalogstore.storage.local`, which never
follows a symbolic link nor opens a FIFO, socket or device inside the root: those
raise :class:`~catalogstore.errors.ForeignEntryError` naming them.

Faults: every failure of the filesystem (an ``OSError``, botocore's and aiohttp's
errors, ...) reaches callers as :class:`~catalogstore.errors.StorageError` naming
the storage, through :meth:`FileStore.errors`, the streams of :meth:`FileStore.stage`
and :meth:`FileStore.open_read`. Calls that can be repeated safely are retried
after a connection error or a timeout (:mod:`catalogstore.retry`); S3 requests are
retried by botocore, which gets bounded timeouts and attempts unless the storage
options set their own (:func:`filesystem_options`).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import errno
import io
import logging
import os
import shutil
import stat
import sys
from collections.abc import Callable, Iterator
from typing import IO, Any, TypeVar, cast

import fsspec
from fsspec.implementations.local import LocalFileSystem
from fsspec.spec import AbstractBufferedFile

from catalogstore import retry
from catalogstore.errors import (
    CatalogStoreError,
    ForeignEntryError,
    StorageError,
)
from catalogstore.names import METADATA_FILENAME
from catalogstore.settings import (
    credential_values,
    hide_in_logs,
    redact_options,
    redact_text,
    redact_url,
)
from catalogstore.storage import local
from catalogstore.storage.checksum import (
    CHECKSUM_ALGORITHM,
    checksum_bytes,
    checksum_matches,
    hash_matches,
    hasher_for,
    new_hasher,
)
from catalogstore.storage.staged import StagedFile

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Chunks at least this large are hashed on a helper thread while the next write
# proceeds; hashlib and file writes both release the GIL.
_ASYNC_HASH_MIN = 1 << 20
_REMOTE_BLOCK = 8 << 20  # above S3's 5 MiB minimum part size
# A local file at least this large that a commit replaces is removed afterwards, on a
# helper thread: ext4 takes ~100 ms to free 256 MiB, which would hold up the commit.
_FREE_LATER_MIN = 8 << 20
_COPY_CHUNK = 8 << 20
# Read into a caller's buffer this much at a time: each chunk is hashed while the
# processor's cache still holds it, and a system call per chunk costs nothing.
_READ_CHUNK = 4 << 20

REMOTE_CONCURRENCY = 8
"""Calls a remote store runs at once when many files move (:meth:`FileStore.for_each`):
each S3 request waits mostly on the network, so overlapping them hides the latency."""

_hash_pool: concurrent.futures.ThreadPoolExecutor
_free_pool: concurrent.futures.ThreadPoolExecutor


def _start_helpers() -> None:
    """The helper threads' executors: new ones in a forked child, whose copies of the
    parent's have no thread and would never run what is submitted (a stream would wait
    for its hash forever)."""
    global _hash_pool, _free_pool
    _hash_pool = concurrent.futures.ThreadPoolExecutor(
        max_workers=1, thread_name_prefix="catalogstore-hash")
    _free_pool = concurrent.futures.ThreadPoolExecutor(
        max_workers=1, thread_name_prefix="catalogstore-free")


_start_helpers()
os.register_at_fork(after_in_child=_start_helpers)


def wait_for_frees() -> None:
    """Return once the replaced files being removed on the helper thread are gone (for
    benchmarks, which must not time one write while the last one is still freed)."""
    _free_pool.submit(int).result()


# -- faults ------------------------------------------------------------------------

S3_CONNECT_TIMEOUT = 5
"""Seconds to open a connection to S3 (botocore ``connect_timeout``) unless set."""
S3_READ_TIMEOUT = 15
"""Seconds S3 may stay silent while answering a request (botocore ``read_timeout``)."""
S3_MAX_ATTEMPTS = 3
"""Attempts per S3 request (botocore ``retries``, ``standard`` mode) unless set; botocore's
own default (legacy mode, 5 attempts with waits of up to 15 s) takes a minute to give up."""
_S3_PROTOCOLS = ("s3", "s3a")
# Modules whose exceptions mean "the storage failed", looked up only once loaded (a
# filesystem that is not imported cannot have raised them).
_LIBRARY_ERRORS = (
    ("botocore.exceptions", ("BotoCoreError", "ClientError")),
    ("aiohttp", ("ClientError",)),
    ("http.client", ("HTTPException",)),
    ("google.api_core.exceptions", ("GoogleAPIError",)),
    ("azure.core.exceptions", ("AzureError",)),
)


def filesystem_options(url: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` plus catalogstore's bounded timeouts and retries, for an ``s3://`` URL.

    Only what the options (or ``AWS_MAX_ATTEMPTS`` / ``AWS_RETRY_MODE``) leave unset
    is added to ``config_kwargs``: ``connect_timeout``, ``read_timeout`` and
    ``retries`` (``{"max_attempts": 3, "mode": "standard"}``).
    """
    protocol = url.split("://", 1)[0] if "://" in url else ""
    if protocol not in _S3_PROTOCOLS:
        return options
    config = dict(options.get("config_kwargs") or {})
    config.setdefault("connect_timeout", S3_CONNECT_TIMEOUT)
    config.setdefault("read_timeout", S3_READ_TIMEOUT)
    if "retries" not in config and not ({"AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE"} & set(os.environ)):
        config["retries"] = {"max_attempts": S3_MAX_ATTEMPTS, "mode": "standard"}
    return {**options, "config_kwargs": config}


def _error_types() -> tuple[type[BaseException], ...]:
    found: list[type[BaseException]] = [OSError, ValueError]
    for module_name, names in _LIBRARY_ERRORS:
        module = sys.modules.get(module_name)
        found += [getattr(module, name) for name in names if hasattr(module, name)]
    return tuple(found)


def is_storage_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure of a filesystem or of the service behind it."""
    return isinstance(exc, _error_types()) and not isinstance(exc, CatalogStoreError)


def _is_from(exc: BaseException, module_prefix: str) -> bool:
    return any(cls.__module__.startswith(module_prefix) for cls in type(exc).__mro__)


def is_transient(exc: BaseException) -> bool:
    """Whether repeating the storage call that raised ``exc`` may succeed.

    Connection errors and timeouts are; botocore's are not retried again, since
    botocore already made the attempts its configuration allows. A
    :class:`StorageError` is as transient as the failure it reports.
    """
    if isinstance(exc, StorageError) and exc.__cause__ is not None:
        exc = exc.__cause__
    if _is_from(exc, "botocore") or _is_from(exc, "aiobotocore"):
        return False
    if isinstance(exc, (ConnectionError, TimeoutError)):  # reset, refused, broken pipe
        return True
    aiohttp = sys.modules.get("aiohttp")
    transient = tuple(getattr(aiohttp, name) for name in (
        "ClientConnectionError", "ClientPayloadError") if hasattr(aiohttp, name))
    incomplete = getattr(sys.modules.get("http.client"), "IncompleteRead", ())
    return isinstance(exc, (*transient, incomplete) if incomplete else transient)


def _is_expired(exc: BaseException) -> bool:
    # s3fs refuses to go on reading an object that was replaced since it was opened.
    expired = getattr(sys.modules.get("s3fs.utils"), "FileExpired", None)
    return expired is not None and isinstance(exc, expired)


def _fill(stream: IO[bytes], buffer: Any, hasher: Any) -> int:
    """Read ``stream`` into ``buffer`` until it is full or the stream ends, hashing each
    chunk as it lands (a large one on the helper thread, while the next is read: both
    release the GIL); the number of bytes read."""
    pending: concurrent.futures.Future[None] | None = None
    done = 0
    with memoryview(buffer) as whole, whole.cast("B") as view:
        try:
            while done < view.nbytes:
                chunk = view[done:done + _READ_CHUNK]
                n = stream.readinto(chunk)  # type: ignore[attr-defined]
                if not n:
                    break
                if pending is not None:
                    pending.result()
                    pending = None
                if n >= _ASYNC_HASH_MIN:
                    pending = _hash_pool.submit(hasher.update, chunk[:n])
                else:
                    hasher.update(chunk[:n])
                done += n
        finally:
            if pending is not None:
                pending.result()
    return done


class StagedWriter(io.BufferedIOBase):
    """A binary stream into the staging area that records size and checksum.

    ``path`` is where in the staging area (a name the unit of work chose);
    ``on_close`` receives the :class:`StagedFile` once all bytes are written;
    ``abort()`` (or an exception inside ``with``) removes what was written. Storage
    failures raise :class:`StorageError` naming ``label`` (the file being written).
    """

    def __init__(self, store: FileStore, encoding: str | None,
                 on_close: Callable[[StagedFile], None], label: str | None,
                 path: str) -> None:
        super().__init__()
        self._store = store
        self.path = path
        self._doing = f"write {label or self.path}"
        self._encoding = encoding
        self._on_close = on_close
        self._hash = new_hasher()
        self._pending: concurrent.futures.Future[None] | None = None
        self._size = 0
        self._failed = False
        with store.errors(self._doing):
            # Not retried here: FileStore.stage and stage_bytes retry the whole writer.
            self._file: IO[bytes] = store.open_raw(self.path, "wb", retried=False)
        self._done = False

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError("write to a closed file")
        view = memoryview(data).cast("B")
        n = view.nbytes
        if self._pending is not None:
            self._pending.result()
            self._pending = None
        try:
            if n >= _ASYNC_HASH_MIN:
                chunk = data if isinstance(data, bytes) else view.tobytes()
                self._pending = _hash_pool.submit(self._hash.update, chunk)
                self._file.write(chunk)
            else:
                self._hash.update(view)
                self._file.write(view)
        except Exception as exc:
            error = self._store.failure(exc, self._doing)
            if error is None:
                raise
            self._failed = True
            raise error from exc
        self._size += n
        return n

    def _finish_hash(self) -> str:
        if self._pending is not None:
            self._pending.result()
            self._pending = None
        return f"{CHECKSUM_ALGORITHM}:{self._hash.hexdigest()}"

    def abort(self) -> None:
        """Drop what was written; nothing is committed.

        Best effort: it runs while another error propagates, so a storage that fails
        again leaves the staged file for ``gc`` instead of raising.
        """
        if self._done:
            return
        self._done = True
        self._finish_hash()
        self._store.abandon(self._file, None if self._failed else self.path)
        super().close()

    def close(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            checksum = self._finish_hash()
            self._file.close()
        except Exception as exc:
            error = self._store.failure(exc, self._doing)
            if error is None:
                self._store.discard_quietly(self.path)
                raise
            # The storage failed: what reached it (if anything) is left for gc.
            raise error from exc
        super().close()
        self._on_close(StagedFile(self.path, self._size, checksum, self._encoding))

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()


class _GuardedReader(io.BufferedIOBase):
    """A remote file open for reading whose failures raise :class:`StorageError`.

    Replaced or removed by a writer before any of it was read, it is opened again
    (``reopen``): the new content is as current as the old (issue 13). Once bytes were
    handed out, a replacement is reported. Every other attribute (``size``,
    ``details``, ...) is the file's own.
    """

    def __init__(self, store: FileStore, file: IO[bytes], doing: str,
                 reopen: Callable[[], IO[bytes]]) -> None:
        super().__init__()
        self._store = store
        self._file = file
        self._doing = doing
        self._reopen: Callable[[], IO[bytes]] | None = reopen

    def __getattr__(self, name: str) -> Any:
        if name == "_file":  # not set yet
            raise AttributeError(name)
        return getattr(self._file, name)

    def _call(self, method: str, *args: Any) -> Any:
        with self._store.errors(self._doing):
            try:
                result = getattr(self._file, method)(*args)
            except Exception as exc:
                reopen, self._reopen = self._reopen, None
                if reopen is None or not (_is_expired(exc) or isinstance(exc, FileNotFoundError)):
                    raise
                position = self._file.tell()
                with contextlib.suppress(Exception):  # it is being dropped anyway
                    self._file.close()
                self._file = reopen()
                if position:
                    self._file.seek(position)
                result = getattr(self._file, method)(*args)
        if method in ("read", "readinto", "readline") and result:
            self._reopen = None  # bytes were handed out: no second chance
        return result

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return bool(self._file.seekable())

    def read(self, size: int | None = -1) -> bytes:
        return cast(bytes, self._call("read", -1 if size is None else size))

    def read1(self, size: int = -1) -> bytes:
        return cast(bytes, self._call("read", size))

    def readinto(self, buffer: Any) -> int:
        return int(self._call("readinto", buffer))

    def readline(self, size: int | None = -1) -> bytes:
        return cast(bytes, self._call("readline", -1 if size is None else size))

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return int(self._call("seek", offset, whence))

    def tell(self) -> int:
        return int(self._file.tell())

    def close(self) -> None:
        if not self.closed:
            try:
                self._call("close")
            finally:
                super().close()


class FileStore:
    """Files under one storage root, on any fsspec filesystem.

    Parameters
    ----------
    url
        fsspec URL or local path of the root.
    options
        Keyword arguments of the filesystem (``endpoint_url``, credentials, ...);
        for S3, bounded timeouts and retries are added where they set none
        (:func:`filesystem_options`).
    """

    def __init__(self, url: str, options: dict[str, Any] | None = None,
                 scratch: Callable[[], str] | None = None) -> None:
        self.url = url
        self.options = options or {}
        self.scratch = scratch
        """Gives a new path for the store's own temporary files (an ``.artifact.json``
        written aside, a replaced file kept until it is freed): the unit of work passes
        its staging names, so that ``gc`` collects what a crash leaves of them."""
        hide_in_logs(*credential_values(self.options))
        try:
            self.fs, root = fsspec.core.url_to_fs(url, **filesystem_options(url, self.options))
        except (ValueError, ImportError, TypeError) as exc:
            raise StorageError(f"cannot open storage {redact_url(url)}: {exc}") from None
        self.root = root.rstrip("/")
        # Exactly fsspec's local filesystem: a subclass (instrumented, fault-injecting,
        # ...) expects its own methods to be called, not the os module's.
        self.is_local = type(self.fs) is LocalFileSystem
        endpoint = self.options.get("endpoint_url") or \
            (self.options.get("client_kwargs") or {}).get("endpoint_url")
        self.where = redact_url(url) + (f" (endpoint {redact_url(str(endpoint))})"
                                        if endpoint else "")
        """The storage as error messages name it (no credentials)."""

    def __repr__(self) -> str:
        return f"FileStore({redact_url(self.url)!r}, {redact_options(self.options)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (FileStore, (self.url, self.options, self.scratch))

    def full_path(self, path: str) -> str:
        return f"{self.root}/{path}"

    def uri(self, path: str) -> str:
        if isinstance(self.fs, LocalFileSystem):  # file:///abs/path, as Flowdapt's too
            return str(self.fs.unstrip_protocol(self.full_path(path)))
        # As Flowdapt spells it (issue 14): memory://root/..., not fsspec's memory:///root/...
        protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        return f"{protocol}://{self.full_path(path).lstrip('/')}"

    # -- faults --------------------------------------------------------------

    def failure(self, exc: BaseException, doing: str) -> StorageError | None:
        """The :class:`StorageError` to raise for ``exc`` while doing ``doing``, or ``None``
        when ``exc`` is not a storage failure (a bug, an error of catalogstore's own)."""
        if not is_storage_failure(exc):
            return None
        if _is_expired(exc):
            reason = ("it was replaced while being read (a writer committed a new version); "
                      "open it again to read the new content")
        else:
            reason = f"{type(exc).__name__}: {exc}"
        attempts = retry.attempts_made(exc)
        tries = f" ({attempts} attempts)" if attempts > 1 else ""
        message = f"storage {self.where}: could not {doing}{tries}: {reason}"
        for secret in credential_values(self.options):  # a library may quote one
            if len(secret) >= 4:
                message = message.replace(secret, "***")
        return StorageError(redact_text(message))

    @contextlib.contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        """Translate storage failures of the block into :class:`StorageError` naming the
        storage and ``doing`` (what could not be done, e.g. ``"read ns/name/file"``)."""
        try:
            yield
        except Exception as exc:
            error = self.failure(exc, doing)
            if error is None:
                raise
            raise error from exc

    def _retried(self, what: str, fn: Callable[[], T]) -> T:
        """``fn()``, repeated after a transient failure (only remote calls can have one)."""
        if self.is_local:
            return fn()
        return retry.call(fn, policy=retry.STORAGE, transient=is_transient,
                          what=lambda: f"storage {self.where}: {what}")

    def for_each(self, fn: Callable[[T], object], items: list[T]) -> None:
        """``fn(item)`` for every item: one after another on local disk (where a call
        is a system call and threads only add overhead), up to :data:`REMOTE_CONCURRENCY`
        at once on a remote store. Each call runs in a copy of the caller's context
        (its open transaction). A failure stops the calls not yet started and is
        raised once every started one has ended, so none outlives this call."""
        if self.is_local or len(items) < 2:
            for item in items:
                fn(item)
            return
        with concurrent.futures.ThreadPoolExecutor(
                min(REMOTE_CONCURRENCY, len(items)), thread_name_prefix="catalogstore-io") as pool:
            futures = [pool.submit(contextvars.copy_context().run, fn, item) for item in items]
            try:
                for future in concurrent.futures.as_completed(futures):
                    future.result()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    def discard_quietly(self, path: str, *, folder: bool = False) -> bool:
        """Remove ``path`` (a ``folder``, with what it holds) if it can be; a storage
        failure leaves it (for ``gc``) and returns False. For clean-ups on a failure
        path, which must not hide the failure."""
        try:
            if folder:
                self.remove_tree(path)
            else:
                self.remove_quietly(path)
        except Exception as exc:
            if not is_storage_failure(exc):
                raise
            logger.debug("storage %s: left %s for gc: %s", self.where, path, retry.describe(exc))
            return False
        return True

    def abandon(self, file: Any, path: str | None) -> None:
        """Close ``file`` (open for writing) without committing it, then remove ``path``
        unless it is ``None``; best effort, as :meth:`discard_quietly`."""
        try:
            if isinstance(file, AbstractBufferedFile) and not file.closed:
                try:
                    file.discard()  # S3: aborts a multipart upload
                finally:
                    file.closed = True  # so that nothing more is uploaded, even by __del__
            else:
                file.close()
        except Exception as exc:
            if not is_storage_failure(exc):
                raise
            logger.debug("storage %s: could not abandon %s: %s", self.where, path,
                         retry.describe(exc))
        if path is not None:
            self.discard_quietly(path)

    # -- low level -----------------------------------------------------------

    def open_raw(self, path: str, mode: str, *, retried: bool = True) -> IO[bytes]:
        """Open ``path`` in a binary mode, making parent folders when writing."""
        if self.is_local:
            return local.open_file(self.root, path, mode)
        full = self.full_path(path)
        # fsspec's default object-store blocks (50 MiB on S3) would dominate memory.
        def open_() -> IO[bytes]:
            return self.fs.open(full, mode, block_size=_REMOTE_BLOCK)  # type: ignore[no-any-return]
        return self._retried(f"open {path}", open_) if retried else open_()

    def open_read(self, path: str, label: str,
                  reopen: Callable[[], IO[bytes]] | None = None) -> IO[bytes]:
        """``path`` open for reading, as a stream whose failures raise :class:`StorageError`
        about ``label`` (on local disk: the plain file, whose errors are ``OSError``).
        On an object store the object is fetched at the first read: replaced or removed
        before it, it is opened again by ``reopen`` (default: the same path), which may
        raise the caller's own "not found" error instead."""
        doing = f"read {label}"
        with self.errors(doing):
            file = self.open_raw(path, "rb")
        if self.is_local:
            return file
        return cast(IO[bytes], _GuardedReader(
            self, file, doing, reopen or (lambda: self.open_raw(path, "rb"))))

    def read_bytes(self, path: str, *, limit: int | None = None) -> bytes:
        """The whole content of ``path``, as it was at one moment; more than ``limit``
        bytes raise :class:`StorageError` (on local disk, having read no more than that).

        On an object store this is one GET: a stream would check the object's
        ETag on every block and fail if a writer replaced it between two blocks.
        It is not a ranged GET (S3 refuses a range of an empty object): callers
        bound it by the listed size first, and an object replaced by a larger one
        since it was listed is read whole, then refused.
        """
        if self.is_local:
            return local.read_file(self.root, path, limit)
        full = self.full_path(path)
        data: bytes = self._retried(f"read {path}", lambda: self.fs.cat_file(full))
        if limit is not None and len(data) > limit:
            raise StorageError(f"{path} holds more than {limit} bytes, the most catalogstore "
                               "reads of it; it was not read")
        return data

    def read_into(self, path: str, size: int, checksum: str, label: str,
                  new_buffer: Callable[[int], Any]) -> Any | None:
        """The content of ``path`` if it is the ``size`` bytes of ``checksum``, else
        ``None`` (the storage holds other bytes: a commit in flight, or a change behind
        the catalog).

        The bytes go into one buffer, ``new_buffer(size)`` (any writable object with the
        buffer protocol: a NumPy array, a pyarrow buffer), read in chunks that are hashed
        while the processor's cache still holds them: no intermediate ``bytes`` and no
        second pass over the memory. When ``new_buffer`` gives ``None``, into one
        ``bytes``, as :meth:`read_bytes` reads it (one GET on an object store). Failures
        are those of :meth:`read_bytes` and :meth:`open_read` (``label``).
        """
        buffer = new_buffer(size)
        if buffer is None:
            data = self.read_bytes(path)
            return data if len(data) == size and checksum_matches(data, checksum) else None
        hasher = hasher_for(checksum)
        with self.open_read(path, label) as stream:
            if _fill(stream, buffer, hasher) != size or stream.read(1):  # shorter, longer
                return None
        return buffer if hash_matches(hasher, checksum) else None

    def move(self, src: str, dst: str) -> None:
        """Move ``src`` over ``dst`` (atomic on local disk).

        ``src`` is a staged file: its name is used once, so when it is gone on a
        retry, the attempt that failed (its answer lost) has moved it.
        """
        if self.is_local:
            local.rename(self.root, src, dst)
            return
        tries = 0

        def move() -> None:
            nonlocal tries
            tries += 1
            try:
                # Not fs.mv: on S3 that lists both paths first (five requests, not three).
                self.fs.cp_file(self.full_path(src), self.full_path(dst))
                self.fs.rm_file(self.full_path(src))
            except FileNotFoundError:
                if tries == 1:
                    raise
        self._retried(f"move {src} to {dst}", move)

    def move_all(self, moves: list[tuple[str, str]]) -> None:
        """:meth:`move_over` of every (staged source, destination) pair. On a remote
        store the copies run concurrently (:meth:`for_each`) and the sources go in one
        bulk delete after the last copy; a failure before it leaves them staged, for a
        roll-forward to copy again or ``gc`` to collect."""
        if self.is_local or len(moves) < 2:
            for src, dst in moves:
                self.move_over(src, dst)
            return

        def copy(move: tuple[str, str]) -> None:
            src, dst = move
            self._retried(f"copy {src} to {dst}", lambda: self.fs.cp_file(
                self.full_path(src), self.full_path(dst)))
        self.for_each(copy, moves)
        self._retried(f"remove {len(moves)} staged file(s)", lambda: self.fs.rm(
            [self.full_path(src) for src, _ in moves]))

    def move_over(self, src: str, dst: str) -> None:
        """:meth:`move`; on local disk, a large file it replaces is removed afterwards on
        a helper thread (a second link to it, in the staging area, keeps its blocks
        until then; ``gc`` removes that link if the process dies first)."""
        if self.is_local:
            found = local.lstat(self.root, dst)
            if found is not None and stat.S_ISREG(found.st_mode) and \
                    found.st_size >= _FREE_LATER_MIN:
                old = self._scratch_path()
                try:
                    local.hard_link(self.root, dst, old)
                except OSError:  # no hard links here (another device, FAT, some FUSE)
                    self.move(src, dst)
                    return
                try:
                    self.move(src, dst)
                finally:
                    _free_pool.submit(self.discard_quietly, old)
                return
        self.move(src, dst)

    def keep(self, src: str, dst: str) -> bool:
        """Keep the bytes of the file ``src`` at ``dst`` too, unless ``dst`` exists: a
        hard link on local disk (no byte copied; a copy where links are refused), a
        server-side copy elsewhere (nothing uploaded). False when ``src`` is missing."""
        if self.is_local:
            try:
                local.hard_link(self.root, src, dst)
            except FileExistsError:
                pass  # kept already (by an earlier commit, or another writer meanwhile)
            except FileNotFoundError:
                return False
            except OSError:  # no hard links here (another device, FAT, some FUSE)
                with local.open_file(self.root, src, "rb") as source, \
                        local.open_file(self.root, dst, "wb") as target:
                    shutil.copyfileobj(source, target, _COPY_CHUNK)
            return True
        full_src, full_dst = self.full_path(src), self.full_path(dst)

        def copy() -> bool:
            if self.fs.exists(full_dst):
                return True
            try:
                self.fs.cp_file(full_src, full_dst)
            except FileNotFoundError:
                return False
            return True
        return self._retried(f"keep {src} as {dst}", copy)

    def place_folder(self, staged: str, path: str) -> bool:
        """Rename the local folder ``staged`` to ``path``, with everything in it, in one
        step; False (and nothing done) when ``path`` is a folder that is not empty."""
        try:
            local.rename(self.root, staged, path)
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            return False
        return True

    def exists(self, path: str) -> bool:
        if self.is_local:
            return local.lstat(self.root, path) is not None
        full = self.full_path(path)
        return self._retried(f"look for {path}", lambda: bool(self.fs.exists(full)))

    def remove_quietly(self, path: str) -> None:
        """Remove ``path`` if it exists."""
        if self.is_local:
            local.remove_file(self.root, path)
            return

        def remove() -> None:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(self.full_path(path))
        self._retried(f"remove {path}", remove)

    def remove_all(self, paths: list[str]) -> list[str]:
        """Remove the files ``paths`` where they exist: on an object store in bulk
        requests (up to 1,000 keys each); on local disk one by one, where a path that is
        no regular file, or lies in one (swapped in since it was listed), is left, and
        returned."""
        if not self.is_local:
            if paths:
                self._retried(f"remove {len(paths)} file(s)", lambda: self.fs.rm(
                    [self.full_path(path) for path in paths]))
            return []
        left = []
        for path in paths:
            try:
                local.remove_file(self.root, path)
            except ForeignEntryError:
                left.append(path)
        return left

    def remove_tree(self, path: str) -> None:
        """Remove a folder and everything below it, if it exists."""
        if self.is_local:
            local.remove_tree(self.root, path)
            return

        def remove() -> None:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm(self.full_path(path), recursive=True)
        self._retried(f"remove {path}/", remove)

    def folders_held(self) -> contextlib.AbstractContextManager[None]:
        """On local disk, each folder the block works in is opened once
        (:func:`~catalogstore.storage.local.folders_held`: for blocks that neither remove
        nor rename a folder); elsewhere nothing."""
        return local.folders_held() if self.is_local else contextlib.nullcontext()

    def makedirs(self, path: str) -> None:
        if self.is_local:
            os.close(local.open_folder(self.root, path, create=True))

    def make_new_folder(self, path: str) -> None:
        """:meth:`makedirs` of a folder that does not exist yet (a name used once)."""
        if self.is_local:
            local.make_folder(self.root, path)

    # -- staging -------------------------------------------------------------

    def _scratch_path(self) -> str:
        if self.scratch is None:
            raise StorageError(f"storage {self.where}: this FileStore was made without "
                               "scratch=, the names of its temporary files")
        return self.scratch()

    def write_new_file(self, data: Any, path: str) -> str:
        """``data`` written whole to a new local file at ``path`` (which must not
        exist); its path.

        Plain system calls: a Python file object costs three more (``fstat``,
        ``ioctl``, ``lseek``) and a buffer, for a single write. A failure removes
        what was written (if it can).
        """
        local.write_new(self.root, path, data)
        return path

    def stage(self, encoding: str | None, on_close: Callable[[StagedFile], None],
              label: str | None, path: str) -> StagedWriter:
        """A writer into the staging area at ``path``; see :class:`StagedWriter`."""
        return self._retried(f"write {label or 'a staged file'}",
                             lambda: StagedWriter(self, encoding, on_close, label, path))

    def stage_bytes(self, data: bytes, encoding: str | None, label: str | None,
                    path: str) -> StagedFile:
        """``data`` written to a new staged file at ``path`` (retried whole after a
        transient failure)."""
        if self.is_local:  # one write: no stream, no hashing thread
            return StagedFile(self.write_new_file(data, path), memoryview(data).nbytes,
                              checksum_bytes(data), encoding)

        def stage() -> StagedFile:
            result: list[StagedFile] = []
            with StagedWriter(self, encoding, result.append, label, path) as writer:
                writer.write(data)
            return result[0]
        return self._retried(f"write {label or 'a staged file'}", stage)

    def write_metadata(self, artifact_path: str, content: bytes) -> None:
        """Replace an artifact's ``.artifact.json`` with ``content``, whole.

        Object stores replace it atomically (one PUT); on local disk a new file
        is written aside (:attr:`scratch`) and renamed over it. A rewrite in place
        would show readers (Flowdapt reads this file as the metadata) an empty
        file for a moment after every commit.
        """
        self.replace_file(f"{artifact_path}/{METADATA_FILENAME}", content)

    def replace_file(self, path: str, content: bytes) -> None:
        """Replace the file ``path`` with ``content`` whole, as readers never see it half
        written (see :meth:`write_metadata`)."""
        with self.replacement(path, content) as put_in_place:
            put_in_place()

    @contextlib.contextmanager
    def replacement(self, path: str, content: bytes) -> Iterator[Callable[[], None]]:
        """:meth:`replace_file` in two steps: ``content`` written aside now (on local disk
        a scratch file; an object store's one PUT has nothing to do ahead), and the
        function yielded puts it in place (a rename, or the PUT). What was not put in
        place is removed when the block ends.

        Lets a writer do the slow part before taking a lock that others wait for, and
        only the rename under it (the files of small values, issue 19).
        """
        if not self.is_local:
            full = self.full_path(path)
            yield lambda: self._retried(f"write {path}", lambda: self.fs.pipe_file(full, content))
            return
        tmp = self.write_new_file(content, self._scratch_path())
        moved = False

        def put_in_place() -> None:
            nonlocal moved
            self.move(tmp, path)
            moved = True
        try:
            yield put_in_place
        finally:
            if not moved:
                self.discard_quietly(tmp)
