"""Artifacts: named containers of files plus key/value metadata on any fsspec storage.

Laid out as Flowdapt lays them out, ``{storage_url}/artifacts/{namespace}/{name}/``
with the metadata mirrored in ``.artifact.json``, and indexed by the SQL catalog.

Examples
--------
>>> from catalogstore.artifacts import new_artifact, get_artifact   # doctest: +SKIP
>>> artifact = new_artifact("my_artifact")                          # doctest: +SKIP
>>> artifact.new_file("my_file", content="Hello, World!").read()     # doctest: +SKIP
'Hello, World!'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from catalogstore.artifacts.artifact import Artifact, ArtifactFile
from catalogstore.batch import current_batch
from catalogstore.changes import Changeset
from catalogstore.context import current_namespace
from catalogstore.errors import ArtifactExistsError, ArtifactNotFoundError
from catalogstore.names import validate_meta_key, validate_name

if TYPE_CHECKING:
    from catalogstore.workspace import Workspace

__all__ = [
    "Artifact",
    "ArtifactFile",
    "artifact_exists",
    "get_artifact",
    "list_artifacts",
    "new_artifact",
]


def get_workspace() -> Workspace:
    from catalogstore.workspace import get_workspace as _get_workspace

    return _get_workspace()


def _resolve(name: str, namespace: str) -> tuple[Workspace, str, str]:
    workspace = get_workspace()
    ns = current_namespace(namespace, workspace.settings)
    return workspace, ns, validate_name(name)


def new_artifact(name: str, namespace: str = "") -> Artifact:
    """Create the artifact ``name`` in ``namespace`` (default: the current namespace).

    Raises
    ------
    ArtifactExistsError
        (a ``FileExistsError``) when the namespace has an artifact of that name.
    InvalidNameError
        when ``name`` or ``namespace`` breaks the naming rules.
    """
    workspace, ns, name = _resolve(name, namespace)
    batch = current_batch(workspace)
    if batch is not None:
        cs = batch.changeset(ns, name)
        if cs.create:
            raise ArtifactExistsError(f"artifact {name!r} is already created in this transaction")
        # An artifact that exists in the catalog makes the batch's commit fail as a whole
        # (the unique constraint decides, so concurrent creators cannot both win).
        cs.create = True
        return Artifact(workspace, None, namespace=ns, name=name)
    artifact = Artifact(workspace, None, namespace=ns, name=name)
    artifact._commit([Changeset(ns, name, create=True)])
    return artifact


def get_artifact(name: str, namespace: str = "", *, create: bool = False) -> Artifact:
    """The artifact ``name`` of ``namespace`` (default: the current namespace).

    Parameters
    ----------
    create
        Create the artifact when it does not exist, instead of raising.

    Raises
    ------
    ArtifactNotFoundError
        (a ``FileNotFoundError``) when there is no such artifact and ``create`` is false.
    """
    workspace, ns, name = _resolve(name, namespace)
    record = workspace.catalog.get_artifact(ns, name)
    if record is not None:
        return Artifact(workspace, record, namespace=ns, name=name)
    batch = current_batch(workspace)
    if batch is not None and batch.changeset(ns, name).create:
        return Artifact(workspace, None, namespace=ns, name=name)
    if create:
        try:
            return new_artifact(name, ns)
        except ArtifactExistsError:  # created by someone else meanwhile: use theirs
            return get_artifact(name, ns)
    raise ArtifactNotFoundError(f"artifact {name!r} does not exist in namespace {ns!r}")


def artifact_exists(name: str, namespace: str = "") -> bool:
    """Whether the catalog has the artifact ``name`` in ``namespace``."""
    workspace, ns, name = _resolve(name, namespace)
    return workspace.catalog.get_artifact(ns, name) is not None


def list_artifacts(namespace: str = "", *, where: dict[str, str] | None = None,
                   all_namespaces: bool = False) -> list[Artifact]:
    """The artifacts of ``namespace``, by name, read from the catalog only.

    Parameters
    ----------
    where
        Keep the artifacts whose metadata has each of these key/value pairs.
    all_namespaces
        List every namespace instead of one.
    """
    workspace = get_workspace()
    ns = None if all_namespaces else current_namespace(namespace, workspace.settings)
    for key in where or {}:
        validate_meta_key(key)
    return [Artifact(workspace, record, namespace=record.namespace, name=record.name)
            for record in workspace.catalog.list_artifacts(ns, where)]
