"""Small object store values in the Flowdapt layout: written after their commit (issue 19).

A put of a small value commits its bytes to the catalog and returns
(:mod:`catalogstore.catalog.inline`); its file (``object``, ``object.npy``, ...) and
``.artifact.json`` in ``artifacts/{namespace}/{key}/`` are written afterwards from
the catalog, under the artifact's lock, by one background thread per process and
configuration. Its queue is bounded (:data:`QUEUE_LIMIT` artifacts; past that the
putter writes the oldest itself), coalesces repeated puts of one key (each waits
:data:`DELAY` first), and is drained at exit. What a crash leaves unwritten is lost
to nobody: ``get`` reads the catalog, ``catalogstore verify`` reports it
(``mirror-pending``), and a new process's recovery, ``verify --repair``, ``gc`` and
:func:`flush` write it.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from catalogstore.catalog import inline
from catalogstore.errors import CatalogStoreError
from catalogstore.names import METADATA_FILENAME, artifact_dir, validate_name
from catalogstore.record import metadata_to_json

if TYPE_CHECKING:
    from catalogstore.txn.workspace import Workspace

logger = logging.getLogger(__name__)

QUEUE_LIMIT = 1024
"""Artifacts waiting for their files, per process and configuration."""
DELAY = 0.05
"""Seconds an artifact waits in the queue: puts of one key meanwhile write it once."""


def write(workspace: Workspace, namespace: str, name: str) -> bool:
    """Write the files and ``.artifact.json`` of ``namespace/name`` that the catalog holds
    and the storage not yet, as the catalog has them now; whether there were any.

    The files are written aside first, without the artifact's lock (on SQLite the
    catalog's one writer lock: every put would wait for the disk); under it, the
    catalog is read again and, unchanged, the files are renamed into place and marked
    written. A commit in between makes it write what the catalog holds then, under
    the lock.
    """
    folder = artifact_dir(validate_name(namespace, "namespace"), validate_name(name))
    todo = inline.to_mirror(workspace.catalog, namespace, name)
    if todo is None:
        return False
    doing = f"write the files of {namespace}/{name}"
    with contextlib.ExitStack() as aside, workspace.storage_errors(doing), \
            workspace.files.folders_held():
        put_in_place = _aside(workspace, folder, todo, aside)
        with workspace.locked([(namespace, name)]) as conn:
            current = inline.to_mirror(workspace.catalog, namespace, name)
            if current is None:
                return False
            if current != todo:
                todo, put_in_place = current, _aside(workspace, folder, current, aside)
            for move in put_in_place:
                move()
            inline.mark_mirrored(workspace.catalog, conn, todo.artifact_id,
                                 [checksum for _, checksum, _ in todo.files])
    return True


def _aside(workspace: Workspace, folder: str, todo: inline.ToMirror,
           aside: contextlib.ExitStack) -> list[Callable[[], None]]:
    """``todo``'s files and ``.artifact.json`` written aside (removed when ``aside``
    closes unless put in place); the functions that put each in place."""
    files = [(f"{folder}/{validate_name(file_name, 'file')}", data)
             for file_name, _, data in todo.files]
    files.append((f"{folder}/{METADATA_FILENAME}", metadata_to_json(todo.metadata)))
    return [aside.enter_context(workspace.files.replacement(path, data))
            for path, data in files]


def pending(workspace: Workspace, namespace: str | None = None) -> list[tuple[str, str]]:
    """The artifacts (namespace, name) whose files wait to be written."""
    return inline.pending(workspace.catalog, namespace)


def write_pending(workspace: Workspace) -> int:
    """Write every pending artifact's files (recovery, ``verify --repair``, ``gc``);
    the number written."""
    return sum(write(workspace, ns, name) for ns, name in pending(workspace))


class _Flusher:
    """The background writer of one workspace's pending files."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.pid = os.getpid()
        self.queue: dict[tuple[str, str], float] = {}  # artifact -> when queued
        self.cond = threading.Condition()
        self.thread: threading.Thread | None = None
        self.writing = 0  # artifacts the thread has taken off the queue and is writing
        self.stopped = False

    def add(self, namespace: str, name: str) -> None:
        overflow = None
        with self.cond:
            if (namespace, name) in self.queue:
                return
            if self.stopped:  # closed meanwhile: the putter writes it
                overflow = (namespace, name)
            else:
                if len(self.queue) >= QUEUE_LIMIT:
                    overflow = next(iter(self.queue))
                    del self.queue[overflow]
                self.queue[(namespace, name)] = time.monotonic()
                if self.thread is None:
                    self.thread = threading.Thread(target=self._run, daemon=True,
                                                   name="catalogstore-mirror")
                    self.thread.start()
                self.cond.notify_all()
        if overflow is not None:  # back pressure: the putter writes one itself
            self._write(overflow)

    def _run(self) -> None:
        while True:
            with self.cond:
                while not self.queue:
                    if self.stopped:
                        return
                    self.cond.wait()
                key, queued = next(iter(self.queue.items()))
                wait = queued + DELAY - time.monotonic()
                if wait > 0:
                    self.cond.wait(wait)
                    continue
                del self.queue[key]
                self.writing += 1
            try:
                self._write(key)
            finally:
                with self.cond:
                    self.writing -= 1
                    self.cond.notify_all()

    def drain(self) -> None:
        """Write what is queued, and wait for what the thread is writing."""
        while True:
            with self.cond:
                if not self.queue:
                    while self.writing:
                        self.cond.wait()
                    return
                key = next(iter(self.queue))
                del self.queue[key]
            self._write(key)

    def stop(self) -> None:
        """Drain, then end the thread."""
        self.drain()
        with self.cond:
            self.stopped = True
            self.cond.notify_all()

    def _write(self, key: tuple[str, str]) -> None:
        try:
            write(self.workspace, *key)
        except CatalogStoreError as exc:  # stays pending: recovery or verify --repair
            logger.warning("object store: the files of %s/%s are not written yet (the "
                           "catalog holds the value): %s", key[0], key[1], exc)


_flushers: weakref.WeakKeyDictionary[Workspace, _Flusher] = weakref.WeakKeyDictionary()
_flushers_lock = threading.Lock()


def schedule(workspace: Workspace, namespace: str, name: str) -> None:
    """Have the background writer write ``namespace/name``'s pending files soon."""
    flusher = _flushers.get(workspace)
    if flusher is None or flusher.pid != os.getpid():
        with _flushers_lock:
            flusher = _flushers.get(workspace)
            if flusher is None or flusher.pid != os.getpid():  # a forked child's own
                flusher = _flushers[workspace] = _Flusher(workspace)
    flusher.add(namespace, name)


def flush(workspace: Workspace) -> int:
    """Write this process's queued files now, then every other pending one; the number
    of artifacts written by the second step."""
    flusher = _flushers.get(workspace)
    if flusher is not None and flusher.pid == os.getpid():
        flusher.drain()
    return write_pending(workspace)


def close(workspace: Workspace) -> None:
    """Write what this process queued for ``workspace`` and end its writer (the
    workspace is closing)."""
    with _flushers_lock:
        flusher = _flushers.pop(workspace, None)
    if flusher is not None and flusher.pid == os.getpid():
        flusher.stop()


def drain_queued() -> None:
    """Write the files this process has queued, for every workspace (``verify`` reports
    only what other processes left pending; at exit, nothing is left behind)."""
    for flusher in list(_flushers.values()):
        if flusher.pid == os.getpid():
            flusher.drain()


# Registered after the workspaces' closing (imported later), so it runs first.
atexit.register(drain_queued)
