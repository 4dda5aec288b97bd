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

Called by ``put``, a hook writes inside the object store's transaction: its files
and metadata commit together with the key's record (its current generation, issue
13) in the object store's catalog (for ``artifact_params``, that storage root's own),
so a failing hook leaves the key's previous value, and ``get`` with a load hook reads
the artifact that record names, never an older copy. The one exception is a Dask
collection, whose partitions the hook hands to Dask workers: there the artifact is
created first, the workers' writes commit as they make them (as in Flowdapt), and
the record commits after the last of them.

Provenance (issue 12): a hook's files are not the store's serialization, so the
record vouches for no bytes (no serializer, no digest). They are read back by a load
hook, the user's own code, and the store itself never decodes them: ``get`` without
a hook refuses them, and with ``serializer=`` a pickle among them is refused as
untrusted. :func:`~catalogstore.object_store.default_save_hook` and
:func:`~catalogstore.object_store.default_load_hook` are not hooks in that sense:
``put``/``get`` given them take the store's own path, digest and adopt rules
included. Called directly on an artifact, the default save hook writes an object
that no put recorded, which ``get`` and the default load hook decode only when a
serializer is named or it is adopted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from catalogstore.errors import ArtifactFileNotFoundError

if TYPE_CHECKING:
    from catalogstore.artifacts import Artifact
    from catalogstore.object_store._artifact_tier import Writer

__all__ = [
    "LoadHook",
    "SaveHook",
    "check_default_layout",
    "hook_writer",
]

logger = logging.getLogger("catalogstore.object_store")

SaveHook = Callable[["Artifact", Any], Any]
"""``hook(artifact, value)``: writes ``value`` into the artifact."""
LoadHook = Callable[["Artifact"], Any]
"""``hook(artifact)``: the value the artifact holds."""

OBJECT_FILE = "object"
"""The file of a pickled object (Flowdapt's and the store's name)."""


def hook_writer(value: Any, hook: SaveHook) -> tuple[Writer, bool]:
    """The object store's writer for ``hook(artifact, value)`` (see the module), and
    whether it must run detached from the transaction (a Dask collection)."""
    def write(artifact: Artifact) -> tuple[str | None, str | None]:
        hook(artifact, value)
        return None, None
    return write, hasattr(value, "__dask_graph__")


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
