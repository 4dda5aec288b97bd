"""A catalog and a file store bound together, and the write protocol that keeps them agreeing.

Write protocol (diskcache's, adapted to object storage):

1. New file content is written to the staging area while the caller writes it.
2. Under the artifact's lock, one database transaction applies the rows and a
   journal entry; its commit is the commit point.
3. Still under the lock, staged files are moved into the artifact folder,
   removed files are deleted and ``.artifact.json`` is rewritten from the
   committed metadata; the journal entry is then marked applied.
4. A crash between 2 and 3 leaves the journal entry; :meth:`Workspace.recover`
   (run once per process on first use, and by ``catalogstore verify --repair``)
   rolls it forward. A crash before 2 leaves only staged files, which nothing
   references and ``gc`` removes.

Faults (a service stops instead of the process): a storage failure in step 3
raises :class:`~catalogstore.errors.UnappliedCommitError` and leaves the journal
entry, which this process rolls forward before its next commit (or any new
process, or ``verify --repair``) once the storage is back. A catalog connection
lost during step 2 before the COMMIT was sent is retried on a new connection
(:data:`catalogstore.retry.CATALOG_TRANSACTION`); one lost *during* the COMMIT
raises :class:`~catalogstore.errors.CommitOutcomeUnknownError` and keeps the
staged files, which the journal needs if the commit went through.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from catalogstore import retry
from catalogstore.catalog.catalog import Catalog, Committed
from catalogstore.errors import (
    CatalogError,
    CommitOutcomeUnknownError,
    StorageError,
    UnappliedCommitError,
)
from catalogstore.names import METADATA_FILENAME, artifact_dir
from catalogstore.record import metadata_to_json
from catalogstore.settings import Settings, get_settings
from catalogstore.storage.filestore import FileStore
from catalogstore.txn.changeset import Changeset
from catalogstore.txn.journal import JournalEntry

T = TypeVar("T")
logger = logging.getLogger(__name__)
# Object stores answer each request in milliseconds: apply a batch's storage
# changes with this many requests in flight.
_REMOTE_CONCURRENCY = 16


class Workspace:
    """The catalog and the file store of one configuration.

    ``recover=False`` leaves the journal as it is, for ``verify`` and ``reindex``
    (which report what a crash left, and never write to storage on their own).
    """

    def __init__(self, settings: Settings, *, recover: bool = True) -> None:
        self.settings = settings
        self.catalog = Catalog(settings.catalog_url)
        self.files = FileStore(settings.storage_url, settings.storage_options)
        self._unrecovered = False
        """Whether the journal may hold entries that this process failed to apply."""
        self._stale_metadata: set[tuple[str, str]] = set()
        """Artifacts whose ``.artifact.json`` rewrite failed after a commit without a
        journal entry (a metadata-only change): rewritten from the catalog later."""
        if recover:
            self._recover_or_defer()

    def __repr__(self) -> str:
        return f"Workspace({self.catalog!r}, {self.files!r})"

    @contextlib.contextmanager
    def storage_errors(self, doing: str) -> Iterator[None]:
        """Translate filesystem failures into :class:`StorageError` naming the storage."""
        with self.files.errors(doing):
            yield

    def commit(self, changesets: Sequence[Changeset]) -> list[Committed]:
        """Commit ``changesets`` to the catalog, then make storage match (see module doc).

        On any failure before the commit point, the staged files are removed and
        nothing is visible. A storage failure after it raises
        :class:`UnappliedCommitError` (the change is committed and rolled forward
        later); a connection lost while committing raises
        :class:`CommitOutcomeUnknownError` (see the module doc).
        """
        changesets = [cs for cs in changesets if not cs.is_empty]
        if not changesets:
            return []
        committed: list[Committed] | None = None  # set at the commit point

        def attempt() -> list[Committed]:
            nonlocal committed
            with self.catalog.locked(changesets) as conn:
                committed = self.catalog.commit(conn, changesets)
                try:
                    self._map(self._apply_named, committed)
                except Exception as exc:
                    self._unrecovered = True
                    self._stale_metadata.update(
                        (c.changeset.namespace, c.changeset.name) for c in committed
                        if c.journal_id is None and c.metadata is not None)
                    raise self._unapplied(exc) from exc
                self.catalog.mark_applied(c.journal_id for c in committed if c.journal_id)
            return committed

        try:
            if self._unrecovered or self._stale_metadata:
                self._recover_or_defer()
            return retry.call(
                attempt, policy=retry.CATALOG_TRANSACTION,
                transient=lambda exc: committed is None and _lost_before_commit(exc),
                what=lambda: f"catalog {self.catalog.where}: commit")
        except BaseException as exc:
            if isinstance(exc, CommitOutcomeUnknownError):
                self._unrecovered = True
            elif committed is None:
                self.discard(changesets)
            raise

    def _unapplied(self, exc: Exception) -> Exception:
        """The error of a storage failure after the commit point (other errors as they are:
        :meth:`_apply_named` has made every storage failure a :class:`StorageError`)."""
        if not isinstance(exc, StorageError):
            return exc
        return UnappliedCommitError(
            f"{exc}; the change is committed and is rolled forward once the storage is "
            "reachable again (by this process's next commit, a new process, or "
            "`catalogstore verify --repair`)")

    def discard(self, changesets: Sequence[Changeset]) -> None:
        """Remove the staged files of changesets that will not be committed.

        Once the storage fails, the rest are left to ``gc`` too: trying each against
        an unreachable storage would only delay the error being reported.
        """
        for cs in changesets:
            for staged in cs.staged_files():
                if not self.files.discard_quietly(staged.path):
                    return
            if cs.staged_folder is not None and \
                    not self.files.discard_quietly(cs.staged_folder, folder=True):
                return

    def _map(self, fn: Callable[[T], Any], items: Sequence[T]) -> None:
        if len(items) < 8:
            for item in items:
                fn(item)
            return
        workers = 4 if self.files.is_local else _REMOTE_CONCURRENCY
        with ThreadPoolExecutor(workers, thread_name_prefix="catalogstore-apply") as pool:
            for _ in pool.map(fn, items):
                pass

    def _apply_named(self, done: Committed) -> None:
        """:meth:`_apply`, whose storage failures name the artifact."""
        cs = done.changeset
        with self.storage_errors(f"apply the committed change of {cs.namespace}/{cs.name}"):
            self._apply(done)

    def _apply(self, done: Committed) -> None:
        cs = done.changeset
        folder = artifact_dir(cs.namespace, cs.name)
        if cs.delete:  # never one that creates: no staged folder
            self.files.remove_tree(folder)
            return
        if cs.staged_folder is not None:
            assert done.metadata is not None  # a new artifact's metadata, maybe empty
            self._place_staged_folder(cs.staged_folder, folder, [
                (staged.path, name) for name, staged in cs.writes.items()], done.metadata)
            return
        if cs.create:
            self.files.makedirs(folder)
        for name, staged in cs.writes.items():
            self.files.move_over(staged.path, f"{folder}/{name}")
        for name in cs.removes:
            self.files.remove_quietly(f"{folder}/{name}")
        # Written at creation too: an object store needs it for the folder to exist,
        # and Flowdapt would otherwise create it when it first reads the artifact.
        if done.metadata is not None:
            self.files.write_metadata(folder, metadata_to_json(done.metadata))

    def _place_staged_folder(self, staged: str, folder: str, moves: list[tuple[str, str]],
                             metadata: dict[str, str]) -> None:
        """Make the staged folder of a new artifact its folder: each staged file
        (``moves``: staged path, file name) under its name, ``.artifact.json`` beside
        them, then one rename. Where the artifact's folder exists already (a crash
        left it, or someone wrote it behind the catalog's back), the files are moved
        into it one by one instead, as for an existing artifact."""
        for path, name in moves:
            if path != f"{staged}/{name}":
                self.files.move(path, f"{staged}/{name}")
        content = metadata_to_json(metadata)
        self.files.write_new_file(content, f"{staged}/{METADATA_FILENAME}")
        if self.files.place_folder(staged, folder):
            return
        for _, name in moves:
            self.files.move(f"{staged}/{name}", f"{folder}/{name}")
        self.files.write_metadata(folder, content)
        self.files.remove_tree(staged)

    def recover(self) -> int:
        """Roll forward storage changes that were committed but not applied.

        Safe at any time: each entry is handled under its artifact's lock, and
        every step is checked against the catalog as it is now, so an entry that
        was already applied changes nothing. An entry that breaks the naming rules
        or the journal's shape (a row edited by hand) is refused: logged, left in
        the journal, and nothing of it applied; ``verify`` reports it. Returns the
        number of entries handled.
        """
        handled = 0
        for entry in self.catalog.journal():
            if entry.problem is not None:
                logger.warning("catalog %s: %s; it was left alone (remove the row once "
                               "you have looked at it)", self.catalog, entry.problem)
                continue
            probe = Changeset(entry.namespace, entry.name)
            with self.catalog.locked([probe]):
                self._roll_forward(entry)
            self.catalog.forget_journal([entry.id])
            handled += 1
        self._unrecovered = False
        return handled

    def _recover_or_defer(self) -> None:
        """:meth:`recover`; while the storage fails, warn and leave it for later.

        Reads of the catalog need no storage, so an unreachable storage must not
        stop a process from starting; the next commit tries again.
        """
        try:
            self.recover()
            while self._stale_metadata:
                namespace, name = next(iter(self._stale_metadata))
                self._rewrite_metadata(namespace, name)
                self._stale_metadata.discard((namespace, name))
        except StorageError as exc:
            self._unrecovered = True
            logger.warning("%s; committed changes wait in the journal until the storage is "
                           "reachable again", exc)

    def _roll_forward(self, entry: JournalEntry) -> None:
        folder = artifact_dir(entry.namespace, entry.name)
        record = self.catalog.get_artifact(entry.namespace, entry.name)
        with self.storage_errors("roll a committed change forward"):
            if record is None:
                if entry.delete:
                    self.files.remove_tree(folder)
                for staged, _, _ in entry.moves:
                    self.files.remove_quietly(staged)
                if entry.folder is not None:
                    self.files.remove_tree(entry.folder)
                return
            files = {f.name: f for f in self.catalog.list_files(record.id)}
            moves = []
            for staged, file_name, checksum in entry.moves:
                current = files.get(file_name)
                if current is not None and current.checksum == checksum \
                        and self.files.exists(staged):
                    moves.append((staged, file_name))
                else:
                    self.files.remove_quietly(staged)
            if entry.folder is not None and self.files.exists(entry.folder):
                # The crash came before the staged folder was placed.
                self.files.remove_quietly(f"{entry.folder}/{METADATA_FILENAME}")
                self._place_staged_folder(entry.folder, folder, moves, record.metadata)
                return
            for staged, file_name in moves:
                self.files.move(staged, f"{folder}/{file_name}")
            for file_name in entry.removes:
                if file_name not in files:
                    self.files.remove_quietly(f"{folder}/{file_name}")
            self.files.write_metadata(folder, metadata_to_json(record.metadata))

    def _rewrite_metadata(self, namespace: str, name: str) -> None:
        """Write ``.artifact.json`` from the catalog's metadata, as it is now."""
        with self.catalog.locked([Changeset(namespace, name)]):
            record = self.catalog.get_artifact(namespace, name)
            if record is not None:
                with self.storage_errors(f"rewrite {namespace}/{name}/.artifact.json"):
                    self.files.write_metadata(artifact_dir(namespace, name),
                                              metadata_to_json(record.metadata))

    def close(self) -> None:
        self.catalog.dispose()


def _lost_before_commit(exc: Exception) -> bool:
    """Whether ``exc`` is a catalog connection lost before the COMMIT was sent, so that
    the transaction surely did not commit and can run again from the start."""
    return (isinstance(exc, CatalogError) and not isinstance(exc, CommitOutcomeUnknownError)
            and bool(getattr(exc.__cause__, "connection_invalidated", False)))


_workspaces: dict[tuple[int, bytes], Workspace] = {}
_workspaces_lock = threading.Lock()


def get_workspace(settings: Settings | None = None) -> Workspace:
    """The workspace of ``settings`` (default: the settings in force), one per process."""
    settings = settings or get_settings()
    key = (os.getpid(), settings.identity)
    workspace = _workspaces.get(key)
    if workspace is None:
        with _workspaces_lock:
            workspace = _workspaces.get(key)
            if workspace is None:
                workspace = _workspaces[key] = Workspace(settings)
    return workspace


def close_workspaces() -> None:
    """Close every workspace of this process (their database connections)."""
    with _workspaces_lock:
        for key, workspace in _workspaces.items():
            if key[0] == os.getpid():  # a forked child must not close its parent's
                workspace.close()
        _workspaces.clear()


atexit.register(close_workspaces)
