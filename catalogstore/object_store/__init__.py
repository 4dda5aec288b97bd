"""The object store: ``put``/``get``/``delete``/``exists`` of any Python object by key.

Values go to cluster memory when it can take them, and to artifacts otherwise
(the ``fallback`` strategy), so a stage hands objects to the next one as fast as
the executor allows while anything too large or not shareable still persists.

An object stored as an artifact is laid out like every other artifact: one file
(``object`` for pickle and cloudpickle, which is Flowdapt's layout, so Flowdapt's
own ``get(..., strategy="artifact")`` reads it; ``object.npy``,
``object.parquet``, ``object.json`` for the other formats) and metadata naming
the serializer (``value_type=object``, ``serializer``, ``serializer_version``,
``python_type``), so ``get`` needs no hint. ``get`` checks the bytes against the
checksum in the catalog before decoding them, and unpickles only objects that
the store itself wrote with a pickle serializer. With a signing key configured,
pickled objects are also signed and checked before unpickling (see
:mod:`catalogstore.signing`).

Examples
--------
>>> from catalogstore.object_store import put, get, delete     # doctest: +SKIP
>>> put("my_dataframe", df)                                     # doctest: +SKIP
>>> get("my_dataframe").shape                                   # doctest: +SKIP
(10, 100)
>>> delete("my_dataframe")                                      # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from enum import Enum
from typing import TYPE_CHECKING, Any

from catalogstore import retry
from catalogstore.context import current_namespace
from catalogstore.errors import (
    ArtifactExistsError,
    ArtifactFileNotFoundError,
    ArtifactNotFoundError,
    BackendUnavailableError,
    ObjectNotFoundError,
    ObjectTooLargeError,
    SerializationError,
    SignatureError,
    type_name,
)
from catalogstore.names import validate_name
from catalogstore.signing import (
    SIGNATURE_KEY,
    SigningWriter,
    new_signer,
    signature_of,
    verify_signature,
)

if TYPE_CHECKING:
    from pydantic import SecretStr

    from catalogstore.artifacts import Artifact
    from catalogstore.cluster_memory import ClusterMemory
    from catalogstore.object_store.hooks import LoadHook, SaveHook
    from catalogstore.serializers import Serializer

__all__ = ["Strategy", "default_load_hook", "default_save_hook", "delete", "exists", "get",
           "put"]

logger = logging.getLogger(__name__)

VALUE_TYPE = "object"
"""``value_type`` of object artifacts (Flowdapt's marker)."""
_MISSING: Any = object()
_READ = retry.Backoff(attempts=4, first_delay=0.005, jitter=0)
"""A reader can meet an object whose metadata and file belong to two puts (a few
milliseconds): it reads them again before calling the signature wrong, the last
time under the artifact's lock."""
_CREATE_RACE = retry.Backoff(attempts=2, first_delay=0)
"""A put whose new artifact a concurrent put created first: once more, as a rewrite."""


class Strategy(str, Enum):
    """Where the object store keeps a value."""

    FALLBACK = "fallback"
    """Cluster memory when it can take the value, else an artifact; ``get`` looks in
    cluster memory first, then in artifacts."""
    ARTIFACT = "artifact"
    """Only artifacts (persistent)."""
    CLUSTER_MEMORY = "cluster_memory"
    """Only cluster memory (never touches artifacts)."""


def _strategy(strategy: Strategy | str | None, artifact_only: bool) -> Strategy:
    if artifact_only:
        return Strategy.ARTIFACT
    if strategy is None:
        from catalogstore.settings import get_settings

        strategy = get_settings().object_store_strategy
    return Strategy(strategy)


def _memory(backend: str | None, namespace: str,
            params: Mapping[str, Any] | None = None) -> ClusterMemory:
    from catalogstore.cluster_memory import get_cluster_memory

    return get_cluster_memory(backend, namespace=namespace, **dict(params or {}))


# -- put --------------------------------------------------------------------------


def put(key: str, value: Any, *, namespace: str = "", artifact_only: bool = False,
        strategy: Strategy | str | None = None, serializer: str | None = None,
        backend: str | None = None, executor: str | None = None,
        save_artifact_hook: SaveHook | None = None,
        cluster_memory_params: Mapping[str, Any] | None = None,
        artifact_params: Mapping[str, Any] | None = None) -> None:
    """Store ``value`` under ``key``, replacing what was there.

    Parameters
    ----------
    namespace
        Default: the current namespace.
    artifact_only
        Store it as an artifact only (the same as ``strategy="artifact"``).
    strategy
        ``fallback`` (default, or ``CATALOGSTORE_OBJECT_STORE_STRATEGY``),
        ``artifact`` or ``cluster_memory``.
    serializer
        Name of the serializer of the artifact path (default: chosen by type).
    backend, executor
        Cluster memory backend (default: chosen from where the code runs);
        ``executor`` is Flowdapt's name for it.
    save_artifact_hook
        ``hook(artifact, value)`` writes the value into its artifact instead of the
        store's serializer (:mod:`catalogstore.object_store.hooks`).
    cluster_memory_params, artifact_params
        Keyword arguments of :func:`~catalogstore.cluster_memory.get_cluster_memory`,
        and the artifact's storage (``protocol``, ``base_path``, fsspec options).

    Raises
    ------
    SerializationError
        when no serializer can store the value.
    ObjectTooLargeError, BackendUnavailableError
        with ``strategy="cluster_memory"``, when cluster memory cannot take it.
    """
    ns = current_namespace(namespace)
    validate_name(key, "key")
    chosen = _strategy(strategy, artifact_only)
    backend = backend or executor
    memory = None
    if chosen is not Strategy.ARTIFACT:
        try:
            memory = _memory(backend, ns, cluster_memory_params)
            memory.put(key, value)
            return
        except (ObjectTooLargeError, SerializationError, BackendUnavailableError) as exc:
            if chosen is Strategy.CLUSTER_MEMORY:
                raise
            logger.debug("object store: %s/%s goes to artifacts: %s", ns, key, exc)
    if save_artifact_hook is not None or artifact_params:
        from catalogstore.object_store import hooks

        hooks.save_with(ns, key, value, save_artifact_hook or default_save_hook(serializer),
                        artifact_params)
    else:
        _put_artifact(ns, key, value, serializer)
    if memory is not None:
        # An older value there would hide the new one. Removed only once the artifact
        # is committed: a put that fails or is killed before leaves the old value.
        memory.delete(key)


def _put_artifact(namespace: str, key: str, value: Any, serializer: str | None) -> None:
    from catalogstore.serializers import get_serializer, serializer_for
    from catalogstore.txn.batch import transaction

    chosen = get_serializer(serializer) if serializer else serializer_for(value)
    if not chosen.accepts(value):
        raise SerializationError(f"the {chosen.name} serializer cannot store {key!r} "
                                 f"({type_name(value)})")

    def put() -> None:
        with transaction():
            artifact = _object_artifact(namespace, key, create=True)
            _write_object(artifact, key, value, chosen, auto=serializer is None)
    retry.call(put, policy=_CREATE_RACE,
               transient=lambda exc: isinstance(exc, ArtifactExistsError),
               what=lambda: f"object store: put {namespace}/{key}", level=logging.DEBUG)


def _object_artifact(namespace: str, key: str, *, create: bool = False) -> Artifact:
    from catalogstore.artifacts import get_artifact, new_artifact

    try:
        return get_artifact(key, namespace)
    except ArtifactNotFoundError:
        if not create:
            raise
        return new_artifact(key, namespace)


def _write_object(artifact: Artifact, key: str, value: Any, chosen: Serializer,
                  auto: bool) -> None:
    """Replace the artifact's content with ``value`` (inside the caller's transaction)."""
    from catalogstore.serializers import get_serializer

    try:
        signature = _dump(artifact, key, value, chosen)
    except SerializationError:
        if not (auto and chosen.name == "pickle"):
            raise
        # Lambdas, closures, classes defined in __main__: what cloudpickle is for.
        chosen = get_serializer("cloudpickle")
        signature = _dump(artifact, key, value, chosen)
    for old in artifact.list_files():
        if old.name != chosen.file_name:
            old.remove()
    meta = {"value_type": VALUE_TYPE, "serializer": chosen.name,
            "serializer_version": str(chosen.version), "python_type": type_name(value)}
    if signature is not None:
        meta[SIGNATURE_KEY] = signature
    for stale in set(artifact.metadata) - set(meta):
        artifact.del_meta(stale)
    artifact.update_meta(meta)


def _dump(artifact: Artifact, key: str, value: Any, chosen: Serializer) -> str | None:
    """Write the object's file; its signature when one is due (a pickle and a key set)."""
    from catalogstore.artifacts import ArtifactFile
    from catalogstore.serializers import dump_checked

    signing_key = _signing_key()
    with ArtifactFile(artifact, chosen.file_name).open("wb") as stream:
        if signing_key is None or not chosen.executes_code:
            dump_checked(chosen, value, stream, key)
            return None
        mac = new_signer(signing_key, artifact.namespace, key, chosen.name)
        dump_checked(chosen, value, SigningWriter(stream, mac), key)
    return signature_of(mac)


def _signing_key() -> SecretStr | None:
    from catalogstore.settings import get_settings

    return get_settings().signing_key


# -- get --------------------------------------------------------------------------


def get(key: str, *, namespace: str = "", artifact_only: bool = False,
        strategy: Strategy | str | None = None, serializer: str | None = None,
        backend: str | None = None, default: Any = _MISSING, executor: str | None = None,
        load_artifact_hook: LoadHook | None = None,
        cluster_memory_params: Mapping[str, Any] | None = None,
        artifact_params: Mapping[str, Any] | None = None) -> Any:
    """The value stored under ``key``.

    Parameters
    ----------
    serializer
        Decode an artifact with this serializer instead of the one recorded in its
        metadata: needed (and an explicit statement of trust) for objects the store
        did not write, such as Flowdapt's. A signing key outranks that trust: with
        one set, an unsigned pickle is refused whatever the serializer named.
    default
        Returned when there is no such key, instead of raising.
    executor, load_artifact_hook, cluster_memory_params, artifact_params
        As for :func:`put`; ``hook(artifact)`` reads the value from its artifact.

    Raises
    ------
    ObjectNotFoundError
        (a ``KeyError``) when no tier the strategy reads holds ``key``.
    CorruptArtifactError
        when the artifact's bytes do not match the catalog's checksum.
    SignatureError
        (a ``CorruptArtifactError``) when a signing key is set and a pickled object is
        unsigned or does not match its signature; nothing was unpickled.
    """
    ns = current_namespace(namespace)
    validate_name(key, "key")
    chosen = _strategy(strategy, artifact_only)
    backend = backend or executor
    try:
        if chosen is not Strategy.ARTIFACT:
            try:
                return _memory(backend, ns, cluster_memory_params).get(key)
            except (ObjectNotFoundError, BackendUnavailableError) as exc:
                if chosen is Strategy.CLUSTER_MEMORY:
                    raise
                logger.debug("object store: %s/%s not in cluster memory (%s); reading "
                             "artifacts", ns, key, exc)
        if load_artifact_hook is not None or artifact_params:
            from catalogstore.object_store import hooks

            return hooks.load_with(ns, key, load_artifact_hook or default_load_hook(serializer),
                                   artifact_params)
        return _get_artifact(ns, key, serializer)
    except ObjectNotFoundError:
        if default is _MISSING:
            raise
        return default


def _get_artifact(namespace: str, key: str, serializer: str | None) -> Any:
    try:
        artifact = _object_artifact(namespace, key)
    except ArtifactNotFoundError:
        raise ObjectNotFoundError(
            f"no object {key!r} in namespace {namespace!r}") from None
    return _load_object(artifact, namespace, key, serializer)


def _load_object(artifact: Artifact, namespace: str, key: str, serializer: str | None) -> Any:
    attempts = 0

    def read() -> tuple[Serializer, bytes]:
        nonlocal attempts
        attempts += 1
        if attempts < _READ.attempts:
            return _read_object(artifact.refresh() if attempts > 1 else artifact,
                                namespace, key, serializer)
        # Writers hold the lock from their commit until the bytes are in
        # place: under it the metadata and the bytes are of one put.
        with artifact.locked():
            return _read_object(artifact.refresh(), namespace, key, serializer, locked=True)

    try:
        # A put with another serializer (another file name), or a put that committed
        # between the metadata and the bytes, looks like this for a moment;
        # tampering does not go away.
        chosen, data = retry.call(
            read, policy=_READ, level=logging.DEBUG,
            transient=lambda exc: isinstance(exc, (ArtifactFileNotFoundError, SignatureError)),
            what=lambda: f"object store: read {namespace}/{key}")
    except ArtifactNotFoundError:  # deleted meanwhile
        raise ObjectNotFoundError(
            f"no object {key!r} in namespace {namespace!r}") from None
    try:
        return chosen.loads(data)
    except Exception as exc:
        raise SerializationError(
            f"cannot decode {namespace}/{key} with {chosen.name}: {type(exc).__name__}: "
            f"{exc}") from exc


def _decoder(namespace: str, key: str, meta: dict[str, Any],
             serializer: str | None) -> Serializer:
    """The serializer that reads the object: the one asked for, else the one recorded."""
    from catalogstore.serializers import get_serializer

    name = serializer or meta.get("serializer")
    if name is None:
        what = ("an object written by another tool (Flowdapt?)"
                if meta.get("value_type") == VALUE_TYPE else "not an object of the store")
        raise SerializationError(
            f"artifact {namespace}/{key} is {what}: it names no serializer, so it is not "
            "decoded; pass serializer='cloudpickle' (or another) to trust and read it")
    if not isinstance(name, str):
        raise SerializationError(f"artifact {namespace}/{key} names its serializer with a "
                                 f"{type(name).__name__}, not a str: it is not decoded")
    return get_serializer(name)


def _read_object(artifact: Artifact, namespace: str, key: str, serializer: str | None, *,
                 locked: bool = False) -> tuple[Serializer, bytes]:
    """The serializer and the verified (and, when it runs code, signature-checked) bytes
    of the object as ``artifact``'s snapshot has it; ``locked`` inside
    :meth:`Artifact.locked`."""
    from catalogstore.artifacts import ArtifactFile

    meta = artifact.metadata
    chosen = _decoder(namespace, key, meta, serializer)
    file = ArtifactFile(artifact, chosen.file_name)  # reading its row says if it is there
    # read(verify=True) waits out a concurrent commit of the file itself.
    data = file.read_locked()[1] if locked else file.read(verify=True)
    data = data if isinstance(data, bytes) else data.encode()
    signing_key = _signing_key()
    if signing_key is not None and chosen.executes_code:
        # Signed with the serializer that wrote it, whichever one reads it now.
        verify_signature(signing_key, namespace, key, meta.get("serializer", chosen.name),
                         data, meta.get(SIGNATURE_KEY))
    return chosen, data


# -- delete, exists ------------------------------------------------------------------


def delete(key: str, *, namespace: str = "", artifact_only: bool = False,
           strategy: Strategy | str | None = None, backend: str | None = None,
           executor: str | None = None, cluster_memory_params: Mapping[str, Any] | None = None,
           artifact_params: Mapping[str, Any] | None = None) -> None:
    """Remove ``key``: from every tier with the default strategy, else from the chosen one.

    Deleting a key that does not exist is not an error and creates nothing. The other
    parameters are those of :func:`put`.
    """
    ns = current_namespace(namespace)
    validate_name(key, "key")
    chosen = _strategy(strategy, artifact_only)
    backend = backend or executor
    if chosen is not Strategy.ARTIFACT:
        try:
            _memory(backend, ns, cluster_memory_params).delete(key)
        except BackendUnavailableError as exc:
            if chosen is Strategy.CLUSTER_MEMORY:
                raise
            logger.debug("object store: no cluster memory for %s/%s: %s", ns, key, exc)
    if chosen is not Strategy.CLUSTER_MEMORY and artifact_params:
        from catalogstore.object_store import hooks

        hooks.delete_on(ns, key, artifact_params)
    elif chosen is not Strategy.CLUSTER_MEMORY:
        with contextlib.suppress(ArtifactNotFoundError):
            _object_artifact(ns, key).delete()


def exists(key: str, *, namespace: str = "", artifact_only: bool = False,
           strategy: Strategy | str | None = None, backend: str | None = None,
           executor: str | None = None, cluster_memory_params: Mapping[str, Any] | None = None,
           artifact_params: Mapping[str, Any] | None = None) -> bool:
    """Whether a tier the strategy reads holds ``key`` (parameters: those of :func:`put`)."""
    ns = current_namespace(namespace)
    validate_name(key, "key")
    chosen = _strategy(strategy, artifact_only)
    backend = backend or executor
    if chosen is not Strategy.ARTIFACT:
        try:
            if _memory(backend, ns, cluster_memory_params).exists(key):
                return True
        except BackendUnavailableError as exc:
            if chosen is Strategy.CLUSTER_MEMORY:
                raise
            logger.debug("object store: no cluster memory for %s/%s: %s", ns, key, exc)
    if chosen is Strategy.CLUSTER_MEMORY:
        return False
    if artifact_params:
        from catalogstore.object_store import hooks

        return hooks.exists_on(ns, key, artifact_params)
    from catalogstore.artifacts import artifact_exists

    return artifact_exists(key, ns)


# -- Flowdapt's default hooks (issue 14; see catalogstore.object_store.hooks) --------------


def default_save_hook(serializer: str | Serializer | None = None) -> SaveHook:
    """The hook that writes an object as :func:`put` does: the serializer's file
    (``object`` for pickles, as Flowdapt names it), ``value_type=object`` and the
    serializer's name, signed when a signing key is set.

    Parameters
    ----------
    serializer
        A serializer or its name (default: chosen by the value's type).
    """
    def save(artifact: Artifact, value: Any) -> None:
        from catalogstore.serializers import get_serializer, serializer_for

        named = get_serializer(serializer) if isinstance(serializer, str) else serializer
        with artifact.transaction():
            _write_object(artifact, artifact.name, value, named or serializer_for(value),
                          auto=serializer is None)
    return save


def default_load_hook(serializer: str | Serializer | None = None) -> LoadHook:
    """The hook that reads what :func:`default_save_hook` wrote, as :func:`get` does.

    Parameters
    ----------
    serializer
        Decode with this serializer (or its name) instead of the recorded one: as
        for :func:`get`, a statement of trust needed for an object the store did
        not write (Flowdapt's).

    Raises
    ------
    ArtifactFileNotFoundError
        (a ``FileNotFoundError``) when the artifact has no object file (another hook
        saved it); a warning is logged first when its ``value_type`` is not ``object``.
    """
    name = serializer if isinstance(serializer, str) or serializer is None else serializer.name

    def load(artifact: Artifact) -> Any:
        from catalogstore.object_store.hooks import check_default_layout

        check_default_layout(artifact, name, VALUE_TYPE)
        return _load_object(artifact, artifact.namespace, artifact.name, name)
    return load
