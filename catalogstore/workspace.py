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
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from catalogstore.catalog.catalog import Catalog, Committed
from catalogstore.changes import Changeset
from catalogstore.errors import CatalogStoreError, StorageError
from catalogstore.names import artifact_dir
from catalogstore.record import metadata_to_json
from catalogstore.settings import Settings, get_settings, redact_url
from catalogstore.storage import FileStore

T = TypeVar("T")
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
        if recover:
            self.recover()

    def __repr__(self) -> str:
        return f"Workspace({self.catalog!r}, {self.files!r})"

    @contextlib.contextmanager
    def storage_errors(self, doing: str) -> Iterator[None]:
        """Translate filesystem failures into :class:`StorageError` naming the storage."""
        try:
            yield
        except CatalogStoreError:
            raise
        except (OSError, ValueError) as exc:
            raise StorageError(
                f"storage {redact_url(self.settings.storage_url)}: could not {doing}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def commit(self, changesets: Sequence[Changeset]) -> list[Committed]:
        """Commit ``changesets`` to the catalog, then make storage match (see module doc).

        On any failure before the commit point, the staged files are removed and
        nothing is visible.
        """
        changesets = [cs for cs in changesets if not cs.is_empty]
        if not changesets:
            return []
        try:
            with self.catalog.locked(changesets) as conn:
                committed = self.catalog.commit(conn, changesets)
                with self.storage_errors("apply a committed change (it will be rolled "
                                         "forward by `catalogstore verify --repair`)"):
                    self._map(self._apply, committed)
                self.catalog.mark_applied(c.journal_id for c in committed if c.journal_id)
        except BaseException:
            if "committed" not in locals():
                self.discard(changesets)
            raise
        return committed

    def discard(self, changesets: Sequence[Changeset]) -> None:
        """Remove the staged files of changesets that will not be committed."""
        for cs in changesets:
            for staged in cs.staged_files():
                with contextlib.suppress(OSError):
                    self.files.remove_quietly(staged.path)

    def _map(self, fn: Callable[[T], Any], items: Sequence[T]) -> None:
        if len(items) < 8:
            for item in items:
                fn(item)
            return
        workers = 4 if self.files.is_local else _REMOTE_CONCURRENCY
        with ThreadPoolExecutor(workers, thread_name_prefix="catalogstore-apply") as pool:
            for _ in pool.map(fn, items):
                pass

    def _apply(self, done: Committed) -> None:
        cs = done.changeset
        folder = artifact_dir(cs.namespace, cs.name)
        if cs.delete:
            self.files.remove_tree(folder)
            return
        if cs.create:
            self.files.makedirs(folder)
        for name, staged in cs.writes.items():
            self.files.move(staged.path, f"{folder}/{name}")
        for name in cs.removes:
            self.files.remove_quietly(f"{folder}/{name}")
        # Written at creation too: an object store needs it for the folder to exist,
        # and Flowdapt would otherwise create it when it first reads the artifact.
        if done.metadata is not None:
            self.files.write_metadata(folder, metadata_to_json(done.metadata))

    def recover(self) -> int:
        """Roll forward storage changes that were committed but not applied.

        Safe at any time: each entry is handled under its artifact's lock, and
        every step is checked against the catalog as it is now, so an entry that
        was already applied changes nothing. Returns the number of entries handled.
        """
        entries = self.catalog.journal()
        for journal_id, namespace, name, payload in entries:
            probe = Changeset(namespace, name)
            with self.catalog.locked([probe]):
                self._roll_forward(namespace, name, payload)
            self.catalog.forget_journal([journal_id])
        return len(entries)

    def _roll_forward(self, namespace: str, name: str, payload: dict[str, Any]) -> None:
        folder = artifact_dir(namespace, name)
        record = self.catalog.get_artifact(namespace, name)
        with self.storage_errors("roll a committed change forward"):
            if record is None:
                if payload.get("delete"):
                    self.files.remove_tree(folder)
                for staged, _, _ in payload["moves"]:
                    self.files.remove_quietly(staged)
                return
            files = {f.name: f for f in self.catalog.list_files(record.id)}
            for staged, file_name, checksum in payload["moves"]:
                current = files.get(file_name)
                if current is not None and current.checksum == checksum \
                        and self.files.exists(staged):
                    self.files.move(staged, f"{folder}/{file_name}")
                else:
                    self.files.remove_quietly(staged)
            for file_name in payload["removes"]:
                if file_name not in files:
                    self.files.remove_quietly(f"{folder}/{file_name}")
            self.files.write_metadata(folder, metadata_to_json(record.metadata))

    def close(self) -> None:
        self.catalog.dispose()


_workspaces: dict[tuple[int, str], Workspace] = {}
_workspaces_lock = threading.Lock()


def get_workspace(settings: Settings | None = None) -> Workspace:
    """The workspace of ``settings`` (default: the settings in force), one per process."""
    settings = settings or get_settings()
    key = (os.getpid(), settings.model_dump_json())
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
