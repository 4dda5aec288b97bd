"""Local-disk primitives that never leave the storage root.

Every path is relative to the root and is reached by an openat-style walk: the
root is opened by its configured path (the one place a link may be followed: it is
configuration, not storage content), then each folder on the way is opened relative
to the one before with ``O_DIRECTORY | O_NOFOLLOW``. On Linux a folder is first
opened by its whole path in one call and kept only if ``/proc/self/fd`` shows the
descriptor's path to be exactly the expected one, which a followed link would
change; otherwise the walk runs. The last component is used
through its folder's descriptor with the no-follow form of each call: files are
opened with ``O_NOFOLLOW | O_NONBLOCK`` (so a FIFO cannot hang the open) and checked
with ``fstat`` to be regular before a byte is read or written; renames, links and
unlinks act on the entry itself; stats are ``lstat``. A symbolic link, a FIFO, a
socket or a device met anywhere raises :class:`~catalogstore.errors.ForeignEntryError`
naming it: it is never followed, read, written or removed.

Windows that remain (someone who can write inside the root can swap entries between
two system calls; each window below can only make a call act on an entry inside the
root, never on what a link points to):

- :func:`remove_file` checks with ``lstat`` that the entry is a regular file, then
  unlinks it: swapped in between for a link, the link itself is removed.
- :func:`rename` checks the source's kind, then renames: swapped in between, the
  entry (a link, say) is moved inside the root, where the next read refuses it.
- A descriptor is held for one call only; a folder moved out of the root while a
  call holds its descriptor is used where it now is for the rest of that call.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import functools
import os
import stat
from collections.abc import Iterator
from typing import IO, Any

from catalogstore.errors import ForeignEntryError, StorageError

_PROC_FDS = "/proc/self/fd"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO must not wait for a writer. It does nothing to a regular
# file, so the descriptor is used as it is once fstat shows it is one.
_FILE_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
# What open(O_NOFOLLOW | O_DIRECTORY) and friends answer for a link or a special file
# (FreeBSD says EMLINK for a link; ENXIO: a FIFO opened to write with no reader).
_REFUSED = (errno.ELOOP, errno.EMLINK, errno.ENOTDIR, errno.ENXIO)
_KINDS = {stat.S_IFLNK: "symbolic link", stat.S_IFIFO: "FIFO", stat.S_IFSOCK: "socket",
          stat.S_IFCHR: "character device", stat.S_IFBLK: "block device",
          stat.S_IFDIR: "folder", stat.S_IFREG: "file"}


def kind_of(mode: int) -> str:
    """What a ``st_mode`` describes, as messages name it."""
    return _KINDS.get(stat.S_IFMT(mode), "special file")


def _checked(mode: int, rel: str) -> int:
    """``mode`` when it is a regular file's; else the error that says what ``rel`` is."""
    if stat.S_ISREG(mode):
        return mode
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "a folder where a file belongs", rel)
    raise ForeignEntryError(rel, kind_of(mode))


def _refusal(exc: OSError, dir_fd: int, name: str, rel: str) -> OSError:
    """The error to raise for ``exc``, met opening ``name`` in ``dir_fd`` without following:
    :class:`ForeignEntryError` when the entry is a link or a special file."""
    if exc.errno not in _REFUSED:
        return exc
    try:
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except OSError:
        return exc
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return exc  # a file where a folder belongs (or the reverse): the error as it is
    return ForeignEntryError(rel, kind_of(mode))


def _open_root(root: str, create: bool) -> int:
    try:
        return os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        if not create:
            raise
    os.makedirs(root, exist_ok=True)
    return os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def _descend(dir_fd: int, name: str, rel: str, create: bool) -> int:
    """The descriptor of the real folder ``name`` in ``dir_fd`` (made when ``create``)."""
    if name in ("", ".", ".."):  # names are checked before they become paths; never here
        raise StorageError(f"refused the path {rel!r}: it leaves its folder")
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        if not create:
            raise
    except OSError as exc:
        raise _refusal(exc, dir_fd, name, rel) from None
    with contextlib.suppress(FileExistsError):  # made meanwhile by another writer
        os.mkdir(name, dir_fd=dir_fd)
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        raise _refusal(exc, dir_fd, name, rel) from None


@functools.lru_cache(maxsize=64)
def _real_root(root: str) -> str | None:
    """The root's path with its links resolved (the root is configuration, trusted),
    or ``None`` where ``/proc`` cannot tell a descriptor's path."""
    return os.path.realpath(root) if os.path.isdir(_PROC_FDS) else None


def _open_direct(root: str, rel: str) -> int | None:
    """The folder ``rel`` opened by its whole path in one call, kept only when the
    kernel shows that no link was crossed on the way: the descriptor's path, as
    ``/proc`` reads it, is exactly the root's plus ``rel``. ``None``: walk instead
    (a link or a special file on the way, a missing folder, no ``/proc``), which
    also finds what to report."""
    real = _real_root(root)
    if real is None or any(part in ("", ".", "..") for part in rel.split("/")):
        return None
    path = os.path.join(real, rel)
    try:
        fd = os.open(path, _DIR_FLAGS)
    except OSError:
        return None
    try:
        if os.readlink(f"{_PROC_FDS}/{fd}") == path:
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def open_folder(root: str, rel: str, *, create: bool = False) -> int:
    """A descriptor of the folder ``rel`` ("" for the root), every step a real folder.

    One ``open`` of the whole path where ``/proc`` proves it crossed no link (three to
    five times fewer system calls on the hot paths); else the walk, one folder at a time.
    """
    if rel:
        fd = _open_direct(root, rel)
        if fd is not None:
            return fd
        head, _, last = rel.rpartition("/")
        if create and head and (parent_fd := _open_direct(root, head)) is not None:
            try:  # a new folder in an existing one: the usual case of staging
                return _descend(parent_fd, last, rel, create)
            finally:
                os.close(parent_fd)
    fd = _open_root(root, create)
    if not rel:
        return fd
    done = 0
    try:
        for part in rel.split("/"):
            done += len(part) + 1
            child = _descend(fd, part, rel[:done - 1], create)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def make_folder(root: str, rel: str) -> None:
    """Make the folder ``rel``, new (a name used once: it must not exist), in its real
    parent, which is made if missing: one ``open`` of the parent and a ``mkdir``, where
    :func:`open_folder` first tries to open the new folder (twice) and opens it once
    made."""
    with parent(root, rel, create=True) as (dir_fd, name):
        os.mkdir(name, 0o777, dir_fd=dir_fd)


_held: contextvars.ContextVar[dict[tuple[str, str], int] | None] = contextvars.ContextVar(
    "catalogstore_held_folders", default=None)


@contextlib.contextmanager
def folders_held() -> Iterator[None]:
    """Folders :func:`parent` opens in the block stay open until it ends, each opened
    (and checked) once: a commit's storage step works in three folders (the artifact's,
    the staging area, its versions') and opened them eight times. Only for blocks that
    neither remove nor rename a folder."""
    held: dict[tuple[str, str], int] = {}
    token = _held.set(held)
    try:
        yield
    finally:
        _held.reset(token)
        for fd in held.values():
            os.close(fd)


@contextlib.contextmanager
def parent(root: str, rel: str, *, create: bool = False) -> Iterator[tuple[int, str]]:
    """The descriptor of ``rel``'s folder and ``rel``'s last component."""
    folder, _, name = rel.rpartition("/")
    if name in ("", ".", ".."):
        raise StorageError(f"refused the path {rel!r}: it names no entry")
    held = _held.get()
    if held is not None:
        fd = held.get((root, folder))
        if fd is None:
            fd = held[(root, folder)] = open_folder(root, folder, create=create)
        yield fd, name
        return
    fd = open_folder(root, folder, create=create)
    try:
        yield fd, name
    finally:
        os.close(fd)


def _open_regular(dir_fd: int, name: str, flags: int, rel: str) -> int:
    try:
        fd = os.open(name, flags | _FILE_FLAGS, 0o666, dir_fd=dir_fd)
    except OSError as exc:
        raise _refusal(exc, dir_fd, name, rel) from None
    try:
        _checked(os.fstat(fd).st_mode, rel)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_file(root: str, rel: str, mode: str) -> IO[bytes]:
    """``rel`` open in the binary ``mode`` (``rb``, ``wb``), a regular file; writing makes
    the folders on the way."""
    writing = "w" in mode
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC if writing else os.O_RDONLY
    with parent(root, rel, create=writing) as (dir_fd, name):
        fd = _open_regular(dir_fd, name, flags, rel)
    return open(fd, mode)


def read_file(root: str, rel: str, limit: int | None = None) -> bytes:
    """The content of the regular file ``rel``; more than ``limit`` bytes (checked as it is
    read: the file may grow) raise :class:`StorageError` without reading further."""
    with open_file(root, rel, "rb") as f:
        if limit is None:
            return f.read()
        size = os.fstat(f.fileno()).st_size
        data = f.read(min(size, limit) + 1)
        if len(data) > size:  # it grew since fstat: read on, up to the bound
            data += f.read(limit + 1 - len(data))
    if len(data) > limit:
        raise StorageError(f"{rel} holds more than {limit} bytes, the most catalogstore "
                           "reads of it; it was not read")
    return data


def write_new(root: str, rel: str, data: Any) -> None:
    """``data`` written whole to the new file ``rel`` (which must not exist), with plain
    system calls; a failure removes what was written."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL  # O_EXCL: an existing link is no target
    with parent(root, rel, create=True) as (dir_fd, name):
        fd = _open_regular(dir_fd, name, flags, rel)
        try:
            try:
                view = memoryview(data).cast("B")
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=dir_fd)
            raise


def lstat(root: str, rel: str) -> os.stat_result | None:
    """``rel``'s own status (a link's, not its target's), or ``None`` if it is missing or
    reachable only through a foreign entry on the way (which is never followed)."""
    try:
        with parent(root, rel) as (dir_fd, name):
            return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError, ForeignEntryError):
        return None


def rename(root: str, src: str, dst: str) -> None:
    """Move the file or folder ``src`` over ``dst``, making ``dst``'s folders as needed
    (only once ``src`` is known to exist)."""
    with parent(root, src) as (src_fd, src_name):
        mode = os.stat(src_name, dir_fd=src_fd, follow_symlinks=False).st_mode
        if not stat.S_ISDIR(mode):
            _checked(mode, src)
        with parent(root, dst, create=True) as (dst_fd, dst_name):
            try:
                os.rename(src_name, dst_name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
            except NotADirectoryError as exc:  # a folder over a link or a file
                raise _refusal(exc, dst_fd, dst_name, dst) from None


def hard_link(root: str, src: str, dst: str) -> None:
    """A second name ``dst`` for the regular file ``src`` (the link, if one, is not followed)."""
    with parent(root, src) as (src_fd, src_name), \
            parent(root, dst, create=True) as (dst_fd, dst_name):
        os.link(src_name, dst_name, src_dir_fd=src_fd, dst_dir_fd=dst_fd,
                follow_symlinks=False)


def remove_file(root: str, rel: str) -> None:
    """Remove the regular file ``rel`` if it exists; any other entry raises."""
    try:
        with parent(root, rel) as (dir_fd, name):
            try:
                mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
            except FileNotFoundError:
                return
            _checked(mode, rel)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=dir_fd)
    except (FileNotFoundError, NotADirectoryError):
        return  # a folder on the way is missing: so is the file


def remove_empty_folder(root: str, rel: str) -> bool:
    """Remove the real folder ``rel`` if it is empty; whether it was."""
    with parent(root, rel) as (dir_fd, name):
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
        if not stat.S_ISDIR(mode):
            raise ForeignEntryError(rel, kind_of(mode))
        try:
            os.rmdir(name, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                return False
            raise
    return True


def remove_tree(root: str, rel: str) -> None:
    """Remove the folder ``rel`` (or the file) and what it holds, if it exists. Only regular
    files and real folders are removed: a foreign entry met stops it, left in place."""
    try:
        with parent(root, rel) as (dir_fd, name):
            try:
                fd = _descend(dir_fd, name, rel, False)
            except FileNotFoundError:
                return
            except NotADirectoryError:  # a file: removed as one
                remove_file(root, rel)
                return
            try:
                _empty(fd, rel)
            finally:
                os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.rmdir(name, dir_fd=dir_fd)
    except (FileNotFoundError, NotADirectoryError):
        return


def _empty(fd: int, rel: str) -> None:
    with os.scandir(fd) as listing:
        entries = list(listing)
    for entry in entries:
        path = f"{rel}/{entry.name}"
        if entry.is_dir(follow_symlinks=False):
            child = _descend(fd, entry.name, path, False)
            try:
                _empty(child, path)
            finally:
                os.close(child)
            os.rmdir(entry.name, dir_fd=fd)
        elif entry.is_file(follow_symlinks=False):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.name, dir_fd=fd)
        else:
            raise ForeignEntryError(path, kind_of(entry.stat(follow_symlinks=False).st_mode))


def listing(root: str, rel: str, depth: int) -> dict[str, dict[str, Any]]:
    """Every entry below the folder ``rel``, down to ``depth`` levels, by path relative to
    it: ``{"type": "directory"}``, ``{"type": "file", "size", "mtime"}``, or for a foreign
    entry ``{"type": "other", "kind"}`` (never followed). Empty when ``rel`` is missing
    or a file; a foreign entry at ``rel`` or on the way raises
    :class:`ForeignEntryError`."""
    found: dict[str, dict[str, Any]] = {}

    def visit(fd: int, prefix: str, level: int) -> None:
        with os.scandir(fd) as entries:
            for entry in entries:
                path = prefix + entry.name
                if entry.is_dir(follow_symlinks=False):
                    found[path] = {"type": "directory"}
                    if level < depth:
                        try:
                            child = os.open(entry.name, _DIR_FLAGS, dir_fd=fd)
                        except OSError:  # gone or swapped since it was listed
                            continue
                        try:
                            visit(child, path + "/", level + 1)
                        finally:
                            os.close(child)
                    continue
                try:
                    info = entry.stat(follow_symlinks=False)
                except FileNotFoundError:  # removed since it was listed
                    continue
                if stat.S_ISREG(info.st_mode):
                    found[path] = {"type": "file", "size": info.st_size,
                                   "mtime": info.st_mtime}
                else:
                    found[path] = {"type": "other", "kind": kind_of(info.st_mode)}

    try:
        fd = open_folder(root, rel)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    try:
        visit(fd, "", 1)
    finally:
        os.close(fd)
    return found
