"""The catalog half of a commit: changesets turned into rows, and the journal written with them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from catalogstore.catalog.collisions import WrittenFiles
from catalogstore.errors import ArtifactNotFoundError
from catalogstore.record import ArtifactRecord, metadata_document
from catalogstore.txn.changeset import Changeset
from catalogstore.txn.journal import journal_payload, needs_entry
from catalogstore.txn.runs import Recording

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from catalogstore.catalog.catalog import Catalog, Writes


@dataclass(frozen=True)
class Committed:
    """What a commit did for one changeset, for the storage step that follows it."""

    changeset: Changeset
    artifact_id: int
    metadata: dict[str, Any] | None
    """The artifact's full metadata after the commit, when ``.artifact.json`` must change."""
    journal_id: int | None
    created: ArtifactRecord | None = None
    """The new catalog entry, for a changeset that created its artifact."""
    kept: tuple[tuple[str, str], ...] = ()
    """(file name, checksum) of each committed file the change replaces or removes:
    the storage step keeps its bytes for the earlier versions that hold it (issue 15)."""


def commit_rows(catalog: Catalog, conn: Connection, changesets: Sequence[Changeset], *,
                journal: bool = True, lineage: Recording | None = None) -> list[Committed]:
    """Apply ``changesets`` to the catalog in one database transaction on ``conn``
    (from :meth:`Catalog.locked`).

    Its commit is the commit point of the changes: the journal rows it writes let
    a crash after it be rolled forward. With ``journal=False`` no storage step
    follows (``reindex`` records what storage already holds), so there is nothing
    to roll forward, no row is written and names are not checked for case variants.
    ``lineage``: the current run's edges, one output row per version made (issue 16).
    """
    with catalog.writing(conn) as rows:
        done = write_rows(rows, changesets, journal=journal, lineage=lineage)
    return done


def write_rows(rows: Writes, changesets: Sequence[Changeset], *, journal: bool = True,
               lineage: Recording | None = None) -> list[Committed]:
    """:func:`commit_rows` inside a transaction that ``rows`` writes already."""
    ids = _resolve_ids(rows, changesets)
    for cs in changesets:
        for add_rows in cs.rows:
            add_rows(rows, ids[id(cs)])
    created = _created(changesets)
    live = [cs for cs in changesets if not cs.delete]
    if journal:  # reindex records the folders storage has, even case variants
        rows.check_case_collisions(created, [
            WrittenFiles(ids[id(cs)], cs.namespace, cs.name, cs.create, cs.writes, cs.removes)
            for cs in live if cs.writes])
    rows.delete_artifacts([ids[id(cs)] for cs in changesets if cs.delete])
    rows.touch([ids[id(cs)] for cs in live if not cs.create])
    versioned = [cs for cs in live if cs.makes_version]
    by_id = {ids[id(cs)]: cs for cs in versioned}
    # Read before the writes below replace them; a file rewritten with the same bytes
    # stays where it is.
    kept = {artifact_id: [(name, checksum) for name, checksum in found
                          if name not in by_id[artifact_id].writes
                          or by_id[artifact_id].writes[name].checksum != checksum]
            for artifact_id, found in rows.replaced_files({
                ids[id(cs)]: cs.writes.keys() | cs.removes for cs in versioned
                if not cs.create and (cs.writes or cs.removes)}).items()}
    rows.write_files([(ids[id(cs)], name, f.size, f.checksum, f.encoding, f.modified)
                      for cs in live for name, f in cs.writes.items()])
    rows.remove_files([(ids[id(cs)], name) for cs in live for name in cs.removes])
    rows.set_metadata([(ids[id(cs)], k, v) for cs in live for k, v in cs.meta_set.items()])
    rows.delete_metadata([(ids[id(cs)], k) for cs in live for k in cs.meta_del])
    # A new artifact's metadata is exactly what the changeset sets: no read needed.
    metas = rows.read_metadata(
        [ids[id(cs)] for cs in live if cs.touches_metadata and not cs.create])
    rows.write_documents([(artifact_id, metadata_document(meta))
                          for artifact_id, meta in metas.items()])
    rows.new_versions([ids[id(cs)] for cs in versioned if not cs.create],
                      [ids[id(cs)] for cs in versioned])
    if lineage is not None:
        lineage.write(rows.conn, rows.now, [ids[id(cs)] for cs in versioned])
    journal_ids: dict[int, int] = {}
    if journal:
        needing = [cs for cs in changesets if needs_entry(cs)]
        added = rows.add_journal([(cs.namespace, cs.name,
                                   journal_payload(cs, kept.get(ids[id(cs)], ())))
                                  for cs in needing])
        journal_ids = {id(cs): entry for cs, entry in zip(needing, added, strict=True)}
        # Last: on PostgreSQL it locks the namespaces until the commit.
        rows.check_new_namespaces(created, {cs.namespace for cs in changesets if cs.delete})
    now = rows.now
    committed = []
    for cs in changesets:
        artifact_id = ids[id(cs)]
        meta = dict(cs.meta_set) if cs.create else metas.get(artifact_id)
        new = ArtifactRecord(artifact_id, cs.namespace, cs.name, now, now,
                             dict(cs.meta_set)) if cs.create else None
        committed.append(Committed(cs, artifact_id, None if cs.delete else meta,
                                   journal_ids.get(id(cs)), new,
                                   tuple(kept.get(artifact_id, ()))))
    return committed


def _resolve_ids(rows: Writes, changesets: Sequence[Changeset]) -> dict[int, int]:
    """Artifact ids by ``id(changeset)``, inserting the artifacts to create."""
    ids: dict[int, int] = {}
    existing = [cs for cs in changesets if not cs.create]
    by_ns: dict[str, list[str]] = defaultdict(list)
    for cs in existing:
        by_ns[cs.namespace].append(cs.name)
    found = rows.find_ids(by_ns) if by_ns else {}
    for cs in existing:
        found_id = found.get((cs.namespace, cs.name))
        if found_id is None or cs.artifact_id not in (None, found_id):
            raise ArtifactNotFoundError(
                f"artifact {cs.name!r} does not exist in namespace {cs.namespace!r} "
                "(deleted by someone else?)")
        ids[id(cs)] = found_id
    to_create = [cs for cs in changesets if cs.create]
    new_ids = rows.insert_artifacts([(cs.namespace, cs.name, metadata_document(cs.meta_set))
                                     for cs in to_create])
    for cs, artifact_id in zip(to_create, new_ids, strict=True):
        ids[id(cs)] = artifact_id
    return ids


def _created(changesets: Sequence[Changeset]) -> dict[str, list[str]]:
    """The names of the artifacts a commit creates, by namespace."""
    created: dict[str, list[str]] = defaultdict(list)
    for cs in changesets:
        if cs.create:
            created[cs.namespace].append(cs.name)
    return created
