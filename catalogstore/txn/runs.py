"""Runs: which execution of a stage made each artifact version, and what it read (issue 16).

``with catalogstore.run("train", params={...}) as run:`` opens a run for the block
(context-local: the threads it starts record into their process's implicit run; a run
opened inside another is nested, with ``parent_id`` naming the outer one, and takes
the block's edges). Without one, each process has an implicit run named after its
script, and each Ray or Dask task one named after the task (detected from the modules
already imported, never importing Ray or Dask); a task's run ends when its thread
starts another task, and every implicit run ends, ``succeeded``, when the process
exits (``atexit``, and multiprocessing's exit hooks for its workers). A ``with`` block
that raises ends its run ``failed``; a run whose process died stays ``running`` until a
lineage read on its host notices (:func:`catalogstore.catalog.lineage.notice_dead`).

What costs what: the run's row is written by the first transaction that records an
edge of it; each version a commit makes is one output row in that commit
(:class:`Recording`); reads are kept in memory, each version once, and written with
the run's next commit, by a flush at most :data:`FLUSH_SECONDS` later, or when the run
ends. Turned off by the ``lineage`` setting (``CATALOGSTORE_LINEAGE=off``).
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import os
import sys
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from catalogstore.bounded_json import text_problem
from catalogstore.catalog import lineage as rows
from catalogstore.catalog import versions
from catalogstore.catalog.models import utcnow
from catalogstore.errors import (
    CatalogError,
    ConfigurationError,
    InvalidMetadataError,
    VersionNotFoundError,
)
from catalogstore.names import LATEST

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy import Connection

    from catalogstore.catalog.catalog import Catalog
    from catalogstore.txn.workspace import Workspace

FLUSH_SECONDS = 1.0
"""How long reads wait in memory at most before they are written (one transaction)."""
WRITTEN_LIMIT = 65_536
"""Versions a run remembers having recorded as read, per catalog, so it does not send
them again; past that it forgets them (a long-running process reads ever new ones),
and the catalog's check keeps a version it sends again from being a second input."""

_explicit: contextvars.ContextVar[Run | None] = contextvars.ContextVar(
    "catalogstore_run", default=None)
_unrecorded: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "catalogstore_unrecorded", default=False)
_lock = threading.RLock()
_implicit: dict[tuple[int, str | None], Run] = {}
"""Implicit runs by (pid, task id)."""
_task_of_thread: dict[int, Run] = {}
_open: dict[str, Run] = {}
"""Runs of this process that have written or hold something, until they end."""
_flusher: threading.Timer | None = None
_exit_hooked = 0


@dataclass
class _Catalog:
    """A run's state in one catalog: whether its row is written, the reads to write."""

    catalog: Catalog
    inserted: bool = False
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)
    written: set[str] = field(default_factory=set)
    """Nodes recorded as read (at most :data:`WRITTEN_LIMIT`)."""


class Run:
    """One execution of a stage: its id, name, parameters and metadata (see the module)."""

    def __init__(self, name: str, params: dict[str, Any] | None = None,
                 metadata: dict[str, Any] | None = None, *, task_id: str | None = None,
                 parent: Run | None = None, implicit: bool = False) -> None:
        self.id = uuid.uuid4().hex
        self.name = name
        self.params = dict(params or {})
        self.metadata = dict(metadata or {})
        self.task_id = task_id
        self.parent_id = parent.id if parent else None
        self.implicit = implicit
        self.started_at: datetime = utcnow()
        self.status = rows.RUNNING
        self._catalogs: dict[int, _Catalog] = {}
        self._lock = threading.Lock()
        self._flushing = threading.Lock()  # one flush or end of this run at a time

    def __repr__(self) -> str:
        return f"Run({self.name!r}, id={self.id!r}, status={self.status!r})"

    def _row(self) -> dict[str, Any]:
        return rows.run_row(self.id, self.name, self.params, self.metadata, self.task_id,
                            self.parent_id, self.started_at)

    def _state(self, catalog: Catalog) -> _Catalog:
        state = self._catalogs.get(id(catalog))
        if state is None:
            with self._lock:
                state = self._catalogs.setdefault(id(catalog), _Catalog(catalog))
        return state

    def _note(self, catalog: Catalog, edge: dict[str, Any]) -> None:
        state = self._state(catalog)
        node = edge["node"]
        if node in state.written or node in state.pending:
            return
        with self._lock:
            state.pending[node] = edge
        with _lock:
            _open[self.id] = self
        _schedule_flush()

    def _write(self, conn: Connection, state: _Catalog, now: datetime,
               artifact_ids: Sequence[int], objects: Sequence[dict[str, Any]], *,
               force: bool = False) -> list[str] | None:
        """The run's rows in a transaction on ``conn``: its row if not written yet, the
        outputs, then the reads waiting (not those of versions it made itself); nothing
        at all when there is nothing to record, unless ``force``. Returns the reads
        written, for :meth:`_written` once it commits; ``None`` when it wrote nothing
        (so the run's row is still to be written)."""
        with self._lock:
            taken = dict(state.pending)
        if not (artifact_ids or objects or taken or force):
            return None
        if not state.inserted:
            rows.insert_run(conn, self._row())
        rows.add_outputs(conn, self.id, list(artifact_ids), now)
        rows.add_edges(conn, self.id, rows.OUTPUT, list(objects), now)
        rows.add_inputs(conn, self.id, list(taken.values()), now)
        return list(taken)

    def _written(self, state: _Catalog, taken: list[str] | None) -> None:
        if taken is None:
            return
        with self._lock:
            state.inserted = True
            if len(state.written) + len(taken) > WRITTEN_LIMIT:
                state.written.clear()
            for node in taken:
                state.pending.pop(node, None)
                state.written.add(node)
        with _lock:
            _open[self.id] = self

    def flush(self) -> None:
        """Write the reads waiting in memory (one transaction per catalog; one that
        fails keeps its reads)."""
        with self._flushing:
            self._commit_each([s for s in list(self._catalogs.values()) if s.pending], None)

    def _commit_each(self, states: list[_Catalog], status: str | None) -> None:
        """:meth:`_commit` in each catalog; one that fails does not hold back the
        others (the first failure is raised once all were tried)."""
        failure: CatalogError | None = None
        for state in states:
            try:
                self._commit(state, status)
            except CatalogError as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    def _commit(self, state: _Catalog, status: str | None, *, force: bool = False) -> None:
        catalog = state.catalog
        with catalog.locked([]) as conn, catalog.writing(conn) as writes:
            taken = self._write(writes.conn, state, writes.now, [], [],
                                force=force or status is not None)
            if status is not None:
                rows.set_run_metadata(writes.conn, self.id, self.metadata)
                rows.end_run(writes.conn, self.id, status, writes.now)
        self._written(state, taken)

    def end(self, status: str) -> None:
        """Write what waits and end the run with ``status`` in every catalog it touched."""
        with _lock:
            _open.pop(self.id, None)
        if self.status != rows.RUNNING:
            return
        self.status = status
        with self._flushing:
            self._commit_each([s for s in list(self._catalogs.values())
                               if s.inserted or s.pending], status)


class Recording:
    """What one commit of the current run adds to its transaction (at most one row per
    edge, plus the run's row the first time); :meth:`done` once it has committed."""

    def __init__(self, run: Run, catalog: Catalog) -> None:
        self.run = run
        self._state = run._state(catalog)
        self._taken: list[str] | None = None

    def write(self, conn: Connection, now: datetime, artifact_ids: Sequence[int] = (),
              objects: Sequence[dict[str, Any]] = ()) -> None:
        self._taken = self.run._write(conn, self._state, now, artifact_ids, objects)

    def done(self) -> None:
        self.run._written(self._state, self._taken)


# -- which run is current ----------------------------------------------------------------


def _task() -> tuple[str, str] | None:
    """(task id, name) of the Ray or Dask task running this code, if any; never imports
    either (a runtime that was never imported is not running here)."""
    ray = sys.modules.get("ray")
    if ray is not None and getattr(ray, "is_initialized", lambda: False)():
        with contextlib.suppress(Exception):
            context = ray.get_runtime_context()
            task_id = context.get_task_id()
            if task_id:
                return str(task_id), str(context.get_task_name() or "ray task")
    worker = sys.modules.get("distributed.worker")
    key = getattr(getattr(worker, "thread_state", None), "key", None)
    if key is not None:
        name = key[0] if isinstance(key, tuple) else str(key)
        return str(key), name.rsplit("-", 1)[0] if "-" in name else name
    return None


def _process_name() -> str:
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path:
        return os.path.basename(str(path))
    return "python" if not sys.argv or not sys.argv[0] else os.path.basename(sys.argv[0])


def current_run() -> Run:
    """The run that edges go to now: the innermost ``with run(...)`` of this context,
    else this task's or this process's implicit run (opened on first use)."""
    explicit = _explicit.get()
    if explicit is not None:
        return explicit
    task = _task()
    key = (os.getpid(), task[0] if task else None)
    found = _implicit.get(key)
    if found is not None and found.status == rows.RUNNING:
        return found
    with _lock:
        found = _implicit.get(key)
        if found is None or found.status != rows.RUNNING:
            found = _implicit[key] = Run(task[1] if task else _process_name(),
                                         task_id=key[1], implicit=True)
            _hook_exit()
        previous = None
        if task is not None:
            thread = threading.get_ident()
            previous = _task_of_thread.get(thread)
            _task_of_thread[thread] = found
    if previous is not None and previous is not found:
        _end_quietly(previous, rows.SUCCEEDED)  # this thread moved on to another task
    return found


def recording(workspace: Workspace) -> Recording | None:
    """The current run's part of a commit to ``workspace``'s catalog; ``None`` when
    lineage is off."""
    if not workspace.settings.lineage:
        return None
    return Recording(current_run(), workspace.catalog)


@contextlib.contextmanager
def unrecorded() -> Iterator[None]:
    """Reads in the block (this context) are no run's inputs: a viewer such as the web
    browser looks at versions without being a stage that used them."""
    token = _unrecorded.set(True)
    try:
        yield
    finally:
        _unrecorded.reset(token)


def note_artifact_read(workspace: Workspace, artifact_id: int, version: int | None,
                       namespace: str, name: str) -> None:
    """Record that the current run read the version ``version`` of an artifact (``None``:
    its current one, looked up; an artifact deleted since the read has none to name,
    and the read is not recorded: a get racing a delete returns what it read)."""
    if workspace.settings.lineage and not _unrecorded.get():
        if version is None:
            try:
                version = versions.resolve_alias(workspace.catalog, artifact_id, LATEST)
            except VersionNotFoundError:
                return
        current_run()._note(workspace.catalog, {
            "node": rows.artifact_node(artifact_id, version), "namespace": namespace,
            "name": name, "artifact_id": artifact_id, "version": version,
            "generation": None})


def object_edge(namespace: str, key: str, generation: str) -> dict[str, Any]:
    """The edge of an object store generation kept in cluster memory."""
    return {"node": rows.object_node(generation), "namespace": namespace, "name": key,
            "artifact_id": None, "version": None, "generation": generation}


def note_object_read(workspace: Workspace, namespace: str, key: str, generation: str) -> None:
    """Record that the current run read a generation kept in cluster memory."""
    if workspace.settings.lineage and not _unrecorded.get():
        current_run()._note(workspace.catalog, object_edge(namespace, key, generation))


# -- explicit runs -----------------------------------------------------------------------


@contextlib.contextmanager
def run(workspace: Workspace | None, name: str, params: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None) -> Iterator[Run]:
    """Open the run ``name`` for the block: every version made in it is its output,
    every version read its input; ``succeeded`` when the block ends, ``failed`` when
    it raises. ``params`` and ``metadata`` are JSON objects; ``run.metadata`` may be
    changed in the block (written when the run ends). Its row is written in
    ``workspace``'s catalog at once (``None``: lineage is off), so it shows
    ``running`` while it runs."""
    if not isinstance(name, str) or not name.strip() or len(name) > 255 \
            or text_problem(name):
        raise ConfigurationError(f"invalid run name {str(name)[:80]!r}: 1 to 255 characters, "
                                 "no NUL or lone surrogate")
    for what, value in (("params", params), ("metadata", metadata)):
        if value is not None and not isinstance(value, dict):
            raise ConfigurationError(f"run {what} must be a dict of JSON values")
        try:  # not JSON values: refused here, not when the run ends (NaN: null)
            rows.run_document(value or {})
        except InvalidMetadataError as exc:
            raise ConfigurationError(f"run {what} must be JSON values: {exc}") from None
    current = Run(name, params, metadata, parent=_explicit.get())
    if workspace is not None and workspace.settings.lineage:
        current._commit(current._state(workspace.catalog), None, force=True)
    token = _explicit.set(current)
    _hook_exit()
    try:
        yield current
    except BaseException:
        _explicit.reset(token)
        _end_quietly(current, rows.FAILED)
        raise
    _explicit.reset(token)
    current.end(rows.SUCCEEDED)


# -- flushing and ending ------------------------------------------------------------------


def _end_quietly(ended: Run, status: str) -> None:
    try:
        ended.end(status)
    except (CatalogError, InvalidMetadataError) as exc:  # metadata the block set: not JSON
        import logging

        logging.getLogger(__name__).warning("lineage: run %s could not be ended: %s",
                                            ended.name, exc)


def _schedule_flush() -> None:
    global _flusher
    if _flusher is not None:
        return
    with _lock:
        if _flusher is None:
            _flusher = threading.Timer(FLUSH_SECONDS, flush_open)
            _flusher.daemon = True
            _flusher.start()


def flush_open() -> None:
    """Write the reads every run of this process holds in memory."""
    global _flusher
    with _lock:
        _flusher = None
        runs = list(_open.values())
    for each in runs:
        try:
            each.flush()
        except CatalogError as exc:  # kept in memory: the next flush or the end retries
            import logging

            logging.getLogger(__name__).warning("lineage: reads of run %s not written yet: "
                                                "%s", each.name, exc)


def _hook_exit() -> None:
    """End this process's runs at its exit: ``atexit``, and for a multiprocessing worker
    (which leaves by ``os._exit``, skipping atexit) its finalizers."""
    global _exit_hooked
    if _exit_hooked == os.getpid():
        return
    _exit_hooked = os.getpid()
    atexit.register(end_process_runs)
    mp_util = sys.modules.get("multiprocessing.util")
    if mp_util is not None:
        mp_util.Finalize(None, end_process_runs, exitpriority=100)


def end_process_runs() -> None:
    """End every run of this process still open: implicit ones ``succeeded``; an explicit
    one left open (its block never ended) ``failed``."""
    pid = os.getpid()
    with _lock:
        implicit = [r for (p, _), r in _implicit.items() if p == pid]
        others = [r for r in _open.values() if not r.implicit]
    for each in others:
        _end_quietly(each, rows.FAILED)
    for each in implicit:
        _end_quietly(each, rows.SUCCEEDED)
