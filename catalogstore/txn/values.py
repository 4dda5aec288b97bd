"""The object store's small values in the unit of work (issue 19).

Binds :mod:`catalogstore.catalog.inline` to a workspace: a put of a new key, or of
a key whose value the catalog holds, commits there alone and has its files written
afterwards (:mod:`catalogstore.txn.mirror`); a put by the artifact path (over a
value in a file) keeps the bytes in the catalog in its own commit, so that later
puts of the key take the short path and every version of the value stays readable
from the catalog.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from catalogstore.catalog import inline, objects
from catalogstore.catalog.inline import InlineValue
from catalogstore.names import artifact_dir
from catalogstore.storage.staged import StagedFile
from catalogstore.txn import mirror, runs
from catalogstore.txn.changeset import Changeset
from catalogstore.txn.commit import write_rows

if TYPE_CHECKING:
    from catalogstore.catalog.catalog import Writes
    from catalogstore.catalog.objects import ObjectRecord
    from catalogstore.txn.batch import Batch
    from catalogstore.txn.workspace import Workspace

__all__ = ["InlineValue", "keep_with", "put", "read", "read_kept"]


def read(workspace: Workspace, namespace: str, key: str,
         signature_key: str) -> InlineValue | None:
    """See :func:`catalogstore.catalog.inline.read_value`."""
    return inline.read_value(workspace.catalog, namespace, key, signature_key)


def read_kept(workspace: Workspace, artifact_id: int, checksum: str) -> bytes | None:
    """See :func:`catalogstore.catalog.inline.read_kept`."""
    return inline.read_kept(workspace.catalog, artifact_id, checksum)


def put(workspace: Workspace, namespace: str, key: str, file_name: str, data: bytes,
        checksum: str, metadata: Mapping[str, Any],
        record: Callable[[int], ObjectRecord]) -> tuple[bool, ObjectRecord | None]:
    """See :func:`catalogstore.catalog.inline.put_value`; a key without an artifact gets
    one as any commit creates it (names checked for case variants, its first version,
    the run's output) with the bytes kept here and no journal entry. Once committed,
    the files are queued for the background writer."""
    lineage = runs.recording(workspace)

    def add(writes: Writes, artifact_id: int) -> None:
        objects.upsert(writes.conn, record(artifact_id), writes.now)
        inline.keep(writes, artifact_id, checksum, data, mirrored=False)

    def create(writes: Writes) -> None:
        created = Changeset(namespace, key, create=True, written_by_mirror=True,
                            meta_set=dict(metadata), rows=[add])
        # The file's own path: no staged file, nothing to move.
        created.writes[file_name] = StagedFile(f"{artifact_dir(namespace, key)}/{file_name}",
                                               len(data), checksum, None)
        write_rows(writes, [created], lineage=lineage)
    done, previous = inline.put_value(workspace.catalog, namespace, key, file_name, data,
                                      checksum, metadata, record, lineage, create)
    if done:
        if lineage is not None:
            lineage.done()
        mirror.schedule(workspace, namespace, key)
    return done, previous


def keep_with(batch: Batch, namespace: str, key: str, checksum: str, data: bytes) -> None:
    """Keep ``data`` in the catalog as a value of the artifact ``namespace/key``, in the
    commit of ``batch`` that writes it as that artifact's file too."""
    def add(writes: Writes, artifact_id: int) -> None:
        inline.keep(writes, artifact_id, checksum, data, mirrored=True)
    batch.changeset(namespace, key).rows.append(add)
