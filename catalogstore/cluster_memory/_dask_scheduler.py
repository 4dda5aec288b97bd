"""The scheduler side of the ``dask`` cluster memory: a scheduler plugin.

The Dask scheduler holds the index of every namespace: one record per key, either
the pickled value itself (small objects, one round trip to read or write) or
the name of the published dataset that keeps a large value or a persisted
collection alive on the workers. Every change of the index runs in the
scheduler's event loop, so a replace or delete is atomic for all readers and
writers of the cluster, and exactly one writer learns which dataset a replace or
delete made obsolete (and unpublishes it).

This module imports nothing from catalogstore: the client ships the plugin to
the scheduler by value, so the scheduler needs Dask but not catalogstore.
"""

from __future__ import annotations

import uuid
from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin

PLUGIN_NAME = "catalogstore-cluster-memory-v1"
OP_PREFIX = "catalogstore_memory_v1_"
DATASET = "dataset"
"""``kind`` of a record whose value lives on the workers, held by a published dataset."""


class MemoryIndex(SchedulerPlugin):
    """Records of the ``dask`` cluster memory, held by the scheduler.

    A record is a dict: ``kind`` (``"inline"`` or ``"dataset"``), ``size`` (bytes),
    ``type`` (the value's type name), and ``frames`` (inline: pickle protocol 5
    header and out-of-band buffers) or ``dataset`` and ``keys`` (the published
    dataset and the task keys it holds).

    Readers of a dataset record get the keys pinned for them (a *read pin*) until
    they hold futures of their own, so a concurrent replace or delete cannot
    release the data between the reader's two requests. Pins of a client that
    disconnects are dropped with it.
    """

    name = PLUGIN_NAME
    idempotent = True  # a second registration keeps the running index

    def __init__(self) -> None:
        self.records: dict[str, dict[str, dict[str, Any]]] = {}
        self.pins: dict[str, tuple[str, tuple[Any, ...]]] = {}  # pin id -> (client, keys)
        self.scheduler: Any = None

    async def start(self, scheduler: Any) -> None:
        self.scheduler = scheduler
        for op in ("put", "get", "delete", "list", "clear", "unpin", "namespaces"):
            scheduler.handlers[OP_PREFIX + op] = getattr(self, "handle_" + op)

    # -- hooks -----------------------------------------------------------------------

    def remove_client(self, scheduler: Any, client: str) -> None:
        for pin, (owner, _) in list(self.pins.items()):
            if owner == client:
                self._release(pin)

    # -- handlers (each runs to completion in the event loop: atomic) -----------------

    def handle_put(self, namespace: str, key: str, record: dict[str, Any],
                   max_bytes: int) -> dict[str, Any]:
        """Store ``record``; a dataset record of unknown size is sized (and refused if
        over ``max_bytes``) from what the workers report."""
        if record["kind"] == DATASET and record["size"] is None:
            size = sum(max(self._task(k).nbytes, 0) if self._task(k) else 0
                       for k in record["keys"])
            if size > max_bytes:
                return {"too_large": size}
            record = {**record, "size": size}
        old = self.records.setdefault(namespace, {}).get(key)
        self.records[namespace][key] = record
        return {"old": _dataset_of(old)}

    def handle_get(self, namespace: str, key: str, reader: str | None = None,
                   peek: bool = False) -> dict[str, Any]:
        """The record of ``key`` (``None`` if missing); a dataset record is pinned for
        ``reader`` (a client id) unless ``peek``; ``lost`` lists keys no worker holds any more."""
        record = self.records.get(namespace, {}).get(key)
        if record is None or record["kind"] != DATASET or peek:
            return {"record": record}
        lost = [k for k in record["keys"] if self._lost(k)]
        if lost:
            return {"record": record, "lost": lost}
        pin = f"catalogstore-read-{uuid.uuid4().hex}"
        self.scheduler.client_desires_keys(record["keys"], pin)
        self.pins[pin] = (reader or "", tuple(record["keys"]))
        return {"record": record, "pin": pin}

    def handle_unpin(self, pin: str) -> dict[str, Any]:
        self._release(pin)
        return {}

    def handle_delete(self, namespace: str, key: str) -> dict[str, Any]:
        records = self.records.get(namespace, {})
        old = records.pop(key, None)
        if not records:
            self.records.pop(namespace, None)
        return {"existed": old is not None, "old": _dataset_of(old)}

    def handle_list(self, namespace: str) -> dict[str, Any]:
        return {"sizes": {k: r["size"] for k, r in self.records.get(namespace, {}).items()}}

    def handle_namespaces(self) -> dict[str, Any]:
        return {"namespaces": [ns for ns, records in self.records.items() if records]}

    def handle_clear(self, namespace: str) -> dict[str, Any]:
        records = self.records.pop(namespace, {})
        return {"old": [d for d in map(_dataset_of, records.values()) if d]}

    # -- helpers ---------------------------------------------------------------------------

    def _task(self, key: Any) -> Any:
        return self.scheduler.tasks.get(key)

    def _lost(self, key: Any) -> bool:
        """No worker holds ``key`` and Dask cannot compute it again (scattered data)."""
        task = self._task(key)
        return task is None or (task.state != "memory" and task.run_spec is None)

    def _release(self, pin: str) -> None:
        entry = self.pins.pop(pin, None)
        if entry is not None and pin in self.scheduler.clients:
            self.scheduler.client_releases_keys(list(entry[1]), pin)
            # The pseudo-client was made by client_desires_keys; drop it with its pin.
            self.scheduler.clients.pop(pin, None)


def _dataset_of(record: dict[str, Any] | None) -> str | None:
    return record["dataset"] if record is not None and record["kind"] == DATASET else None
