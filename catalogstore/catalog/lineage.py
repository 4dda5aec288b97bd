"""Runs and their edges in the catalog (issue 16): what each run read and made.

A run's row is written by the first transaction that records an edge of it (its id
is made by the process), so a process that reads and writes nothing costs nothing.
An output edge is one row added to the commit that makes the version
(:data:`OUTPUTS`, an ``INSERT ... SELECT`` whose rows never cross the wire); inputs
are kept by the process and written in batches (:func:`add_inputs`).

Edges name an artifact version by (``artifact_id``, ``version``) without a foreign key
to ``artifact_versions``: a version removed by gc's retention, or with its artifact,
leaves its edges, and the walk marks it ``removed``. ``node`` (``artifact:ID:vN`` or
``object:GENERATION``) is the one key the walk joins on (:func:`walk`).
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Integer,
    String,
    bindparam,
    cast,
    exists,
    literal,
    select,
    text,
    update,
)

from catalogstore.catalog.direct import run
from catalogstore.catalog.models import ARTIFACTS as A
from catalogstore.catalog.models import RUN_EDGES as E
from catalogstore.catalog.models import RUNS as R
from catalogstore.catalog.models import UTCDateTime, utcnow
from catalogstore.record import metadata_of

if TYPE_CHECKING:
    from catalogstore.catalog.catalog import Catalog

RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"
INPUT, OUTPUT = "input", "output"
HOST = socket.gethostname()[:255]


def artifact_node(artifact_id: int, version: int) -> str:
    return f"artifact:{artifact_id}:v{version}"


def object_node(generation: str) -> str:
    return f"object:{generation}"


@dataclass(frozen=True)
class Edge:
    """One input or output of a run, as recorded."""

    run_id: str
    direction: str
    node: str


@dataclass(frozen=True)
class Node:
    """An artifact version or an object generation that runs read or made; ``state``:
    ``kept`` or ``removed`` (by retention, or with its artifact) for a version,
    ``current`` or ``replaced`` for a generation in cluster memory."""

    node: str
    namespace: str
    name: str
    artifact_id: int | None
    version: int | None
    generation: str | None
    state: str

    @property
    def label(self) -> str:
        what = f"{self.namespace}/{self.name}"
        if self.version is not None:
            return f"{what}:v{self.version}"
        return f"{what} (memory {self.generation})"


@dataclass(frozen=True)
class RunRecord:
    """A run as the catalog keeps it."""

    id: str
    name: str
    params: dict[str, Any]
    status: str
    started_at: datetime
    ended_at: datetime | None
    host: str
    pid: int
    task_id: str | None
    parent_id: str | None
    metadata: dict[str, Any]


@dataclass
class LineageGraph:
    """The runs reached from ``root`` and every input and output of each."""

    root: Node
    runs: dict[str, RunRecord] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)

    def producers(self, node: str) -> list[RunRecord]:
        """The runs that made ``node``."""
        return [self.runs[e.run_id] for e in self.edges
                if e.node == node and e.direction == OUTPUT]

    def consumers(self, node: str) -> list[RunRecord]:
        """The runs that read ``node``."""
        return [self.runs[e.run_id] for e in self.edges
                if e.node == node and e.direction == INPUT]

    def of_run(self, run_id: str, direction: str) -> list[Node]:
        return [self.nodes[e.node] for e in self.edges
                if e.run_id == run_id and e.direction == direction]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form: ``root``, ``runs``, ``nodes`` and ``edges``."""
        return {
            "root": self.root.node,
            "runs": [{"id": r.id, "name": r.name, "params": r.params, "status": r.status,
                      "started_at": r.started_at.isoformat(),
                      "ended_at": r.ended_at.isoformat() if r.ended_at else None,
                      "host": r.host, "pid": r.pid, "task_id": r.task_id,
                      "parent_id": r.parent_id, "metadata": r.metadata}
                     for r in self.runs.values()],
            "nodes": [{"node": n.node, "namespace": n.namespace, "name": n.name,
                       "artifact_id": n.artifact_id, "version": n.version,
                       "generation": n.generation, "state": n.state}
                      for n in self.nodes.values()],
            "edges": [{"run": e.run_id, "direction": e.direction, "node": e.node}
                      for e in self.edges],
        }

    def to_dot(self) -> str:
        """The graph in Graphviz's language: runs as boxes, versions as ellipses."""
        lines = ["digraph lineage {", "  rankdir=LR;"]
        for r in self.runs.values():
            label = _dot_text(f"{r.name} [{r.status}]")
            lines.append(f"  {_dot_text(r.id)} [shape=box, label={label}];")
        for n in self.nodes.values():
            style = ", style=dashed" if n.state in ("removed", "replaced") else ""
            bold = ", penwidth=2" if n.node == self.root.node else ""
            label = n.label + (f" ({n.state})" if n.state == "removed" else "")
            lines.append(f"  {_dot_text(n.node)} [label={_dot_text(label)}{style}{bold}];")
        for e in self.edges:
            pair = (e.run_id, e.node) if e.direction == OUTPUT else (e.node, e.run_id)
            lines.append(f"  {_dot_text(pair[0])} -> {_dot_text(pair[1])};")
        lines.append("}")
        return "\n".join(lines) + "\n"


def _dot_text(value: str) -> str:
    return json.dumps(value)  # a double-quoted string with escapes, as DOT reads it


# -- writes (in a transaction of the caller's) ----------------------------------------

_ids: Any = bindparam("ids", expanding=True)
OUTPUTS = E.insert().from_select(
    ["run_id", "direction", "node", "namespace", "name", "artifact_id", "version",
     "created_at"],
    select(bindparam("run", type_=String()), literal(OUTPUT),
           literal("artifact:") + cast(A.c.id, String) + literal(":v")
           + cast(A.c.version, String),
           A.c.namespace, A.c.name, A.c.id, A.c.version,
           bindparam("now", type_=UTCDateTime()))
    .where(A.c.id.in_(_ids)))
"""The output edges of run ``run`` on the current versions of the artifacts ``ids``:
run in the commit that made those versions, after it raised their numbers."""

EDGES = E.insert().inline()
END = update(R).where(R.c.id == bindparam("run"), R.c.status == RUNNING).values(
    status=bindparam("status"), ended_at=bindparam("now"))


_insert_run: dict[str, Any] = {}


def insert_run(conn: Connection, row: dict[str, Any]) -> None:
    """Insert the run ``row`` unless it exists (a commit retried after a lost connection
    may have written it)."""
    dialect = conn.dialect.name
    stmt = _insert_run.get(dialect)
    if stmt is None:
        insert: Any
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        stmt = _insert_run[dialect] = insert(R).on_conflict_do_nothing(index_elements=[R.c.id])
    run(conn, stmt, row)


def run_row(run_id: str, name: str, params: dict[str, Any], metadata: dict[str, Any],
            task_id: str | None, parent_id: str | None, started_at: datetime) -> dict[str, Any]:
    """The ``runs`` row of a run of this process."""
    return {"id": run_id, "name": name[:255], "params_json": json.dumps(params),
            "status": RUNNING, "started_at": started_at, "ended_at": None, "host": HOST,
            "pid": os.getpid(), "task_id": task_id, "parent_id": parent_id,
            "metadata_json": json.dumps(metadata)}


def add_outputs(conn: Connection, run_id: str, artifact_ids: list[int], now: datetime) -> None:
    if artifact_ids:
        run(conn, OUTPUTS, {"run": run_id, "ids": artifact_ids, "now": now})


def add_edges(conn: Connection, run_id: str, direction: str,
              edges: list[dict[str, Any]], now: datetime) -> None:
    """Insert edges given as dicts of ``node``, ``namespace``, ``name``, ``artifact_id``,
    ``version``, ``generation``."""
    if edges:
        run(conn, EDGES, [{"run_id": run_id, "direction": direction, "created_at": now,
                           **edge} for edge in edges])


_INPUT_VALUES: dict[str, Any] = {
    "node": String(), "namespace": String(), "name": String(),
    "artifact_id": BigInteger(), "version": Integer(), "generation": String()}
INPUTS = E.insert().from_select(
    ["run_id", "direction", "node", "namespace", "name", "artifact_id", "version",
     "generation", "created_at"],
    select(bindparam("run", type_=String()), literal(INPUT),
           *(bindparam(k, type_=t) for k, t in _INPUT_VALUES.items()),
           bindparam("now", type_=UTCDateTime()))
    .where(~exists().where(E.c.run_id == bindparam("run"), E.c.node == bindparam("node"),
                           E.c.direction == OUTPUT)))
"""One input edge, unless the run made that version itself (a stage reading back what it
wrote is not its own input)."""


def add_inputs(conn: Connection, run_id: str, edges: list[dict[str, Any]],
               now: datetime) -> None:
    if edges:
        run(conn, INPUTS, [{"run": run_id, "now": now, **edge} for edge in edges])


def end_run(conn: Connection, run_id: str, status: str, now: datetime) -> None:
    conn.execute(END, {"run": run_id, "status": status, "now": now})


def set_run_metadata(conn: Connection, run_id: str, metadata: dict[str, Any]) -> None:
    conn.execute(update(R).where(R.c.id == run_id).values(metadata_json=json.dumps(metadata)))


# -- reads ----------------------------------------------------------------------------

_STATE = """
    CASE WHEN e.artifact_id IS NOT NULL THEN
         CASE WHEN EXISTS (SELECT 1 FROM artifact_versions v
                           WHERE v.artifact_id = e.artifact_id AND v.version = e.version)
              THEN 'kept' ELSE 'removed' END
         WHEN EXISTS (SELECT 1 FROM objects o WHERE o.generation = e.generation)
         THEN 'current' ELSE 'replaced' END"""
"""Whether the version (or generation) an edge names is still there; the views
``run_inputs`` and ``run_outputs`` say it the same way."""

_STEP = """
        SELECT b.run_id, w.dir{depth_next}
        FROM walk w
        JOIN run_edges a ON a.run_id = w.run_id
             AND a.direction = CASE w.dir WHEN 'up' THEN 'input' ELSE 'output' END
        JOIN run_edges b ON b.node = a.node
             AND b.direction = CASE w.dir WHEN 'up' THEN 'output' ELSE 'input' END
        {depth_limit}"""

_WALK = """
    WITH RECURSIVE walk(run_id, dir{depth_col}) AS (
        SELECT run_id, 'up'{depth_one} FROM run_edges
        WHERE node = :node AND direction = 'output' AND :up = 1
        UNION
        SELECT run_id, 'down'{depth_one} FROM run_edges
        WHERE node = :node AND direction = 'input' AND :down = 1
        UNION{step}
    )
    SELECT r.id, r.name, r.params_json, r.status, r.started_at, r.ended_at, r.host, r.pid,
           r.task_id, r.parent_id, r.metadata_json,
           e.direction, e.node, e.namespace, e.name, e.artifact_id, e.version, e.generation,
           {state} AS state
    FROM (SELECT DISTINCT run_id FROM walk) w
    JOIN runs r ON r.id = w.run_id
    JOIN run_edges e ON e.run_id = r.id
    ORDER BY r.started_at, r.id, e.id
"""


def _walk_sql(bounded: bool) -> Any:
    step = _STEP.format(depth_next=", w.depth + 1" if bounded else "",
                        depth_limit="WHERE w.depth < :depth" if bounded else "")
    sql = _WALK.format(depth_col=", depth" if bounded else "",
                       depth_one=", 1" if bounded else "", step=step, state=_STATE)
    return text(sql).columns(started_at=UTCDateTime(), ended_at=UTCDateTime())


WALK = {True: _walk_sql(True), False: _walk_sql(False)}
"""The lineage walk, one recursive query: from a node, the runs that made it and, from
each, the runs that made its inputs (``up``), and the runs that read it and, from each,
those that read its outputs (``down``); ``depth`` bounds the runs on a path (the form
without it ends on cycles, as ``UNION`` keeps each run once)."""


def walk(catalog: Catalog, root: Node, *, upstream: bool = True, downstream: bool = True,
         depth: int | None = None) -> LineageGraph:
    """The lineage of ``root`` (see :data:`WALK`); runs whose process is gone are marked
    failed on the way (:func:`notice_dead`)."""
    graph = LineageGraph(root, nodes={root.node: root})
    params = {"node": root.node, "up": int(upstream), "down": int(downstream)}
    if depth is not None:
        params["depth"] = depth
    with catalog.errors("read the lineage"), catalog.engine.connect() as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            # The planner prices each step of the recursion as if the walk were wide
            # and scans run_edges whole at every step (a 1,000-run chain: 1,000 scans);
            # a walk is narrow: index lookups, step by step.
            conn.exec_driver_sql("SET LOCAL enable_hashjoin = off")
            conn.exec_driver_sql("SET LOCAL enable_mergejoin = off")
        rows = conn.execute(WALK[depth is not None], params).all()
    for row in rows:
        if row[0] not in graph.runs:
            graph.runs[row[0]] = RunRecord(row[0], row[1], metadata_of(row[2]), row[3], row[4],
                                           row[5], row[6], row[7], row[8], row[9],
                                           metadata_of(row[10]))
        graph.edges.append(Edge(row[0], row[11], row[12]))
        if row[12] not in graph.nodes or row[12] == root.node:
            graph.nodes[row[12]] = Node(row[12], row[13], row[14], row[15], row[16], row[17],
                                        row[18])
    graph.root = graph.nodes[root.node]
    graph.runs = notice_dead(catalog, graph.runs)
    return graph


def get_run(catalog: Catalog, run_id: str) -> RunRecord | None:
    with catalog.errors("read a run"), catalog.engine.connect() as conn:
        row = conn.execute(select(R).where(R.c.id == run_id)).first()
    if row is None:
        return None
    record = _run_record(row._mapping)
    return notice_dead(catalog, {record.id: record})[record.id]


def _run_record(row: Any) -> RunRecord:
    return RunRecord(row["id"], row["name"], metadata_of(row["params_json"]), row["status"],
                     row["started_at"], row["ended_at"], row["host"], row["pid"],
                     row["task_id"], row["parent_id"], metadata_of(row["metadata_json"]))


def _is_dead(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, ValueError):
        return False
    return False


def notice_dead(catalog: Catalog, runs: dict[str, RunRecord]) -> dict[str, RunRecord]:
    """``runs``, those still ``running`` on this host whose process is gone marked
    ``failed`` (in the catalog too). Runs of other hosts are left as they are: only
    their own host can tell (a reused pid keeps a dead run ``running``)."""
    dead = [r for r in runs.values() if r.status == RUNNING and r.host == HOST
            and r.pid != os.getpid() and _is_dead(r.pid)]
    if not dead:
        return runs
    now = utcnow()
    with catalog.errors("mark dead runs failed"), catalog.engine.begin() as conn:
        for r in dead:
            end_run(conn, r.id, FAILED, now)
    changed = dict(runs)
    for r in dead:
        changed[r.id] = RunRecord(**{**r.__dict__, "status": FAILED, "ended_at": now})
    return changed
