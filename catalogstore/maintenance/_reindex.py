"""``reindex``: make the catalog match the storage tree, one batch of artifacts at a time.

:func:`reindex` lists the storage and plans each namespace's changes. Each batch
of artifacts becomes one catalog transaction through
:func:`catalogstore.txn.commit.commit_rows` with
``journal=False``: the storage already holds what the rows describe, so no storage
step follows.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timezone

from catalogstore.batching import chunks
from catalogstore.catalog.engine import locked_transaction
from catalogstore.catalog.snapshot import (
    ArtifactState,
    read_namespace,
    read_versions,
    refresh_file_times,
)
from catalogstore.errors import ForeignEntryError, StorageError
from catalogstore.maintenance._hashing import hash_files, read_metadatas
from catalogstore.maintenance._reports import ReindexReport
from catalogstore.maintenance._steps import (
    own_workspace,
    pending_journal,
    refused_journal,
    refused_names,
)
from catalogstore.names import artifact_dir, validate_name
from catalogstore.record import FileRecord, same_value
from catalogstore.settings import Settings, redact_url
from catalogstore.storage.staged import StagedFile
from catalogstore.storage.tree import Broken, Entry, StoredArtifact, list_namespaces, scan
from catalogstore.txn import mirror
from catalogstore.txn.changeset import Changeset
from catalogstore.txn.commit import commit_rows
from catalogstore.txn.workspace import Workspace

Refresh = tuple[int, str, str, datetime]
"""An unchanged file whose recorded time to refresh: (artifact id, name, checksum, time)."""
BATCH = 500
"""Artifacts per catalog transaction."""
SETTLE = 2.0
"""A file modified less than this before a listing may change again within the
same timestamp (S3 keeps whole seconds, FAT two): reindex does not trust its
modification time later, and hashes it again (git's "racily clean" files)."""


def reindex(namespace: str | None = None, *, settings: Settings | None = None,
            batch_size: int = BATCH) -> ReindexReport:
    """Build or update the catalog from the storage tree ``artifacts/{namespace}/{name}/``.

    Every artifact folder becomes a catalog entry with its files (size, and a
    checksum computed by streaming the file, unless size and modification time
    show the recorded one still holds) and the metadata of its ``.artifact.json``
    (a missing one is ``{}``; every JSON value is kept with its type, as
    :func:`~catalogstore.record.metadata_from_json` reads it). Entries whose folder or
    file is gone are removed. Storage is only read. Files found this way read
    back as ``bytes`` (the tree does not say which were text).

    Broken entries never stop it, and no artifact is dropped for its metadata: a
    ``.artifact.json`` that is unreadable or not a JSON object is reported, and its
    artifact's files are indexed with its metadata left as the catalog has it (``{}``
    for a new one). Names that break the naming rules, sub-folders inside an artifact
    and folders holding a foreign entry are reported and skipped.
    Running it again on an unchanged tree changes nothing.

    Parameters
    ----------
    namespace
        Only this namespace; by default every namespace in storage or in the catalog.
    settings
        The configuration (default: the one in force).
    batch_size
        Artifacts per catalog transaction.

    Returns
    -------
    ReindexReport
        Added, changed and removed artifacts, the unchanged count, broken entries.

    Raises
    ------
    StorageError
        When the storage cannot be listed, or holds no ``artifacts/`` folder while
        the catalog lists artifacts (a wrong storage URL would otherwise empty it).
    """
    started = time.perf_counter()
    report = ReindexReport()
    only = validate_name(namespace, "namespace") if namespace else None
    with own_workspace(settings) as ws:
        with ws.storage_errors("list the storage tree"):
            in_storage, broken, exists = list_namespaces(ws.files)
        in_catalog = dict(ws.catalog.list_namespaces())
        for ns, why in refused_names(in_catalog, "namespace").items():
            report.broken.append(Broken(f"{ns}/ (catalog)", why))
            del in_catalog[ns]
        report.broken += [Broken(f"{e.namespace}/{e.name} (journal)", e.problem or "")
                          for e in refused_journal(ws, only)]
        if not exists and in_catalog:
            raise StorageError(
                f"storage {redact_url(ws.settings.storage_url)} holds no artifacts/ folder, "
                f"but the catalog lists {sum(in_catalog.values())} artifact(s): is "
                "CATALOGSTORE_STORAGE_URL right? (reindex would remove them all)")
        if only:
            report.namespaces = [only]
        else:
            report.broken += broken
            report.namespaces = sorted(set(in_storage) | set(in_catalog))
        for ns in report.namespaces:
            listed_at = time.time()
            # The catalog is read before storage is listed: an artifact whose version
            # is still this one when its batch commits had no commit the listing missed.
            before = read_namespace(ws.catalog, ns)
            for name, why in refused_names(before, "artifact name").items():
                report.broken.append(Broken(f"{ns}/{name} (catalog)", why))
                del before[name]
            # Read after the catalog: what is pending then is left out, and a commit
            # made later is a version the catalog read does not have.
            pending = {**dict.fromkeys(mirror.pending(ws, ns), "a small object store value "
                                       "whose files are not written yet"),
                       **pending_journal(ws, ns)}
            index_namespace(ws, ns, before, pending, listed_at, report, batch_size)
    report.seconds = time.perf_counter() - started
    return report


def _trusted(entry: Entry, row: FileRecord | None) -> bool:
    """Whether the recorded checksum still holds without reading the file again.

    Either the recorded file time is the mtime itself, recorded by a reindex once
    the file had settled, or it lies well after the mtime (a writer's commit,
    which follows its staged write). A commit time only just after the mtime
    proves nothing where timestamps are coarse: S3 keeps whole seconds, so a file
    overwritten in the second of its commit would look older than the commit.
    """
    if row is None or row.size != entry.size or entry.mtime is None or row.updated_at is None:
        return False
    recorded = row.updated_at.timestamp()  # aware UTC (models.UTCDateTime)
    # 1 us: the database keeps microseconds, the mtime may have nanoseconds
    return abs(entry.mtime - recorded) <= 1e-6 or entry.mtime <= recorded - SETTLE


def _stamp(entry: Entry, listed_at: float) -> datetime | None:
    """The file time reindex records: the mtime, or an earlier one that makes the next
    run hash the file again when it was still settling (see :data:`SETTLE`)."""
    if entry.mtime is None:
        return None
    settled = listed_at - entry.mtime >= SETTLE
    return datetime.fromtimestamp(entry.mtime - (0 if settled else SETTLE), timezone.utc)


def index_namespace(ws: Workspace, ns: str, before: dict[str, ArtifactState],
                    pending: dict[tuple[str, str], str], listed_at: float,
                    report: ReindexReport, batch_size: int = BATCH) -> None:
    """Make the catalog's ``ns`` match storage, one transaction per batch.

    ``before`` is the catalog as read before the listing that this call makes, and
    ``pending`` the artifacts with journal entries not applied yet or a small object
    store value whose files are not written yet (skipped).
    """
    try:
        with ws.storage_errors(f"list namespace {ns!r}"):
            stored, broken = scan(ws.files, ns)
    except ForeignEntryError as exc:
        report.broken.append(Broken(exc.path, f"{exc}; the namespace is skipped"))
        return
    report.broken += broken
    for group in chunks(sorted(set(before) | set(stored)), batch_size):
        busy = [n for n in group if (ns, n) in pending]
        for name in busy:
            report.skipped.append(Broken(
                artifact_dir(ns, name) + "/", f"{pending[(ns, name)]}; run `catalogstore gc` "
                "(or `verify --repair`), then reindex again"))
        names = [n for n in group if n not in busy]
        changesets, refresh = _plan(ws, ns, names, before, stored, listed_at, report)
        if changesets or refresh:
            _commit(ws, ns, changesets, refresh, before, report)


def _plan(ws: Workspace, ns: str, names: Sequence[str], before: dict[str, ArtifactState],
          stored: dict[str, StoredArtifact], listed_at: float,
          report: ReindexReport) -> tuple[list[Changeset], dict[str, list[Refresh]]]:
    """The changesets that make the catalog match storage for ``names``, and the
    unchanged files whose recorded time to refresh, by artifact."""
    present = [n for n in names if n in stored]
    metas = read_metadatas(ws, ns, stored, present)
    wanted: dict[tuple[str, str], tuple[FileRecord | None, int]] = {}
    for name in present:
        if stored[name].foreign:  # never read through: skipped below
            continue
        state = before.get(name)
        for file, entry in stored[name].files.items():
            row = state.files.get(file) if state else None
            if not _trusted(entry, row):
                wanted[(name, file)] = (row, entry.size)
    hashed = hash_files(ws, ns, wanted)
    changesets: list[Changeset] = []
    refresh: dict[str, list[Refresh]] = {}
    for name in names:
        state, found = before.get(name), stored.get(name)
        if found is None:
            changesets.append(Changeset(ns, name, delete=True))
            continue
        meta = metas[name]
        if found.foreign:  # a link or special file in the folder: left as the catalog has it
            report.broken.append(Broken(meta.path if isinstance(meta, Broken) else
                                        artifact_dir(ns, name) + "/",
                                        f"{getattr(meta, 'reason', 'a foreign entry')}; "
                                        "the artifact is skipped"))
            continue
        if isinstance(meta, Broken):
            # Issue 14: an artifact is never dropped for its metadata. Its files are
            # indexed; its metadata stays as the catalog has it ({} when new).
            report.broken.append(Broken(meta.path, f"{meta.reason}; the metadata is not "
                                        "imported (the artifact's files are)"))
            meta = None if state is None else dict(state.metadata)
        cs = Changeset(ns, name, create=state is None)
        for file, entry in found.files.items():
            row = state.files.get(file) if state else None
            result = hashed.get((name, file))
            if result is None:  # trusted: the recorded checksum holds
                continue
            if isinstance(result, Broken):  # left as the catalog has it
                report.broken.append(result)
                continue
            checksum, size = result
            report.files_hashed += 1
            report.bytes_hashed += size
            stamp = _stamp(entry, listed_at)
            if row is None or (row.size, row.checksum) != (size, checksum):
                # The "staged" path is the file's own: no storage step follows.
                cs.writes[file] = StagedFile(f"{artifact_dir(ns, name)}/{file}", size, checksum,
                                             row.encoding if row else None, stamp)
            elif stamp is not None and state is not None and _trusted(
                    entry, replace(row, updated_at=stamp)):
                # Unchanged, and settled now: the next run can trust it.
                refresh.setdefault(name, []).append((state.id, file, checksum, stamp))
        meta = meta or {}
        if state is not None:
            cs.removes = {f for f in state.files if f not in found.files}
            cs.meta_del = {k for k in state.metadata if k not in meta}
            cs.meta_set = {k: v for k, v in meta.items()
                           if k not in state.metadata or not same_value(state.metadata[k], v)}
        else:
            cs.meta_set = dict(meta)
        if cs.is_empty:
            report.unchanged += 1
        else:
            changesets.append(cs)
    return changesets, refresh


def _commit(ws: Workspace, ns: str, changesets: list[Changeset],
            refresh: dict[str, list[Refresh]], before: dict[str, ArtifactState],
            report: ReindexReport) -> None:
    """Commit ``changesets`` to the catalog in one transaction (and refresh file times),
    leaving out the artifacts that a writer committed to since ``before`` was read."""
    catalog = ws.catalog
    names = [cs.name for cs in changesets] + list(refresh)
    with ws.locked((ns, name) for name in names) as conn:
        with catalog.errors("refresh file times"), locked_transaction(conn):
            now = read_versions(conn, ns, names)

            def unchanged(name: str) -> bool:
                state = before.get(name)
                return now.get(name) == (state.version if state else None)

            refresh_file_times(conn, [row for name, rows in refresh.items()
                                      if unchanged(name) for row in rows])
        kept = []
        for cs in changesets:
            if unchanged(cs.name):
                kept.append(cs)
            else:
                report.skipped.append(Broken(artifact_dir(ns, cs.name) + "/",
                                             "changed by a writer while reindexing: run "
                                             "reindex again"))
        if kept:
            commit_rows(catalog, conn, kept, journal=False)
    for cs in kept:
        where = f"{ns}/{cs.name}"
        (report.added if cs.create else report.removed if cs.delete
         else report.changed).append(where)
