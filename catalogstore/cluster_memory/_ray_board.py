"""The change board of the ray backend: lets a process trust what it read before.

A lookup call to the memory actor costs about a millisecond; ``ray.get`` of a
100 MiB array it already knows the reference of costs about a tenth of that. So
a process keeps what it read (the reference, or an inline value) and asks the
actor again only when the key may have changed. To know that without a call,
the actor keeps a board: a file in shared memory on its own machine holding one
change counter per slot of a hash table of keys. Every put, delete and clear
increments the slots of its keys before it returns, so a process on that
machine that reads an unchanged counter holds the current value (a get that
starts after a put returned reads the new counter, whatever process put).

The header holds the actor's process id: a process trusts the board only while
that process is alive on this machine. Processes on other machines, or when the
actor died (and may restart elsewhere), ask the actor every time. Two keys that
share a slot only cost each other a needless lookup.
"""

from __future__ import annotations

import mmap
import os
import select
import struct
import threading
import zlib
from pathlib import Path

from catalogstore.cluster_memory._local_session import check_root, default_root

_MAGIC = b"CSBOARD1"
_HEADER = struct.Struct("<8sQ")  # magic, pid of the memory actor's process
_HEADER_BYTES = 64
SLOTS = 1 << 16
"""Counters of a board (512 KiB): keys spread over them by CRC-32."""
_SIZE = _HEADER_BYTES + 8 * SLOTS


def board_path(session_name: str) -> Path:
    """Where the board of a Ray session lives on this machine: a per-user 0700 folder
    beside the local backend's (tmpfs when there is one), checked the same way."""
    root = default_root().with_name(f"catalogstore-ray-{os.getuid()}")
    check_root(root, create=True)  # StorageError (an OSError) if unsafe: no board then
    return root / f"ray-{session_name}.board"


def remove_ended_boards(folder: Path) -> None:
    """Delete the boards whose memory actor no longer runs (their Ray sessions ended).

    A reader still mapping one keeps it, finds its owner gone and asks the actor.
    """
    for path in folder.glob("ray-*.board"):
        board = Board.open(path)
        if board is not None and board.owner() is None:
            path.unlink(missing_ok=True)


def slot(namespace: str, key: str) -> int:
    return zlib.crc32(f"{namespace}\0{key}".encode()) & (SLOTS - 1)


class Board:
    """A mapped board: :meth:`version` for readers, :meth:`bump` for the memory actor."""

    def __init__(self, path: Path, *, owner: bool) -> None:
        flags = os.O_RDWR | (os.O_CREAT if owner else 0)
        fd = os.open(path, flags, 0o600)
        try:
            if owner and os.fstat(fd).st_size < _SIZE:
                os.ftruncate(fd, _SIZE)
            self._map = mmap.mmap(fd, _SIZE, prot=mmap.PROT_READ | (
                mmap.PROT_WRITE if owner else 0))
        finally:
            os.close(fd)
        self._counters = memoryview(self._map)[_HEADER_BYTES:].cast("Q")
        self._watched: tuple[int, int | None] = (0, None)  # owner pid, its process descriptor
        self._watch_lock = threading.Lock()
        if owner:  # counters carry on from an earlier actor of this session: they only grow
            self._map[:_HEADER.size] = _HEADER.pack(_MAGIC, os.getpid())

    @classmethod
    def open(cls, path: Path) -> Board | None:
        """The board at ``path`` for reading, or ``None`` if this machine has none."""
        try:
            return cls(path, owner=False)
        except (OSError, ValueError):  # absent, or not grown to its size yet
            return None

    def owner(self) -> int | None:
        """The process id of the memory actor writing this board, if it runs (so the
        counters are current)."""
        magic, pid = _HEADER.unpack_from(self._map)
        if magic != _MAGIC or pid == 0:
            return None
        if pid != self._watched[0]:
            with self._watch_lock:
                if pid != self._watched[0]:
                    self._watch(pid)
        fd = self._watched[1]
        # A process descriptor turns readable when the process ends (zombie included).
        if fd is None or select.select([fd], [], [], 0)[0]:
            return None
        return pid  # type: ignore[no-any-return]

    def _watch(self, pid: int) -> None:
        old = self._watched[1]
        try:
            fd: int | None = os.pidfd_open(pid)
        except OSError:  # gone, or not ours to watch
            fd = None
        self._watched = (pid, fd)
        if old is not None:
            os.close(old)

    def version(self, slot_no: int) -> int:
        return self._counters[slot_no]

    def bump(self, slot_no: int) -> int:
        """Count a change of the keys of ``slot_no`` (the memory actor, under its lock)."""
        value = self._counters[slot_no] + 1
        self._counters[slot_no] = value
        return value
