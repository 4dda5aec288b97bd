"""``verify``: compare the catalog with the storage, and repair what the protocol can."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from catalogstore.batching import chunks
from catalogstore.catalog.snapshot import ArtifactState, read_namespace
from catalogstore.errors import ForeignEntryError
from catalogstore.maintenance._gc import DEFAULT_GRACE, collect_orphans, recover
from catalogstore.maintenance._hashing import hash_files, read_metadatas
from catalogstore.maintenance._reports import Difference, VerifyReport
from catalogstore.maintenance._retention import missing_kept
from catalogstore.maintenance._steps import (
    check_grace,
    own_workspace,
    pending_journal,
    refused_files,
    refused_journal,
    refused_names,
    unexpected,
)
from catalogstore.names import METADATA_FILENAME, artifact_dir, validate_name
from catalogstore.record import (
    FileRecord,
    json_text,
    metadata_to_json,
    same_metadata,
    same_value,
)
from catalogstore.settings import Settings
from catalogstore.storage.tree import Broken, StoredArtifact, list_namespaces, scan
from catalogstore.txn import mirror
from catalogstore.txn.workspace import Workspace

if TYPE_CHECKING:
    from sqlalchemy import Connection

_RECHECK = 100  # suspicious artifacts confirmed under one lock
_WHOLE_LISTING = 20  # above this, one listing of the namespace beats one per artifact


def verify(namespace: str | None = None, repair: bool = False, *, fast: bool = False,
           grace: float = DEFAULT_GRACE, settings: Settings | None = None) -> VerifyReport:
    """Compare the catalog with the storage and list every difference.

    Looks for artifacts and files missing on either side, sizes and (unless
    ``fast``) checksums that differ, ``.artifact.json`` files that are missing or
    differ from the catalog's metadata, committed changes whose storage step was
    not done (a writer killed after its commit), staged files older than
    ``grace`` that no commit references (a writer killed before its commit; on S3
    also unfinished multipart uploads, which no listing shows), and files of earlier
    versions whose bytes are gone (reported, never repaired). Each
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
    check_grace(grace)
    with own_workspace(settings) as ws, ws.storage_errors("verify the storage"):
        pending = pending_journal(ws, only)
        report.differences += [Difference("journal", ns, name, None, left, repaired=repair)
                               for (ns, name), left in sorted(pending.items())]
        report.differences += [Difference("unexpected", e.namespace, e.name, None,
                                          f"{e.problem}; left alone, nothing of it applied")
                               for e in refused_journal(ws, only)]
        in_storage, broken, _ = list_namespaces(ws.files)
        if only:
            report.namespaces = [only]
        else:
            report.differences += [unexpected(b) for b in broken]
            in_catalog = [ns for ns, _ in ws.catalog.list_namespaces()]
            refused = refused_names(in_catalog, "namespace")
            report.differences += [Difference("unexpected", ns, None, None, why)
                                   for ns, why in refused.items()]
            report.namespaces = sorted(set(in_storage) | set(in_catalog) - set(refused))
        # Reported as such, not as the missing or older file they show (issue 19); this
        # process's own queue is written first.
        mirror.drain_queued()
        mirrors = mirror.pending(ws, only)
        report.differences += [Difference("mirror-pending", ns, name, None, "the catalog holds "
                                          "the value; its files are not written yet",
                                          repaired=repair) for ns, name in mirrors]
        for ns in report.namespaces:
            _verify_namespace(ws, ns, report, {n for (p, n) in [*pending, *mirrors]
                                               if p == ns}, repair)
        report.differences += missing_kept(ws, only, {*pending, *mirrors})
        if repair:
            # Last, so that what it fixes was reported first; it also forgets the
            # entries found done, which a writer killed while applying one leaves,
            # and writes the pending mirrors.
            report.differences += [Difference("journal", None, None, stuck.path, stuck.reason)
                                   for stuck in recover(ws)[1]]
        orphans, report.staged_in_use, left = collect_orphans(ws, grace, remove=repair)
        report.differences += [Difference("unexpected", None, None, b.path, b.reason)
                               for b in left]
        report.differences += [Difference("orphan-staged", None, None, orphan.path,
                                          orphan.describe(), repair) for orphan in orphans]
    report.seconds = time.perf_counter() - started
    return report


def _verify_namespace(ws: Workspace, ns: str, report: VerifyReport, pending: set[str],
                      repair: bool) -> None:
    states = read_namespace(ws.catalog, ns)
    for name, why in refused_names(states, "artifact name").items():
        report.differences.append(Difference("unexpected", ns, name, None, why))
        del states[name]
    report.differences += refused_files(ns, states)
    try:
        stored, broken = scan(ws.files, ns)
    except ForeignEntryError as exc:
        report.differences.append(Difference("unexpected", ns, None, None, f"{exc}; the "
                                             "namespace is not compared"))
        return
    report.differences += [unexpected(b) for b in broken]
    # An artifact with a pending journal entry is reported as that entry: the other
    # differences it shows are the ones rolling the entry forward removes.
    names = sorted((set(states) | set(stored)) - pending)
    report.artifacts += len(names)
    first = _compare(ws, ns, names, states, stored, report.fast, report)
    suspicious = [n for n in names if first[n]]
    for group in chunks(suspicious, _RECHECK):
        with ws.locked((ns, n) for n in group) as conn:
            states = read_namespace(ws.catalog, ns, group)
            refused_files(ns, states)  # reported above
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
                    diffs = _repair_metadata(ws, conn, ns, name, states.get(name), diffs)
                report.differences += diffs


def _compare(ws: Workspace, ns: str, names: Sequence[str], states: dict[str, ArtifactState],
             stored: dict[str, StoredArtifact], fast: bool,
             counts: VerifyReport | None = None) -> dict[str, list[Difference]]:
    """The differences of each of ``names`` between ``states`` and ``stored``."""
    both = [n for n in names if n in states and n in stored]
    metas = read_metadatas(ws, ns, stored, both)
    wanted: dict[tuple[str, str], tuple[FileRecord | None, int]] = {}
    for name in both if not fast else ():
        for file, recorded in states[name].files.items():
            entry = stored[name].files.get(file)
            if entry is not None and entry.size == recorded.size:
                wanted[(name, file)] = (recorded, entry.size)
    hashed = hash_files(ws, ns, wanted)
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
        if found.foreign:  # reported as unexpected by the scan; left as it is
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
        if state.document != json_text(state.metadata):
            add("metadata-document", None, "artifacts.metadata_json disagrees with the "
                "artifact's artifact_metadata rows (edited by hand?): listings show the "
                "former; --repair writes it from the rows")
        meta = metas[name]
        if isinstance(meta, Broken):
            add("metadata-unreadable", METADATA_FILENAME, meta.reason)
        elif meta is None:
            add("metadata-missing", METADATA_FILENAME,
                f"the catalog has {len(state.metadata)} metadata key(s)")
        elif not same_metadata(meta, state.metadata):
            add("metadata-differs", METADATA_FILENAME, _metadata_change(state.metadata, meta))
    return result


def _repair_metadata(ws: Workspace, conn: Connection, ns: str, name: str,
                     state: ArtifactState | None, diffs: list[Difference]) -> list[Difference]:
    """Rewrite ``.artifact.json`` and the metadata document from the catalog's rows when
    they differ (under the lock, on its connection ``conn``); make the folder of an
    artifact without files that storage lacks (a creation whose storage step failed
    before creations were journalled, issue 13)."""
    kinds = {"metadata-missing", "metadata-unreadable", "metadata-differs", "metadata-document"}
    if state is not None and not state.files:
        kinds.add("missing-artifact")
    if state is None or not any(d.kind in kinds for d in diffs):
        return diffs
    if any(d.kind == "metadata-document" for d in diffs):
        with ws.catalog.writing(conn) as rows:
            rows.write_documents([(state.id, json_text(state.metadata))])
    if any(d.kind in kinds - {"metadata-document"} for d in diffs):
        folder = artifact_dir(ns, name)
        ws.files.makedirs(folder)
        ws.files.write_metadata(folder, metadata_to_json(state.metadata))
    return [Difference(d.kind, d.namespace, d.name, d.file, d.detail, d.kind in kinds)
            for d in diffs]


def _metadata_change(catalog: dict[str, Any], stored: dict[str, Any]) -> str:
    def show(value: Any) -> str:  # a string quoted as Python does, other values as JSON
        if isinstance(value, str):
            return repr(value if len(value) <= 40 else value[:37] + "...")
        text = json_text(value)
        return text if len(text) <= 40 else text[:37] + "..."

    parts = []
    for key in sorted(catalog.keys() | stored.keys()):
        if key not in stored:
            parts.append(f"{key!r} only in the catalog")
        elif key not in catalog:
            parts.append(f"{key!r} only in the file")
        elif not same_value(catalog[key], stored[key]):
            parts.append(f"{key!r}: catalog {show(catalog[key])}, file {show(stored[key])}")
    more = f"; and {len(parts) - 3} more" if len(parts) > 3 else ""
    return "; ".join(parts[:3]) + more
