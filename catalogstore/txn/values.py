"""The object store's small values in the unit of work (issue 19).

Binds :mod:`catalogstore.catalog.inline` to a workspace: a put whose value the
catalog holds commits there alone and has its files written afterwards
(:mod:`catalogstore.txn.mirror`); a put by the artifact path keeps the bytes in the
catalog in its own commit, so that later puts of the key take the short path and
every version of the value stays readable from the catalog.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from catalogstore.catalog import inline
from catalogstore.catalog.inline import InlineValue
from catalogstore.txn import mirror, runs

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
    """See :func:`catalogstore.catalog.inline.put_value`; once committed, the files are
    queued for the background writer."""
    lineage = runs.recording(workspace)
    done, previous = inline.put_value(workspace.catalog, namespace, key, file_name, data,
                                      checksum, metadata, record, lineage)
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
