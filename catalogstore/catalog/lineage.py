"""Runs and their edges in the catalog (issue 16): what each run read and made.

A run's row is written by the first transaction that records an edge of it (its id
is made by the process), so a process that reads and writes nothing costs nothing.
An output edge is one row added to the commit that makes the version
(:data:`OUTPUTS`, an ``INSERT ... SELECT`` whose rows never cross the wire); inputs
are kept by the process and written in batches (:func:`add_inputs`).

Edges name an artifact version by (``artifact_id``, ``version``) without a foreign key
to ``artifact_versions``: a version removed by gc's retention, or with its artifact,
leaves its edges, and the walk marks it ``removed``. ``node`` (``artifact:ID:vN`` or
``object:GENERATION``) names the version or generation; an input edge also names the
run that made it (``producer_id``, looked up as the input is written: the output edge
is in the commit that made the version, before anyone could read it), so that the walk
(:func:`walk`) takes one index lookup per step.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Dialect,
    Integer,
    String,
    bindparam,
    cast,
    column,
    exists,
    func,
    literal,
    literal_column,
    select,
    text,
    update,
)

from catalogstore.catalog.direct import run, run_select
from catalogstore.catalog.models import ARTIFACTS as A
from catalogstore.catalog.models import RUN_EDGES as E
from catalogstore.catalog.models import RUNS as R
from catalogstore.catalog.models import UTCDateTime, utcnow
from catalogstore.errors import InvalidMetadataError
from catalogstore.names import check_meta_value
from catalogstore.record import json_text, metadata_of

if TYPE_CHECKING:
    from catalogstore.catalog.catalog import Catalog

RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"
STATUSES = (RUNNING, SUCCEEDED, FAILED)
INPUT, OUTPUT = "input", "output"
HOST = socket.gethostname()[:255]


def artifact_node(artifact_id: int, version: int) -> str:
    return f"artifact:{artifact_id}:v{version}"


def current_node(artifacts: Any) -> Any:
    """:func:`artifact_node` in SQL: the node of the current version of each row of
    ``artifacts`` (the table, or an alias of it)."""
    return literal("artifact:") + cast(artifacts.c.id, String) + literal(":v") + \
        cast(artifacts.c.version, String)


def object_node(generation: str) -> str:
    return f"object:{generation}"


class Edge(NamedTuple):
    """One input or output of a run, as recorded."""

    run_id: str
    direction: str
    node: str


class Node(NamedTuple):
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


class RunRecord(NamedTuple):
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
    """The runs reached from ``root`` and every input and output of each (records are
    named tuples: a walk over thousands of runs makes thousands of them)."""

    root: Node
    runs: dict[str, RunRecord] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    _index: dict[tuple[bool, str, str], list[Edge]] | None = field(
        default=None, init=False, repr=False, compare=False)

    def _edges_of(self, by_run: bool, key: str, direction: str) -> list[Edge]:
        """The edges of ``direction`` of the run (``by_run``) or node ``key``, from an
        index built at the first question (asking for each node of a big graph in turn,
        as the command line's tree does, would otherwise read every edge each time)."""
        if self._index is None:
            index: dict[tuple[bool, str, str], list[Edge]] = {}
            for e in self.edges:
                index.setdefault((True, e.run_id, e.direction), []).append(e)
                index.setdefault((False, e.node, e.direction), []).append(e)
            self._index = index
        return self._index.get((by_run, key, direction), [])

    def producers(self, node: str) -> list[RunRecord]:
        """The runs that made ``node``."""
        return [self.runs[e.run_id] for e in self._edges_of(False, node, OUTPUT)]

    def consumers(self, node: str) -> list[RunRecord]:
        """The runs that read ``node``."""
        return [self.runs[e.run_id] for e in self._edges_of(False, node, INPUT)]

    def of_run(self, run_id: str, direction: str) -> list[Node]:
        return [self.nodes[e.node] for e in self._edges_of(True, run_id, direction)]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form: ``root``, ``runs``, ``nodes`` and ``edges``."""
        return {
            "root": self.root.node,
            "runs": [run_dict(r) for r in self.runs.values()],
            "nodes": [node_dict(n) for n in self.nodes.values()],
            "edges": [{"run": e.run_id, "direction": e.direction, "node": e.node}
                      for e in self.edges],
        }

    def distances(self) -> dict[str, int]:
        """Each run's number of runs on the shortest path from ``root`` (1: made or read
        it), upstream through the producers of inputs, downstream through the readers
        of outputs, as the walk counts its depth."""
        found: dict[str, int] = {}
        for up in (True, False):
            toward = self.producers if up else self.consumers
            frontier = [r.id for r in toward(self.root.node)]
            step = 1
            while frontier:
                reached = [r for r in dict.fromkeys(frontier) if found.get(r, step + 1) > step]
                for r in reached:
                    found[r] = step
                frontier = [nxt.id for r in reached
                            for n in self.of_run(r, INPUT if up else OUTPUT)
                            for nxt in toward(n.node)]
                step += 1
        return found

    def nearest(self, max_runs: int, max_nodes: int) -> LineageGraph:
        """The graph cut to the ``max_runs`` runs nearest ``root`` and the ``max_nodes``
        nodes nearest (``root`` always kept), with the edges between what is kept."""
        far = len(self.runs) + 1
        distance = self.distances()
        ranked = sorted(self.runs, key=lambda r: (distance.get(r, far), r))
        nearest = set(ranked[:max_runs])
        runs = {r: run for r, run in self.runs.items() if r in nearest}
        near: dict[str, int] = {self.root.node: 0}
        for e in self.edges:
            if e.run_id in runs:
                near[e.node] = min(near.get(e.node, far), distance.get(e.run_id, far))
        order = {node: i for i, node in enumerate(self.nodes)}
        kept = sorted(near, key=lambda n: (near[n], order[n]))[:max_nodes]
        nodes = {n: self.nodes[n] for n in sorted(kept, key=order.__getitem__)}
        edges = [e for e in self.edges if e.run_id in runs and e.node in nodes]
        return LineageGraph(self.root, runs, nodes, edges)

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


def run_summary(r: RunRecord) -> dict[str, Any]:
    """A run's name, status and times in JSON-ready form (a run in a list of runs)."""
    return {"id": r.id, "name": r.name, "status": r.status,
            "started_at": r.started_at.isoformat(),
            "ended_at": r.ended_at.isoformat() if r.ended_at else None}


def run_dict(r: RunRecord) -> dict[str, Any]:
    """A run in JSON-ready form."""
    return {**run_summary(r), "params": r.params, "host": r.host, "pid": r.pid,
            "task_id": r.task_id, "parent_id": r.parent_id, "metadata": r.metadata}


def node_dict(n: Node) -> dict[str, Any]:
    """A version or generation in JSON-ready form."""
    return {"node": n.node, "namespace": n.namespace, "name": n.name,
            "artifact_id": n.artifact_id, "version": n.version,
            "generation": n.generation, "state": n.state}


def _dot_text(value: str) -> str:
    return json.dumps(value)  # a double-quoted string with escapes, as DOT reads it


# -- writes (in a transaction of the caller's) ----------------------------------------

_ids: Any = bindparam("ids", expanding=True)
OUTPUTS = E.insert().from_select(
    ["run_id", "direction", "node", "namespace", "name", "artifact_id", "version",
     "created_at"],
    select(bindparam("run", type_=String()), literal(OUTPUT), current_node(A),
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
    return {"id": run_id, "name": name[:255], "params_json": run_document(params),
            "status": RUNNING, "started_at": started_at, "ended_at": None, "host": HOST,
            "pid": os.getpid(), "task_id": task_id, "parent_id": parent_id,
            "metadata_json": run_document(metadata)}


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


def direction_is(direction: str) -> ColumnElement[bool]:
    """``run_edges.direction`` is ``direction`` (:data:`INPUT` or :data:`OUTPUT`), the
    value written into the SQL, not bound: SQLite prepares a statement again at every
    run when a bound value could decide whether a partial index applies
    (``ix_run_edges_producer_id``, of inputs), ~30 us each time."""
    assert direction in (INPUT, OUTPUT)
    return E.c.direction == literal_column(f"'{direction}'")


_INPUT_VALUES: dict[str, Any] = {
    "node": String(), "namespace": String(), "name": String(),
    "artifact_id": BigInteger(), "version": Integer(), "generation": String()}
_PRODUCER = (select(E.c.run_id)
             .where(E.c.node == bindparam("node"), direction_is(OUTPUT))
             .order_by(E.c.id).limit(1).scalar_subquery())
INPUTS = E.insert().from_select(
    ["run_id", "direction", "node", "namespace", "name", "artifact_id", "version",
     "generation", "created_at", "producer_id"],
    select(bindparam("run", type_=String()), literal(INPUT),
           *(bindparam(k, type_=t) for k, t in _INPUT_VALUES.items()),
           bindparam("now", type_=UTCDateTime()), _PRODUCER)
    # The node's few edges, found through ix_run_edges_node: ``run_id || ''`` is no
    # column an index has, so SQLite does not walk the run's edges through
    # ix_run_edges_run_id instead (each commit of a run slower than the one before).
    .where(~exists().where(E.c.node == bindparam("node"),
                           E.c.run_id.concat(literal_column("''")) == bindparam("run"))))
"""One input edge with the run that made what it read (the first that recorded it as an
output: there is one, unless made with lineage off), unless the run has an edge of that
node already: it made it (a stage reading back what it wrote is not its own input), or
read it in a transaction that committed meanwhile (a flush racing the run's commit)."""


def add_inputs(conn: Connection, run_id: str, edges: list[dict[str, Any]],
               now: datetime) -> None:
    if edges:
        run(conn, INPUTS, [{"run": run_id, "now": now, **edge} for edge in edges])


def end_run(conn: Connection, run_id: str, status: str, now: datetime) -> None:
    conn.execute(END, {"run": run_id, "status": status, "now": now})


def set_run_metadata(conn: Connection, run_id: str, metadata: dict[str, Any]) -> None:
    conn.execute(update(R).where(R.c.id == run_id).values(
        metadata_json=run_document(metadata)))


def run_document(values: dict[str, Any]) -> str:
    """A run's parameters or metadata as the catalog writes metadata documents
    (:func:`~catalogstore.record.json_text`: compact, NaN and the infinities as
    ``null``), so ``run.params.KEY`` compares as ``meta.KEY`` does, alike on SQLite and
    PostgreSQL (whose ``json`` refuses ``NaN``). Python's ``json`` reads whatever it
    wrote back as plain JSON values (tuples as lists, keys as strings), checked as
    metadata values are (:func:`~catalogstore.names.check_meta_value`).

    Raises
    ------
    InvalidMetadataError
        not JSON values, nested too deep, or a string with a NUL or lone surrogate.
    """
    try:
        plain = json.loads(json.dumps(values))
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidMetadataError(f"not JSON values: {exc}") from None
    return json_text(check_meta_value("run", plain))


# -- reads ----------------------------------------------------------------------------

_STATE = """
    CASE WHEN e.artifact_id IS NOT NULL THEN
         CASE WHEN EXISTS (SELECT 1 FROM artifact_versions v
                           WHERE v.artifact_id = e.artifact_id AND v.version = e.version)
              THEN 'kept' ELSE 'removed' END
         WHEN EXISTS (SELECT 1 FROM objects o WHERE o.namespace = e.namespace
                      AND o.key = e.name AND o.generation = e.generation)
         THEN 'current' ELSE 'replaced' END"""
"""Whether the version (or generation) an edge names is still there, each a lookup of a
unique index; the views ``run_inputs`` and ``run_outputs`` say it the same way."""

# The two walks, each one index lookup per step along input edges: upstream from a run
# to the producers of its inputs (``ix_run_edges_run_id``), downstream from a run to the
# runs whose inputs it produced (``ix_run_edges_producer_id``). UNION keeps each run once,
# so the forms without a depth end on cycles; a NULL producer (none recorded) leads
# nowhere.
_WAY = """
    {way}(run_id{depth}) AS (
        SELECT run_id{one} FROM run_edges WHERE node = :node AND direction = '{seed}'
        UNION
        SELECT e.{to}{next} FROM {way} w
        JOIN run_edges e ON e.{by} = w.run_id AND e.direction = 'input'{limit}
    )"""
_WAYS = {"up": {"seed": OUTPUT, "by": "run_id", "to": "producer_id"},
         "down": {"seed": INPUT, "by": "producer_id", "to": "run_id"}}
_GRAPH = """
    SELECT r.id, r.name, r.params_json, r.status, r.started_at, r.ended_at, r.host, r.pid,
           r.task_id, r.parent_id, r.metadata_json, e.direction, e.node,
           e.namespace AS node_namespace, e.name AS node_name, e.artifact_id, e.version,
           e.generation, {state} AS state
    FROM runs r
    JOIN run_edges e ON e.run_id = r.id
    WHERE r.id IN ({runs})
    ORDER BY r.started_at, r.id, e.id
"""
# The timestamps come as the driver gives them (typed String: no result processor) and
# are converted once per run, not on each of its edges' rows (:func:`walk`).
_COLUMNS = [column(name, kind) for name, kind in (
    ("id", String()), ("name", String()), ("params_json", String()), ("status", String()),
    ("started_at", String()), ("ended_at", String()), ("host", String()),
    ("pid", Integer()), ("task_id", String()), ("parent_id", String()),
    ("metadata_json", String()), ("direction", String()), ("node", String()),
    ("node_namespace", String()), ("node_name", String()), ("artifact_id", BigInteger()),
    ("version", Integer()), ("generation", String()), ("state", String()))]


def _walk_sql(upstream: bool, downstream: bool, bounded: bool, limited: bool) -> Any:
    parts = {"depth": ", depth", "one": ", 1", "next": ", w.depth + 1",
             "limit": "\n        WHERE w.depth < :depth"} if bounded else \
        dict.fromkeys(("depth", "one", "next", "limit"), "")
    ways = [way for way, on in (("up", upstream), ("down", downstream)) if on]
    ctes = [_WAY.format(way=way, **_WAYS[way], **parts) for way in ways]
    if limited:
        reached = " UNION ALL ".join(f"SELECT run_id, depth FROM {way}" for way in ways)
        runs = (f"SELECT run_id FROM ({reached}) reached GROUP BY run_id "
                "ORDER BY MIN(depth), run_id LIMIT :runs")
    else:
        runs = " UNION ".join(f"SELECT run_id FROM {way}" for way in ways)
    sql = "WITH RECURSIVE" + ",".join(ctes) + _GRAPH.format(state=_STATE, runs=runs)
    return text(sql).columns(*_COLUMNS)


WALK = {(up, down, bounded, limited): _walk_sql(up, down, bounded, limited)
        for up in (True, False) for down in (True, False) if up or down
        for bounded in (True, False) for limited in (False, bounded)}
"""The lineage walk by (upstream, downstream, bounded, limited), one statement: from a
node, the runs that made it and, from each, the runs that made its inputs (``up``), and
the runs that read it and, from each, those that read its outputs (``down``), then every
edge of each run; ``depth`` bounds the runs on a path, and ``runs`` (with a depth) how
many runs are taken, the nearest first."""


def _timestamp_reader(dialect: Dialect) -> Callable[[Any], Any]:
    """A timestamp as :class:`UTCDateTime` reads it, from the value the driver gives."""
    read = UTCDateTime().dialect_impl(dialect).result_processor(dialect, None)
    assert read is not None  # UTCDateTime converts on every database
    return read


def walk(catalog: Catalog, root: Node, *, upstream: bool = True, downstream: bool = True,
         depth: int | None = None, max_runs: int | None = None) -> LineageGraph:
    """The lineage of ``root`` (see :data:`WALK`; neither way: just ``root``); runs whose
    process is gone are marked failed on the way (:func:`notice_dead`). ``max_runs``
    (with a ``depth``) takes that many runs at most, nearest first (by the fewest runs
    on a path, then by id), so that a version read by thousands of runs answers with a
    bounded graph."""
    graph = LineageGraph(root, nodes={root.node: root})
    if not (upstream or downstream):
        return graph
    if max_runs is not None and depth is None:
        raise ValueError("max_runs needs a depth")
    params: dict[str, Any] = {"node": root.node}
    if depth is not None:
        params["depth"] = depth
    if max_runs is not None:
        params["runs"] = max_runs
    with catalog.errors("read the lineage"), catalog.engine.connect() as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            # The planner prices a step of the recursion as if the walk were wide, and
            # on small tables may hash them whole at every step (a 1,000-run chain:
            # 1,000 scans); a walk is narrow: index lookups, step by step.
            conn.exec_driver_sql("SELECT set_config('enable_hashjoin', 'off', true), "
                                 "set_config('enable_mergejoin', 'off', true)")
        rows = run_select(conn, WALK[upstream, downstream, depth is not None,
                                         max_runs is not None], params)
        timestamp = _timestamp_reader(conn.dialect)
    runs, nodes, edges = graph.runs, graph.nodes, graph.edges
    root_node = root.node
    for row in rows:  # one per edge, its run's columns first, ordered by run
        run_id, node = row[0], row[12]
        if run_id not in runs:
            runs[run_id] = RunRecord(run_id, row[1], metadata_of(row[2]), row[3],
                                     timestamp(row[4]), timestamp(row[5]), row[6], row[7],
                                     row[8], row[9], metadata_of(row[10]))
        edges.append(Edge(run_id, row[11], node))
        if node not in nodes or node == root_node:
            nodes[node] = Node(node, *row[13:])
    graph.root = nodes[root.node]
    graph.runs = notice_dead(catalog, runs)
    return graph


def get_run(catalog: Catalog, run_id: str) -> RunRecord | None:
    with catalog.errors("read a run"), catalog.engine.connect() as conn:
        rows = conn.execute(select(R).where(R.c.id == run_id)).all()
    return next(iter(_run_records(catalog, rows)), None)


CHILDREN = (select(R).where(R.c.parent_id == bindparam("run"))
            .order_by(R.c.started_at, R.c.id).limit(bindparam("limit")))
"""The first ``limit`` runs nested in the run ``run``, by start time (then id): read in
order from ``ix_runs_parent_id_started_at``."""
CHILDREN_TOTAL = select(func.count()).select_from(R).where(R.c.parent_id == bindparam("run"))
"""How many runs are nested in the run ``run`` (the same index, read alone)."""


class RunChildren(NamedTuple):
    """The first runs nested in a run, and how many there are in all."""

    total: int
    runs: list[RunRecord]


def child_runs(catalog: Catalog, run_id: str, limit: int) -> RunChildren:
    """The runs whose parent is the run ``run_id`` (opened inside its block), the first
    ``limit`` by start time, with their number: index lookups only (a run nested in one
    of them is that one's child, not this run's). Runs whose process is gone are marked
    failed on the way, as :func:`get_run` does."""
    params = {"run": run_id, "limit": limit}
    with catalog.errors("read a run's children"), catalog.engine.connect() as conn, \
            conn.begin():
        total = int(conn.execute(CHILDREN_TOTAL, params).scalar_one())
        rows = conn.execute(CHILDREN, params).all()
    return RunChildren(total, _run_records(catalog, rows))


_RUN_EDGES = text(f"""
    SELECT e.node, e.namespace AS node_namespace, e.name AS node_name, e.artifact_id,
           e.version, e.generation, {_STATE} AS state, e.producer_id
    FROM run_edges e
    WHERE e.run_id = :run AND e.direction = :direction
    ORDER BY e.id
    LIMIT :limit""").columns(*(c for c in _COLUMNS[12:]), column("producer_id", String()))
_RUN_EDGE_COUNTS = (select(E.c.direction, func.count()).where(E.c.run_id == bindparam("run"))
                    .group_by(E.c.direction))


class RunEdges(NamedTuple):
    """The first edges of one direction of a run, and how many it has in all."""

    total: int
    nodes: list[Node]
    producers: list[str | None]
    """For inputs, the run that made each node (``None``: none recorded)."""


def run_edges(catalog: Catalog, run_id: str, limit: int) -> dict[str, RunEdges]:
    """The first ``limit`` inputs and outputs of the run ``run_id`` as recorded, each
    with its state (as in the walk), and their numbers (index lookups only)."""
    found: dict[str, RunEdges] = {}
    with catalog.errors("read a run's edges"), catalog.engine.connect() as conn:
        totals = {direction: int(n) for direction, n
                  in conn.execute(_RUN_EDGE_COUNTS, {"run": run_id})}
        for direction in (INPUT, OUTPUT):
            rows = conn.execute(_RUN_EDGES, {"run": run_id, "direction": direction,
                                             "limit": limit}).all()
            found[direction] = RunEdges(int(totals.get(direction, 0)),
                                        [Node(*row[:7]) for row in rows],
                                        [row[7] for row in rows])
    return found


def _run_records(catalog: Catalog, rows: Sequence[Any]) -> list[RunRecord]:
    """The runs of ``rows`` (rows of ``runs``) in their order, those whose process is
    gone marked failed (:func:`notice_dead`)."""
    records = {row.id: RunRecord(
        row.id, row.name, metadata_of(row.params_json), row.status, row.started_at,
        row.ended_at, row.host, row.pid, row.task_id, row.parent_id,
        metadata_of(row.metadata_json)) for row in rows}
    return list(notice_dead(catalog, records).values())


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
        changed[r.id] = r._replace(status=FAILED, ended_at=now)
    return changed
