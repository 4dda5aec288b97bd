"""Steps that ``reindex``, ``verify`` and ``gc`` share: a workspace of their own, the
journal entries still pending or refused, catalog rows that break the naming rules,
and the durations and grace periods they print and check."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

from catalogstore.catalog.snapshot import ArtifactState
from catalogstore.errors import InvalidNameError, StorageError
from catalogstore.maintenance._reports import Difference
from catalogstore.names import (
    METADATA_FILENAME,
    STAGING_DIR,
    artifact_dir,
    validate_file_name,
    validate_name,
)
from catalogstore.record import metadata_to_json
from catalogstore.settings import Settings, get_settings
from catalogstore.storage.tree import METADATA_MAX_BYTES, Broken, forget_cached
from catalogstore.txn.journal import JournalEntry
from catalogstore.txn.workspace import Workspace


@contextlib.contextmanager
def own_workspace(settings: Settings | None) -> Iterator[Workspace]:
    # A workspace of its own that does not recover on opening: verify must see what
    # a crash left, and reindex never writes to storage.
    workspace = Workspace(settings or get_settings(), recover=False)
    try:
        yield workspace
    finally:
        workspace.close()


def pending_journal(ws: Workspace, namespace: str | None) -> dict[tuple[str, str], str]:
    """Artifacts with committed changes whose storage step is not done, and what is left.

    Each entry is checked under its artifact's lock, so a writer applying it right
    now finishes first; entries found done (a live process forgets them lazily)
    are not pending.
    """
    pending: dict[tuple[str, str], str] = {}
    for entry in ws.journal():
        ns, name = entry.namespace, entry.name
        if entry.problem is not None or (namespace is not None and ns != namespace):
            continue  # refused entries: _refused_journal
        with ws.locked([(ns, name)]):
            left = _left_to_do(ws, entry)
        if left:
            earlier = pending.get((ns, name))
            pending[(ns, name)] = (f"{earlier}; " if earlier else "") + \
                f"journal entry {entry.id}: {left}"
    return pending


def refused_journal(ws: Workspace, namespace: str | None) -> list[JournalEntry]:
    """Journal rows that break the naming rules or the journal's shape (edited by hand):
    recovery refuses them, and no storage path is built from them."""
    return [entry for entry in ws.journal() if entry.problem is not None
            and (namespace is None or entry.namespace == namespace)]


def _left_to_do(ws: Workspace, entry: JournalEntry) -> str:
    ns, name = entry.namespace, entry.name
    folder = artifact_dir(ns, name)
    # Existence checks below must not be answered from listings cached before the lock.
    forget_cached(ws.files, STAGING_DIR)
    forget_cached(ws.files, folder)
    todo = []
    staged = sum(1 for path, _, _ in entry.moves if ws.files.exists(path))
    if staged:
        todo.append(f"{staged} staged file(s) not moved into place")
    record = ws.catalog.get_artifact(ns, name)
    if record is None:
        if entry.delete and ws.files.exists(folder):
            todo.append("the deleted artifact's folder is still there")
    else:
        files = {f.name for f in ws.catalog.list_files(record.id)}
        left = [f for f in entry.removes
                if f not in files and ws.files.exists(f"{folder}/{f}")]
        if left:
            todo.append(f"{len(left)} removed file(s) still in storage")
        # A row of a metadata rewrite alone is written only once the rewrite failed, and
        # forgotten as soon as it is redone: the file says whether it is pending.
        meta = f"{folder}/{METADATA_FILENAME}"
        if not (entry.moves or entry.removes or entry.create or entry.folder) and \
                _stored_metadata(ws, meta) != metadata_to_json(record.metadata):
            todo.append(f"{METADATA_FILENAME} not rewritten from the catalog")
    # Otherwise a .artifact.json (or a created artifact's folder) missing or stale is not
    # checked here: a deletion behind the catalog's back after the change was applied
    # (its row is forgotten lazily) would look the same. verify reports it as a missing
    # artifact or metadata that differs, and --repair makes them from the catalog.
    return ", ".join(todo)


def _stored_metadata(ws: Workspace, path: str) -> bytes | None:
    """The bytes of an ``.artifact.json`` (bounded), or None when it cannot be read."""
    try:
        with ws.storage_errors(f"read {path}"):
            return ws.files.read_bytes(path, limit=METADATA_MAX_BYTES)
    except StorageError:
        return None


def refused_names(names: Iterable[str], what: str) -> dict[str, str]:
    """Names read from the catalog that break the naming rules (rows edited by hand),
    with why: no storage path is ever built from them."""
    refused = {}
    for name in names:
        try:
            validate_name(name, what)
        except InvalidNameError as exc:
            refused[name] = f"a catalog row that breaks the naming rules ({exc}); left alone"
    return refused


def refused_files(ns: str, states: dict[str, ArtifactState]) -> list[Difference]:
    """File rows whose names break the naming rules (edited by hand), taken out of
    ``states`` and reported: never compared with storage nor made into a path."""
    refused = []
    for name, state in states.items():
        for file in list(state.files):
            try:
                validate_file_name(file)
            except InvalidNameError as exc:
                refused.append(Difference("unexpected", ns, name, file, "a catalog row that "
                                          f"breaks the naming rules ({exc}); left alone"))
                del state.files[file]
    return refused


def unexpected(broken: Broken) -> Difference:
    parts = broken.path.rstrip("/").split("/")[1:]  # after "artifacts/"
    return Difference("unexpected", parts[0] if parts else None,
                      parts[1] if len(parts) > 1 else None,
                      "/".join(parts[2:]) or None if len(parts) > 2 else None, broken.reason)


def check_grace(grace: float) -> None:
    if not grace >= 0:  # NaN too
        raise ValueError(f"the grace period must be >= 0 seconds, not {grace}")


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
