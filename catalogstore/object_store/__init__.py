"""The object store: ``put``/``get``/``delete``/``exists`` of any Python object by key.

Where a value lives (issue 13)
    Every ``put`` and ``delete`` moves the key's one *current generation*, recorded in
    the catalog (the ``objects`` table): the tier holding the value (an artifact or
    cluster memory), and for an artifact which one and what its bytes hash to.
    ``get`` reads that tier and nothing else, so an older copy left in another tier
    never comes back; it raises :class:`~catalogstore.errors.ObjectNotFoundError`
    naming the tier and session when the value there is gone. Stale copies are
    removed once the new generation is committed, except that a put with
    ``artifact_only=True`` over a value in cluster memory (the seed's "persist it")
    writes the new value over the memory copy, recorded as a copy of the artifact.

Durable unless told otherwise
    The ``fallback`` strategy (the default) puts a value in cluster memory only when
    that memory outlives the process that puts it: a Ray or Dask runtime, or a local
    session that an executor opened (``LocalMemory.new_session()``,
    ``CATALOGSTORE_MEMORY_SESSION``). Anywhere else (a plain ``python -c``, one stage
    per command) it writes an artifact, so the next command finds it.
    ``strategy="cluster_memory"`` is the explicit way to keep a value in memory only.

Objects written as artifacts
    One file (``object`` for pickle and cloudpickle, which is Flowdapt's layout, so
    Flowdapt's own ``get(..., strategy="artifact")`` reads it; ``object.npy``,
    ``object.parquet``, ``object.json`` for the other formats) and metadata naming
    the serializer (``value_type=object``, ``serializer``, ...). ``get`` checks the
    bytes against the catalog's checksum and, for a serializer that runs code, against
    the SHA-256 that this store's own ``put`` recorded in the same commit: an object
    that ``reindex`` imported or another tool wrote is refused
    (:class:`~catalogstore.errors.UntrustedObjectError`) until the caller names its
    serializer or adopts it (``catalogstore adopt NAMESPACE/KEY``), whatever its
    ``.artifact.json`` says. With a signing key configured, pickles are also signed
    and checked (see :mod:`catalogstore.signing`).

Save and load hooks, per-call storage (Flowdapt's parameters, issue 14)
    A save hook writes inside the put's transaction, so its files commit with the
    key's record; the record vouches for no bytes, and ``get`` reads such a key only
    with a load hook (the user's code), given the artifact the current record names.
    The default hooks are the store's own path (digest, ``adopt``). With
    ``artifact_params`` the artifact and the key's record live in that storage root's
    own catalog. See :mod:`catalogstore.object_store.hooks`.

Objects and user artifacts
    ``put`` does not replace an artifact that is not an object (no
    ``value_type=object``) unless ``overwrite=True``; ``exists`` is false for it, and
    ``get`` and ``delete`` refuse it.

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
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import Enum
from typing import TYPE_CHECKING, Any

from catalogstore.context import current_namespace
from catalogstore.errors import (
    ArtifactNotFoundError,
    BackendUnavailableError,
    CatalogStoreError,
    NotAnObjectError,
    ObjectNotFoundError,
    ObjectTooLargeError,
    SerializationError,
)
from catalogstore.names import validate_name
from catalogstore.object_store import _artifact_tier as tier
from catalogstore.object_store import _inline as inline
from catalogstore.object_store._artifact_tier import VALUE_TYPE, is_object_artifact
from catalogstore.object_store._inline import INLINE_LIMIT, flush
from catalogstore.txn import objects as records
from catalogstore.txn import runs

if TYPE_CHECKING:
    from catalogstore.artifacts import Artifact
    from catalogstore.cluster_memory import ClusterMemory
    from catalogstore.object_store.hooks import LoadHook, SaveHook
    from catalogstore.record import ArtifactRecord
    from catalogstore.serializers import Serializer
    from catalogstore.txn.objects import ObjectRecord
    from catalogstore.txn.workspace import Workspace

__all__ = ["INLINE_LIMIT", "VALUE_TYPE", "Strategy", "adopt", "default_load_hook",
           "default_save_hook", "delete", "exists", "flush", "get", "is_object_artifact", "put"]

logger = logging.getLogger(__name__)

_MISSING: Any = object()
_RECORDED: Any = object()
_GENERATIONS = 50
"""Generations a get follows while writers keep replacing the key under it."""


class Strategy(str, Enum):
    """Where the object store keeps a value."""

    FALLBACK = "fallback"
    """Cluster memory when it outlives this process and can take the value, else an
    artifact; ``get`` reads the tier that holds the key's current generation."""
    ARTIFACT = "artifact"
    """Only artifacts (persistent)."""
    CLUSTER_MEMORY = "cluster_memory"
    """Only cluster memory, even one that ends with this process."""


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


def _workspace(artifact_params: Mapping[str, Any] | None = None) -> Workspace:
    """The catalog and storage of the artifact tier, and of the keys' records: the
    configured ones, or those of Flowdapt's per-call storage
    (:mod:`catalogstore.artifacts.roots`: each storage root has its own catalog)."""
    if artifact_params:
        from catalogstore.artifacts.roots import storage_workspace

        params = dict(artifact_params)
        return storage_workspace(params.pop("protocol", ""), params.pop("base_path", ""),
                                 params)
    from catalogstore.artifacts import get_workspace

    return get_workspace()


@dataclass(frozen=True)
class _Call:
    """Where one call finds its tiers: the cluster memory backend and the keyword
    arguments of :func:`~catalogstore.cluster_memory.get_cluster_memory`, and the
    workspace of its artifacts and records."""

    backend: str | None
    memory_params: Mapping[str, Any] | None
    workspace: Workspace

    def memory(self, namespace: str) -> ClusterMemory:
        return _memory(self.backend, namespace, self.memory_params)


def _call(backend: str | None, executor: str | None,
          cluster_memory_params: Mapping[str, Any] | None,
          artifact_params: Mapping[str, Any] | None) -> _Call:
    """``executor`` is Flowdapt's name for ``backend``."""
    return _Call(backend or executor, cluster_memory_params, _workspace(artifact_params))


def _find_artifact(workspace: Workspace, namespace: str, key: str) -> Artifact | None:
    from catalogstore.artifacts import Artifact, lookup

    try:
        return lookup.get(Artifact, workspace, key, namespace)
    except ArtifactNotFoundError:
        return None


# -- put --------------------------------------------------------------------------


def put(key: str, value: Any, *, namespace: str = "", artifact_only: bool = False,
        strategy: Strategy | str | None = None, serializer: str | None = None,
        backend: str | None = None, overwrite: bool = False, executor: str | None = None,
        save_artifact_hook: SaveHook | None = None,
        cluster_memory_params: Mapping[str, Any] | None = None,
        artifact_params: Mapping[str, Any] | None = None) -> None:
    """Store ``value`` under ``key``, replacing what was there (the last writer wins).

    Parameters
    ----------
    namespace
        Default: the current namespace.
    artifact_only
        Store it as an artifact only (the same as ``strategy="artifact"``).
    strategy
        ``fallback`` (default, or ``CATALOGSTORE_OBJECT_STORE_STRATEGY``),
        ``artifact`` or ``cluster_memory``; see the module documentation.
    serializer
        Name of the serializer of the artifact path (default: chosen by type).
    backend, executor
        Cluster memory backend (default: chosen from where the code runs);
        ``executor`` is Flowdapt's name for it.
    overwrite
        Replace a user's artifact of that name (not an object) with the object.
    save_artifact_hook
        ``hook(artifact, value)`` writes the value into its artifact instead of the
        store's serializer, in the commit that records the key's generation; the store
        never decodes what a hook wrote (:mod:`catalogstore.object_store.hooks`).
        :func:`default_save_hook` is the store's own path.
    cluster_memory_params, artifact_params
        Keyword arguments of :func:`~catalogstore.cluster_memory.get_cluster_memory`,
        and the artifact's storage (``protocol``, ``base_path``, fsspec options), whose
        own catalog then holds the key's record
        (:mod:`catalogstore.artifacts.roots`).

    Raises
    ------
    SerializationError
        when no serializer can store the value.
    NotAnObjectError
        when ``key`` names a user's artifact and ``overwrite`` is false.
    ObjectTooLargeError, BackendUnavailableError
        with ``strategy="cluster_memory"``, when cluster memory cannot take it.
    """
    ns = current_namespace(namespace)
    validate_name(key, "key")
    chosen = _strategy(strategy, artifact_only)
    call = _call(backend, executor, cluster_memory_params, artifact_params)
    if chosen is not Strategy.ARTIFACT:
        memory = _memory_for_put(call, ns, key, chosen)
        if memory is not None:
            try:
                if _put_memory(call.workspace, memory, ns, key, value, overwrite):
                    return
            except (ObjectTooLargeError, SerializationError, BackendUnavailableError) as exc:
                if chosen is Strategy.CLUSTER_MEMORY:
                    raise
                logger.debug("object store: %s/%s goes to artifacts: %s", ns, key, exc)
    if isinstance(save_artifact_hook, _DefaultSave):
        serializer, save_artifact_hook = save_artifact_hook.serializer or serializer, None
    # A small value goes to the catalog (issue 19): see _inline.
    done = None if save_artifact_hook is not None else \
        inline.put(call.workspace, ns, key, value, serializer, overwrite=overwrite)
    if done is not None:
        generation, replaced = done
    else:
        if save_artifact_hook is None:
            write, detached = tier.serializer_writer(key, value, serializer), False
        else:
            from catalogstore.object_store import hooks

            write, detached = hooks.hook_writer(value, save_artifact_hook)
        generation, replaced = tier.put_artifact(call.workspace, ns, key, write,
                                                 overwrite=overwrite, detached=detached)
    if replaced is not None and (replaced.tier == records.CLUSTER_MEMORY
                                 or replaced.location is not None):
        # The seed's "persist it" (put(k, v) then put(k, v, artifact_only=True)): the
        # copy in memory is kept current rather than dropped, so gets stay fast.
        _refresh_memory(call, ns, key, generation,
                        value if chosen is Strategy.ARTIFACT else _MISSING)


def _memory_for_put(call: _Call, namespace: str, key: str,
                    chosen: Strategy) -> ClusterMemory | None:
    """The cluster memory a put may use: any with ``cluster_memory``; with ``fallback``
    only one that outlives this process (issue 13: never silently only where the value
    dies with the process)."""
    try:
        memory = call.memory(namespace)
    except BackendUnavailableError as exc:
        if chosen is Strategy.CLUSTER_MEMORY:
            raise
        logger.debug("object store: no cluster memory for %s/%s: %s", namespace, key, exc)
        return None
    if chosen is Strategy.FALLBACK and not memory.outlives_process:
        logger.debug("object store: %s ends with this process; %s/%s goes to artifacts",
                     memory.location, namespace, key)
        return None
    return memory


def _put_memory(workspace: Workspace, memory: ClusterMemory, namespace: str, key: str,
                value: Any, overwrite: bool) -> bool:
    """Put the value into cluster memory and record it; False, with nothing written,
    when a user's artifact has the key's name and ``overwrite`` says to replace it
    (the artifact path does, with the object)."""
    from catalogstore.artifacts import Artifact

    generation = uuid.uuid4().hex
    # Under the key's lock from the write to the record's commit: values land in
    # cluster memory in the order of their records.
    with records.lock(workspace, namespace, key):
        current, found = records.read_with_artifact(workspace, namespace, key)
        if found is not None and tier.is_user_artifact(
                Artifact(workspace, found, namespace=namespace, name=key), current):
            if overwrite:
                return False
            raise tier.user_artifact_error(namespace, key)
        memory.put(key, value)
        replaced = records.write(workspace, records.ObjectRecord(
            namespace, key, generation, records.CLUSTER_MEMORY, memory.location[:255]),
            output=True)
    if replaced is not None and replaced.tier == records.ARTIFACT:
        _drop_stale_artifact(workspace, namespace, key, generation, replaced.artifact_id)
    return True


def _drop_stale_artifact(workspace: Workspace, namespace: str, key: str, generation: str,
                         artifact_id: int | None) -> None:
    """Delete the artifact an older generation left (``artifact_id``, or an object of the
    key's name), unless a put made it current again."""
    from catalogstore.txn.batch import transaction

    artifact = _find_artifact(workspace, namespace, key)
    if artifact is None or (artifact.record.id != artifact_id
                            and not tier.is_object_artifact(artifact)):
        return
    try:
        with transaction(workspace.settings) as batch:
            artifact.delete()
            records.delete_with(batch, namespace, key, only_if=generation)
    except (records.Superseded, ArtifactNotFoundError):
        pass  # made current again, or deleted, meanwhile
    except CatalogStoreError as exc:  # ignored by get; removed by the next put or delete
        logger.warning("object store: could not remove the stale artifact of %s/%s: %s",
                       namespace, key, exc)


def _refresh_memory(call: _Call, namespace: str, key: str, generation: str,
                    value: Any) -> None:
    """Replace the cluster memory copy an older generation left by ``value`` (the new
    generation's, recorded as a copy of the artifact: ``location``), or remove it
    (``value`` is :data:`_MISSING`, or memory cannot take it); either only while
    ``generation`` is current, checked under the key's lock, which memory writers hold.
    """
    workspace = call.workspace
    try:
        with records.lock(workspace, namespace, key):
            current = records.read(workspace, namespace, key)
            if current is None or current.generation != generation:
                return
            memory = call.memory(namespace)
            if value is not _MISSING and memory.outlives_process:
                try:
                    memory.put(key, value)
                except (ObjectTooLargeError, SerializationError) as exc:
                    logger.debug("object store: %s/%s not kept in memory: %s", namespace,
                                 key, exc)
                else:
                    records.write(workspace, replace(current, location=memory.location[:255]),
                                  only_if=generation)
                    return
            memory.delete(key)
    except CatalogStoreError as exc:  # ignored by get, which follows the record
        logger.debug("object store: stale copy of %s/%s left in cluster memory: %s",
                     namespace, key, exc)


# -- get --------------------------------------------------------------------------


def get(key: str, *, namespace: str = "", artifact_only: bool = False,
        strategy: Strategy | str | None = None, serializer: str | None = None,
        backend: str | None = None, default: Any = _MISSING, executor: str | None = None,
        load_artifact_hook: LoadHook | None = None,
        cluster_memory_params: Mapping[str, Any] | None = None,
        artifact_params: Mapping[str, Any] | None = None, version: int | None = None) -> Any:
    """The value of ``key``'s current generation (or of an earlier ``version``).

    Parameters
    ----------
    artifact_only, strategy
        The tiers to read; a key whose current value is in another tier is not found.
    serializer
        Decode an artifact with this serializer instead of the one recorded: needed
        (and an explicit statement of trust) for objects the store did not write, such
        as Flowdapt's or those ``reindex`` found. A signing key outranks that trust:
        with one set, an unsigned pickle is refused whatever the serializer named.
    default
        Returned when there is no such key, instead of raising.
    load_artifact_hook
        ``hook(artifact)`` reads the value from the artifact that the key's current
        record names (the user's code decoding the files a save hook wrote: the store
        vouches for nothing it unpickles); :func:`default_load_hook` is the store's own
        path, trust rules included.
    executor, cluster_memory_params, artifact_params
        As for :func:`put`.
    version
        A version of the key's artifact (each put to artifacts makes one: see
        ``get_artifact(key).versions()``), trusted by the record its put made; values
        put to cluster memory alone have none.

    Raises
    ------
    ObjectNotFoundError
        (a ``KeyError``) when the key has no current value in the tiers read (its
        message names the tier and session that held a value now gone).
    VersionNotFoundError
        (a ``LookupError``) when the key's artifact keeps no such ``version``.
    UntrustedObjectError
        for an object this store did not write and nobody adopted; nothing was decoded.
    CorruptArtifactError
        when the artifact's bytes do not match the catalog's checksum.
    SignatureError
        (a ``CorruptArtifactError``) when a signing key is set and a pickled object is
        unsigned or does not match its signature; nothing was unpickled.
    """
    ns = current_namespace(namespace)
    validate_name(key, "key")
    chosen = _strategy(strategy, artifact_only)
    call = _call(backend, executor, cluster_memory_params, artifact_params)
    if isinstance(load_artifact_hook, _DefaultLoad):
        serializer, load_artifact_hook = load_artifact_hook.serializer or serializer, None
    try:
        if version is not None:
            artifact = _find_artifact(call.workspace, ns, key)
            if artifact is None:
                raise ObjectNotFoundError(f"no object {key!r} in namespace {ns!r} (no "
                                          "versions: none was put to artifacts)")
            if load_artifact_hook is not None:
                from catalogstore.artifacts.versions import open_version

                return load_artifact_hook(open_version(artifact, version))
            return tier.read_version(artifact, key, version, serializer)
        return _get(call, ns, key, chosen, serializer, load_artifact_hook)
    except ObjectNotFoundError:
        if default is _MISSING:
            raise
        return default


def _get(call: _Call, namespace: str, key: str, chosen: Strategy, serializer: str | None,
         hook: LoadHook | None) -> Any:
    workspace = call.workspace

    def reread() -> ObjectRecord | None:
        return records.read(workspace, namespace, key)

    if hook is None and chosen is not Strategy.CLUSTER_MEMORY:
        # A small value: the record and its bytes from the catalog (issue 19).
        value = inline.get(workspace, namespace, key, serializer,
                           memory_first=chosen is Strategy.FALLBACK)
        if value is not inline.MISSING:
            return value
    # The record and the artifact of its name in one round: what most gets need.
    record, found = records.read_with_artifact(workspace, namespace, key)
    artifact = None if found is None else _artifact(workspace, found)
    for _ in range(_GENERATIONS):
        if record is None:
            value = _get_unrecorded(call, namespace, key, chosen, serializer, hook, reread,
                                    artifact)
            if value is not _RECORDED:
                return value
            record, artifact = reread(), None
            continue
        if record.tier == records.ARTIFACT:
            if chosen is Strategy.CLUSTER_MEMORY:
                if record.location is None:
                    raise ObjectNotFoundError(
                        f"object {namespace}/{key} is an artifact, not in cluster memory")
                return call.memory(namespace).get(key)  # its copy there
            if record.location is not None and chosen is Strategy.FALLBACK:
                # A copy of this generation in memory (see _refresh_memory): memory
                # writers hold the key's lock, so it holds this value or a newer one.
                with contextlib.suppress(ObjectNotFoundError, BackendUnavailableError):
                    value = call.memory(namespace).get(key)
                    _note_copy_read(workspace, record)
                    return value
            try:
                return tier.read_recorded(workspace, record, serializer, reread, artifact,
                                          hook)
            except tier.Moved:
                record, artifact = reread(), None
                continue
        if chosen is Strategy.ARTIFACT:
            raise ObjectNotFoundError(
                f"object {namespace}/{key}: its current value is in {record.location}, not "
                "in an artifact")
        memory = call.memory(namespace)
        try:
            value = memory.get(key)
            runs.note_object_read(workspace, namespace, key, record.generation)
            return value
        except (ObjectNotFoundError, BackendUnavailableError) as exc:
            again = reread()
            if again is not None and again.generation == record.generation:
                if record.location != memory.location:  # another session: maybe alive
                    raise ObjectNotFoundError(
                        f"object {namespace}/{key} was put in {record.location}, and this "
                        f"process uses {memory.location}: read it inside that session "
                        "(CATALOGSTORE_MEMORY_SESSION) while it lasts, or put it again "
                        "if it ended") from None
                raise ObjectNotFoundError(
                    f"object {namespace}/{key} was put in {record.location}, which no longer "
                    f"holds it ({exc}): the value is gone (that session ended or was "
                    "cleared); put it again") from None
            record = again
    raise ObjectNotFoundError(f"object {namespace}/{key} kept changing while read")


def _note_copy_read(workspace: Workspace, record: ObjectRecord) -> None:
    """A read of the memory copy of an artifact's value is an input of the artifact's
    version (issue 16), looked up only when lineage is on."""
    if record.artifact_id is not None:
        runs.note_artifact_read(workspace, record.artifact_id, None, record.namespace,
                                record.key)


def _identity(artifact: Artifact) -> tuple[int, object, object]:
    """What changes with every commit to an artifact, and with its deletion and creation
    again under the same name (ids can be reused)."""
    record = artifact.record
    return record.id, record.created_at, record.updated_at


def _artifact(workspace: Workspace, record: ArtifactRecord) -> Artifact:
    from catalogstore.artifacts import Artifact

    return Artifact(workspace, record, namespace=record.namespace, name=record.name)


def _get_unrecorded(call: _Call, namespace: str, key: str, chosen: Strategy,
                    serializer: str | None, hook: LoadHook | None,
                    reread: Callable[[], ObjectRecord | None],
                    artifact: Artifact | None) -> Any:
    """A key the store has no record of: a value someone put straight into cluster
    memory (read with ``strategy="cluster_memory"`` only), an object artifact another
    tool wrote (refused unless ``serializer`` is named), an artifact that the caller's
    load ``hook`` reads, or nothing; :data:`_RECORDED` when a put recorded the key
    meanwhile."""
    if chosen is Strategy.CLUSTER_MEMORY:
        return call.memory(namespace).get(key)
    artifact = artifact or _find_artifact(call.workspace, namespace, key)
    if artifact is None:
        raise ObjectNotFoundError(f"no object {key!r} in namespace {namespace!r}")
    if reread() is not None:  # a put committed the artifact and its record since
        return _RECORDED
    # Still there after the record was found missing? Else a delete took both meanwhile.
    again = _find_artifact(call.workspace, namespace, key)
    if again is None:
        raise ObjectNotFoundError(f"no object {key!r} in namespace {namespace!r}")
    if _identity(again) != _identity(artifact):  # deleted and made again, or changed
        return _RECORDED
    if hook is not None:  # the caller's code reads the files (as in Flowdapt)
        return hook(artifact)
    if not tier.is_object_artifact(artifact) and serializer is None:
        raise ObjectNotFoundError(
            f"no object {key!r} in namespace {namespace!r}: {namespace}/{key} is a user "
            "artifact, not an object (read it with get_artifact)")
    return tier.read_unrecorded(artifact, key, serializer)


# -- delete, exists, adopt ------------------------------------------------------------


def delete(key: str, *, namespace: str = "", artifact_only: bool = False,
           strategy: Strategy | str | None = None, backend: str | None = None,
           executor: str | None = None, cluster_memory_params: Mapping[str, Any] | None = None,
           artifact_params: Mapping[str, Any] | None = None) -> None:
    """Remove ``key``: from every tier with the default strategy, else from the chosen one.

    Deleting a key that does not exist is not an error and creates nothing. The other
    parameters are those of :func:`put`.

    Raises
    ------
    NotAnObjectError
        when ``key`` names a user's artifact, not an object (delete it as an artifact).
    """
    ns = current_namespace(namespace)
    validate_name(key, "key")
    chosen = _strategy(strategy, artifact_only)
    call = _call(backend, executor, cluster_memory_params, artifact_params)
    workspace = call.workspace
    record, found = records.read_with_artifact(workspace, ns, key)
    if chosen is not Strategy.CLUSTER_MEMORY and (record is None or (
            record.tier == records.ARTIFACT and record.location is None)):
        # No cluster memory value to order against a memory put: no object lock (a
        # stale copy there is ignored by get, which follows the record). The record
        # goes with its artifact (ON DELETE CASCADE); one that a memory put wrote
        # meanwhile stays: that put is then the later of the two.
        # No artifact in that read: looked up again, after the record was read (on
        # PostgreSQL the record comes from a second statement, which may see a put that
        # created the artifact meanwhile: its record must not be dropped alone).
        _delete_artifact(workspace, ns, key, record, cascade=True,
                         artifact=_MISSING if found is None else _artifact(workspace, found))
        return
    with records.lock(workspace, ns, key):
        record = records.read(workspace, ns, key)
        if chosen is not Strategy.ARTIFACT:
            try:
                call.memory(ns).delete(key)
            except BackendUnavailableError as exc:
                if chosen is Strategy.CLUSTER_MEMORY:
                    raise
                logger.debug("object store: no cluster memory for %s/%s: %s", ns, key, exc)
        in_memory = record is not None and record.tier == records.CLUSTER_MEMORY
        copied = record is not None and not in_memory and record.location is not None
        if chosen is Strategy.CLUSTER_MEMORY:
            if record is not None and in_memory:
                _forget(workspace, record)
            elif record is not None and copied:  # the artifact stays the key's value
                records.write(workspace, replace(record, location=None),
                              only_if=record.generation)
            return
        if chosen is Strategy.ARTIFACT and (in_memory or copied):
            # The value's copy in memory stays, and becomes the key's current value.
            assert record is not None
            _delete_artifact(workspace, ns, key, record, becomes=replace(
                record, tier=records.CLUSTER_MEMORY, artifact_id=None, digest=None))
            return
        _delete_artifact(workspace, ns, key, record)


def _forget(workspace: Workspace, record: ObjectRecord) -> None:
    """Drop the key's record, unless an artifact put (which takes no object lock) has
    made a newer generation current since it was read: that put then wins."""
    records.write(workspace, record, drop=True, only_if=record.generation)


def _delete_artifact(workspace: Workspace, namespace: str, key: str,
                     record: ObjectRecord | None, *, becomes: ObjectRecord | None = None,
                     cascade: bool = False, artifact: Artifact | None = _MISSING) -> None:
    """Delete the key's artifact and, in the same commit, its record (or make
    ``becomes`` the key's record; with ``cascade``, the record that points at the
    artifact goes with it, and no other). ``artifact``: the key's, if already read."""
    from catalogstore.txn.batch import transaction

    if artifact is _MISSING:
        artifact = _find_artifact(workspace, namespace, key)
    ours = artifact is not None and (
        (record is not None and record.artifact_id == artifact.record.id)
        or tier.is_object_artifact(artifact))
    if artifact is not None and not ours:
        if record is None:
            raise NotAnObjectError(
                f"{namespace}/{key} is a user artifact, not an object: the object store "
                "does not delete it (delete it with get_artifact(...).delete())")
        artifact = None  # an object in cluster memory beside a user artifact of its name
    if artifact is None:
        if record is not None and becomes is None:
            _forget(workspace, record)
        elif becomes is not None and record is not None and becomes.tier != record.tier:
            records.write(workspace, becomes, only_if=record.generation)
        return
    try:
        with contextlib.suppress(ArtifactNotFoundError), \
                transaction(workspace.settings) as batch:
            artifact.delete()
            if becomes is None:
                if not cascade:
                    records.delete_with(batch, namespace, key)
            else:
                records.commit_with(batch, namespace, key, lambda _id: becomes,
                                    only_if=becomes.generation)
    except records.Superseded:
        # An artifact put came between: its value was the artifact this delete removes,
        # and the copy in memory is older than it. The key goes.
        _delete_artifact(workspace, namespace, key, records.read(workspace, namespace, key))


def exists(key: str, *, namespace: str = "", artifact_only: bool = False,
           strategy: Strategy | str | None = None, backend: str | None = None,
           executor: str | None = None, cluster_memory_params: Mapping[str, Any] | None = None,
           artifact_params: Mapping[str, Any] | None = None) -> bool:
    """Whether ``key`` has a current value in a tier the strategy reads (parameters: those
    of :func:`put`).

    An object artifact written by another tool counts (``get`` still refuses it until
    adopted); a user's artifact of that name does not, unless a put's save hook wrote it.
    """
    ns = current_namespace(namespace)
    validate_name(key, "key")
    chosen = _strategy(strategy, artifact_only)
    call = _call(backend, executor, cluster_memory_params, artifact_params)
    workspace = call.workspace
    record, found = records.read_with_artifact(workspace, ns, key)
    if record is None:
        if chosen is Strategy.CLUSTER_MEMORY:
            return call.memory(ns).exists(key)
        return found is not None and tier.is_object_artifact(_artifact(workspace, found))
    if record.tier == records.ARTIFACT:
        if chosen is not Strategy.CLUSTER_MEMORY:
            return True
        if record.location is None:
            return False
    elif chosen is Strategy.ARTIFACT:
        return False
    try:
        return call.memory(ns).exists(key)
    except BackendUnavailableError:
        return False


def adopt(key: str, *, namespace: str = "", serializer: str | None = None) -> None:
    """Trust the object artifact ``key`` as it is now: after this, ``get(key)`` decodes it.

    For objects this store did not write (Flowdapt's, or found by ``reindex``). The
    decision is recorded in the catalog with the SHA-256 of the bytes: bytes changed
    later in the storage are refused again. With a signing key set, the object is
    signed too. ``catalogstore adopt NAMESPACE/KEY`` runs this.

    Parameters
    ----------
    serializer
        The serializer that reads it (default: the one its metadata names, else
        ``cloudpickle``, Flowdapt's).

    Raises
    ------
    ObjectNotFoundError
        when there is no artifact ``key``.
    NotAnObjectError
        when it is a user artifact and no serializer is named.
    """
    ns = current_namespace(namespace)
    validate_name(key, "key")
    workspace = _workspace()
    with records.lock(workspace, ns, key):
        artifact = _find_artifact(workspace, ns, key)
        if artifact is None:
            raise ObjectNotFoundError(f"no artifact {key!r} in namespace {ns!r} to adopt")
        tier.adopt_artifact(artifact, key, serializer)


# -- Flowdapt's default hooks (issue 14; see catalogstore.object_store.hooks) --------------


@dataclass(frozen=True)
class _DefaultSave:
    """The default save hook: ``put`` given it takes its own path (record, digest)."""

    serializer: str | None

    def __call__(self, artifact: Artifact, value: Any) -> None:
        # Called directly: an object that no put recorded (get refuses a pickle of it
        # until adopted, as it does Flowdapt's).
        write = tier.serializer_writer(artifact.name, value, self.serializer)
        with artifact.transaction():
            write(artifact)


@dataclass(frozen=True)
class _DefaultLoad:
    """The default load hook: ``get`` given it takes its own path (record, digest)."""

    serializer: str | None

    def __call__(self, artifact: Artifact) -> Any:
        from catalogstore.object_store.hooks import check_default_layout

        check_default_layout(artifact, self.serializer, VALUE_TYPE)
        return _load_object(artifact, self.serializer)


def _load_object(artifact: Artifact, serializer: str | None) -> Any:
    """What :func:`get` would return for ``artifact``: decoded as its key's record says if
    that record names it, else only with ``serializer`` (see :func:`get`)."""
    from catalogstore.txn.workspace import get_workspace

    workspace, namespace, key = get_workspace(artifact.settings), artifact.namespace, artifact.name
    record = records.read(workspace, namespace, key)
    if record is not None and record.artifact_id == artifact.record.id:
        return tier.read_recorded(workspace, record, serializer,
                                  lambda: records.read(workspace, namespace, key), artifact)
    if serializer is None and "serializer" not in artifact.metadata:
        raise SerializationError(
            f"artifact {namespace}/{key} is an object written by another tool (Flowdapt?): "
            "it names no serializer, so it is not decoded; pass serializer='cloudpickle' "
            "(or another) to trust and read it")
    return tier.read_unrecorded(artifact, key, serializer)


def default_save_hook(serializer: str | Serializer | None = None) -> SaveHook:
    """The hook that writes an object as :func:`put` does: the serializer's file
    (``object`` for pickles, as Flowdapt names it), ``value_type=object`` and the
    serializer's name, signed when a signing key is set. Given to :func:`put`, it is
    :func:`put` without a hook (the key's record vouches for the bytes).

    Parameters
    ----------
    serializer
        A serializer or its name (default: chosen by the value's type).
    """
    return _DefaultSave(serializer if isinstance(serializer, str) or serializer is None
                        else serializer.name)


def default_load_hook(serializer: str | Serializer | None = None) -> LoadHook:
    """The hook that reads what :func:`default_save_hook` wrote, as :func:`get` does:
    bytes the key's record vouches for, or (an object no put of this store recorded)
    only with ``serializer`` named.

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
    SerializationError
        for an object of another tool that names no serializer, when none is given.
    UntrustedObjectError
        for a pickle that no put of this store recorded, when no serializer is given.
    """
    return _DefaultLoad(serializer if isinstance(serializer, str) or serializer is None
                        else serializer.name)
