"""``gc``, and the one collector of orphans that ``gc`` and ``verify --repair`` share.

An orphan is what a writer killed before its commit left in the staging area: a
staged file (or, on S3, an unfinished multipart upload of one) that no journal
entry references, older than the grace period; and, on local disk, a staged
folder left empty once its files are gone.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

from catalogstore.catalog.models import utcnow
from catalogstore.errors import ArtifactNotFoundError, ForeignEntryError
from catalogstore.maintenance._reports import GcReport, Reclaimed
from catalogstore.maintenance._retention import collect_kept, expire_versions
from catalogstore.maintenance._steps import check_grace, duration, own_workspace
from catalogstore.names import STAGING_DIR
from catalogstore.settings import Settings
from catalogstore.storage.tree import (
    Broken,
    Entry,
    Upload,
    abort_upload,
    list_files_with_info,
    list_folders,
    remove_empty_folder,
    unfinished_uploads,
)
from catalogstore.txn import objects, staging
from catalogstore.txn.workspace import Workspace

DEFAULT_GRACE = 3600.0
"""Seconds a staged file is left alone: younger ones may belong to a writer that
has not committed yet (a transaction kept open longer than this after writing a
file would lose that file to ``gc``)."""


def _staged_orphans(ws: Workspace, grace: float
                    ) -> tuple[list[tuple[str, Entry]], int, list[Broken]]:
    """Staged files older than ``grace`` that no journal entry references, the number of
    younger unreferenced ones (writers may still commit those), and the entries left
    alone: foreign ones and names catalogstore does not stage."""
    listed, left = list_files_with_info(ws.files, STAGING_DIR, 2)
    # The journal is read after the listing: a writer that commits in between is seen.
    collectable = ws.collectable()
    now, orphans, in_use = time.time(), [], 0
    for rel, entry in sorted(listed.items()):
        path = f"{STAGING_DIR}/{rel}"
        if not staging.is_staged(path):
            left.append(Broken(path, "not a name catalogstore stages: left alone"))
            continue
        if not collectable(path):
            continue
        if entry.mtime is None or now - entry.mtime < grace:
            in_use += 1
        else:
            orphans.append((path, entry))
    return orphans, in_use, left


def _remove_empty_staged_folders(ws: Workspace) -> None:
    """Remove the empty folders of the local staging area that no journal entry names:
    a new artifact's staged folder once ``gc`` has removed the files a killed writer
    left in it. A writer that has just made one and meets it gone makes it again."""
    folders = list_folders(ws.files, STAGING_DIR)  # none on object stores
    collectable = ws.collectable()
    for name in folders:
        path = f"{STAGING_DIR}/{name}"
        if staging.is_staged_top(path) and collectable(path):
            with contextlib.suppress(OSError):  # not empty: in use, or left for later
                remove_empty_folder(ws.files, path)


def recover(ws: Workspace) -> tuple[int, list[Broken]]:
    """:meth:`Workspace.recover`: the entries handled, and the ones a foreign entry of
    the storage blocks, reported (they stay in the journal)."""
    blocked: list[ForeignEntryError] = []
    handled = ws.recover(blocked)
    return handled, [Broken(exc.path, f"a committed change cannot be rolled forward: {exc}")
                     for exc in blocked]


def _orphan_uploads(ws: Workspace, grace: float) -> tuple[list[Upload], int]:
    """Unfinished multipart uploads into the staging area started more than ``grace``
    seconds ago (a writer killed while streaming a file), and the number of younger ones."""
    now, orphans, in_use = time.time(), [], 0
    for upload in unfinished_uploads(ws.files, STAGING_DIR):
        if upload.started is None or now - upload.started < grace:
            in_use += 1
        else:
            orphans.append(upload)
    return orphans, in_use


@dataclass(frozen=True)
class Orphan:
    """A staged file, or an unfinished upload of one, that no commit references."""

    path: str
    size: int
    age: float
    """Seconds since it was written (an upload: started)."""
    upload: bool = False

    def describe(self) -> str:
        if self.upload:
            return (f"an unfinished upload of {self.size} bytes started {duration(self.age)} "
                    "ago; no commit references it")
        return f"{self.size} bytes written {duration(self.age)} ago; no commit references it"


def collect_orphans(ws: Workspace, grace: float, *, remove: bool
                    ) -> tuple[list[Orphan], int, list[Broken]]:
    """The orphans older than ``grace`` (removed, or their uploads aborted, when
    ``remove``; then the staged folders left empty go too), the number of unreferenced
    staged entries younger than ``grace`` (a writer may still commit them), and the
    entries of the staging area left alone (foreign, or not of the staged shape)."""
    staged, in_use, left = _staged_orphans(ws, grace)
    uploads, uploading = _orphan_uploads(ws, grace)
    now = time.time()
    found = []
    for path, entry in staged:
        if remove:
            ws.files.remove_quietly(path)
        found.append(Orphan(path, entry.size, now - (entry.mtime or now)))
    if remove:
        _remove_empty_staged_folders(ws)
    for upload in uploads:
        if remove:
            abort_upload(ws.files, upload)
        found.append(Orphan(upload.path, upload.size, now - (upload.started or now), True))
    return found, in_use + uploading, left


def remove_stale_objects(ws: Workspace) -> list[str]:
    """Delete the object artifacts older generations left behind (``namespace/name``).

    A put to cluster memory commits the key's new record, then deletes the artifact
    that held the older value; a process that dies in between leaves that artifact,
    which ``get`` ignores (it follows the record). Each deletion commits only while
    the record that made it stale is still current, so a put racing ``gc`` wins.
    """
    removed = []
    for namespace, name, artifact_id, generation in objects.stale_artifacts(ws):
        try:
            ws.commit([objects.stale_artifact_removal(namespace, name, artifact_id,
                                                      generation)])
        except (objects.Superseded, ArtifactNotFoundError):
            continue  # the key moved on, or the artifact went, meanwhile
        removed.append(f"{namespace}/{name}")
    return removed


def gc(grace: float = DEFAULT_GRACE, *, dry_run: bool = False,
       settings: Settings | None = None) -> GcReport:
    """Finish what crashed writers left, and apply the retention policies.

    Rolls the journal forward and removes orphaned staged files: a staged file is an
    orphan when no journal entry references it and it is older than ``grace`` seconds
    (younger ones may belong to a writer that has not committed yet). On S3,
    unfinished multipart uploads into the staging area (a writer killed while
    streaming) older than ``grace`` are aborted too. Object artifacts that a newer
    generation in cluster memory made stale are deleted (:func:`remove_stale_objects`).

    Then retention (:mod:`catalogstore.maintenance._retention`): the versions that each
    namespace's policy lets go are deleted, never the current, an aliased or a pinned
    one, and the kept bytes that no remaining version references are freed, as are
    those of artifacts no longer in the catalog. Killed at any point, the next run
    finishes the work. Committed data is never touched otherwise.

    Parameters
    ----------
    grace
        Seconds a staged file is presumed to belong to a live writer.
    dry_run
        Change nothing: report what would be done.
    settings
        The configuration (default: the one in force).

    Returns
    -------
    GcReport
        Journal entries rolled forward, staged files removed, and per namespace the
        versions removed and the bytes freed.
    """
    check_grace(grace)
    report = GcReport(dry_run=dry_run)
    now = utcnow()
    with own_workspace(settings) as ws, ws.storage_errors("collect garbage"):
        if dry_run:
            report.journal_entries = sum(1 for e in ws.journal() if e.problem is None)
            report.stale_objects = [f"{ns}/{name}" for ns, name, _, _ in
                                    objects.stale_artifacts(ws)]
        else:
            report.journal_entries, report.left = recover(ws)
            report.stale_objects = remove_stale_objects(ws)
        orphans, report.staged_in_use, left = collect_orphans(ws, grace, remove=not dry_run)
        report.left += left
        report.removed = [orphan.path for orphan in orphans]
        report.bytes_removed = sum(orphan.size for orphan in orphans)
        expired, leaving, report.refused_policies = expire_versions(ws, now,
                                                                    remove=not dry_run)
        kept = collect_kept(ws, leaving, remove=not dry_run)
        report.left += kept.left
        report.deleted_artifacts = kept.deleted_artifacts
        for ns in sorted(expired.keys() | kept.by_namespace.keys()):
            freed = kept.by_namespace.get(ns, Reclaimed())
            report.retention[ns] = Reclaimed(expired.get(ns, 0), freed.files, freed.bytes)
    return report
