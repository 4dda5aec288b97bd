"""The ``ray`` cluster memory backend: objects in Ray's object store, owned by a detached actor.

Why an actor: Ray frees an object when its *owner* (the process that called
``ray.put``) dies, and ``ray.put(..., _owner=...)`` was removed in Ray 2.56. So
one detached, named actor (``catalogstore-memory`` in the Ray namespace
``catalogstore``) performs every ``ray.put`` itself and keeps the references.

Why opaque frames: the caller pickles the value (cloudpickle, protocol 5, the way
Ray serializes Python objects) into a pickle stream plus out-of-band buffers and
sends them as NumPy ``uint8`` frames. The actor stores the frames without ever
unpickling them, so it needs none of the users' code (a detached actor outlives
the job whose modules it could import) and spends no time in user classes.
``get`` unpickles the frames that ``ray.get`` maps from the object store, so a
NumPy array (and pandas/Arrow data) comes back as a read-only, zero-copy view.
"""

from __future__ import annotations

import os
import pickle
import threading
from pathlib import Path
from typing import Any, cast

import numpy as np  # a dependency of Ray itself
import ray
from ray import cloudpickle
from ray.actor import ActorHandle
from ray.exceptions import ObjectLostError, ObjectStoreFullError, RayActorError

from catalogstore.cluster_memory._ray_board import (
    Board,
    board_path,
    remove_ended_boards,
    slot,
)
from catalogstore.cluster_memory.base import ClusterMemory
from catalogstore.errors import (
    BackendUnavailableError,
    ObjectTooLargeError,
    SerializationError,
    type_name,
)

ACTOR_NAME = "catalogstore-memory"
"""Name of the detached actor that owns the stored objects."""
RAY_NAMESPACE = "catalogstore"
"""Ray namespace of the actor: fixed, so that every job of a cluster finds the same one."""
INLINE_MAX_BYTES = 64 << 10
"""Payloads up to this size stay in the actor's memory and travel inside the call's
reply, one round trip for a get (Ray itself inlines objects under 100 KiB)."""
_ACTOR_THREADS = 8
# Ray Serve pins its controller to the head node with this resource: the head
# node's loss ends the cluster anyway, so the objects live as long as the cluster.
_HEAD_NODE_RESOURCE = "node:__internal_head__"

Frames = list[Any]
"""A pickle stream and its out-of-band buffers: NumPy ``uint8`` arrays, or ``bytes``."""
Version = tuple[int, int] | None
"""A key's version: (the memory actor's process id, its board counter); ``None``
when the actor has no board."""
Entry = tuple[Frames | None, "ray.ObjectRef[Any] | None", Version]
"""A stored value as a get sees it: inline frames or a reference, and its version."""


class MemoryActor:
    """Owner of every object of the ray backend: ``(namespace, key) -> frames``.

    Payloads over :data:`INLINE_MAX_BYTES` are held as the reference of an object
    this actor put into Ray's object store; smaller ones as ``bytes``. Methods run
    on a few threads so that a large put's copy does not hold up lookups; the lock
    makes each change of the table atomic.
    """

    def __init__(self) -> None:
        self._objects: dict[tuple[str, str], tuple[Frames | ray.ObjectRef[Any], int]] = {}
        self._lock = threading.Lock()
        self._board_path: str | None = None
        self._board: Board | None = None
        try:
            path = board_path(ray.get_runtime_context().get_session_name())
            remove_ended_boards(path.parent)
            self._board, self._board_path = Board(path, owner=True), str(path)
        except OSError:  # no board: every get asks this actor, which stays correct
            pass

    def _changed(self, namespace: str, key: str) -> Version:
        """Count a change of the key on the board (under the lock); its new version."""
        if self._board is None:
            return None
        return os.getpid(), self._board.bump(slot(namespace, key))

    def put(self, namespace: str, key: str, frames: Frames) -> Version:
        size = sum(frame.nbytes for frame in frames)
        # The frames map the call's argument object, which Ray frees after the call.
        stored = [frame.tobytes() for frame in frames] if size <= INLINE_MAX_BYTES \
            else ray.put(frames)
        with self._lock:  # the swap is the commit: readers see the old or the new value
            self._objects[(namespace, key)] = (stored, size)
            return self._changed(namespace, key)

    def get(self, namespace: str, key: str) -> Entry | None:
        """``(frames, None, version)`` for an inline payload, ``(None, ref, version)``
        else, ``None`` if missing.

        A reference nested in the reply is not resolved by Ray: the caller gets
        it and maps the object from its own node's object store.
        """
        with self._lock:
            entry = self._objects.get((namespace, key))
            version = None if self._board is None else \
                (os.getpid(), self._board.version(slot(namespace, key)))
        if entry is None:
            return None
        stored = entry[0]
        return (None, stored, version) if isinstance(stored, ray.ObjectRef) \
            else (stored, None, version)

    def delete(self, namespace: str, key: str) -> bool:
        with self._lock:
            self._changed(namespace, key)
            return self._objects.pop((namespace, key), None) is not None

    def exists(self, namespace: str, key: str) -> bool:
        return (namespace, key) in self._objects

    def sizes(self, namespace: str) -> dict[str, int]:
        with self._lock:
            return {key: size for (ns, key), (_, size) in self._objects.items()
                    if ns == namespace}

    def namespaces(self) -> list[str]:
        with self._lock:
            return sorted({ns for ns, _ in self._objects})

    def clear(self, namespace: str) -> None:
        with self._lock:
            for ns_key in [ns_key for ns_key in self._objects if ns_key[0] == namespace]:
                del self._objects[ns_key]
                self._changed(*ns_key)

    def node_id(self) -> str:
        """The Ray node this actor (and every object over the inline size) lives on."""
        return ray.get_runtime_context().get_node_id()

    def board(self) -> tuple[str, str | None]:
        """This actor's node and the path of its board there (``None``: it has none)."""
        return self.node_id(), self._board_path


_RemoteMemoryActor = ray.remote(MemoryActor)

# The actor handle of this process, with the (Ray session, job) it belongs to: a
# handle is only valid in the connection that obtained it.
_cached: tuple[tuple[str, str], ActorHandle[Any]] | None = None
_cache_lock = threading.Lock()


def _require_ray() -> None:
    # Checked before every use: Ray's API would otherwise start a new local Ray.
    if not ray.is_initialized():
        raise BackendUnavailableError(
            "the ray cluster memory backend needs a running Ray in this process: call "
            "ray.init() (or ray.init(address=...) to join a cluster) first, or run the code "
            "inside a Ray task or actor")


def _connection() -> tuple[str, str]:
    _require_ray()
    context = ray.get_runtime_context()
    return context.get_session_name(), context.get_job_id()


def memory_actor() -> ActorHandle[Any]:
    """The handle of the memory actor, created on first use in the cluster, cached per process."""
    global _cached
    connection = _connection()
    cached = _cached
    if cached is not None and cached[0] == connection:
        return cached[1]
    with _cache_lock:
        if _cached is None or _cached[0] != connection:
            options: dict[str, Any] = {
                "name": ACTOR_NAME, "namespace": RAY_NAMESPACE, "get_if_exists": True,
                "lifetime": "detached", "num_cpus": 0, "max_concurrency": _ACTOR_THREADS,
                # Restarted after a crash (empty: what it owned died with it), so the
                # name always leads to a live actor.
                "max_restarts": -1, "enable_task_events": False,
            }
            if _HEAD_NODE_RESOURCE in ray.cluster_resources():
                options["resources"] = {_HEAD_NODE_RESOURCE: 0.001}
            # cast: ray's stubs type remote() after options() as possibly the class itself.
            _cached = connection, cast(ActorHandle[Any],
                                       _RemoteMemoryActor.options(**options).remote())
        return _cached[1]


def _forget(actor: ActorHandle[Any]) -> None:
    global _cached
    with _cache_lock:
        if _cached is not None and _cached[1] is actor:
            _cached = None


class ReadCache:
    """What this process read or put, served again while the actor's board says unchanged.

    Only used on the memory actor's machine (where its board is); elsewhere every
    get asks the actor. Entries of keys that changed are dropped on the next call
    that looks at the cache, which releases this process's hold on their objects.
    """

    MAX_ENTRIES = 1024

    def __init__(self, board: Board | None) -> None:
        self.board = board
        self._entries: dict[tuple[str, str], Entry] = {}
        self._lock = threading.Lock()

    def lookup(self, namespace: str, key: str) -> Entry | None:
        """The entry of the key if it is still current."""
        entry = self._entries.get((namespace, key))
        if entry is None or self._current(namespace, key, entry, self._owner()):
            return entry
        self.forget(namespace, key)
        return None

    def remember(self, namespace: str, key: str, entry: Entry) -> None:
        if self.board is None or entry[2] is None:
            return
        with self._lock:
            owner = self._owner()
            for ns_key, old in list(self._entries.items()):
                if not self._current(*ns_key, old, owner):
                    del self._entries[ns_key]
            if len(self._entries) >= self.MAX_ENTRIES:
                del self._entries[next(iter(self._entries))]  # the oldest
            self._entries[(namespace, key)] = entry

    def forget(self, namespace: str, key: str | None = None) -> None:
        """Drop the key's entry (every entry of the namespace when ``key`` is ``None``)."""
        with self._lock:
            if key is not None:
                self._entries.pop((namespace, key), None)
                return
            for ns_key in [k for k in self._entries if k[0] == namespace]:
                del self._entries[ns_key]

    def _owner(self) -> int | None:
        return None if self.board is None else self.board.owner()

    def _current(self, namespace: str, key: str, entry: Entry, owner: int | None) -> bool:
        """Whether ``entry`` is still the key's value, ``owner`` being the board's writer."""
        version = entry[2]
        return owner is not None and version is not None and owner == version[0] \
            and self.board.version(slot(namespace, key)) == version[1]  # type: ignore[union-attr]


# The read cache of this process, with the actor handle it belongs to.
_reads: tuple[ActorHandle[Any], ReadCache] | None = None


def read_cache() -> ReadCache:
    """This process's :class:`ReadCache`, with the board of the memory actor if it is on
    this machine."""
    global _reads
    actor = memory_actor()
    cached = _reads
    if cached is not None and cached[0] is actor:
        return cached[1]
    node, path = ray.get(actor.board.remote())
    here = ray.get_runtime_context().get_node_id()
    board = Board.open(Path(path)) if path is not None and node == here else None
    with _cache_lock:
        _reads = actor, ReadCache(board)
        return _reads[1]


def _serialize(key: str, value: Any) -> Frames:
    buffers: list[pickle.PickleBuffer] = []
    try:
        stream = cloudpickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    except Exception as exc:  # pickling runs arbitrary __reduce__ code: any error is possible
        raise SerializationError(
            f"cannot store {key!r} in the ray cluster memory: its value of type "
            f"{type_name(value)} cannot be pickled ({exc})") from exc
    # uint8 views (no copy) travel out of band through Ray's own serializer.
    return [np.frombuffer(stream, dtype=np.uint8),
            *(np.frombuffer(buffer.raw(), dtype=np.uint8) for buffer in buffers)]


class RayMemory(ClusterMemory):
    """Cluster memory in Ray's object store, shared by every driver, task and actor of a cluster.

    Parameters
    ----------
    namespace, max_object_bytes
        See :class:`~catalogstore.cluster_memory.ClusterMemory`. The size checked
        against the limit is the pickled size of the value (stream and buffers).

    Raises
    ------
    BackendUnavailableError
        When Ray is not initialised in this process (call ``ray.init()`` first, or
        run inside a Ray task or actor).

    Notes
    -----
    **Where objects live.** Every object is owned by one detached actor,
    ``catalogstore-memory`` (Ray namespace ``catalogstore``), placed on the head
    node and created by the first call in the cluster. Values whose pickled size
    is over 64 KiB are objects in Ray's object store of the head node; a get on
    another node has Ray copy them to that node's store once, and every get maps
    them zero-copy (NumPy arrays come back read-only). Smaller values are kept in
    the actor's memory and returned with the lookup's reply. A process's first get of
    a key costs one call to the actor (the lookup) plus Ray's ``ray.get``; it keeps
    what it mapped, and later gets only check the actor's board (see
    :mod:`~catalogstore.cluster_memory._ray_board`) and unpickle, as long as no process
    changed the key: about 10 microseconds for any size on the actor's machine (on
    other machines every get asks the actor). A put pickles the value, sends
    it to the actor (Ray copies it into the object store as the call's argument)
    and the actor puts it with ``ray.put`` (a second copy: the object must be the
    actor's, see the lifetime). When its store is full, Ray spills objects to disk
    or allocates new ones on disk; only when Ray refuses a value
    (``ObjectStoreFullError``) does ``put`` raise
    :class:`~catalogstore.errors.ObjectTooLargeError`, like a value over the size
    limit.

    **Lifetime.**

    - *The task, actor or process that put an object*: the object survives it,
      since the memory actor owns it (a later task on any node gets it, even
      after the putting worker process exited).
    - *The driver (Ray job)*: the actor is detached, so objects survive the driver
      that put them as long as the cluster runs: a driver that joins a running
      cluster (``ray start --head`` then ``ray.init(address=...)``) and exits
      leaves its objects to the next driver. A driver that started a local
      cluster itself with ``ray.init()`` stops that cluster on ``ray.shutdown()``
      or exit, and the objects end with it.
    - *The cluster*: objects end with it (``ray stop``, head node lost). They also
      end when the memory actor dies (``ray.kill``, a crash of its process): Ray
      restarts it empty, and gets raise ``KeyError``.
    - Within that, an object lives until it is replaced, deleted or its namespace
      cleared; a process still holding a zero-copy view keeps that memory mapped
      until it drops the view, and a process that read it keeps it until its next
      call to this backend notices the change (at most 1,024 values per process).
    """

    name = "ray"
    supports_zero_copy = True
    is_distributed = True

    def __init__(self, namespace: str = "", max_object_bytes: int | None = None) -> None:
        _require_ray()
        super().__init__(namespace, max_object_bytes)

    @classmethod
    def is_available(cls) -> bool:
        # True on a connected driver and inside every task and actor.
        return ray.is_initialized()

    def __reduce__(self) -> tuple[Any, ...]:
        # The actor handle is per process (looked up again there); the settings travel.
        return type(self), (self._namespace, self.max_object_bytes)

    def _call(self, method: str, *args: Any) -> Any:
        """Run a method of the memory actor and wait for its result.

        A call that finds the actor dead (killed, or its node lost) is retried once,
        with a handle looked up again: the name leads to the restarted actor, or to
        a new one.
        """
        error: RayActorError | None = None
        for _attempt in range(2):
            actor = memory_actor()
            try:
                return ray.get(getattr(actor, method).remote(*args))
            except RayActorError as exc:
                _forget(actor)
                error = exc
        raise BackendUnavailableError(
            f"the ray cluster memory actor {ACTOR_NAME!r} (namespace {RAY_NAMESPACE!r}) "
            f"cannot be reached: {error}") from error

    def _put(self, namespace: str, key: str, value: Any) -> None:
        frames = _serialize(key, value)
        size = sum(frame.nbytes for frame in frames)
        self._check_size(key, size)
        reads = read_cache()
        reads.forget(namespace, key)
        try:
            version = self._call("put", namespace, key, frames)
        except ObjectStoreFullError as exc:
            raise ObjectTooLargeError(
                f"{key!r} does not fit in Ray's object store ({exc.__class__.__name__}); "
                "free objects or start Ray with a larger object_store_memory") from exc
        if size <= INLINE_MAX_BYTES:  # a copy: the frames map the caller's value
            reads.remember(namespace, key, ([f.tobytes() for f in frames], None, version))

    def _get(self, namespace: str, key: str) -> Any:
        reads = read_cache()
        entry = reads.lookup(namespace, key)
        frames = entry[0] if entry is not None else None
        if frames is None:
            entry = self._call("get", namespace, key)
            if entry is None:
                raise self._missing(namespace, key)
            frames, ref, version = entry
            if frames is None:
                try:
                    frames = ray.get(ref)
                except ObjectLostError as exc:  # the actor died after answering
                    raise self._missing(namespace, key) from exc
            # The frames map the object store: keeping them (and the reference, which
            # keeps the object alive) spares the next get ray.get's call to the owner.
            reads.remember(namespace, key, (frames, ref, version))
        try:
            return pickle.loads(frames[0], buffers=frames[1:])
        except Exception as exc:  # unpickling runs arbitrary code: any error is possible
            raise SerializationError(
                f"cannot load {key!r} from the ray cluster memory: {exc} (is the module of "
                "its class importable in this process?)") from exc

    def _delete(self, namespace: str, key: str) -> bool:
        read_cache().forget(namespace, key)
        return bool(self._call("delete", namespace, key))

    def _exists(self, namespace: str, key: str) -> bool:
        return read_cache().lookup(namespace, key) is not None or \
            bool(self._call("exists", namespace, key))

    def _keys(self, namespace: str) -> list[str]:
        return list(self._call("sizes", namespace))

    def _sizes(self, namespace: str) -> dict[str, int]:
        return dict(self._call("sizes", namespace))

    def _namespaces(self) -> list[str]:
        return list(self._call("namespaces"))

    def _clear(self, namespace: str) -> None:
        read_cache().forget(namespace)
        self._call("clear", namespace)
