"""The catalog side of ``reindex``: plan the changes of a namespace, commit them in batches.

:func:`catalogstore.maintenance.reindex` lists the storage and calls
:func:`index_namespace` for each namespace. Each batch of artifacts becomes one
catalog transaction through :meth:`Catalog.commit` with ``journal=False``: the
storage already holds what the rows describe, so no storage step follows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from catalogstore.batching import chunks
from catalogstore.catalog.snapshot import (
    ArtifactState,
    read_versions,
    refresh_file_times,
)
from catalogstore.names import artifact_dir
from catalogstore.record import FileRecord
from catalogstore.storage.staged import StagedFile
from catalogstore.storage.tree import (
    Broken,
    Entry,
    Job,
    StoredArtifact,
    algorithm_of,
    checksum_of,
    parallel,
    read_metadata,
    scan,
)
from catalogstore.txn.changeset import Changeset
from catalogstore.txn.workspace import Workspace

Refresh = tuple[int, str, str, datetime]
"""An unchanged file whose recorded time to refresh: (artifact id, name, checksum, time)."""
BATCH = 500
"""Artifacts per catalog transaction."""
SETTLE = 2.0
"""A file modified less than this before a listing may change again within the
same timestamp (S3 keeps whole seconds, FAT two): reindex does not trust its
modification time later, and hashes it again (git's "racily clean" files)."""


@dataclass
class ReindexReport:
    """What :func:`~catalogstore.maintenance.reindex` did; artifacts are ``namespace/name``."""

    namespaces: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    broken: list[Broken] = field(default_factory=list)
    """Entries of the tree that break the layout or the rules, skipped."""
    skipped: list[Broken] = field(default_factory=list)
    """Artifacts left as they are for now: a writer is busy with them (run again)."""
    files_hashed: int = 0
    bytes_hashed: int = 0
    seconds: float = 0.0

    @property
    def changes(self) -> int:
        """Artifacts added, changed or removed in the catalog."""
        return len(self.added) + len(self.changed) + len(self.removed)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "changes": self.changes}


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
    ``pending`` the artifacts with journal entries not applied yet (skipped).
    """
    with ws.storage_errors(f"list namespace {ns!r}"):
        stored, broken = scan(ws.files, ns)
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
    metas = dict(zip(present, parallel(
        ws.files, lambda n: read_metadata(ws.files, ns, n, stored[n]), present), strict=True))
    jobs: dict[tuple[str, str], Job] = {}
    for name in present:
        if isinstance(metas[name], Broken):
            continue
        state = before.get(name)
        for file, entry in stored[name].files.items():
            row = state.files.get(file) if state else None
            if not _trusted(entry, row):
                jobs[(name, file)] = (f"{artifact_dir(ns, name)}/{file}", algorithm_of(row),
                                     entry.size)
    hashed = dict(zip(jobs, parallel(ws.files, lambda j: checksum_of(ws.files, j),
                                     list(jobs.values())), strict=True))
    changesets: list[Changeset] = []
    refresh: dict[str, list[Refresh]] = {}
    for name in names:
        state, found = before.get(name), stored.get(name)
        if found is None:
            changesets.append(Changeset(ns, name, delete=True))
            continue
        meta = metas[name]
        if isinstance(meta, Broken):  # left as the catalog has it
            report.broken.append(Broken(meta.path, f"{meta.reason}; the artifact is skipped"))
            continue
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
            cs.meta_set = {k: v for k, v in meta.items() if state.metadata.get(k) != v}
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
    locks = changesets + [Changeset(ns, name) for name in refresh]
    with catalog.locked(locks) as conn:
        with catalog.errors("refresh file times"), conn.begin():
            now = read_versions(conn, ns, [cs.name for cs in locks])

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
            catalog.commit(conn, kept, journal=False)
    for cs in kept:
        where = f"{ns}/{cs.name}"
        (report.added if cs.create else report.removed if cs.delete
         else report.changed).append(where)
