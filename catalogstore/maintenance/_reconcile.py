"""Reconcile the catalog with the storage tree: :func:`reindex`, :func:`verify` and :func:`gc`.

- :func:`reindex` makes the catalog match the tree ``artifacts/{namespace}/{name}/``
  (a tree written by Flowdapt, or restored from a backup). Storage is the truth
  here; reindex only reads it, and writes the catalog in batches, one
  transaction each.
- :func:`verify` compares the two and lists every difference; ``repair=True``
  fixes what the write protocol can fix without touching committed data.
- :func:`gc` finishes what crashed writers left: it rolls the journal forward
  and removes staged files that nothing references.

On a store that catalogstore writes, the catalog is the truth and ``verify``
is the tool; run ``verify --repair`` before ``reindex`` there, since reindex
would record a ``.artifact.json`` that a crash left stale. Both work beside live
writers: reindex commits an artifact only if no writer committed to it since
it was read, and verify confirms each difference under the artifact's lock
before reporting it.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from catalogstore.batching import chunks
from catalogstore.catalog.snapshot import ArtifactState, read_namespace
from catalogstore.errors import InvalidNameError, StorageError
from catalogstore.maintenance._index import BATCH, ReindexReport, index_namespace
from catalogstore.names import (
    METADATA_FILENAME,
    STAGING_DIR,
    artifact_dir,
    validate_file_name,
    validate_name,
)
from catalogstore.record import metadata_to_json
from catalogstore.settings import Settings, get_settings, redact_url
from catalogstore.storage.tree import (
    Broken,
    Entry,
    Job,
    StoredArtifact,
    Upload,
    abort_upload,
    algorithm_of,
    checksum_of,
    forget_cached,
    list_files_with_info,
    list_namespaces,
    parallel,
    read_metadata,
    scan,
    unfinished_uploads,
)
from catalogstore.txn.journal import JournalEntry
from catalogstore.txn.workspace import Workspace

DEFAULT_GRACE = 3600.0
"""Seconds a staged file is left alone: younger ones may belong to a writer that
has not committed yet (a transaction kept open longer than this after writing a
file would lose that file to ``gc``)."""
_RECHECK = 100  # suspicious artifacts confirmed under one lock
_WHOLE_LISTING = 20  # above this, one listing of the namespace beats one per artifact


# -- reports ---------------------------------------------------------------------------


KINDS = {
    "missing-artifact": "in the catalog, no folder in storage",
    "extra-artifact": "a folder in storage, not in the catalog (`catalogstore reindex` adds it)",
    "missing-file": "in the catalog, not in storage",
    "extra-file": "in storage, not in the catalog",
    "size": "size differs",
    "checksum": "content differs from the recorded checksum",
    "metadata-missing": ".artifact.json is missing",
    "metadata-unreadable": ".artifact.json is not a flat JSON object",
    "metadata-differs": ".artifact.json differs from the catalog's metadata",
    "unexpected": "an entry that breaks the layout or the naming rules",
    "journal": "a committed change whose storage step is not done",
    "orphan-staged": "a staged file (or an unfinished upload of one) that no commit references",
}
"""Every kind of :class:`Difference`, with what it means."""


@dataclass(frozen=True)
class Difference:
    """One disagreement between catalog and storage."""

    kind: str
    """One of :data:`KINDS`."""
    namespace: str | None
    name: str | None
    file: str | None
    """A file of the artifact, or for ``orphan-staged`` the staged path."""
    detail: str
    repaired: bool = False

    @property
    def where(self) -> str:
        return "/".join(p for p in (self.namespace, self.name, self.file) if p)


@dataclass
class VerifyReport:
    """What :func:`verify` found (and, with ``repair``, fixed)."""

    differences: list[Difference] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    artifacts: int = 0
    files: int = 0
    bytes_hashed: int = 0
    fast: bool = False
    """Sizes only: checksums were not computed."""
    staged_in_use: int = 0
    """Staged files younger than the grace period: a writer may still commit them."""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when catalog and storage agree (every difference found was repaired)."""
        return all(d.repaired for d in self.differences)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


@dataclass
class GcReport:
    """What :func:`gc` cleaned up."""

    journal_entries: int = 0
    """Journal entries rolled forward (or found done and forgotten)."""
    removed: list[str] = field(default_factory=list)
    """Orphaned staged files removed, relative to the storage root."""
    bytes_removed: int = 0
    staged_in_use: int = 0


@contextlib.contextmanager
def _workspace(settings: Settings | None) -> Iterator[Workspace]:
    # A workspace of its own that does not recover on opening: verify must see what
    # a crash left, and reindex never writes to storage.
    workspace = Workspace(settings or get_settings(), recover=False)
    try:
        yield workspace
    finally:
        workspace.close()


# -- shared steps ------------------------------------------------------------------------


def _pending_journal(ws: Workspace, namespace: str | None) -> dict[tuple[str, str], str]:
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


def _refused_journal(ws: Workspace, namespace: str | None) -> list[JournalEntry]:
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
    # A .artifact.json left stale is not checked here: a deletion behind the catalog's
    # back would look the same. verify reports it as metadata that differs.
    return ", ".join(todo)


def _staged_orphans(ws: Workspace, grace: float) -> tuple[list[tuple[str, Entry]], int]:
    """Staged files older than ``grace`` that no journal entry references, and the
    number of younger unreferenced ones (writers may still commit those)."""
    listed = list_files_with_info(ws.files, STAGING_DIR)
    # The journal is read after the listing: a writer that commits in between is seen.
    collectable = ws.collectable()
    now, orphans, in_use = time.time(), [], 0
    for rel, entry in sorted(listed.items()):
        path = f"{STAGING_DIR}/{rel}"
        if not collectable(path):
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
    collectable = ws.collectable()
    with contextlib.suppress(FileNotFoundError), \
            os.scandir(ws.files.full_path(STAGING_DIR)) as entries:
        for child in entries:
            if child.is_dir(follow_symlinks=False) and \
                    collectable(f"{STAGING_DIR}/{child.name}"):
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


def _refused(names: Iterable[str], what: str) -> dict[str, str]:
    """Names read from the catalog that break the naming rules (rows edited by hand),
    with why: no storage path is ever built from them."""
    refused = {}
    for name in names:
        try:
            validate_name(name, what)
        except InvalidNameError as exc:
            refused[name] = f"a catalog row that breaks the naming rules ({exc}); left alone"
    return refused


def _refused_files(ns: str, states: dict[str, ArtifactState]) -> list[Difference]:
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


# -- reindex -----------------------------------------------------------------------------


def reindex(namespace: str | None = None, *, settings: Settings | None = None,
            batch_size: int = BATCH) -> ReindexReport:
    """Build or update the catalog from the storage tree ``artifacts/{namespace}/{name}/``.

    Every artifact folder becomes a catalog entry with its files (size, and a
    checksum computed by streaming the file, unless size and modification time
    show the recorded one still holds) and the metadata of its ``.artifact.json``
    (a missing one is ``{}``; non-string values are converted as
    :func:`~catalogstore.record.metadata_from_json` does). Entries whose folder or
    file is gone are removed. Storage is only read. Files found this way read
    back as ``bytes`` (the tree does not say which were text).

    Broken entries never stop it: a ``.artifact.json`` that is unreadable or not a
    flat JSON object (its artifact is left as the catalog has it), names that break
    the naming rules, sub-folders inside an artifact are reported and skipped.
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
    with _workspace(settings) as ws:
        with ws.storage_errors("list the storage tree"):
            in_storage, broken, exists = list_namespaces(ws.files)
        in_catalog = dict(ws.catalog.list_namespaces())
        for ns, why in _refused(in_catalog, "namespace").items():
            report.broken.append(Broken(f"{ns}/ (catalog)", why))
            del in_catalog[ns]
        report.broken += [Broken(f"{e.namespace}/{e.name} (journal)", e.problem or "")
                          for e in _refused_journal(ws, only)]
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
            for name, why in _refused(before, "artifact name").items():
                report.broken.append(Broken(f"{ns}/{name} (catalog)", why))
                del before[name]
            pending = _pending_journal(ws, ns)
            index_namespace(ws, ns, before, pending, listed_at, report, batch_size)
    report.seconds = time.perf_counter() - started
    return report


# -- verify and gc -----------------------------------------------------------------------


def verify(namespace: str | None = None, repair: bool = False, *, fast: bool = False,
           grace: float = DEFAULT_GRACE, settings: Settings | None = None) -> VerifyReport:
    """Compare the catalog with the storage and list every difference.

    Looks for artifacts and files missing on either side, sizes and (unless
    ``fast``) checksums that differ, ``.artifact.json`` files that are missing or
    differ from the catalog's metadata, committed changes whose storage step was
    not done (a writer killed after its commit), and staged files older than
    ``grace`` that no commit references (a writer killed before its commit; on S3
    also unfinished multipart uploads, which no listing shows). Each
    difference is confirmed under its artifact's lock, so a writer busy with it
    finishes first and is not reported.

    Parameters
    ----------
    namespace
        Only this namespace (journal entries included); by default every namespace.
        The staging area is shared by all namespaces and always checked.
    repair
        Roll the journal forward (:meth:`Workspace.recover`, every namespace),
        rewrite ``.artifact.json`` from the catalog, and remove the orphaned staged
        files. Committed data is never touched: extra files and files whose size or
        checksum differ are reported, not deleted.
    fast
        Compare sizes only, without reading the files.
    grace
        Seconds a staged file is presumed to belong to a live writer.
    settings
        The configuration (default: the one in force).

    Returns
    -------
    VerifyReport
        Its ``ok`` is true when catalog and storage agree (or every difference
        found was repaired).
    """
    started = time.perf_counter()
    report = VerifyReport(fast=fast)
    only = validate_name(namespace, "namespace") if namespace else None
    _check_grace(grace)
    with _workspace(settings) as ws, ws.storage_errors("verify the storage"):
        pending = _pending_journal(ws, only)
        report.differences += [Difference("journal", ns, name, None, left, repaired=repair)
                               for (ns, name), left in sorted(pending.items())]
        report.differences += [Difference("unexpected", e.namespace, e.name, None,
                                          f"{e.problem}; left alone, nothing of it applied")
                               for e in _refused_journal(ws, only)]
        in_storage, broken, _ = list_namespaces(ws.files)
        if only:
            report.namespaces = [only]
        else:
            report.differences += [_unexpected(b) for b in broken]
            in_catalog = [ns for ns, _ in ws.catalog.list_namespaces()]
            refused = _refused(in_catalog, "namespace")
            report.differences += [Difference("unexpected", ns, None, None, why)
                                   for ns, why in refused.items()]
            report.namespaces = sorted(set(in_storage) | set(in_catalog) - set(refused))
        for ns in report.namespaces:
            _verify_namespace(ws, ns, report, {n for (p, n) in pending if p == ns}, repair)
        if repair:
            # Last, so that what it fixes was reported first; it also forgets the
            # entries found done, which a writer killed while applying one leaves.
            ws.recover()
        orphans, report.staged_in_use = _staged_orphans(ws, grace)
        now = time.time()
        for path, entry in orphans:
            if repair:
                ws.files.remove_quietly(path)
            age = _duration(now - entry.mtime) if entry.mtime is not None else "?"
            report.differences.append(Difference(
                "orphan-staged", None, None, path,
                f"{entry.size} bytes written {age} ago; no commit references it", repair))
        if repair:
            _remove_empty_staged_folders(ws)
        uploads, in_use = _orphan_uploads(ws, grace)
        report.staged_in_use += in_use
        for upload in uploads:
            if repair:
                abort_upload(ws.files, upload)
            age = _duration(now - upload.started) if upload.started is not None else "?"
            report.differences.append(Difference(
                "orphan-staged", None, None, upload.path,
                f"an unfinished upload of {upload.size} bytes started {age} ago; no commit "
                "references it", repair))
    report.seconds = time.perf_counter() - started
    return report


def _verify_namespace(ws: Workspace, ns: str, report: VerifyReport, pending: set[str],
                      repair: bool) -> None:
    states = read_namespace(ws.catalog, ns)
    for name, why in _refused(states, "artifact name").items():
        report.differences.append(Difference("unexpected", ns, name, None, why))
        del states[name]
    report.differences += _refused_files(ns, states)
    stored, broken = scan(ws.files, ns)
    report.differences += [_unexpected(b) for b in broken]
    # An artifact with a pending journal entry is reported as that entry: the other
    # differences it shows are the ones rolling the entry forward removes.
    names = sorted((set(states) | set(stored)) - pending)
    report.artifacts += len(names)
    first = _compare(ws, ns, names, states, stored, report.fast, report)
    suspicious = [n for n in names if first[n]]
    for group in chunks(suspicious, _RECHECK):
        with ws.locked((ns, n) for n in group):
            states = read_namespace(ws.catalog, ns, group)
            _refused_files(ns, states)  # reported above
            if len(group) > _WHOLE_LISTING:
                stored = scan(ws.files, ns)[0]
            else:
                stored = {}
                for name in group:
                    stored.update(scan(ws.files, ns, name)[0])
            confirmed = _compare(ws, ns, group, states, stored, report.fast)
            for name in group:
                diffs = confirmed[name]
                if repair:
                    diffs = _repair_metadata(ws, ns, name, states.get(name), diffs)
                report.differences += diffs


def _compare(ws: Workspace, ns: str, names: Sequence[str], states: dict[str, ArtifactState],
             stored: dict[str, StoredArtifact], fast: bool,
             counts: VerifyReport | None = None) -> dict[str, list[Difference]]:
    """The differences of each of ``names`` between ``states`` and ``stored``."""
    both = [n for n in names if n in states and n in stored]
    metas = dict(zip(both, parallel(
        ws.files, lambda n: read_metadata(ws.files, ns, n, stored[n]), both), strict=True))
    jobs: dict[tuple[str, str], Job] = {}
    for name in both if not fast else ():
        for file, row in states[name].files.items():
            entry = stored[name].files.get(file)
            if entry is not None and entry.size == row.size:
                jobs[(name, file)] = (f"{artifact_dir(ns, name)}/{file}", algorithm_of(row),
                                     entry.size)
    hashed = dict(zip(jobs, parallel(ws.files, lambda j: checksum_of(ws.files, j),
                                     list(jobs.values())), strict=True))
    result: dict[str, list[Difference]] = {}
    for name in names:
        state, found = states.get(name), stored.get(name)
        diffs = result[name] = []

        def add(kind: str, file: str | None, detail: str, name: str = name,
                diffs: list[Difference] = diffs) -> None:
            diffs.append(Difference(kind, ns, name, file, detail))

        if found is None:
            add("missing-artifact", None, f"the catalog lists it with {len(state.files)} "  # type: ignore[union-attr]
                "file(s); storage has no folder for it")
            continue
        if state is None:
            add("extra-artifact", None, f"storage holds {len(found.files)} file(s) for it; "
                "`catalogstore reindex` adds it to the catalog")
            continue
        files = sorted(state.files.keys() | found.files.keys())
        if counts is not None:
            counts.files += len(files)
        for file in files:
            row, entry = state.files.get(file), found.files.get(file)
            if entry is None:
                add("missing-file", file, f"the catalog records {row.size} bytes; "  # type: ignore[union-attr]
                    "storage has no such file")
            elif row is None:
                add("extra-file", file, f"storage holds {entry.size} bytes that the catalog "
                    "does not list")
            elif row.size != entry.size:
                add("size", file, f"the catalog records {row.size} bytes, storage holds "
                    f"{entry.size}")
            elif (name, file) in hashed:
                outcome = hashed[(name, file)]
                if isinstance(outcome, Broken):
                    add("checksum", file, outcome.reason)
                    continue
                if counts is not None:
                    counts.bytes_hashed += outcome[1]
                if outcome[0] != row.checksum:
                    add("checksum", file, f"the catalog records {row.checksum}, storage "
                        f"holds {outcome[0]}")
        meta = metas[name]
        if isinstance(meta, Broken):
            add("metadata-unreadable", METADATA_FILENAME, meta.reason)
        elif meta is None:
            add("metadata-missing", METADATA_FILENAME,
                f"the catalog has {len(state.metadata)} metadata key(s)")
        elif meta != state.metadata:
            add("metadata-differs", METADATA_FILENAME, _metadata_change(state.metadata, meta))
    return result


def _repair_metadata(ws: Workspace, ns: str, name: str, state: ArtifactState | None,
                     diffs: list[Difference]) -> list[Difference]:
    """Rewrite ``.artifact.json`` from the catalog when it differs (under the lock)."""
    kinds = {"metadata-missing", "metadata-unreadable", "metadata-differs"}
    if state is None or not any(d.kind in kinds for d in diffs):
        return diffs
    ws.files.write_metadata(artifact_dir(ns, name), metadata_to_json(state.metadata))
    return [Difference(d.kind, d.namespace, d.name, d.file, d.detail, d.kind in kinds)
            for d in diffs]


def _metadata_change(catalog: dict[str, str], stored: dict[str, str]) -> str:
    def show(value: str) -> str:
        return repr(value if len(value) <= 40 else value[:37] + "...")

    parts = []
    for key in sorted(catalog.keys() | stored.keys()):
        if key not in stored:
            parts.append(f"{key!r} only in the catalog")
        elif key not in catalog:
            parts.append(f"{key!r} only in the file")
        elif catalog[key] != stored[key]:
            parts.append(f"{key!r}: catalog {show(catalog[key])}, file {show(stored[key])}")
    more = f"; and {len(parts) - 3} more" if len(parts) > 3 else ""
    return "; ".join(parts[:3]) + more


def _unexpected(broken: Broken) -> Difference:
    parts = broken.path.rstrip("/").split("/")[1:]  # after "artifacts/"
    return Difference("unexpected", parts[0] if parts else None,
                      parts[1] if len(parts) > 1 else None,
                      "/".join(parts[2:]) or None if len(parts) > 2 else None, broken.reason)


def _check_grace(grace: float) -> None:
    if not grace >= 0:  # NaN too
        raise ValueError(f"the grace period must be >= 0 seconds, not {grace}")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


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
    _check_grace(grace)
    report = GcReport()
    with _workspace(settings) as ws, ws.storage_errors("collect garbage"):
        report.journal_entries = ws.recover()
        orphans, report.staged_in_use = _staged_orphans(ws, grace)
        for path, entry in orphans:
            ws.files.remove_quietly(path)
            report.removed.append(path)
            report.bytes_removed += entry.size
        _remove_empty_staged_folders(ws)
        uploads, in_use = _orphan_uploads(ws, grace)
        report.staged_in_use += in_use
        for upload in uploads:
            abort_upload(ws.files, upload)
            report.removed.append(upload.path)
            report.bytes_removed += upload.size
    return report
