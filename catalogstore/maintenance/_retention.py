"""The kept bytes of earlier versions: ``gc``'s retention, ``verify``'s check of them.

Retention: expired versions go, then the kept bytes nothing references.

Two phases, rows first and bytes after, so that a run killed anywhere leaves nothing
that a later run does not find:

1. :func:`expire_versions` deletes the versions each namespace's policy lets go
   (:mod:`catalogstore.catalog.retention`), a page at a time, one small transaction
   each.
2. :func:`collect_kept` lists ``.catalogstore/versions/`` (paginated on S3) and frees
   each kept file whose checksum no version row of its artifact references any more,
   the current version's included, and the files of artifact ids the catalog no longer
   has (an artifact deleted by a process killed before it removed them). An
   artifact's files are freed under its lock, with its rows read again there: a
   commit keeping bytes of its own (which it does under that lock, after its commit)
   either committed before, and its rows are seen, or finds the file gone and keeps
   it again.

Entries that no commit makes (a name that is no ``{algorithm}-{hex}``, a folder
whose name is no artifact id, links, FIFOs, ...) are reported and left alone.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from catalogstore.batching import chunks
from catalogstore.catalog.retention import (
    KeptOf,
    Pair,
    delete_versions,
    effective_policy,
    expired_page,
    kept_of,
    needed_kept,
    retention_policies,
)
from catalogstore.errors import InvalidNameError
from catalogstore.maintenance._reports import Difference, Reclaimed
from catalogstore.names import (
    VERSIONS_DIR,
    kept_artifact_id,
    kept_checksum,
    version_blob,
    version_dir,
)
from catalogstore.storage.tree import (
    Broken,
    Entry,
    forget_cached,
    list_entries,
    remove_empty_folder,
)
from catalogstore.txn.workspace import Workspace

PAGE = 500
"""Expired versions deleted per transaction, and artifact ids read per query."""
LOCKED = 100
"""Artifacts whose kept files are freed under one hold of their locks."""


def expire_versions(ws: Workspace, now: datetime, *, remove: bool
                    ) -> tuple[dict[str, int], dict[int, set[int]], dict[str, str]]:
    """The number of versions each namespace's policy lets go as of ``now`` (deleted
    when ``remove``), those versions by artifact id (only when not ``remove``: a dry
    run's byte count leaves them out), and the policy rows refused (namespace: why)."""
    policies, refused = retention_policies(ws.catalog)
    counts: dict[str, int] = {}
    leaving: dict[int, set[int]] = defaultdict(set)
    for namespace, _ in ws.catalog.list_namespaces():
        policy = effective_policy(policies, refused, namespace)
        after: Pair | None = None
        while page := expired_page(ws.catalog, namespace, policy, now, after, PAGE):
            after = page[-1]
            if remove:
                gone = delete_versions(ws.catalog, page)
            else:
                gone = len(page)
                for artifact_id, version in page:
                    leaving[artifact_id].add(version)
            if gone:
                counts[namespace] = counts.get(namespace, 0) + gone
    return counts, dict(leaving), refused


@dataclass
class _Kept:
    """What the listing shows of one artifact id's folder."""

    files: dict[str, tuple[str, Entry]] = field(default_factory=dict)
    """Kept files by checksum: their path and listed size."""
    folder: bool = False
    """A real folder (local disk), removed once empty."""


@dataclass
class KeptReport:
    """What :func:`collect_kept` freed (or would free)."""

    by_namespace: dict[str, Reclaimed] = field(default_factory=dict)
    deleted_artifacts: Reclaimed = field(default_factory=Reclaimed)
    left: list[Broken] = field(default_factory=list)


def list_kept(ws: Workspace) -> tuple[dict[int, _Kept], list[Broken]]:
    """The kept files by artifact id, and every other entry of the area, reported."""
    files, folders, left = list_entries(ws.files, VERSIONS_DIR, 2)
    found: dict[int, _Kept] = defaultdict(_Kept)
    odd_folders: set[str] = set()
    for rel in sorted(folders):
        top, _, below = rel.partition("/")
        artifact_id = kept_artifact_id(top)
        if artifact_id is None:
            odd_folders.add(top)
        elif below:
            left.append(Broken(f"{VERSIONS_DIR}/{rel}/", "a folder where only kept files "
                               "belong: left alone"))
        else:
            found[artifact_id].folder = True
    for rel, entry in sorted(files.items()):
        top, _, name = rel.partition("/")
        artifact_id = kept_artifact_id(top) if name else None
        if artifact_id is None and name:
            odd_folders.add(top)
            continue
        if artifact_id is None:
            left.append(Broken(f"{VERSIONS_DIR}/{rel}", "a file where only folders of "
                               "artifact ids belong: left alone"))
            continue
        checksum = kept_checksum(name)
        if checksum is None:
            left.append(Broken(f"{VERSIONS_DIR}/{rel}", "not a name catalogstore keeps "
                               "bytes under: left alone"))
            continue
        found[artifact_id].files[checksum] = (f"{version_dir(artifact_id)}/{name}", entry)
    left += [Broken(f"{VERSIONS_DIR}/{top}/", "not the folder of an artifact id: left "
                    "alone") for top in sorted(odd_folders)]
    return dict(found), left


def _unreferenced(kept: _Kept, of: KeptOf | None, leaving: Iterable[int]
                  ) -> list[tuple[str, Entry]]:
    referenced = set() if of is None else of.referenced(leaving)
    return [pair for checksum, pair in kept.files.items() if checksum not in referenced]


def collect_kept(ws: Workspace, leaving: dict[int, set[int]], *, remove: bool) -> KeptReport:
    """Free (when ``remove``) the kept files that no version row references, but the
    versions ``leaving`` (a dry run's expired ones), and count them per namespace."""
    report = KeptReport()
    listed, report.left = list_kept(ws)
    # The rows are read after the listing: files kept by commits meanwhile are seen.
    ids = sorted(listed)
    known: dict[int, KeptOf] = {}
    for chunk in chunks(ids, PAGE):
        known.update(kept_of(ws.catalog, chunk))
    # Artifacts gone from the catalog: ids are never handed out twice, so no writer
    # keeps bytes there any more.
    _free(ws, report, [i for i in ids if i not in known], {}, listed, {}, remove)
    candidates = [i for i in ids if i in known
                  and _unreferenced(listed[i], known[i], leaving.get(i, ()))]
    for group in chunks(candidates, LOCKED):
        if not remove:
            _free(ws, report, group, known, listed, leaving, remove)
            continue
        with ws.locked((known[i].namespace, known[i].name) for i in group):
            _free(ws, report, group, kept_of(ws.catalog, group), listed, {}, remove)
    return report


def _free(ws: Workspace, report: KeptReport, group: Sequence[int], rows: dict[int, KeptOf],
          listed: dict[int, _Kept], leaving: dict[int, set[int]], remove: bool) -> None:
    """Remove (when ``remove``) the listed files of each artifact id of ``group`` that
    its ``rows`` (none: the artifact is gone) do not reference but through the versions
    ``leaving``, count them, then remove the artifact's local folder if left empty."""
    doomed = {i: _unreferenced(listed[i], rows.get(i), leaving.get(i, ())) for i in group}
    paths = [path for files in doomed.values() for path, _ in files]
    refused = set(ws.files.remove_all(paths)) if remove else set()
    for artifact_id, files in doomed.items():
        of = rows.get(artifact_id)
        where = report.deleted_artifacts if of is None else \
            report.by_namespace.setdefault(of.namespace, Reclaimed())
        for path, entry in files:
            if path in refused:
                report.left.append(Broken(path, "no longer a regular file: left alone"))
            else:
                where.files += 1
                where.bytes += entry.size
        if remove and listed[artifact_id].folder:
            # Swapped for something else meanwhile: the next listing reports it.
            with contextlib.suppress(OSError):
                remove_empty_folder(ws.files, version_dir(artifact_id))


def missing_kept(ws: Workspace, namespace: str | None, pending: set[tuple[str, str]]
                 ) -> list[Difference]:
    """The files of earlier versions (of ``namespace``, or all) whose bytes are gone,
    confirmed under their artifacts' locks (a commit keeps the bytes it replaces after
    its commit point, under the lock), and the entries of the area left alone.
    Artifacts in ``pending`` (their journal entry keeps the bytes) are not checked."""
    listed, left = list_kept(ws)
    found = [Difference("unexpected", None, None, b.path, b.reason) for b in left]
    suspicious = {n.artifact_id: (n.namespace, n.name) for n in needed_kept(ws.catalog, namespace)
                  if (n.namespace, n.name) not in pending
                  and n.checksum not in listed.get(n.artifact_id, _Kept()).files}
    for group in chunks(sorted(suspicious), LOCKED):
        with ws.locked(suspicious[i] for i in group):
            missing: dict[tuple[str, str, str, str], list[int]] = defaultdict(list)
            there: dict[tuple[int, str], bool] = {}
            for need in needed_kept(ws.catalog, artifact_ids=group):
                key = (need.artifact_id, need.checksum)
                if key not in there:
                    there[key] = _is_kept(ws, *key)
                if not there[key]:
                    missing[(need.namespace, need.name, need.file, need.checksum)].append(
                        need.version)
        found += [Difference("missing-version-file", ns, name, file, _missing(versions, checksum))
                  for (ns, name, file, checksum), versions in missing.items()]
    return found


def _is_kept(ws: Workspace, artifact_id: int, checksum: str) -> bool:
    """Whether the kept copy of ``checksum`` is there (a checksum row that breaks the
    rules, edited by hand, never becomes a path: it counts as missing)."""
    try:
        path = version_blob(artifact_id, checksum)
    except InvalidNameError:
        return False
    forget_cached(ws.files, version_dir(artifact_id))
    return ws.files.exists(path)


def _missing(versions: list[int], checksum: str) -> str:
    listed = ", ".join(f"v{v}" for v in versions)
    return (f"{listed}: its bytes ({checksum[:48]}) have no kept copy under {VERSIONS_DIR}/ "
            "and the current version holds no file of that checksum; reads of it fail")
