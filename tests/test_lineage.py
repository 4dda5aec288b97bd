"""Lineage (issue 16): runs, the versions and objects each read and made, and the walk.

Runs recorded in this process are explicit (``catalogstore.run``); implicit runs are
seen from other processes (one per script, ended at its exit), as a workflow's stages
run. The demo's workflow is read back here on the local executor, and on Ray and Dask
by ``test_object_store_executors`` (with :func:`check_demo_lineage`).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

import catalogstore
from catalogstore.artifacts import get_artifact, new_artifact
from catalogstore.catalog import lineage
from catalogstore.catalog.query import compile as query_compile
from catalogstore.errors import ConfigurationError, InvalidNameError
from catalogstore.object_store import delete, get, put
from catalogstore.txn.workspace import get_workspace

README = Path(__file__).resolve().parents[1] / "README.md"


def _runs(graph: lineage.LineageGraph) -> dict[str, lineage.RunRecord]:
    return {r.name: r for r in graph.runs.values()}


def _labels(nodes: list[lineage.Node]) -> set[str]:
    return {n.label for n in nodes}


def _count(sql: str) -> int:
    with get_workspace().catalog.engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def test_a_stage_that_reads_and_writes_is_a_run_between_versions(stack):
    with catalogstore.run("prepare", params={"rows": 10}) as prep:
        data = new_artifact("data")
        data.new_file("x.csv", "a,b\n")
    with catalogstore.run("train", params={"lr": 0.05}, metadata={"team": "a"}) as train:
        read = get_artifact("data").get_file("x.csv").read()
        model = new_artifact("model")
        model.new_file("w.bin", read.encode())
        model.get_file("w.bin").read()  # its own output: not an input
        train.metadata["score"] = 0.9
    graph = get_artifact("model").lineage()
    runs = _runs(graph)
    assert set(runs) == {"prepare", "train"}
    assert runs["train"].params == {"lr": 0.05}
    assert runs["train"].metadata == {"team": "a", "score": 0.9}
    assert all(r.status == "succeeded" and r.ended_at is not None for r in runs.values())
    assert runs["train"].pid == os.getpid() and runs["train"].host == lineage.HOST
    assert _labels(graph.of_run(train.id, "input")) == {"default/data:v2"}
    assert _labels(graph.of_run(train.id, "output")) == {"default/model:v1",
                                                         "default/model:v2"}
    assert _labels(graph.of_run(prep.id, "output")) == {"default/data:v1",
                                                        "default/data:v2"}
    assert graph.root.label == "default/model:v2"
    assert [r.name for r in graph.producers(graph.root.node)] == ["train"]
    # Downstream of the data: the train run and what it made.
    down = get_artifact("data").lineage(upstream=False)
    assert set(_runs(down)) == {"train"}
    # One output row per version made, one input row per version read.
    assert _count("SELECT COUNT(*) FROM run_outputs") == 4
    assert _count("SELECT COUNT(*) FROM run_inputs") == 1
    assert json.loads(json.dumps(graph.to_dict()))["root"] == graph.root.node
    dot = graph.to_dot()
    assert dot.startswith("digraph lineage {") and '"train [succeeded]"' in dot


def test_small_object_values_kept_in_the_catalog_are_outputs_and_inputs(stack):
    # The first put of a key goes the artifact way; the next ones are one commit to the
    # catalog (issue 19): each version they make is an output of the run all the same.
    with catalogstore.run("tune") as tune:
        for threshold in (0.5, 0.6, 0.7):
            put("threshold", threshold, artifact_only=True)
    with catalogstore.run("serve") as serve:
        assert get("threshold") == 0.7
    graph = get_artifact("threshold").lineage()
    assert _labels(graph.of_run(tune.id, "output")) == {
        "default/threshold:v1", "default/threshold:v2", "default/threshold:v3"}
    assert _labels(graph.of_run(serve.id, "input")) == {"default/threshold:v3"}


def test_depth_limits_the_walk(local_stack):
    previous = None
    for step in range(5):
        with catalogstore.run(f"step{step}"):
            if previous is not None:
                get_artifact(previous).get_file("f").read()
            new_artifact(f"a{step}").new_file("f", str(step))
        previous = f"a{step}"
    assert set(_runs(get_artifact("a4").lineage())) == {f"step{i}" for i in range(5)}
    assert set(_runs(get_artifact("a4").lineage(depth=2))) == {"step4", "step3"}
    assert set(_runs(get_artifact("a0").lineage(upstream=False, depth=3))) == {
        "step1", "step2", "step3"}
    with pytest.raises(InvalidNameError):
        get_artifact("a4").lineage(depth=0)


def test_max_runs_takes_the_nearest_runs(stack):
    with catalogstore.run("source"):
        new_artifact("data").new_file("f", "x")
    for reader in range(4):
        with catalogstore.run(f"reader{reader}"):
            get_artifact("data").get_file("f").read()
            new_artifact(f"out{reader}").new_file("f", str(reader))
    with catalogstore.run("final"):
        get_artifact("out0").get_file("f").read()
        new_artifact("end").new_file("f", "y")
    whole = get_artifact("data").lineage(depth=3)
    assert len(whole.runs) == 6 and whole.distances()[_runs(whole)["final"].id] == 2
    near = get_artifact("data").lineage(depth=3, max_runs=5)
    assert set(_runs(near)) == {"source", "reader0", "reader1", "reader2", "reader3"}
    cut = whole.nearest(2, 3)
    assert len(cut.runs) == 2 and "final" not in _runs(cut)  # distance 1, then by id
    assert sorted(cut.runs) == sorted(r for r in whole.runs if r != _runs(whole)["final"].id)[:2]
    assert len(cut.nodes) == 3 and cut.root.node in cut.nodes
    assert {e.node for e in cut.edges} <= set(cut.nodes)
    with pytest.raises(InvalidNameError):
        get_artifact("data").lineage(max_runs=5)  # needs a depth


def test_a_block_that_raises_ends_its_run_failed(stack):
    new_artifact("source").new_file("f", "x")
    with pytest.raises(ValueError), catalogstore.run("broken"):
        get_artifact("source").get_file("f").read()
        new_artifact("half").new_file("f", "made before the error")
        raise ValueError("boom")
    runs = _runs(get_artifact("half").lineage())
    assert runs["broken"].status == "failed"


def test_nested_runs_name_their_parent(local_stack):
    with catalogstore.run("outer") as outer, catalogstore.run("inner") as inner:
        new_artifact("made").new_file("f", "x")
    runs = _runs(get_artifact("made").lineage())
    assert set(runs) == {"inner"} and runs["inner"].parent_id == outer.id
    assert inner.status == outer.status == "succeeded"


def test_a_run_lists_its_children_by_start_time(stack):
    """``child_runs``: the runs whose ``parent_id`` is the run, the first ``limit`` by
    start time, and how many there are; a grandchild is its parent's child only."""
    with catalogstore.run("pipeline") as outer:
        steps = []
        for i in range(5):
            with catalogstore.run(f"step-{i}") as step:
                steps.append(step.id)
                if i == 0:
                    with catalogstore.run("grandchild") as grand:
                        pass
    catalog = get_workspace().catalog
    children = lineage.child_runs(catalog, outer.id, 3)
    assert children.total == 5
    assert [(r.id, r.name) for r in children.runs] == [
        (steps[i], f"step-{i}") for i in range(3)]
    assert all(r.parent_id == outer.id and r.status == "succeeded" and r.ended_at
               for r in children.runs)
    assert [r.name for r in lineage.child_runs(catalog, outer.id, 200).runs] == [
        f"step-{i}" for i in range(5)]
    assert lineage.child_runs(catalog, steps[0], 200) == (1, [lineage.get_run(catalog,
                                                                              grand.id)])
    assert lineage.child_runs(catalog, grand.id, 200) == (0, [])
    assert lineage.child_runs(catalog, "0" * 32, 200) == (0, [])


def test_a_run_s_children_are_read_from_the_parent_index(stack):
    """The children of a run (their page in start order, and their number) are index
    lookups on ``ix_runs_parent_id``, never a scan of ``runs`` nor a sort of it."""
    from catalogstore.testing.catalog import analyze_sql, query_plan

    with catalogstore.run("pipeline") as outer:
        for i in range(3):
            with catalogstore.run(f"step-{i}"):
                pass
    for i in range(20):
        with catalogstore.run(f"alone-{i}"):
            pass
    engine = get_workspace().catalog.engine
    with engine.connect() as conn:
        postgres = engine.dialect.name == "postgresql"
        if postgres:  # as test_query_sql: statistics, and an index wherever one serves
            conn.exec_driver_sql(analyze_sql())
            # On a table this small a bitmap scan and a sort may be estimated cheaper:
            # with both off, a sort still shown means the index cannot give the order.
            for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
                conn.exec_driver_sql(f"SET LOCAL {setting} = off")
        for statement in (lineage.CHILDREN, lineage.CHILDREN_TOTAL):
            plan = query_plan(conn, statement, {"run": outer.id, "limit": 200})
            assert "ix_runs_parent_id" in plan, plan
            assert "Sort" not in plan and "TEMP B-TREE" not in plan, plan
            assert "Seq Scan" not in plan and not re.search(r"\bSCAN runs\b", plan), plan
        conn.rollback()


def test_an_input_edge_looks_its_node_up_not_the_run_s_edges(stack):
    """A read's input edge checks that the run has no edge of that node yet through the
    node's index: through the run's own index, each commit of a long run (one output
    and one input per object put and get) cost more than the one before."""
    from catalogstore.testing.catalog import query_plan
    from catalogstore.txn.runs import current_run

    for i in range(50):
        put(f"k{i}", i)
        get(f"k{i}")
    run_id = current_run().id
    engine = get_workspace().catalog.engine
    with engine.connect() as conn:
        plan = query_plan(conn, lineage.INPUTS, {
            "run": run_id, "node": "x", "namespace": "default", "name": "k", "artifact_id": 1,
            "version": 1, "generation": None, "now": datetime.now(timezone.utc)})
        conn.rollback()
    assert "ix_run_edges_run_id" not in plan and "ix_run_edges_node" in plan, plan
    # The edge's direction is written into the SQL, not bound: a bound one could decide
    # whether the partial index of inputs applies, and SQLite then prepares the
    # statement again at every run (a read's input edge cost 4x a plain INSERT).
    for statement in (lineage.INPUTS, *query_compile.made_by_runs(scan=True),
                      *query_compile.made_by_runs(scan=False)):
        sql = str(statement.compile(engine))
        assert "direction = :" not in sql and "direction = ?" not in sql, sql


def test_bad_runs_are_refused(local_stack):
    deep: list[object] = []
    for _ in range(3000):
        deep = [deep]
    for bad in ({"name": ""}, {"name": "x" * 256}, {"name": "x", "params": [1]},
                {"name": "x", "metadata": "m"}, {"name": "\ud800"}, {"name": "a\x00b"},
                {"name": "x", "params": {"p": "\ud800"}}, {"name": "x", "params": {"\x00": 1}},
                {"name": "x", "params": {"p": deep}}, {"name": "x", "metadata": {"m": deep}}):
        with pytest.raises(ConfigurationError), catalogstore.run(**bad):
            pass
    with pytest.raises(ConfigurationError), catalogstore.run("x", params={"f": object()}):
        pass
    assert _count("SELECT COUNT(*) FROM runs") == 0


def test_a_failing_block_keeps_its_error_when_its_run_metadata_cannot_be_written(
        local_stack):
    """Metadata the block set that is no JSON value is logged when the run ends failed:
    the block's own exception is the one raised."""
    with pytest.raises(RuntimeError, match="boom"), catalogstore.run("x") as run:
        run.metadata["m"] = "\ud800"
        raise RuntimeError("boom")


def test_recording_off_writes_no_run_and_no_edge(local_stack, monkeypatch):
    catalogstore.configure(lineage=False)
    assert os.environ["CATALOGSTORE_LINEAGE"] == "off"
    with catalogstore.run("quiet"):
        new_artifact("a").new_file("f", "x")
        get_artifact("a").get_file("f").read()
    assert _count("SELECT COUNT(*) FROM runs") == 0
    assert _count("SELECT COUNT(*) FROM run_edges") == 0
    catalogstore.configure(lineage=True)
    get_artifact("a").get_file("f").read()
    get_artifact("a").lineage()  # flushes this process's reads
    assert _count("SELECT COUNT(*) FROM run_inputs") == 1


def test_a_long_run_forgets_what_it_read_but_records_each_read_once(local_stack,
                                                                     monkeypatch):
    """A run remembers at most WRITTEN_LIMIT versions it recorded as read (a process that
    runs for days reads ever new ones); one read again after it forgot is still one
    input, the catalog's check says so."""
    from catalogstore.txn import runs

    monkeypatch.setattr(runs, "WRITTEN_LIMIT", 4)
    for i in range(10):
        put(f"k{i}", i, artifact_only=True)
    with catalogstore.run("reader") as run:
        for _ in range(2):
            for i in range(10):
                assert get(f"k{i}", artifact_only=True) == i
                get_artifact("k0").lineage()  # flushes: each read written on its own
        state = next(iter(run._catalogs.values()))
        assert 0 < len(state.written) <= 4
    assert _count(f"SELECT COUNT(*) FROM run_edges WHERE run_id = '{run.id}' "
                  "AND direction = 'input'") == 10


def test_a_commit_that_records_nothing_leaves_the_runs_row_to_the_next(local_stack):
    catalogstore.configure(lineage=False)
    new_artifact("old").new_file("f", "x")
    catalogstore.configure(lineage=True)
    get_artifact("old").delete()  # the implicit run's first commit here: no version made
    new_artifact("made").new_file("f", "y")  # its row is written now, then the output
    [made] = _runs(get_artifact("made").lineage()).values()
    assert made.status == "running" and made.pid == os.getpid()


def test_a_catalog_that_fails_does_not_hold_back_the_reads_of_another(tmp_path):
    gone = tmp_path / "gone.db"
    catalogstore.configure(catalog_url=f"sqlite:///{gone}", storage_url=str(tmp_path / "s1"))
    new_artifact("a").new_file("f", "x")
    get_artifact("a").get_file("f").read()  # a read waiting in memory for gone.db
    get_workspace().close()
    gone.unlink()  # its writes fail from now on (no tables)
    catalogstore.configure(catalog_url=f"sqlite:///{tmp_path / 'kept.db'}",
                           storage_url=str(tmp_path / "s2"))
    with catalogstore.run("make"):
        new_artifact("a").new_file("f", "x")
    get_artifact("a").get_file("f").read()  # an input of the implicit run
    get_artifact("a").lineage()  # flushes this process's reads
    assert _count("SELECT COUNT(*) FROM run_inputs") == 1


def test_objects_passed_through_cluster_memory_link_the_runs(local_stack):
    from catalogstore.cluster_memory._local import LocalMemory

    with LocalMemory.new_session():
        with catalogstore.run("make") as make:
            put("frame", {"rows": [1, 2, 3]}, strategy="cluster_memory")
        with catalogstore.run("use") as use:
            value = get("frame", strategy="cluster_memory")
            new_artifact("summary").new_file("n", str(len(value["rows"])))
        graph = get_artifact("summary").lineage()
        (frame,) = graph.of_run(use.id, "input")
        assert frame.generation is not None and frame.artifact_id is None
        assert (frame.namespace, frame.name, frame.state) == ("default", "frame", "current")
        assert [r.id for r in graph.producers(frame.node)] == [make.id]
        with catalogstore.run("again"):
            put("frame", {"rows": []}, strategy="cluster_memory")
        graph = get_artifact("summary").lineage()
        assert graph.nodes[frame.node].state == "replaced"


def test_a_version_removed_by_retention_shows_as_removed(stack):
    with catalogstore.run("prepare"):
        data = new_artifact("data")
        data.new_file("f", "v1")
    with catalogstore.run("train"):
        get_artifact("data").get_file("f").read()
        new_artifact("model").new_file("w", "x")
    with catalogstore.run("prepare again"):
        get_artifact("data").new_file("f", "v3")
    # What gc's retention does to a version: its rows go, its edges stay.
    catalog = get_workspace().catalog
    with catalog.engine.begin() as conn:
        conn.execute(text("DELETE FROM artifact_versions WHERE version = 2 AND artifact_id = "
                          "(SELECT id FROM artifacts WHERE name = 'data')"))
    graph = get_artifact("model").lineage()
    states = {n.label: n.state for n in graph.nodes.values()}
    assert states["default/data:v2"] == "removed"
    assert states["default/model:v2"] == "kept"
    assert "(removed)" in graph.to_dot()
    # And with the artifact deleted: the node keeps its name, removed.
    get_artifact("data").delete()
    graph = get_artifact("model").lineage()
    assert {n.label: n.state for n in graph.nodes.values()}["default/data:v2"] == "removed"


def _script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def _run_script(path: Path, stack: Any, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CATALOGSTORE_")}
    return subprocess.run([sys.executable, str(path)], env={**environ, **stack.environ(),
                                                             **env},
                          capture_output=True, text=True, timeout=120, check=False)


def test_implicit_runs_link_two_processes(local_stack, tmp_path):
    stage_a = _script(tmp_path, "stage_a.py", """
        from catalogstore.artifacts import new_artifact
        new_artifact("raw").new_file("rows.csv", "1,2,3")
    """)
    stage_b = _script(tmp_path, "stage_b.py", """
        from catalogstore.artifacts import get_artifact, new_artifact
        rows = get_artifact("raw").get_file("rows.csv").read()
        new_artifact("clean").new_file("rows.csv", rows.replace(",", "\\n"))
    """)
    for stage in (stage_a, stage_b):
        done = _run_script(stage, local_stack)
        assert done.returncode == 0, done.stderr
    graph = get_artifact("clean").lineage()
    runs = _runs(graph)
    assert set(runs) == {"stage_a.py", "stage_b.py"}
    assert all(r.status == "succeeded" and r.pid != os.getpid() for r in runs.values())
    assert _labels(graph.of_run(runs["stage_b.py"].id, "input")) == {"default/raw:v2"}
    assert "default/raw:v2" in _labels(graph.of_run(runs["stage_a.py"].id, "output"))
    # A stage that only reads: its reads wait in memory and are written at its exit.
    reader = _script(tmp_path, "reader.py", """
        from catalogstore.artifacts import get_artifact
        get_artifact("clean").get_file("rows.csv").read()
    """)
    assert _run_script(reader, local_stack).returncode == 0
    down = get_artifact("clean").lineage(upstream=False)
    assert _runs(down)["reader.py"].status == "succeeded"
    off = _script(tmp_path, "off.py", """
        from catalogstore.artifacts import get_artifact
        get_artifact("clean").get_file("rows.csv").read()
    """)
    assert _run_script(off, local_stack, CATALOGSTORE_LINEAGE="off").returncode == 0
    assert "off.py" not in _runs(get_artifact("clean").lineage())


def test_a_killed_process_shows_its_run_failed(local_stack, tmp_path):
    killed = _script(tmp_path, "killed.py", """
        import os, signal
        from catalogstore.artifacts import new_artifact
        new_artifact("partial").new_file("f", "x")
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = _run_script(killed, local_stack)
    assert done.returncode == -signal.SIGKILL
    with get_workspace().catalog.engine.connect() as conn:
        assert conn.execute(text("SELECT status FROM runs")).scalar_one() == "running"
    runs = _runs(get_artifact("partial").lineage())
    assert runs["killed.py"].status == "failed" and runs["killed.py"].ended_at is not None
    with get_workspace().catalog.engine.connect() as conn:  # noticed once, kept
        assert conn.execute(text("SELECT status FROM runs")).scalar_one() == "failed"


# -- the demo's workflow ---------------------------------------------------------------


def check_demo_lineage(catalog_url: str) -> None:
    """The demo's three stages are runs: prepare_dataframe made my_dataframe (in cluster
    memory, then as an artifact), use_dataframe read the artifact's version, and
    clear_memory (which deletes it) read and made nothing."""
    from catalogstore.catalog.catalog import Catalog

    catalog = Catalog(catalog_url)
    try:
        with catalog.engine.connect() as conn:
            runs = {name: (run_id, status) for run_id, name, status in conn.execute(text(
                "SELECT id, name, status FROM runs"))}
            (artifact_id,) = conn.execute(text(
                "SELECT DISTINCT artifact_id FROM run_outputs WHERE name = 'my_dataframe' "
                "AND artifact_id IS NOT NULL")).one()
        stages = ("prepare_dataframe", "use_dataframe", "clear_memory")
        assert {name: runs[name][1] for name in stages} == dict.fromkeys(stages, "succeeded")
        # Beside them, the driver's implicit run: it wrote the demo's run record.
        root = lineage.Node(lineage.artifact_node(artifact_id, 1), "demo", "my_dataframe",
                            artifact_id, 1, None, "removed")
        graph = lineage.walk(catalog, root)
        by_name = _runs(graph)
        assert set(by_name) == {"prepare_dataframe", "use_dataframe"}
        made = graph.of_run(by_name["prepare_dataframe"].id, "output")
        assert "demo/my_dataframe:v1" in _labels(made)
        assert any(n.generation is not None for n in made)  # the put to cluster memory
        assert _labels(graph.of_run(by_name["use_dataframe"].id, "input")) == {
            "demo/my_dataframe:v1"}
        assert graph.root.state == "removed"  # clear_memory deleted the artifact
    finally:
        catalog.dispose()


def test_the_demo_on_the_local_executor_records_each_stage(local_stack):
    from catalogstore.demo.workflow import run_workflow

    run_workflow("local", echo=lambda line: None)
    check_demo_lineage(local_stack.catalog_url)


# -- the README's SQL ---------------------------------------------------------------------


def readme_lineage_sql() -> list[str]:
    readme = README.read_text()
    section = readme[readme.index("## Lineage"):]
    section = section[:section.index("\n## ", 1)]
    return re.findall(r"```sql\n(.*?)```", section, re.DOTALL)


def test_the_readme_recursive_query_runs_on_both_databases(stack):
    for step in range(3):
        with catalogstore.run(f"step{step}"):
            if step:
                get_artifact(f"a{step - 1}").get_file("f").read()
            new_artifact(f"a{step}").new_file("f", str(step))
    get_artifact("a2").lineage()
    (walk,) = readme_lineage_sql()
    with get_workspace().catalog.engine.connect() as conn:
        cursor = conn.connection.dbapi_connection.cursor()  # the SQL exactly as written
        cursor.execute(walk)
        rows = cursor.fetchall()
    assert [(row[0], row[1]) for row in rows] == [(1, "step2"), (2, "step1"), (3, "step0")]


# -- the command line ---------------------------------------------------------------------


def test_the_lineage_command_prints_a_tree_json_and_dot(local_stack):
    from typer.testing import CliRunner

    from catalogstore.cli import app

    with catalogstore.run("prepare"):
        new_artifact("data").new_file("f", "x")
    with catalogstore.run("train"):
        get_artifact("data").get_file("f").read()
        new_artifact("model").new_file("w", "y")
    cli = CliRunner()
    tree = cli.invoke(app, ["lineage", "default/model"])
    assert tree.exit_code == 0, tree.output
    lines = tree.output.splitlines()
    assert lines[0] == "default/model:v2"
    assert re.search(r"made by train \[succeeded\]", tree.output)
    assert re.search(r"read default/data:v2\n.*made by prepare \[succeeded\]", tree.output)
    older = cli.invoke(app, ["lineage", "default/model:v1", "--json"])
    assert json.loads(older.output)["root"].endswith(":v1")
    down = cli.invoke(app, ["lineage", "data", "--downstream", "--json"])
    assert {r["name"] for r in json.loads(down.output)["runs"]} == {"train"}
    dot = cli.invoke(app, ["lineage", "default/model", "--dot", "--depth", "1"])
    assert dot.output.startswith("digraph lineage {") and "prepare" not in dot.output
    for bad in (["lineage", "default/missing"], ["lineage", "default/model:v9"],
                ["lineage", "default/model", "--upstream", "--downstream"],
                ["lineage", "default/model", "--depth", "0"]):
        failed = cli.invoke(app, bad)
        assert failed.exit_code in (1, 2) and "Traceback" not in failed.output, bad


def test_the_lineage_command_names_the_run_a_nested_run_ran_inside(local_stack):
    from typer.testing import CliRunner

    from catalogstore.cli import app

    with catalogstore.run("pipeline") as outer, catalogstore.run("train"):
        new_artifact("model").new_file("w", "y")
    tree = CliRunner().invoke(app, ["lineage", "default/model"])
    assert tree.exit_code == 0, tree.output
    assert re.search(rf"made by train \[succeeded\] .*\(run \w{{8}}\) inside pipeline "
                     rf"\(run {outer.id[:8]}\)", tree.output), tree.output


def test_a_read_whose_artifact_is_deleted_before_it_is_noted_is_no_input(local_stack):
    """A get of a value's memory copy looks up the artifact's current version to note the
    read; a delete committed in between leaves no version to name, and the get returns
    what it read (test_object_concurrency's readers racing deletes saw
    VersionNotFoundError)."""
    from catalogstore.txn import runs

    put("gone", {"v": 1}, artifact_only=True)
    workspace = get_workspace()
    with get_workspace().catalog.engine.connect() as conn:
        artifact_id = conn.execute(text("SELECT id FROM artifacts WHERE name = 'gone'")).scalar()
    delete("gone")
    with catalogstore.run("reader") as reader:
        runs.note_artifact_read(workspace, artifact_id, None, "default", "gone")
        new_artifact("after").new_file("n", "1")
    assert get_artifact("after").lineage().of_run(reader.id, "input") == []
