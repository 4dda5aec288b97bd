"""The ``local`` cluster memory: objects in files on tmpfs, shared by the processes of a machine.

No server: every process reads and writes the files itself.

- **Format**: pickle protocol 5 with out-of-band buffers. A file is a header
  (magic, version, length of the pickle, offset and length of each buffer), the
  pickle, then each buffer at a 64-byte aligned offset.
- **get** maps the file read-only and hands the buffers to ``pickle.loads``, so a
  NumPy array (and pandas or Arrow data backed by such buffers) comes back
  zero-copy and read-only, for the same cost at 1 KiB or 1 GiB. Two gets in one
  process share one mapping.
- **put** writes a complete file under a temporary name and renames it over the
  key: a concurrent reader sees the old value or the new one, never a torn one,
  and an array it got earlier stays valid.
- **Memory reuse**: fresh tmpfs pages are slow to fault in (several times a
  ``memcpy``), so files of at least :data:`POOL_MIN_BYTES` that a ``delete`` or a
  replacing ``put`` releases go to the session's pool, and a later ``put`` writes
  into one of them, through a mapping it keeps. A reader holds a shared
  ``flock`` on a file for as long as it maps it, and a writer takes a pool file
  only with an exclusive, non-blocking ``flock``: memory someone still reads is
  never overwritten. The pool holds at most twice its largest file (and less
  when tmpfs runs short); it goes with the session.
- **Writers** of one namespace take that namespace's lock file for the
  rename only; readers take no namespace lock.
- **Killed writers**: a writer holds an exclusive ``flock`` on its temporary
  file while it writes it, so the file of a writer killed half way is known by
  its missing lock (the kernel drops it with the process) and freed by
  ``catalogstore memory clear --stale``, by a ``clear`` of its namespace, and
  when a new session starts; see :func:`~._local_session.sweep_namespace`. Such a
  file never had a key's name: readers never see it.

Lifetime
--------
An object survives the process that put it. It lives as long as its session
(see :mod:`catalogstore.cluster_memory._local_session`): a session named after
the process group ends when the group leader (the driver started from a shell)
exits; one made with :meth:`LocalMemory.new_session` when that block ends; one
named in ``CATALOGSTORE_MEMORY_SESSION`` by the user lives until it is cleared
(``catalogstore memory clear``). Nothing survives a reboot (tmpfs), and nothing
is seen from another machine. Sessions whose owner was killed are freed by
``catalogstore memory clear --stale``, and when any new session of the user starts.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import mmap
import os
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalogstore.cluster_memory import _local_session as sessions
from catalogstore.cluster_memory._local_format import Payload, dumps, loads, read_all, write_all
from catalogstore.cluster_memory._local_session import (
    FREE_DIR,
    PENDING_PREFIX,
    TMP_PREFIX,
    SessionInfo,
    check_root,
    check_session_name,
    current_session,
    default_root,
    ensure_session,
    namespace_lock,
    register_exit_removal,
    scan_sizes,
    sweep_namespace,
)
from catalogstore.cluster_memory.base import ClusterMemory
from catalogstore.errors import InvalidNameError, ObjectTooLargeError, StorageError
from catalogstore.names import validate_name

__all__ = ["POOL_MIN_BYTES", "LocalMemory"]

POOL_MIN_BYTES = 256 << 10
"""Released files at least this large go to the pool; smaller ones cost little to make anew."""
_KEPT_WRITE_MAPS = 4
"""Writable mappings of pool files a process keeps (a hit writes at ``memcpy`` speed)."""
_RETRIES = 1000
_POPULATE = getattr(mmap, "MAP_POPULATE", 0)


# -- per-process caches -------------------------------------------------------------------

_read_maps: weakref.WeakValueDictionary[tuple[int, int], mmap.mmap] = \
    weakref.WeakValueDictionary()
"""Read-only mappings that some value still uses, by (device, inode): the next get of
the same file hands out the same memory. Holding one holds the file's shared lock."""


@dataclass
class _WriteMap:
    mapping: mmap.mmap
    fd: int  # an open file description of its own, never locked (tells if it was unlinked)
    size: int

    def close(self) -> None:
        with contextlib.suppress(BufferError):
            self.mapping.close()
        with contextlib.suppress(OSError):
            os.close(self.fd)


_write_maps: OrderedDict[tuple[int, int], _WriteMap] = OrderedDict()
_write_maps_lock = threading.Lock()


def _after_fork() -> None:
    # Another thread may have held the lock at the fork; the child has no such thread.
    global _write_maps_lock
    _write_maps_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def _release_write_maps(keep: int = 0) -> None:
    """Drop the kept writable mappings of files that are gone, and all but ``keep`` others."""
    with _write_maps_lock:
        for ident, entry in list(_write_maps.items()):
            try:
                gone = os.fstat(entry.fd).st_nlink == 0
            except OSError:
                gone = True
            if gone:
                del _write_maps[ident]
                entry.close()
        while len(_write_maps) > keep:
            _write_maps.popitem(last=False)[1].close()


def _ident(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def _token() -> str:
    return os.urandom(6).hex()


class LocalMemory(ClusterMemory):
    """Cluster memory of the processes of one machine, in files on tmpfs.

    Parameters
    ----------
    namespace, max_object_bytes
        See :class:`~catalogstore.cluster_memory.ClusterMemory`.
    session
        Session to use (default: ``CATALOGSTORE_MEMORY_SESSION``, else this
        process group's); a handle keeps its session when pickled to another process.
    root
        Folder of this user's sessions (default: ``/dev/shm/catalogstore-{uid}``).
    """

    name = "local"
    supports_zero_copy = True
    is_distributed = False

    def __init__(self, namespace: str = "", max_object_bytes: int | None = None, *,
                 session: str | None = None, root: str | os.PathLike[str] | None = None) -> None:
        super().__init__(namespace, max_object_bytes)
        self._root = Path(root) if root is not None else default_root()
        # A session named by the caller or by CATALOGSTORE_MEMORY_SESSION (an executor's,
        # LocalMemory.new_session()'s) outlives this process; the process group's may not.
        self._named = bool(session or os.environ.get(sessions.SESSION_ENV))
        if session:
            self._session = check_session_name(session, "session")
        else:
            self._session, owner = current_session()
            if owner:  # the group leader: its exit ends the session
                register_exit_removal(self._root, self._session)
        self._dir = f"{self._root}/{self._session}"
        self._free = f"{self._dir}/{FREE_DIR}"

    @classmethod
    def is_available(cls) -> bool:
        return True

    def __repr__(self) -> str:
        return f"LocalMemory(namespace={self.namespace!r}, session={self._session!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild, (type(self), self._namespace, self.max_object_bytes, self._session,
                          str(self._root))

    @property
    def outlives_process(self) -> bool:
        # docstring inherited
        return self._named

    @property
    def location(self) -> str:
        # docstring inherited
        return f"local cluster memory session {self._session!r}"

    @property
    def session(self) -> str:
        """Name of the session this handle uses."""
        return self._session

    @property
    def path(self) -> Path:
        """The session's folder."""
        return Path(self._dir)

    # -- sessions (the CLI's ``memory ls --all-sessions`` and ``memory clear --stale``) --

    new_session = staticmethod(sessions.new_session)

    @staticmethod
    def sessions(root: Path | None = None) -> list[SessionInfo]:
        """What every session of this user holds."""
        return sessions.list_sessions(root)

    @staticmethod
    def stale_sessions(root: Path | None = None) -> list[SessionInfo]:
        """Sessions whose owning process is gone."""
        return sessions.stale_sessions(root)

    @staticmethod
    def clear_stale(root: Path | None = None) -> list[tuple[SessionInfo, int]]:
        """Free the stale sessions; returns each with the bytes it held.

        Live sessions are swept too: the files of writers killed half way are freed
        (a live session is in the list when that freed something).
        """
        return sessions.clear_stale(root)

    def info(self) -> SessionInfo:
        """What this handle's session holds (every namespace, and the pool)."""
        if not check_root(self._root, create=False):
            return SessionInfo(self._session, self.path, None, True)
        return sessions.session_info(self._root, self._session)

    def pool_usage(self) -> tuple[int, int]:
        """Bytes and files kept in the session's pool of released files."""
        if not check_root(self._root, create=False):
            return 0, 0
        return sessions.free_pool(self.path)

    def release_pool(self) -> int:
        """Give the memory of the pool back to the system; returns the bytes freed."""
        return self._trim_pool(limit=0)

    def close(self) -> None:
        """Drop the writable mappings this process keeps (stored objects stay)."""
        _release_write_maps()

    # -- primitives ------------------------------------------------------------------------

    def _folder(self, namespace: str) -> str | None:
        """The namespace's folder, or ``None`` when this user has no sessions at all."""
        return f"{self._dir}/{namespace}" if check_root(self._root, create=False) else None

    def _put(self, namespace: str, key: str, value: Any) -> None:
        payload = dumps(key, value)
        self._check_size(key, payload.size)
        check_root(self._root, create=True)
        folder = f"{self._dir}/{namespace}"
        if not os.path.isdir(folder):
            ensure_session(self._root, self._session)
            with contextlib.suppress(FileExistsError):
                os.mkdir(folder, 0o700)
        taken = self._take_free(folder, payload.size) \
            if payload.size >= POOL_MIN_BYTES else None
        fd, tmp = taken[:2] if taken else self._new_file(folder)
        try:
            if taken and payload.size <= taken[2]:
                os.ftruncate(fd, payload.size)
                self._write_mapped(fd, tmp, payload)
            else:
                # A new file, or a pool file that grows: written, not mapped, so that
                # tmpfs running out of room is an error here rather than a SIGBUS.
                write_all(fd, payload.parts())
            with namespace_lock(folder):
                pooled = self._replace(tmp, f"{folder}/{key}")
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.ENOMEM):
                raise ObjectTooLargeError(
                    f"{key!r} takes {payload.size} bytes, more than the local cluster memory "
                    f"has room for in {self._root} ({exc.strerror})") from exc
            raise
        finally:
            # The exclusive lock ends after the rename, and explicitly: a process forked
            # meanwhile shares it, and would keep readers of the key waiting.
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        if pooled:
            self._trim_pool()

    def _new_file(self, folder: str) -> tuple[int, str]:
        """A new temporary file, exclusively locked (unlocked, it is a killed writer's)."""
        while True:
            tmp = f"{folder}/{TMP_PREFIX}{_token()}"
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_nlink:
                return fd, tmp
            os.close(fd)  # swept between its creation and our lock: another one

    def _take_free(self, folder: str, size: int) -> tuple[int, str, int] | None:
        """A pool file for ``size`` bytes, exclusively locked and moved to a temporary name.

        Prefers the smallest file that fits, then the largest of at least half the
        size (its pages are reused as far as they go). Files that someone maps are
        locked (shared) and skipped.
        """
        try:
            names = os.listdir(self._free)
        except FileNotFoundError:
            return None
        pool = []
        for name in names:
            if not name.startswith("."):
                with contextlib.suppress(ValueError):
                    pool.append((int(name.split("-", 1)[0]), name))
        fitting = sorted(p for p in pool if p[0] >= size)
        fitting += sorted((p for p in pool if size // 2 <= p[0] < size), reverse=True)
        for file_size, name in fitting:
            path = f"{self._free}/{name}"
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                # Still the pool's file? Another writer may have taken it while we opened it.
                if _ident(os.stat(path)) == _ident(os.fstat(fd)):
                    tmp = f"{folder}/{TMP_PREFIX}{_token()}"
                    os.rename(path, tmp)
                    return fd, tmp, file_size
            except OSError:  # locked by a reader or a writer, or gone meanwhile
                pass
            os.close(fd)
        return None

    def _write_mapped(self, fd: int, tmp: str, payload: Payload) -> None:
        """Write into a (locked) pool file through a kept mapping: a plain ``memcpy``."""
        ident = _ident(os.fstat(fd))
        with _write_maps_lock:
            entry = _write_maps.pop(ident, None)  # ours alone while we write
        if entry is not None and entry.size != payload.size:
            entry.close()
            entry = None
        if entry is None:
            # A description of its own, so that keeping the mapping keeps no lock.
            own = os.open(tmp, os.O_RDWR)
            try:
                mapping = mmap.mmap(own, payload.size, flags=mmap.MAP_SHARED | _POPULATE)
            except BaseException:
                os.close(own)
                raise
            entry = _WriteMap(mapping, own, payload.size)
        try:
            for offset, piece in payload.placed():
                entry.mapping[offset:offset + memoryview(piece).nbytes] = piece
        except BaseException:
            entry.close()
            raise
        with _write_maps_lock:
            _write_maps[ident] = entry
        _release_write_maps(keep=_KEPT_WRITE_MAPS)

    def _pool_name(self, size: int) -> str:
        return f"{self._free}/{size}-{time.time_ns()}-{_token()}"

    def _replace(self, tmp: str, target: str) -> bool:
        """Rename ``tmp`` over ``target`` (namespace lock held); whether the old file was pooled.

        The old file enters the pool under a name writers skip until it is no longer
        linked at the key: else a writer could refill it while readers still find it
        there.
        """
        try:
            old = os.stat(target)
        except FileNotFoundError:
            old = None
        pending = None
        if old is not None and old.st_size >= POOL_MIN_BYTES:
            # Beside the key, so that a sweep knows which namespace lock covers it.
            pending = f"{os.path.dirname(target)}/{PENDING_PREFIX}{_token()}"
            try:
                os.link(target, pending)
            except OSError:
                pending = None
        os.rename(tmp, target)
        if pending is None or old is None:
            return False
        try:
            os.rename(pending, self._pool_name(old.st_size))
        except FileNotFoundError:  # no pool: the session is ending
            with contextlib.suppress(FileNotFoundError):
                os.unlink(pending)
            return False
        return True

    def _release(self, path: str) -> bool | None:
        """Move the file at ``path`` to the pool or delete it (namespace lock held).

        Returns ``None`` if there was none, else whether it was pooled.
        """
        try:
            size = os.stat(path).st_size
            if size >= POOL_MIN_BYTES:
                with contextlib.suppress(FileNotFoundError):  # no pool: the session is ending
                    os.rename(path, self._pool_name(size))
                    return True
            os.unlink(path)
        except FileNotFoundError:
            return None
        return False

    def _trim_pool(self, limit: int | None = None) -> int:
        """Unlink pool files, oldest first, until the pool is within ``limit``; bytes freed.

        Default limit: twice the largest pool file, and at most half of what tmpfs
        would have free without the pool.
        """
        try:
            names = [n for n in os.listdir(self._free) if not n.startswith(".")]
        except FileNotFoundError:
            return 0
        pool = []
        for name in names:
            with contextlib.suppress(ValueError):
                size, born, _ = name.split("-", 2)
                pool.append((int(born), int(size), name))
        total = sum(p[1] for p in pool)
        if limit is None:
            limit = 2 * max((p[1] for p in pool), default=0)
            with contextlib.suppress(OSError):
                vfs = os.statvfs(self._free)
                limit = min(limit, (vfs.f_bavail * vfs.f_frsize + total) // 2)
        freed = 0
        for _, nbytes, file_name in sorted(pool):
            if total <= limit:
                break
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self._free}/{file_name}")
                freed += nbytes
            total -= nbytes
        return freed

    def _get(self, namespace: str, key: str) -> Any:
        folder = self._folder(namespace)
        if folder is None:
            raise self._missing(namespace, key)
        path = f"{folder}/{key}"
        for _ in range(_RETRIES):
            try:
                fd = os.open(path, os.O_RDONLY)
            except (FileNotFoundError, NotADirectoryError):
                raise self._missing(namespace, key) from None
            try:
                # Shared lock first: from then on no writer can refill this file.
                fcntl.flock(fd, fcntl.LOCK_SH)
                st = os.fstat(fd)
                try:
                    linked = os.stat(path)
                except FileNotFoundError:
                    raise self._missing(namespace, key) from None
                if _ident(linked) != _ident(st):
                    continue  # replaced (and maybe refilled) between open and lock: again
                if st.st_size < POOL_MIN_BYTES:
                    return loads(key, read_all(fd, st.st_size))[0]
                mapping = _read_maps.get(_ident(st))
                if mapping is None:
                    # mmap keeps a duplicate of fd, and with it the shared lock, for as
                    # long as the mapping lives: as long as some value uses its buffers.
                    mapping = mmap.mmap(fd, st.st_size, prot=mmap.PROT_READ)
            finally:
                os.close(fd)
            value, count = loads(key, mapping)
            if count:
                _read_maps.setdefault(_ident(st), mapping)
            else:
                with contextlib.suppress(BufferError):
                    mapping.close()
            return value
        raise StorageError(f"could not read {key!r} from the local cluster memory: it was "
                           f"replaced {_RETRIES} times while being read")

    def _delete(self, namespace: str, key: str) -> bool:
        folder = self._folder(namespace)
        if folder is None or not os.path.isdir(folder):
            return False
        with namespace_lock(folder):
            released = self._release(f"{folder}/{key}")
        if released:
            self._trim_pool()
        return released is not None

    def _exists(self, namespace: str, key: str) -> bool:
        folder = self._folder(namespace)
        return folder is not None and os.path.isfile(f"{folder}/{key}")

    def _keys(self, namespace: str) -> list[str]:
        return list(self._sizes(namespace))

    def _sizes(self, namespace: str) -> dict[str, int]:
        folder = self._folder(namespace)
        return scan_sizes(folder) if folder is not None else {}

    def _namespaces(self) -> list[str]:
        if not check_root(self._root, create=False):
            return []
        try:
            names = os.listdir(self._dir)
        except FileNotFoundError:  # this session has stored nothing yet
            return []
        # Dot names are the session's own (the free pool); anything else that is not a
        # valid namespace was not made by this backend and is left alone.
        # An emptied namespace keeps its folder for a while: only those holding objects.
        return [name for name in names if not name.startswith(".") and _is_namespace(name)
                and os.path.isdir(f"{self._dir}/{name}") and self._sizes(name)]

    def _clear(self, namespace: str) -> None:
        folder = self._folder(namespace)
        if folder is None or not os.path.isdir(folder):
            return
        with namespace_lock(folder):
            pooled = [self._release(f"{folder}/{key}") for key in scan_sizes(folder)]
        sweep_namespace(folder)
        if any(pooled):
            self._trim_pool()


def _is_namespace(name: str) -> bool:
    try:
        validate_name(name, "namespace")
    except InvalidNameError:
        return False
    return True


def _rebuild(cls: type[LocalMemory], namespace: str, max_object_bytes: int, session: str,
             root: str) -> LocalMemory:
    return cls(namespace, max_object_bytes, session=session, root=root)
