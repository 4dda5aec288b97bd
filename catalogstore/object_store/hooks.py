"""Flowdapt's save and load hooks in the object store (issue 14).

``put(key, value, save_artifact_hook=hook)`` stores a value that cluster memory
does not take by calling ``hook(artifact, value)`` on the artifact ``key`` (created
if missing); ``get(key, load_artifact_hook=hook)`` returns ``hook(artifact)``. A
hook decides the files and metadata: the dataset hooks of
:mod:`catalogstore.artifacts.dataset` write partition files, those of
:mod:`catalogstore.artifacts.misc` JSON or pickles, and
:func:`catalogstore.object_store.default_save_hook` /
:func:`~catalogstore.object_store.default_load_hook` the store's own object
layout. ``artifact_params`` (``protocol``, ``base_path`` and fsspec options) put
the artifact on another storage, as the artifact functions take them.

A hook's writes commit as the hook makes them, as in Flowdapt (a hook may hand
files to Dask workers that write them); a hook wraps its body in
``artifact.transaction()`` for all-or-nothing, as the built-in ones do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from catalogstore.errors import (
    ArtifactFileNotFoundError,
    ArtifactNotFoundError,
    ObjectNotFoundError,
)

if TYPE_CHECKING:
    from catalogstore.artifacts import Artifact

__all__ = [
    "LoadHook",
    "SaveHook",
    "artifact_for",
    "check_default_layout",
    "load_with",
    "save_with",
]

logger = logging.getLogger("catalogstore.object_store")

SaveHook = Callable[["Artifact", Any], Any]
"""``hook(artifact, value)``: writes ``value`` into the artifact."""
LoadHook = Callable[["Artifact"], Any]
"""``hook(artifact)``: the value the artifact holds."""

OBJECT_FILE = "object"
"""The file of a pickled object (Flowdapt's and the store's name)."""


def artifact_for(namespace: str, key: str, params: Mapping[str, Any] | None, *,
                 create: bool = False) -> Artifact:
    """The artifact of ``key``, on the storage ``params`` name (default: the configured one).

    Raises
    ------
    ObjectNotFoundError
        (a ``KeyError``) when it does not exist and ``create`` is false.
    """
    from catalogstore.artifacts import get_artifact

    try:
        return get_artifact(key, namespace, create=create, **dict(params or {}))
    except ArtifactNotFoundError:
        raise ObjectNotFoundError(f"no object {key!r} in namespace {namespace!r}") from None


def save_with(namespace: str, key: str, value: Any, hook: SaveHook,
              params: Mapping[str, Any] | None) -> None:
    """Store ``value`` with ``hook`` in the artifact ``key`` (created if missing)."""
    hook(artifact_for(namespace, key, params, create=True), value)


def load_with(namespace: str, key: str, hook: LoadHook,
              params: Mapping[str, Any] | None) -> Any:
    """``hook(artifact)`` of the artifact ``key``; :class:`ObjectNotFoundError` if missing."""
    return hook(artifact_for(namespace, key, params))


def exists_on(namespace: str, key: str, params: Mapping[str, Any]) -> bool:
    """Whether the storage ``params`` name has the artifact ``key``."""
    from catalogstore.artifacts import check_if_artifact_exists

    return check_if_artifact_exists(key, namespace, **dict(params))


def delete_on(namespace: str, key: str, params: Mapping[str, Any]) -> None:
    """Delete the artifact ``key`` of the storage ``params`` name, if there is one."""
    try:
        artifact = artifact_for(namespace, key, params)
    except ObjectNotFoundError:
        return
    artifact.delete()


def check_default_layout(artifact: Artifact, serializer: str | None, value_type: str) -> None:
    """What the default load hook checks before decoding: warn when the artifact was
    saved by another hook, and raise when it has no object file to decode.

    Raises
    ------
    ArtifactFileNotFoundError
        (a ``FileNotFoundError``) when neither the recorded serializer's file nor
        ``object`` is there: the artifact was saved by another hook.
    """
    meta = artifact.metadata
    if meta.get("value_type") != value_type:
        logger.warning("artifact %s/%s holds value_type %r, not %r: it was probably not "
                       "saved with the default save hook", artifact.namespace, artifact.name,
                       meta.get("value_type"), value_type)
    if serializer is None and "serializer" not in meta and not artifact.has_file(OBJECT_FILE):
        raise ArtifactFileNotFoundError(
            f"artifact {artifact.namespace}/{artifact.name} has no {OBJECT_FILE!r} file: it "
            "was not saved with the default save hook; load it with the hook that saved it")
