"""The unit of work: a catalog and a file store bound together, and the write protocol
that keeps them agreeing. One implementation serves ``artifact.transaction()``, the
one-operation commits of :class:`~catalogstore.artifacts.Artifact` methods and
``catalogstore.transaction()`` (:mod:`catalogstore.txn.batch`): each collects
:class:`~catalogstore.txn.changeset.Changeset` objects and hands them to
:meth:`Workspace.commit`.

Write protocol (diskcache's, adapted to object storage):

1. New file content is written to the staging area (:mod:`catalogstore.txn.staging`)
   while the caller writes it (:meth:`Workspace.stage`, :meth:`Workspace.stage_bytes`).
2. Under the artifact's lock, one database transaction applies the rows and a
   journal entry (:mod:`catalogstore.txn.commit`, :mod:`catalogstore.txn.journal`);
   its commit is the commit point.
3. Still under the lock, staged files are moved into the artifact folder,
   removed files are deleted and ``.artifact.json`` is rewritten from the
   committed metadata (:mod:`catalogstore.txn.apply`); the journal entry is then
   marked applied.
4. A crash between 2 and 3 leaves the journal entry; :meth:`Workspace.recover`
   (run once per process on first use, and by ``catalogstore verify --repair``)
   rolls it forward. A crash before 2 leaves only staged files, which nothing
   references and ``gc`` removes.

Every change that touches storage has an entry: file writes and removals, a
creation (with or without files) and a deletion; a change of metadata alone gets
one only when its ``.artifact.json`` rewrite fails (issue 13). An entry stays
until its change is applied.

Faults (a service stops instead of the process): a storage failure in step 3
raises :class:`~catalogstore.errors.UnappliedCommitError` and leaves the journal
entry, which this process rolls forward before its next commit (or any new
process, ``verify --repair`` or ``gc``) once the storage is back. A catalog connection
lost during step 2 before the COMMIT was sent is retried on a new connection
(:data:`catalogstore.retry.CATALOG_TRANSACTION`); one lost *during* the COMMIT
raises :class:`~catalogstore.errors.CommitOutcomeUnknownError` and keeps the
staged files, which the journal needs if the commit went through. A failure
before the commit point removes the change's staged files (:meth:`Workspace.discard`,
:meth:`Workspace.hand_over`); what a killed process leaves there is ``gc``'s
(:func:`catalogstore.txn.staging.is_staged`, :meth:`Workspace.collectable`).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from catalogstore import retry
from catalogstore.catalog.catalog import Catalog
from catalogstore.errors import (
    CatalogError,
    CommitOutcomeUnknownError,
    ForeignEntryError,
    StorageError,
    UnappliedCommitError,
)
from catalogstore.names import artifact_dir
from catalogstore.record import metadata_to_json
from catalogstore.settings import Settings, get_settings
from catalogstore.storage.filestore import FileStore
from catalogstore.storage.staged import StagedFile
from catalogstore.txn import mirror, runs, staging
from catalogstore.txn.apply import apply, roll_forward
from catalogstore.txn.changeset import Changeset
from catalogstore.txn.commit import Committed, commit_rows
from catalogstore.txn.journal import JournalEntry, metadata_payload, read_journal

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from catalogstore.storage.filestore import StagedWriter

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
        self.files = FileStore(settings.storage_url, settings.storage_options,
                               scratch=staging.new_path)
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

    def locked(self, artifacts: Iterable[tuple[str, str]]
               ) -> contextlib.AbstractContextManager[Connection]:
        """Hold the write locks of ``artifacts`` (namespace, name pairs); writers hold
        them from their commit until the storage matches the catalog."""
        return self.catalog.locked(artifacts)

    def journal(self) -> list[JournalEntry]:
        """Storage changes committed but not yet marked applied, each checked
        (:func:`~catalogstore.txn.journal.read_entry`: a row edited by hand is refused)."""
        return read_journal(self.catalog)

    def collectable(self) -> Callable[[str], bool]:
        """For ``gc``: a test of whether a path of the staging area was staged by a
        transaction and no journal entry needs it (read the journal *after* listing
        the staging area, so that a writer committing in between is seen)."""
        referenced = {path for entry in self.journal() for path in entry.staged}

        def collectable(path: str) -> bool:
            # A file of a staged folder belongs to that folder's entry.
            return staging.is_staged(path) and path not in referenced and \
                path.rpartition("/")[0] not in referenced
        return collectable

    # -- staging -------------------------------------------------------------

    def stage(self, cs: Changeset | None, name: str, encoding: str | None,
              take: Callable[[StagedFile], Any], label: str) -> StagedWriter:
        """A stream into the staging area for new content of the file ``name``; once
        closed, ``take`` records the staged file (see :meth:`hand_over`). ``cs``: the
        open transaction's changeset of the artifact, if any."""
        with self.storage_errors(f"write {label}"):
            return self.files.stage(encoding, lambda staged: self.hand_over(staged, take),
                                    label, self._staging_path(cs, name, whole=False))

    def stage_bytes(self, cs: Changeset | None, name: str, data: Any, encoding: str | None,
                    take: Callable[[StagedFile], Any], label: str) -> None:
        """``data`` staged whole as new content of the file ``name`` (retried after a
        transient failure), then recorded by ``take`` (see :meth:`hand_over`)."""
        with self.storage_errors(f"write {label}"):
            staged = self.files.stage_bytes(data, encoding, label,
                                            self._staging_path(cs, name, whole=True))
        self.hand_over(staged, take)

    def _staging_path(self, cs: Changeset | None, name: str, *, whole: bool) -> str:
        """Where to stage new content of ``name``: a new name of the staging area, except
        for an artifact the open transaction creates on local disk: in its staged
        folder, as ``name`` itself when the content comes whole and nothing is staged
        under that name yet (a stream, or a second write, takes a new name there and
        is renamed when the folder is placed)."""
        if cs is None or not cs.create or not self.files.is_local:
            return staging.new_path()
        if cs.staged_folder is None:
            cs.staged_folder = staging.new_folder(self.files)
        if whole and name not in cs.writes:
            return f"{cs.staged_folder}/{name}"
        return staging.new_path(cs.staged_folder)

    def hand_over(self, staged: StagedFile, take: Callable[[StagedFile], Any]) -> None:
        """``take(staged)``, which records the staged file in a change (and may commit it);
        if it raises, the file is removed, unless the commit point was or may have
        been reached: then the journal may name it, and rolling forward needs it."""
        try:
            take(staged)
        except BaseException as exc:
            if not isinstance(exc, (UnappliedCommitError, CommitOutcomeUnknownError)):
                self.files.discard_quietly(staged.path)
            raise

    # -- commit ----------------------------------------------------------------

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
        lineage = runs.recording(self)

        def attempt() -> list[Committed]:
            nonlocal committed
            with self.locked((cs.namespace, cs.name) for cs in changesets) as conn:
                committed = commit_rows(self.catalog, conn, changesets, lineage=lineage)
                if lineage is not None:
                    lineage.done()
                try:
                    self._map(self._apply_named, committed)
                except Exception as exc:
                    self._unrecovered = True
                    self._journal_rewrites(conn, committed)
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

    def _journal_rewrites(self, conn: Connection, committed: list[Committed]) -> None:
        """After a storage failure, a journal row for each change of metadata alone (those
        have none: see :func:`~catalogstore.txn.journal.needs_entry`), so that a new
        process, ``verify --repair`` and ``gc`` rewrite its ``.artifact.json`` too (issue
        13); the artifacts' locks are still held. If the catalog fails as well, this
        process rewrites them before its next commit (``verify --repair`` finds the
        rest as metadata that differs)."""
        rewrites = [(c.changeset.namespace, c.changeset.name) for c in committed
                    if c.journal_id is None and c.metadata is not None]
        if not rewrites:
            return
        try:
            with self.catalog.writing(conn) as rows:
                rows.add_journal([(ns, name, metadata_payload()) for ns, name in rewrites])
        except CatalogError:
            logger.warning("catalog %s: the rewrite of .artifact.json of %d artifact(s) could "
                           "not be journalled; this process retries it", self.catalog,
                           len(rewrites), exc_info=True)
            self._stale_metadata.update(rewrites)

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
            apply(self.files, done)

    def recover(self, blocked: list[ForeignEntryError] | None = None) -> int:
        """Roll forward storage changes that were committed but not applied.

        Safe at any time: each entry is handled under its artifact's lock, and
        every step is checked against the catalog as it is now, so an entry that
        was already applied changes nothing. An entry that breaks the naming rules
        or the journal's shape (a row edited by hand) is refused: logged, left in
        the journal, and nothing of it applied; ``verify`` reports it. An entry that
        a foreign entry of the storage blocks (a link where its folder should be) is
        left in the journal too, and the others are rolled forward: it is appended
        to ``blocked`` when given, else logged. The files of small object store values
        that a process did not write (:mod:`catalogstore.txn.mirror`) are written too.
        Returns the number of entries handled.
        """
        handled = 0
        for entry in self.journal():
            if entry.problem is not None:
                logger.warning("catalog %s: %s; it was left alone (remove the row once "
                               "you have looked at it)", self.catalog, entry.problem)
                continue
            try:
                with self.locked([(entry.namespace, entry.name)]), \
                        self.storage_errors("roll a committed change forward"):
                    roll_forward(self.files, self.catalog, entry)
            except ForeignEntryError as exc:
                if blocked is None:
                    logger.warning("journal entry %s of %s/%s is left in the journal: %s",
                                   entry.id, entry.namespace, entry.name, exc)
                else:
                    blocked.append(exc)
                continue
            self.catalog.forget_journal([entry.id])
            handled += 1
        # Small object store values whose files a process did not write (issue 19).
        mirror.write_pending(self)
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

    def _rewrite_metadata(self, namespace: str, name: str) -> None:
        """Write ``.artifact.json`` from the catalog's metadata, as it is now."""
        with self.locked([(namespace, name)]):
            record = self.catalog.get_artifact(namespace, name)
            if record is not None:
                with self.storage_errors(f"rewrite {namespace}/{name}/.artifact.json"):
                    self.files.write_metadata(artifact_dir(namespace, name),
                                              metadata_to_json(record.metadata))

    def close(self) -> None:
        """Write the files of small values queued here, then close the connections."""
        mirror.close(self)
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
