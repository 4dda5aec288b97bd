"""The object store's records in the unit of work: the current generation of each key.

The rows live in the catalog (:mod:`catalogstore.catalog.objects`); this module
binds them to a :class:`~catalogstore.txn.workspace.Workspace` and to its commits,
so that a put's record commits with the object's file rows, in one database
transaction (issue 12: provenance is what this store's own put committed; issue
13: every put and delete moves the key's one current generation).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from catalogstore.catalog import objects as rows
from catalogstore.catalog.objects import ADOPTED, ARTIFACT, CLUSTER_MEMORY, PUT, ObjectRecord
from catalogstore.errors import CatalogStoreError
from catalogstore.txn import runs
from catalogstore.txn.changeset import Changeset

if TYPE_CHECKING:
    from catalogstore.catalog.catalog import Writes
    from catalogstore.record import ArtifactRecord
    from catalogstore.txn.batch import Batch
    from catalogstore.txn.workspace import Workspace

__all__ = ["ADOPTED", "ARTIFACT", "CLUSTER_MEMORY", "PUT", "ObjectRecord", "Superseded",
           "commit_with", "delete_with", "lock", "read", "read_with_artifact",
           "stale_artifact_removal", "stale_artifacts", "write"]


class Superseded(CatalogStoreError):
    """A conditional change found that the key has moved on: nothing was committed."""


def read(workspace: Workspace, namespace: str, key: str) -> ObjectRecord | None:
    """The key's current record, if any."""
    return rows.read(workspace.catalog, namespace, key)


def read_with_artifact(workspace: Workspace, namespace: str,
                       key: str) -> tuple[ObjectRecord | None, ArtifactRecord | None]:
    """See :func:`catalogstore.catalog.objects.read_with_artifact`."""
    return rows.read_with_artifact(workspace.catalog, namespace, key)


def write(workspace: Workspace, record: ObjectRecord, *, only_if: str | None = None,
          drop: bool = False, output: bool = False) -> ObjectRecord | None:
    """See :func:`catalogstore.catalog.objects.write`. ``output``: the generation is an
    output of the current run (a value put in cluster memory: issue 16), one more row in
    the same transaction."""
    lineage = runs.recording(workspace) if output else None
    if lineage is None:
        return rows.write(workspace.catalog, record, only_if=only_if, drop=drop)
    edge = runs.object_edge(record.namespace, record.key, record.generation)
    previous = rows.write(workspace.catalog, record, only_if=only_if, drop=drop,
                          also=lambda conn, now: lineage.write(conn, now, objects=[edge]))
    lineage.done()
    return previous


@contextlib.contextmanager
def lock(workspace: Workspace, namespace: str, key: str) -> Iterator[None]:
    """See :func:`catalogstore.catalog.objects.object_lock`."""
    with rows.object_lock(workspace.catalog, namespace, key):
        yield


def commit_with(batch: Batch, namespace: str, key: str,
                record: Callable[[int], ObjectRecord], *,
                only_if: str | None = None) -> None:
    """Make ``record(artifact id)`` the key's record in the commit of ``batch``, which
    changes the artifact ``namespace/key`` (one statement). With ``only_if``, abort that
    commit with :class:`Superseded` unless the key's current generation is that one."""
    def add(writes: Writes, artifact_id: int) -> None:
        if only_if is not None:
            current = rows.read_in(writes.conn, namespace, key)
            if current is None or current.generation != only_if:
                raise Superseded(f"object {namespace}/{key} changed meanwhile")
        rows.upsert(writes.conn, record(artifact_id), writes.now)
    batch.changeset(namespace, key).rows.append(add)


def delete_with(batch: Batch, namespace: str, key: str, *,
                only_if: str | None = None) -> None:
    """Forget the key in the commit of ``batch``; with ``only_if``, abort that commit with
    :class:`Superseded` unless the key's current generation is that one."""
    batch.changeset(namespace, key).rows.append(_forget(namespace, key, only_if))


def _forget(namespace: str, key: str, only_if: str | None) -> Callable[[Writes, int], None]:
    def drop(writes: Writes, _artifact_id: int) -> None:
        current = rows.read_in(writes.conn, namespace, key)
        if only_if is not None:
            if current is None or current.generation != only_if:
                raise Superseded(f"object {namespace}/{key} changed meanwhile")
            return  # the current record is another tier's: it stays
        if current is not None:
            rows.remove(writes.conn, namespace, key)
    return drop


def stale_artifact_removal(namespace: str, key: str, artifact_id: int,
                           generation: str) -> Changeset:
    """The deletion of the object artifact ``artifact_id`` that an older generation of
    the key left (:func:`catalogstore.catalog.objects.stale_artifacts`): its commit is
    aborted with :class:`Superseded` unless ``generation`` is still current (the key's
    record stays), and refused if the name now belongs to another artifact."""
    cs = Changeset(namespace, key, delete=True, artifact_id=artifact_id)
    cs.rows.append(_forget(namespace, key, generation))
    return cs


def stale_artifacts(workspace: Workspace) -> list[tuple[str, str, int, str]]:
    """See :func:`catalogstore.catalog.objects.stale_artifacts`."""
    return rows.stale_artifacts(workspace.catalog)
