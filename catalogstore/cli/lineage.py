"""``catalogstore lineage``: the runs that made an artifact version and what they read,
and the runs that read it and what they made (issue 16), as a tree, JSON or Graphviz."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text
from rich.tree import Tree

from catalogstore.artifacts import get_artifact
from catalogstore.artifacts.versions import open_version, split_ref
from catalogstore.cli.app import app
from catalogstore.cli.output import console, print_json, when
from catalogstore.cli.output import split_ref as split_namespace

if TYPE_CHECKING:
    from catalogstore.catalog.lineage import LineageGraph, Node, RunRecord


@app.command("lineage")
def lineage(
    ref: Annotated[str, typer.Argument(
        metavar="NAMESPACE/NAME[:vN|@ALIAS]",
        help="The artifact version (default: the current one; a bare NAME is in the "
             "current namespace).")],
    upstream_only: Annotated[bool, typer.Option(
        "--upstream", help="Only what it came from.")] = False,
    downstream_only: Annotated[bool, typer.Option(
        "--downstream", help="Only what came from it.")] = False,
    depth: Annotated[int | None, typer.Option(
        min=1, help="At most this many runs on a path.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
    dot: Annotated[bool, typer.Option("--dot", help="Print Graphviz's DOT.")] = False,
) -> None:
    """Show which runs made an artifact version from what, and what read it."""
    if upstream_only and downstream_only:
        raise typer.BadParameter("--upstream and --downstream: choose one (or neither "
                                 "for both)")
    namespace, rest = split_namespace(ref)
    name, version, alias = split_ref(rest)
    artifact = get_artifact(name, namespace)
    if version is not None or alias is not None:
        artifact = open_version(artifact, version, alias)
    graph = artifact.lineage(upstream=not downstream_only, downstream=not upstream_only,
                             depth=depth)
    if as_json:
        print_json(graph.to_dict())
    elif dot:
        typer.echo(graph.to_dot(), nl=False)
    else:
        console().print(tree(graph, upstream=not downstream_only,
                             downstream=not upstream_only, parents=_parents(graph)))


def _parents(graph: LineageGraph) -> dict[str, RunRecord]:
    """The runs that the graph's nested runs ran inside, by id (one read each)."""
    from catalogstore.catalog.lineage import get_run
    from catalogstore.txn.workspace import get_workspace

    catalog = get_workspace().catalog
    ids = {run.parent_id for run in graph.runs.values() if run.parent_id}
    found = {pid: graph.runs.get(pid) or get_run(catalog, pid) for pid in ids}
    return {pid: run for pid, run in found.items() if run is not None}


def _run_label(run: RunRecord, parents: dict[str, RunRecord]) -> Text:
    parent = parents.get(run.parent_id or "")
    inside = f" inside {parent.name} (run {parent.id[:8]})" if parent else ""
    return Text(f"{run.name} [{run.status}] {when(run.started_at)} pid {run.pid} "
                f"(run {run.id[:8]}){inside}")


def _node_label(node: Node) -> Text:
    return Text(node.label + ("" if node.state in ("kept", "current") else f" ({node.state})"))


def tree(graph: LineageGraph, *, upstream: bool, downstream: bool,
         parents: dict[str, RunRecord]) -> Tree:
    """The graph from its root: ``made by`` runs and what they ``read`` (upstream),
    ``read by`` runs and what they ``made`` (downstream); each run expanded once, a
    nested run with the run it ran inside (``parents``, by id)."""
    root = Tree(_node_label(graph.root))
    seen: set[tuple[str, str]] = set()

    def grow(branch: Tree, node: str, up: bool) -> None:
        for run in (graph.producers(node) if up else graph.consumers(node)):
            label = Text("made by " if up else "read by ") + _run_label(run, parents)
            child = branch.add(label)
            if (run.id, "up" if up else "down") in seen:
                child.add("(shown above)")
                continue
            seen.add((run.id, "up" if up else "down"))
            for other in graph.of_run(run.id, "input" if up else "output"):
                grow(child.add(Text("read " if up else "made ") + _node_label(other)),
                     other.node, up)
    if upstream:
        grow(root, graph.root.node, True)
    if downstream:
        grow(root, graph.root.node, False)
    return root
