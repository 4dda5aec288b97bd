"""``gc``, and the one collector of orphans that ``gc`` and ``verify --repair`` share.

An orphan is what a writer killed before its commit left in the staging area: a
staged file (or, on S3, an unfinished multipart upload of one) that no journal
entry references, older than the grace period; and, on local disk, a staged
folder left empty once its files are gone.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass

from catalogstore.maintenance._reports import GcReport
from catalogstore.maintenance._steps import check_grace, duration, own_workspace
from catalogstore.names import STAGING_DIR
from catalogstore.settings import Settings
from catalogstore.storage.tree import (
    Entry,
    Upload,
    abort_upload,
    list_files_with_info,
    unfinished_uploads,
)
from catalogstore.txn.workspace import Workspace

DEFAULT_GRACE = 3600.0
"""Seconds a staged file is left alone: younger ones may belong to a writer that
has not committed yet (a transaction kept open longer than this after writing a
file would lose that file to ``gc``)."""


def _staged_orphans(ws: Workspace, grace: float) -> tuple[list[tuple[str, Entry]], int]:
    """Staged files older than ``grace`` that no journal entry references, and the
    number of younger unreferenced ones (writers may still commit those)."""
    listed = list_files_with_info(ws.files, STAGING_DIR)
    # The journal is read after the listing: a writer that commits in between is seen.
    referenced = {path for entry in ws.catalog.journal() for path in entry.staged}
    now, orphans, in_use = time.time(), [], 0
    for rel, entry in sorted(listed.items()):
        path = f"{STAGING_DIR}/{rel}"
        if path in referenced or path.rpartition("/")[0] in referenced:  # or its folder
            continue
        if entry.mtime is None or now - entry.mtime < grace:
            in_use += 1
        else:
            orphans.append((path, entry))
    return orphans, in_use


def _remove_empty_staged_folders(ws: Workspace) -> None:
    """Remove the empty folders of the local staging area that no journal entry names:
    a new artifact's staged folder once ``gc`` has removed the files a killed writer
    left in it. A writer that has just made one and meets it gone makes it again."""
    if not ws.files.is_local:
        return  # object stores have no empty folders
    referenced = {path for entry in ws.catalog.journal() for path in entry.staged}
    with contextlib.suppress(FileNotFoundError), \
            os.scandir(ws.files.full_path(STAGING_DIR)) as entries:
        for child in entries:
            if child.is_dir(follow_symlinks=False) and \
                    f"{STAGING_DIR}/{child.name}" not in referenced:
                with contextlib.suppress(OSError):  # not empty: in use, or left for later
                    os.rmdir(child.path)


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


def collect_orphans(ws: Workspace, grace: float, *, remove: bool) -> tuple[list[Orphan], int]:
    """The orphans older than ``grace`` (removed, or their uploads aborted, when
    ``remove``; then the staged folders left empty go too), and the number of
    unreferenced staged entries younger than ``grace``: a writer may still commit them."""
    staged, in_use = _staged_orphans(ws, grace)
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
    return found, in_use + uploading


def gc(grace: float = DEFAULT_GRACE, *, settings: Settings | None = None) -> GcReport:
    """Finish what crashed writers left: roll the journal forward, remove orphaned staged files.

    A staged file is an orphan when no journal entry references it and it is older
    than ``grace`` seconds (younger ones may belong to a writer that has not
    committed yet). On S3, unfinished multipart uploads into the staging area (a
    writer killed while streaming) older than ``grace`` are aborted too. Committed
    data is never touched.

    Parameters
    ----------
    grace
        Seconds a staged file is presumed to belong to a live writer.
    settings
        The configuration (default: the one in force).

    Returns
    -------
    GcReport
        Journal entries rolled forward and staged files removed.
    """
    check_grace(grace)
    report = GcReport()
    with own_workspace(settings) as ws, ws.storage_errors("collect garbage"):
        report.journal_entries = ws.recover()
        orphans, report.staged_in_use = collect_orphans(ws, grace, remove=True)
        report.removed = [orphan.path for orphan in orphans]
        report.bytes_removed = sum(orphan.size for orphan in orphans)
    return report
