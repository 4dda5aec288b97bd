"""Sessions of the local cluster memory: where they live, who owns them, which are stale.

A session is a folder ``{root}/{name}/`` where ``root`` is the per-user folder
``/dev/shm/catalogstore-{uid}`` (tmpfs: the files are memory), mode 0o700 and
checked before use: another user's folder, a link, or one that group or others
can enter is refused. A session folder holds::

    .owner          JSON: the process whose end ends the session (or null)
    .free/          released files kept for reuse: "{size}-{time_ns}-{token}"
    {namespace}/    one file per key, a ".lock" for writers, ".tmp-*" being written,
                    ".pending-*" a replaced file on its way to the pool

A writer killed half way (SIGKILL, OOM killer) leaves a ".tmp-*" or ".pending-*"
file behind that no key names. :func:`sweep_session` frees them, in live sessions
too: a writer holds an exclusive ``flock`` on its ".tmp-*" file for as long as it
writes it, and the namespace's ".lock" while a ".pending-*" name exists, so one
found without its lock belongs to a writer that is gone.

Names that start with a dot cannot be keys or namespaces (see
:mod:`catalogstore.names`), so they never collide with user names.

The name of the session comes from ``CATALOGSTORE_MEMORY_SESSION`` when set,
otherwise from the process group, ``pg{pgid}-{start time of the group leader}``:
the workers that a driver starts (multiprocessing, ``ProcessPoolExecutor`` with
spawn or fork, subprocesses) stay in its process group, so they find the same
memory without arguments, while another shell job or another user does not.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import functools
import json
import os
import re
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalogstore.errors import ConfigurationError, StorageError

SESSION_ENV = "CATALOGSTORE_MEMORY_SESSION"
"""Names the session of this process and of the processes it starts."""
OWNER_FILE = ".owner"
FREE_DIR = ".free"
LOCK_FILE = ".lock"
TMP_PREFIX = ".tmp-"
PENDING_PREFIX = ".pending-"
_NEW_PREFIX = ".new-"
_DEL_PREFIX = ".del-"
_LEFTOVER_AGE = 60.0
"""Seconds after which a half-created session folder is taken as a crash's leftover."""
_SESSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_PG_SESSION = re.compile(r"pg(\d+)-(\d+)")

_checked_roots: set[str] = set()
_resolved: tuple[tuple[str | None, int], str] | None = None
_exit_hooks: set[tuple[int, str]] = set()
_lock = threading.Lock()


@functools.cache  # asked on every get_cluster_memory(); the answer does not change
def default_root() -> Path:
    """The per-user folder of all sessions: on ``/dev/shm`` (tmpfs), else the temp folder."""
    shm = Path("/dev/shm")
    parent = shm if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) \
        else Path(tempfile.gettempdir())
    return parent / f"catalogstore-{os.getuid()}"


def check_root(root: Path, *, create: bool) -> bool:
    """Whether ``root`` exists and is safe to use (created when ``create``).

    Raises
    ------
    StorageError
        when it is not a real folder, another user owns it, or group or others
        have access: someone else could read or replace the objects.
    """
    key = str(root)
    if key in _checked_roots:
        return True
    if create:
        with contextlib.suppress(FileExistsError):
            os.mkdir(root, 0o700)
            os.chmod(root, 0o700)  # the umask could have taken bits away, never added
    try:
        st = os.lstat(root)
    except FileNotFoundError:
        return False
    fix = f"remove it (rm -r {root}) if it is yours, or set another place"
    if not stat.S_ISDIR(st.st_mode):
        raise StorageError(f"refusing to use the cluster memory folder {root}: it is not a "
                           f"folder (a link or a file); {fix}")
    if st.st_uid != os.getuid():
        raise StorageError(f"refusing to use the cluster memory folder {root}: it belongs to "
                           f"uid {st.st_uid}, not to you (uid {os.getuid()}), who could read "
                           f"or replace your objects; {fix}")
    if st.st_mode & 0o077:
        raise StorageError(f"refusing to use the cluster memory folder {root}: its mode "
                           f"{stat.S_IMODE(st.st_mode):o} lets group or others in; "
                           f"run chmod 700 {root} if it is yours")
    _checked_roots.add(key)
    return True


def check_session_name(name: str, what: str = SESSION_ENV) -> str:
    if not isinstance(name, str) or not _SESSION_NAME.fullmatch(name):
        raise ConfigurationError(
            f"{what}: {name!r} is not a session name (ASCII letters, digits, '.', '_' and "
            "'-', starting with a letter or digit, at most 128 characters)")
    return name


# -- processes ----------------------------------------------------------------------


def start_time(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot), or ``None`` if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # Field 22 of the line; the command name (field 2) may hold spaces and parentheses.
    return data[data.rindex(b")") + 2:].split()[19].decode()


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def owner_record(pid: int, start: str | None = None) -> dict[str, Any]:
    """The ``.owner`` content naming process ``pid``."""
    return {"pid": pid, "start": start if start is not None else start_time(pid),
            "pidns": _pid_namespace()}


def owner_alive(owner: dict[str, Any] | None) -> bool:
    """Whether the session of ``owner`` may still be in use.

    Sessions without an owning process (named by the user) and those of another
    pid namespace (a container sharing the tmpfs) count as alive: nobody here
    can tell that they ended.
    """
    if not owner or owner.get("pid") is None:
        return True
    if owner.get("pidns") and owner["pidns"] != _pid_namespace():
        return True
    pid = int(owner["pid"])
    current = start_time(pid)
    if current is None:
        if os.path.exists("/proc/self/stat"):
            return False
        try:  # no /proc: existence is all one can know
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True
    # Same pid and another start time: the pid was reused, the owner is gone.
    return owner.get("start") in (None, current)


def current_session() -> tuple[str, bool]:
    """The session of this process and whether this process owns it (its group leader)."""
    global _resolved
    named = os.environ.get(SESSION_ENV) or None
    pgid = os.getpgid(0)
    resolved = _resolved
    if resolved is None or resolved[0] != (named, pgid):
        name = check_session_name(named) if named else f"pg{pgid}-{start_time(pgid) or 0}"
        resolved = _resolved = ((named, pgid), name)
    return resolved[1], named is None and pgid == os.getpid()


def implied_owner(name: str) -> dict[str, Any] | None:
    """The owner a session of this name has when a process creates it on first use."""
    match = _PG_SESSION.fullmatch(name)
    if match is None:
        return None  # named by the user: lives until cleared
    if match[2] == "0":
        # The group leader was not visible (another pid namespace, or gone already):
        # nobody can tell when this session ends, so it lives until cleared.
        return None
    return owner_record(int(match[1]), match[2])


# -- session folders -------------------------------------------------------------------


def ensure_session(root: Path, name: str, owner: dict[str, Any] | None = None) -> Path:
    """The folder of session ``name``, created (with its owner) when missing.

    The folder appears complete or not at all (made under a temporary name and
    renamed), and creating a session also frees the stale sessions of this user.
    """
    path = root / name
    if path.is_dir():
        return path
    check_root(root, create=True)
    tmp = root / f"{_NEW_PREFIX}{os.getpid()}-{os.urandom(4).hex()}"
    os.mkdir(tmp, 0o700)
    try:
        os.mkdir(tmp / FREE_DIR, 0o700)
        _write_private(tmp / OWNER_FILE, json.dumps(
            owner if owner is not None else implied_owner(name)).encode())
        os.rename(tmp, path)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        # A non-empty folder of that name: another process created the session first.
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
        return path
    with contextlib.suppress(OSError):
        clear_stale(root, keep=name)
    return path


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def remove_session(root: Path, name: str) -> int:
    """Remove session ``name`` and everything in it; returns the bytes it held.

    It disappears at once (renamed, then deleted): a concurrent ``get`` finds no
    object rather than half a session. Arrays mapped by running processes stay
    valid; their memory goes when they let go.
    """
    path = root / name
    held = folder_bytes(path)
    doomed = root / f"{_DEL_PREFIX}{os.urandom(6).hex()}"
    try:
        os.rename(path, doomed)
    except FileNotFoundError:
        return 0
    shutil.rmtree(doomed, ignore_errors=True)
    return held


def register_exit_removal(root: Path, name: str) -> None:
    """Remove the session when this process exits (once per process and session)."""
    key = (os.getpid(), str(root / name))
    with _lock:
        if key in _exit_hooks:
            return
        _exit_hooks.add(key)
    atexit.register(_remove_at_exit, os.getpid(), root, name)


def _remove_at_exit(pid: int, root: Path, name: str) -> None:
    # A child made by os.fork() inherits the hook: only the owner acts on it.
    if os.getpid() == pid:
        remove_session(root, name)


@contextlib.contextmanager
def new_session(name: str | None = None, *, root: Path | None = None) -> Iterator[str]:
    """A session owned by this process, for the block and the processes it starts.

    Sets ``CATALOGSTORE_MEMORY_SESSION`` (processes started in the block inherit it)
    and removes the session with all its objects when the block ends; if this
    process is killed instead, the session is stale and ``catalogstore memory
    clear --stale`` frees it.

    Examples
    --------
    >>> from catalogstore.cluster_memory._local import LocalMemory   # doctest: +SKIP
    >>> with LocalMemory.new_session() as session:                   # doctest: +SKIP
    ...     run_workflow()  # every worker process started here shares the memory
    """
    name = check_session_name(name, "session") if name else \
        f"s{os.getpid()}-{os.urandom(4).hex()}"
    root = root or default_root()
    if (root / name).exists():
        raise ConfigurationError(f"a cluster memory session named {name!r} exists already "
                                 f"in {root}")
    ensure_session(root, name, owner_record(os.getpid()))
    previous = os.environ.get(SESSION_ENV)
    os.environ[SESSION_ENV] = name
    try:
        yield name
    finally:
        if previous is None:
            os.environ.pop(SESSION_ENV, None)
        else:
            os.environ[SESSION_ENV] = previous
        remove_session(root, name)


# -- what killed writers leave ---------------------------------------------------------------


@contextlib.contextmanager
def namespace_lock(folder: str) -> Iterator[None]:
    """The writers' lock of a namespace folder (held for renames, not for writing)."""
    fd = os.open(f"{folder}/{LOCK_FILE}", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _unlink_unlocked(path: str) -> int:
    """Unlink the temporary file ``path`` if no writer holds its lock; the bytes freed."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return 0
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0  # a live writer's
        st = os.fstat(fd)
        # Unlinked only if still the file we locked (its writer checks the link count
        # after locking, so a file swept before its writer locked it is not used).
        if (os.stat(path).st_ino, st.st_nlink) != (st.st_ino, 1):
            return 0
        os.unlink(path)
        return st.st_size
    except FileNotFoundError:
        return 0
    finally:
        os.close(fd)


def sweep_namespace(folder: str) -> int:
    """Free what writers killed half way left in a namespace folder; returns the bytes freed.

    Temporary files that no writer locks are unlinked; pending files found under the
    namespace lock are unlinked too (their writer held that lock from their creation to
    their move into the pool). Stored objects are never touched: a pending file that
    is still linked at its key loses only its second name.
    """
    try:
        names = [n for n in os.listdir(folder) if n.startswith((TMP_PREFIX, PENDING_PREFIX))]
    except (FileNotFoundError, NotADirectoryError):
        return 0
    freed = 0
    for name in names:
        if name.startswith(TMP_PREFIX):
            freed += _unlink_unlocked(f"{folder}/{name}")
    pending = [n for n in names if n.startswith(PENDING_PREFIX)]
    if pending:
        with namespace_lock(folder):
            for name in pending:
                with contextlib.suppress(FileNotFoundError):  # moved by its live writer
                    st = os.lstat(f"{folder}/{name}")
                    os.unlink(f"{folder}/{name}")
                    freed += st.st_size if st.st_nlink == 1 else 0
    return freed


def sweep_session(path: Path) -> int:
    """:func:`sweep_namespace` over every namespace of a session; returns the bytes freed."""
    try:
        names = [n for n in os.listdir(path) if not n.startswith(".")]
    except FileNotFoundError:
        return 0
    return sum(sweep_namespace(str(path / name)) for name in names if (path / name).is_dir())


# -- what sessions hold -------------------------------------------------------------------


def folder_bytes(path: Path) -> int:
    """Bytes of the files under ``path`` (0 if it is gone)."""
    total = 0
    for folder, _, files in os.walk(path):
        for file in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, file)).st_size
    return total


def scan_sizes(folder: str) -> dict[str, int]:
    """``name -> size`` of the files of ``folder`` whose name starts with no dot."""
    sizes = {}
    try:
        entries = os.scandir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    with entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            with contextlib.suppress(FileNotFoundError):  # removed while we look
                sizes[entry.name] = entry.stat(follow_symlinks=False).st_size
    return sizes


@dataclass
class SessionInfo:
    """What one session of the local cluster memory holds."""

    name: str
    path: Path
    owner: dict[str, Any] | None
    alive: bool
    objects: dict[str, dict[str, int]] = field(default_factory=dict)
    """``namespace -> {key: size}``."""
    free_bytes: int = 0
    free_files: int = 0

    @property
    def owner_pid(self) -> int | None:
        return self.owner.get("pid") if self.owner else None

    @property
    def total_bytes(self) -> int:
        return self.free_bytes + sum(sum(keys.values()) for keys in self.objects.values())


def read_owner(path: Path) -> dict[str, Any] | None:
    try:
        owner = json.loads((path / OWNER_FILE).read_bytes())
    except FileNotFoundError:
        return None
    except ValueError:
        return {"pid": None, "unreadable": True}
    return owner if isinstance(owner, dict) else None


def free_pool(session_dir: Path) -> tuple[int, int]:
    """Bytes and files of a session's pool of released files."""
    total = count = 0
    try:
        entries = os.scandir(session_dir / FREE_DIR)
    except FileNotFoundError:
        return 0, 0
    with entries:
        for entry in entries:
            with contextlib.suppress(FileNotFoundError):
                total += entry.stat(follow_symlinks=False).st_size
                count += 1
    return total, count


def session_info(root: Path, name: str, *, contents: bool = True) -> SessionInfo:
    """Owner and liveness of a session, and with ``contents`` what it holds."""
    path = root / name
    owner = read_owner(path)
    info = SessionInfo(name, path, owner, owner_alive(owner))
    if contents:
        with contextlib.suppress(FileNotFoundError):
            for entry in sorted(os.listdir(path)):
                if not entry.startswith(".") and (path / entry).is_dir():
                    info.objects[entry] = dict(sorted(scan_sizes(str(path / entry)).items()))
        info.free_bytes, info.free_files = free_pool(path)
    return info


def list_sessions(root: Path | None = None, *, contents: bool = True) -> list[SessionInfo]:
    """Every session in ``root`` (default: this user's folder), sorted by name."""
    root = root or default_root()
    if not check_root(root, create=False):
        return []
    return [session_info(root, name, contents=contents) for name in sorted(os.listdir(root))
            if not name.startswith(".") and (root / name).is_dir()]


def stale_sessions(root: Path | None = None) -> list[SessionInfo]:
    """The sessions whose owning process is gone (killed, or ended without cleaning up).

    Names and owners only: what they hold is not listed.
    """
    return [info for info in list_sessions(root, contents=False) if not info.alive]


def clear_stale(root: Path | None = None, *, keep: str = "") -> list[tuple[SessionInfo, int]]:
    """Remove the stale sessions (and crash leftovers); returns each session freed (or,
    alive, swept) with the bytes given back.

    The crash leftovers are half-created session folders and, in the sessions still
    alive, the files of writers killed half way (:func:`sweep_session`); a live
    session is in the result when its sweep freed something.
    """
    root = root or default_root()
    if not check_root(root, create=False):
        return []
    freed = []
    for info in list_sessions(root, contents=False):
        if info.alive:
            with contextlib.suppress(OSError):  # e.g. removed meanwhile by its owner
                swept = sweep_session(info.path)
                if swept:
                    freed.append((info, swept))
        elif info.name != keep:
            freed.append((info, remove_session(root, info.name)))
    now = time.time()
    for name in os.listdir(root):
        leftover = root / name
        with contextlib.suppress(OSError):
            if name.startswith(_DEL_PREFIX) or (
                    name.startswith(_NEW_PREFIX)
                    and now - os.lstat(leftover).st_mtime > _LEFTOVER_AGE):
                shutil.rmtree(leftover, ignore_errors=True)
    return freed
