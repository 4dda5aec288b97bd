"""What a transaction changes in one artifact, collected until it commits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from catalogstore.storage.staged import StagedFile

if TYPE_CHECKING:
    from catalogstore.catalog.catalog import Writes


@dataclass
class Changeset:
    """The pending changes of one artifact.

    Later changes replace earlier ones to the same file or key, so a changeset
    always describes the end state of the block that made it.
    """

    namespace: str
    name: str
    create: bool = False
    delete: bool = False
    writes: dict[str, StagedFile] = field(default_factory=dict)
    removes: set[str] = field(default_factory=set)
    meta_set: dict[str, Any] = field(default_factory=dict)
    meta_del: set[str] = field(default_factory=set)
    artifact_id: int | None = None
    """The id of the artifact the handle that made the changes was loaded on, if any: the
    commit refuses them (:class:`~catalogstore.errors.ArtifactNotFoundError`) when the
    name now belongs to another artifact (ids are never reused, issue 13)."""
    staged_folder: str | None = None
    """For an artifact this changeset creates on local disk: the folder of the staging
    area its files are written into, renamed into place whole after the commit, so
    the artifact's folder appears with its files and ``.artifact.json`` at once
    (and costs the file system less than moving each file)."""
    written_by_mirror: bool = False
    """Its files and ``.artifact.json`` are written after the commit from the bytes the
    catalog keeps (:mod:`catalogstore.txn.mirror`, a small object store value): no
    storage step follows, so no journal entry is written."""
    rows: list[Callable[[Writes, int], None]] = field(default_factory=list)
    """More rows to write in the commit's database transaction, given the artifact's id
    (the object store's record of a key, issue 13); one that raises aborts the commit."""

    def write(self, name: str, staged: StagedFile) -> StagedFile | None:
        """Record a write; returns the staged file it replaces, if any."""
        self.removes.discard(name)
        previous = self.writes.get(name)
        self.writes[name] = staged
        return previous

    def remove(self, name: str) -> StagedFile | None:
        """Record a removal; returns the staged write it cancels, if any."""
        self.removes.add(name)
        return self.writes.pop(name, None)

    def set_meta(self, key: str, value: Any) -> None:
        self.meta_del.discard(key)
        self.meta_set[key] = value

    def del_meta(self, key: str) -> None:
        self.meta_set.pop(key, None)
        self.meta_del.add(key)

    @property
    def touches_metadata(self) -> bool:
        return self.create or bool(self.meta_set or self.meta_del)

    @property
    def makes_version(self) -> bool:
        """Whether committing it makes a new version: it creates the artifact or changes
        its files or metadata (rows alone, or a deletion, do not)."""
        return not self.delete and bool(self.create or self.writes or self.removes
                                        or self.meta_set or self.meta_del)

    @property
    def is_empty(self) -> bool:
        # Rows alone (an object record over files that Dask workers committed) count.
        return not (self.create or self.delete or self.writes or self.removes
                    or self.meta_set or self.meta_del or self.rows)

    def staged_files(self) -> list[StagedFile]:
        return list(self.writes.values())
