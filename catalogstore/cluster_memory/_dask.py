"""The ``dask`` cluster memory: any Python object, held by a Dask cluster.

Three kinds of values, one index:

- **Small values** (pickled size up to :data:`INLINE_MAX_BYTES`, 1 MiB) are
  pickled (protocol 5, cloudpickle for what pickle refuses, such as lambdas) and
  kept in the scheduler's index itself: ``put`` and ``get`` are one scheduler round
  trip each (about 0.3 ms on a local cluster, against about 21 ms for
  ``client.scatter`` + ``publish_dataset`` + ``get_dataset``).
- **Large values** are scattered to a worker and kept alive by a published
  dataset (``catalogstore/{namespace}/{key}/{id}`` in ``client.list_datasets()``);
  the index records its name. ``get`` gathers the value.
- **Dask collections** (DataFrame, Array, Bag, Delayed) are persisted, computed,
  and published the same way; ``get`` returns the lazy collection backed by the
  stored partitions, which stay on the workers. A ``distributed.Future`` is
  waited for and its result kept where it was computed (it never travels through
  the putting process); ``get`` returns that result.

The index lives in a scheduler plugin (:mod:`._dask_scheduler`) registered on
first use, so that a replace or delete is one atomic step for every client of
the cluster. The threshold comes from measurement (``bench/bench_memory_dask.py``
prints the table): keeping a value in the scheduler beats scattering it up to
about 16 MiB here, but the scheduler's memory and event loop serve the whole
cluster, so only values that cost it about a millisecond go there.
"""

from __future__ import annotations

import contextlib
import math
import pickle
import sys
import threading
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from catalogstore.cluster_memory.base import ClusterMemory
from catalogstore.errors import (
    BackendUnavailableError,
    CatalogStoreError,
    ObjectNotFoundError,
    SerializationError,
    type_name,
)

if TYPE_CHECKING:
    from distributed import Client

INLINE_MAX_BYTES = 1 << 20
"""Largest pickled value kept in the scheduler's index rather than on a worker."""
INSTALL_HINT = "pip install 'catalogstore[dask]'"
INLINE = "inline"
_READ_ATTEMPTS = 100
"""A ``get`` reads the index again when a concurrent writer replaced the value between
its two requests; this many times in a row means something is wrong."""
_GONE = object()

_registered: set[str] = set()
"""Ids of the clients of this process whose scheduler runs the plugin."""
_register_lock = threading.Lock()


class DaskMemory(ClusterMemory):
    """Cluster memory of a Dask cluster: any picklable object, and Dask collections.

    Works wherever a Dask client is at hand: in the process that created the
    ``distributed.Client`` and inside tasks on the workers (their own client).

    Parameters
    ----------
    namespace, max_object_bytes
        See :class:`~catalogstore.cluster_memory.ClusterMemory`.
    inline_max_bytes
        Largest pickled value kept in the scheduler (default :data:`INLINE_MAX_BYTES`);
        larger ones go to a worker.

    Raises
    ------
    BackendUnavailableError
        When ``distributed`` is not installed or no Dask client runs here.

    Notes
    -----
    **Lifetime.** What is stored belongs to the cluster, not to the code that
    stored it:

    - *The task or process that put it*: the object survives it. Small values
      live in the scheduler; large values and collections live on workers, held
      by a published dataset, not by the putting client or task.
    - *The client (driver)*: the object survives it too; any later client or task
      of the same cluster reads it until it is deleted.
    - *The cluster*: everything is lost when the scheduler stops or restarts. A
      large value lives on one worker; if that worker dies, ``get`` raises
      :class:`~catalogstore.errors.ObjectNotFoundError` (scattered data cannot
      be recomputed), while partitions of a collection are recomputed by Dask.
      ``client.restart()`` drops what workers hold.

    ``delete`` and ``clear`` free the memory at once (the scheduler's) or as soon
    as no reader holds the value any more (the workers'). ``sizes`` reports the
    pickled size of values and what the workers report for collections.
    """

    name = "dask"
    is_distributed = True
    supports_zero_copy = False

    def __init__(self, namespace: str = "", max_object_bytes: int | None = None,
                 inline_max_bytes: int | None = None) -> None:
        super().__init__(namespace, max_object_bytes)
        self.inline_max_bytes = INLINE_MAX_BYTES if inline_max_bytes is None \
            else inline_max_bytes
        _client()  # fail here, with the fix, rather than at the first put

    def __reduce__(self) -> tuple[Any, ...]:
        # The handle holds no client: the unpickled one finds the client of its process.
        return type(self), (self._namespace, self.max_object_bytes, self.inline_max_bytes)

    @classmethod
    def is_available(cls) -> bool:
        """Inside a Dask task, or with a Dask client in this process (never imports Dask)."""
        distributed = sys.modules.get("distributed")
        if distributed is None:
            return False
        for probe in (distributed.get_worker, distributed.default_client):
            try:
                probe()
            except ValueError:
                continue
            return True
        return False

    # -- put ---------------------------------------------------------------------------

    def _put(self, namespace: str, key: str, value: Any) -> None:
        client = _client()
        if _is_collection(value) or _is_future(value):
            self._put_computed(client, namespace, key, value)
            return
        header, buffers = _dumps(key, value)
        size = len(header) + sum(memoryview(b).nbytes for b in buffers)
        self._check_size(key, size)
        if size <= self.inline_max_bytes:
            frames = [header, *(bytes(b.raw()) for b in buffers)]
            self._commit(client, namespace, key, {
                "kind": INLINE, "size": size, "type": type_name(value), "frames": frames})
        else:
            # In a list: scatter would spread a list or dict over the workers item by
            # item. hash=False: a fresh key, never one that is being released.
            future = client.scatter([value], hash=False)[0]
            self._put_dataset(client, namespace, key, future, size, type_name(value))

    def _put_computed(self, client: Client, namespace: str, key: str, value: Any) -> None:
        """Persist a collection (a Future is computing already), wait, and publish it."""
        import distributed

        if _is_future(value):
            held = value
        else:
            dask_array = sys.modules.get("dask.array")
            if dask_array is not None and isinstance(value, dask_array.Array) \
                    and math.isfinite(value.nbytes):
                self._check_size(key, int(value.nbytes))  # known before computing anything
            held = client.persist(value)
        futures = distributed.futures_of(held)
        with _seceded():
            distributed.wait(futures)
        for future in futures:
            if future.status != "finished":
                future.result()  # raises the computation's error (or cancellation): nothing stored
        # Size None: the scheduler sums what the workers report, and refuses it if too large.
        self._put_dataset(client, namespace, key, held, None, type_name(value))

    def _put_dataset(self, client: Client, namespace: str, key: str, value: Any,
                     size: int | None, type_name: str) -> None:
        """Publish ``value`` (futures or a persisted collection), then point the index at it."""
        from distributed import futures_of

        from catalogstore.cluster_memory._dask_scheduler import DATASET

        dataset = f"catalogstore/{namespace}/{key}/{uuid.uuid4().hex}"
        client.publish_dataset(value, name=dataset)
        record = {"kind": DATASET, "size": size, "type": type_name, "dataset": dataset,
                  "keys": [f.key for f in futures_of(value)]}
        try:
            self._commit(client, namespace, key, record)
        except BaseException:
            client.unpublish_dataset(dataset)  # not in the index: nobody can see it
            raise

    def _commit(self, client: Client, namespace: str, key: str, record: dict[str, Any]) -> None:
        """Swap ``record`` in (the commit point), then drop the dataset it replaced."""
        reply = _call(client, "put", namespace=namespace, key=key, record=record,
                      max_bytes=self.max_object_bytes)
        if "too_large" in reply:
            self._check_size(key, reply["too_large"])
        if reply["old"]:
            client.unpublish_dataset(reply["old"])

    # -- get and the rest ------------------------------------------------------------------

    def _get(self, namespace: str, key: str) -> Any:
        import distributed

        client = _client()
        for _ in range(_READ_ATTEMPTS):
            reply = _call(client, "get", namespace=namespace, key=key, reader=client.id)
            record = reply["record"]
            if record is None:
                raise self._missing(namespace, key)
            if record["kind"] == INLINE:
                return _loads(key, record["frames"])
            if "lost" in reply:
                raise ObjectNotFoundError(
                    f"{key!r} in namespace {namespace!r} of the dask cluster memory was lost "
                    "with the worker that held it; put it again")
            # The scheduler pinned the keys for this read: a concurrent replace or delete
            # cannot release them before this client's own claim (get_dataset) lands,
            # which wait() proves (the scheduler answers a claim with the keys' state).
            try:
                value = client.get_dataset(record["dataset"], default=_GONE)
                if value is not _GONE:
                    distributed.wait(distributed.futures_of(value))
            finally:
                _call(client, "unpin", pin=reply["pin"])
            if value is _GONE:
                continue  # replaced or deleted since the index was read: read it again
            return value if _is_collection(value) else value.result()
        raise CatalogStoreError(
            f"{key!r} in namespace {namespace!r} of the dask cluster memory was replaced "
            f"{_READ_ATTEMPTS} times while it was being read")

    def _delete(self, namespace: str, key: str) -> bool:
        client = _client()
        reply = _call(client, "delete", namespace=namespace, key=key)
        if reply["old"]:
            client.unpublish_dataset(reply["old"])
        return bool(reply["existed"])

    def _exists(self, namespace: str, key: str) -> bool:
        reply = _call(_client(), "get", namespace=namespace, key=key, peek=True)
        return reply["record"] is not None

    def _keys(self, namespace: str) -> list[str]:
        return list(self._sizes(namespace))

    def _sizes(self, namespace: str) -> dict[str, int]:
        return dict(_call(_client(), "list", namespace=namespace)["sizes"])

    def _namespaces(self) -> list[str]:
        return list(_call(_client(), "namespaces")["namespaces"])

    def _clear(self, namespace: str) -> None:
        client = _client()
        reply = _call(client, "clear", namespace=namespace)
        if reply["old"]:
            client.unpublish_dataset(list(reply["old"]))


# -- the client and the scheduler plugin ------------------------------------------------------


def _client() -> Client:
    """The Dask client of this process or task, or a clear error."""
    try:
        import distributed
    except ImportError as exc:
        raise BackendUnavailableError(
            f"the dask cluster memory needs dask.distributed ({exc}); install it with "
            f"{INSTALL_HINT}") from exc
    try:
        return distributed.get_client()
    except ValueError as exc:
        raise BackendUnavailableError(
            "the dask cluster memory needs a Dask cluster: create a distributed.Client "
            "in this process (or run this code in a Dask task), or choose another backend "
            "(get_cluster_memory('local'), CATALOGSTORE_MEMORY_BACKEND)") from exc


def _call(client: Client, op: str, **kwargs: Any) -> dict[str, Any]:
    """Run a handler of the plugin on the scheduler (one round trip)."""
    from catalogstore.cluster_memory._dask_scheduler import OP_PREFIX

    _ensure_plugin(client)
    reply: dict[str, Any] | None = client.sync(getattr(client.scheduler, OP_PREFIX + op),
                                               **kwargs)
    if reply is None:
        # An unknown operation answers None: the scheduler restarted without the plugin.
        _registered.discard(client.id)
        _ensure_plugin(client)
        reply = client.sync(getattr(client.scheduler, OP_PREFIX + op), **kwargs)
    return reply


def _ensure_plugin(client: Client) -> None:
    if client.id in _registered:
        return
    import cloudpickle

    from catalogstore.cluster_memory import _dask_scheduler

    with _register_lock:
        # By value: the scheduler needs Dask but not catalogstore.
        cloudpickle.register_pickle_by_value(_dask_scheduler)
        try:
            client.register_plugin(_dask_scheduler.MemoryIndex(),
                                   name=_dask_scheduler.PLUGIN_NAME)
        finally:
            cloudpickle.unregister_pickle_by_value(_dask_scheduler)
        _registered.add(client.id)


@contextlib.contextmanager
def _seceded() -> Iterator[None]:
    """Inside a task, give the worker's thread back while waiting for a computation
    (it may need that thread: a one-thread worker would deadlock)."""
    import distributed

    try:
        distributed.get_worker()
    except ValueError:
        yield
        return
    distributed.secede()
    try:
        yield
    finally:
        distributed.rejoin()


# -- values ------------------------------------------------------------------------------------


def _is_collection(value: Any) -> bool:
    # Only a module that is loaded can have made the value: no import for plain objects.
    dask = sys.modules.get("dask")
    return dask is not None and dask.is_dask_collection(value)


def _is_future(value: Any) -> bool:
    distributed = sys.modules.get("distributed")
    return distributed is not None and isinstance(value, distributed.Future)


def _dumps(key: str, value: Any) -> tuple[bytes, list[pickle.PickleBuffer]]:
    """Pickle protocol 5 with out-of-band buffers (no copy of array data); cloudpickle
    for what pickle refuses (lambdas, closures, classes defined in ``__main__``)."""
    buffers: list[pickle.PickleBuffer] = []
    try:
        return pickle.dumps(value, protocol=5, buffer_callback=buffers.append), buffers
    except Exception:
        buffers.clear()
    try:
        import cloudpickle

        return cloudpickle.dumps(value, protocol=5, buffer_callback=buffers.append), buffers
    except Exception as exc:
        raise SerializationError(
            f"cannot store {key!r}: a {type(value).__qualname__} cannot be pickled "
            f"({type(exc).__name__}: {exc})") from exc


def _loads(key: str, frames: list[bytes]) -> Any:
    try:
        # bytearray: arrays come back writeable, as from any other get.
        return pickle.loads(frames[0], buffers=[bytearray(f) for f in frames[1:]])
    except Exception as exc:
        raise SerializationError(
            f"cannot load {key!r} from the dask cluster memory "
            f"({type(exc).__name__}: {exc})") from exc
