"""What ``reindex``, ``verify`` and ``gc`` report: the kinds of difference, and one report each."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from catalogstore.storage.tree import Broken

KINDS = {
    "missing-artifact": "in the catalog, no folder in storage",
    "extra-artifact": "a folder in storage, not in the catalog (`catalogstore reindex` adds it)",
    "missing-file": "in the catalog, not in storage",
    "extra-file": "in storage, not in the catalog",
    "size": "size differs",
    "checksum": "content differs from the recorded checksum",
    "metadata-missing": ".artifact.json is missing",
    "metadata-unreadable": ".artifact.json is not a JSON object",
    "metadata-differs": ".artifact.json differs from the catalog's metadata",
    "metadata-document": "artifacts.metadata_json differs from the artifact's metadata rows",
    "unexpected": "an entry that breaks the layout or the naming rules",
    "journal": "a committed change whose storage step is not done",
    "mirror-pending": "a small object store value the catalog holds, whose file and "
                      ".artifact.json are not written yet (nothing is lost)",
    "orphan-staged": "a staged file (or an unfinished upload of one) that no commit references",
    "missing-version-file": "a file of an earlier version whose bytes are gone (no kept copy, "
                            "and the current version holds no file of that checksum)",
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
class Reclaimed:
    """What ``gc``'s retention removed (or, in a dry run, would remove) in one namespace."""

    versions: int = 0
    files: int = 0
    """Kept files freed (one per checksum and artifact)."""
    bytes: int = 0
    """Their sizes, as the storage listed them."""


@dataclass
class GcReport:
    """What :func:`gc` cleaned up (with ``dry_run``: what it would clean up)."""

    journal_entries: int = 0
    """Journal entries rolled forward (or found done and forgotten)."""
    removed: list[str] = field(default_factory=list)
    """Orphaned staged files removed, relative to the storage root."""
    stale_objects: list[str] = field(default_factory=list)
    """Object artifacts (``namespace/name``) a newer generation in cluster memory made
    stale, deleted."""
    bytes_removed: int = 0
    staged_in_use: int = 0
    left: list[Broken] = field(default_factory=list)
    """Entries of the staging area and of the kept versions' area left alone: foreign
    entries (links, FIFOs, ...), names catalogstore does not write there, journal
    entries that cannot be rolled forward."""
    retention: dict[str, Reclaimed] = field(default_factory=dict)
    """By namespace: the versions its retention policy let go and the kept bytes freed."""
    deleted_artifacts: Reclaimed = field(default_factory=Reclaimed)
    """Kept bytes of artifacts no longer in the catalog (a deletion killed half way)."""
    refused_policies: dict[str, str] = field(default_factory=dict)
    """Retention policy rows that break the rules (edited by hand), with why: their
    namespaces keep every version."""
    dry_run: bool = False

    @property
    def versions_removed(self) -> int:
        return sum(r.versions for r in self.retention.values())

    @property
    def bytes_freed(self) -> int:
        """Kept bytes freed, every namespace and deleted artifact."""
        return self.deleted_artifacts.bytes + sum(r.bytes for r in self.retention.values())

    @property
    def nothing_to_do(self) -> bool:
        return not (self.journal_entries or self.removed or self.stale_objects
                    or self.versions_removed or self.deleted_artifacts.files
                    or any(r.files for r in self.retention.values()))


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
