"""Creating, finding and listing artifacts: the code behind both the module functions
of :mod:`catalogstore.artifacts` and Flowdapt's classmethods on
:class:`~catalogstore.artifacts.Artifact` (``Artifact.new_artifact`` ...).

Each function takes the class to build handles with (``cls``), so that this module
needs no import of :mod:`catalogstore.artifacts.artifact` at run time (which calls
into it), and the workspace of the storage the call names
(:mod:`catalogstore.artifacts.roots`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from catalogstore.context import current_namespace
from catalogstore.errors import ArtifactExistsError, ArtifactNotFoundError
from catalogstore.names import validate_name
from catalogstore.txn.batch import current_batch
from catalogstore.txn.changeset import Changeset

if TYPE_CHECKING:
    from catalogstore.artifacts.artifact import Artifact
    from catalogstore.record import ArtifactRecord
    from catalogstore.txn.workspace import Workspace

__all__ = ["does_exist", "get", "new", "search"]


def namespace_of(workspace: Workspace, namespace: str) -> str:
    """``namespace``, checked, or the current one of the workspace's settings."""
    return current_namespace(namespace, workspace.settings)


def resolve(workspace: Workspace, name: str, namespace: str) -> tuple[str, str]:
    """The namespace (default: the current one) and the checked name."""
    return namespace_of(workspace, namespace), validate_name(name)


def new(cls: type[Artifact], workspace: Workspace, name: str, namespace: str) -> Artifact:
    """Create the artifact ``name``; see :func:`catalogstore.artifacts.new_artifact`."""
    ns, name = resolve(workspace, name, namespace)
    batch = current_batch(workspace)
    if batch is not None:
        cs = batch.changeset(ns, name)
        if cs.create:
            raise ArtifactExistsError(f"artifact {name!r} is already created in this transaction")
        # An artifact that exists in the catalog makes the batch's commit fail as a whole
        # (the unique constraint decides, so concurrent creators cannot both win).
        cs.create = True
        return cls(workspace, None, namespace=ns, name=name)
    artifact = cls(workspace, None, namespace=ns, name=name)
    artifact._commit([Changeset(ns, name, create=True)])
    return artifact


def get(cls: type[Artifact], workspace: Workspace, name: str, namespace: str, *,
        create: bool = False) -> Artifact:
    """The artifact ``name``; see :func:`catalogstore.artifacts.get_artifact`."""
    ns, name = resolve(workspace, name, namespace)
    record = workspace.catalog.get_artifact(ns, name)
    if record is not None:
        return cls(workspace, record, namespace=ns, name=name)
    batch = current_batch(workspace)
    if batch is not None and batch.changeset(ns, name).create:
        return cls(workspace, None, namespace=ns, name=name)
    if create:
        try:
            return new(cls, workspace, name, ns)
        except ArtifactExistsError:  # created by someone else meanwhile: use theirs
            return get(cls, workspace, name, ns)
    raise ArtifactNotFoundError(f"artifact {name!r} does not exist in namespace {ns!r}")


def does_exist(workspace: Workspace, name: str, namespace: str) -> bool:
    """Whether the catalog has the artifact ``name`` in ``namespace``."""
    ns, name = resolve(workspace, name, namespace)
    return workspace.catalog.get_artifact(ns, name) is not None


def search(cls: type[Artifact], workspace: Workspace, filter: str | None, *,
           where: dict[str, Any] | None, namespaces: str | Iterable[str],
           order_by: str | None, limit: int | None,
           after: str | None) -> tuple[list[Artifact], str | None]:
    """The artifacts one compiled search finds, and the cursor of the next page."""
    from catalogstore.catalog.query.compile import compile_search

    search = compile_search(filter, dialect=workspace.catalog.engine.dialect.name,
                            where=where, namespaces=namespaces, order_by=order_by,
                            limit=limit, after=after)
    records, cursor = workspace.catalog.search(search)
    return [_handle(cls, workspace, record) for record in records], cursor


def _handle(cls: type[Artifact], workspace: Workspace, record: ArtifactRecord) -> Artifact:
    return cls(workspace, record, namespace=record.namespace, name=record.name)


def storage_of(protocol: str, base_path: str, params: dict[str, Any]) -> Workspace:
    """The workspace of a per-call storage (:mod:`catalogstore.artifacts.roots`)."""
    from catalogstore.artifacts.roots import storage_workspace

    return storage_workspace(protocol, base_path, params)
