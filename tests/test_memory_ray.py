"""The ray cluster memory backend, on a real local Ray started once for the session.

The contract suite runs with "another process" meaning a Ray task. Beyond it:
auto-detection (driver, task, actor; local outside Ray), objects outliving the
worker process and the driver that put them, zero-copy reads, recovery when the
memory actor dies, and a two-node cluster (``tests/ray_two_nodes.py``, in a
subprocess, since a process holds one Ray connection).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import ray

from catalogstore.cluster_memory import get_cluster_memory, resolve_backend
from catalogstore.cluster_memory._ray import ACTOR_NAME, RAY_NAMESPACE, RayMemory
from catalogstore.cluster_memory._ray_board import Board, remove_ended_boards
from catalogstore.errors import SerializationError
from catalogstore.testing.memory import ClusterMemoryContract

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
SUBPROCESS_TIMEOUT = 300
# Starting the session's Ray takes over 5 s, paid by whichever test comes first.
pytestmark = pytest.mark.slow
pytest_plugins = ["executors"]  # ray_session: one Ray for the whole test session


def new_namespace() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def namespace(ray_session: Any) -> Iterator[str]:
    name = new_namespace()
    yield name
    RayMemory(namespace=name).clear(namespace=name)


@pytest.fixture
def memory(namespace: str) -> RayMemory:
    return RayMemory(namespace=namespace)


@pytest.fixture
def memory_kwargs(namespace: str) -> dict[str, str]:
    return {"backend": "ray", "namespace": namespace}


def run_task(fn: Callable[..., Any], *args: Any) -> Any:
    return ray.get(ray.remote(fn).remote(*args))


@pytest.fixture
def remote(ray_session: Any) -> Callable[..., Any]:
    return run_task


class TestRayContract(ClusterMemoryContract):
    pass


def run_script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run a Python script of this repository in a fresh interpreter; fail with its output."""
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, **(env or {})}, timeout=SUBPROCESS_TIMEOUT,
                         check=False)
    assert out.returncode == 0, f"stdout:\n{out.stdout}\nstderr:\n{out.stderr}"
    return out


# -- stage functions run as tasks and actors ----------------------------------------


def detected_backend_puts(namespace: str, key: str, value: Any) -> tuple[str, int]:
    """Put through the detected backend (no backend argument); its class and this pid."""
    memory = get_cluster_memory(namespace=namespace)
    memory.put(key, value)
    return type(memory).__name__, os.getpid()


def detected_backend_gets(namespace: str, key: str) -> tuple[Any, int]:
    return get_cluster_memory(namespace=namespace).get(key), os.getpid()


class Stage:
    """An actor whose methods use the cluster memory like stage functions."""

    def put(self, namespace: str, key: str, value: Any) -> tuple[str, int]:
        return detected_backend_puts(namespace, key, value)

    def get(self, namespace: str, key: str) -> tuple[Any, int]:
        return detected_backend_gets(namespace, key)


# -- backend selection -----------------------------------------------------------


def test_detected_on_the_initialised_driver(ray_session: Any) -> None:
    assert resolve_backend() == "ray"
    assert isinstance(get_cluster_memory(), RayMemory)


def test_detected_in_a_task_and_an_actor(namespace: str) -> None:
    backend, task_pid = run_task(detected_backend_puts, namespace, "from-task", [1])
    assert backend == "RayMemory" and task_pid != os.getpid()
    stage = ray.remote(Stage).remote()
    try:
        backend, actor_pid = ray.get(stage.put.remote(namespace, "from-actor", {"a": 1}))
        assert backend == "RayMemory" and actor_pid != os.getpid()
        assert ray.get(stage.get.remote(namespace, "from-task"))[0] == [1]
    finally:
        ray.kill(stage)
    memory = RayMemory(namespace=namespace)
    assert memory.get("from-actor") == {"a": 1}
    assert memory.keys() == ["from-actor", "from-task"]


def test_outside_ray_local_is_detected_and_ray_is_refused() -> None:
    """With Ray imported but not initialised: auto picks local; an explicit ray explains."""
    code = textwrap.dedent("""
        import ray
        from catalogstore.cluster_memory import get_cluster_memory, resolve_backend
        from catalogstore.errors import BackendUnavailableError
        assert resolve_backend() == "local", resolve_backend()
        try:
            get_cluster_memory("ray")
        except BackendUnavailableError as exc:
            assert "ray.init()" in str(exc), exc
        else:
            raise AssertionError("an uninitialised Ray was accepted")
        assert not ray.is_initialized()  # and nothing started it
    """)
    run_script("-c", code)


# -- lifetime ------------------------------------------------------------------------


def test_object_survives_the_worker_process_that_put_it(namespace: str) -> None:
    # max_calls=1: the worker process exits after its task, so the putter is gone
    # before the getter runs (in another process).
    one_shot = {"max_calls": 1}
    array = np.arange(1_000_000, dtype=np.float64)
    put = ray.remote(**one_shot)(detected_backend_puts)
    get = ray.remote(**one_shot)(detected_backend_gets)
    _, put_pid = ray.get(put.remote(namespace, "array", array))
    _, put_pid_2 = ray.get(put.remote(namespace, "small", {"n": 1}))
    got, get_pid = ray.get(get.remote(namespace, "array"))
    assert np.array_equal(got, array)
    assert ray.get(get.remote(namespace, "small"))[0] == {"n": 1}
    assert len({put_pid, put_pid_2, get_pid, os.getpid()}) == 4


def test_object_survives_the_driver_that_put_it(namespace: str, tmp_path: Path) -> None:
    """A second driver joins the cluster, puts, exits; this driver still gets the value.

    Its value of a class only that driver can import round-trips there too: the
    memory actor never unpickles what it stores, so it needs no user code.
    """
    (tmp_path / "only_here.py").write_text(
        "class Model:\n    def __init__(self, w):\n        self.w = w\n")
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import ray
        from only_here import Model
        ray.init(address={ray.get_runtime_context().gcs_address!r}, log_to_driver=False)
        from catalogstore.cluster_memory import get_cluster_memory
        memory = get_cluster_memory(namespace={namespace!r})
        memory.put("model", Model([1.5, 2.5]))
        memory.put("plain", {{"from": "the other driver"}})
        assert memory.get("model").w == [1.5, 2.5]
        ray.shutdown()
        from catalogstore.errors import BackendUnavailableError
        try:  # a handle used after shutdown explains, and starts no new Ray
            memory.get("plain")
        except BackendUnavailableError as exc:
            assert "ray.init()" in str(exc), exc
        else:
            raise AssertionError("a get after ray.shutdown() succeeded")
        assert not ray.is_initialized()
    """)
    run_script("-c", code)
    memory = RayMemory(namespace=namespace)
    assert memory.get("plain") == {"from": "the other driver"}
    assert memory.keys() == ["model", "plain"]
    assert "only_here" not in sys.modules
    with pytest.raises(SerializationError, match="only_here"):  # its class: not importable here
        memory.get("model")


def test_actor_killed_is_replaced_empty(memory: RayMemory) -> None:
    memory.put("k", "v")
    assert memory.get("k") == "v"  # now in this process's read cache too
    actor = ray.get_actor(ACTOR_NAME, namespace=RAY_NAMESPACE)
    board = Board.open(Path(ray.get(actor.board.remote())[1]))
    assert board is not None and board.owner() is not None
    ray.kill(actor, no_restart=True)
    deadline = time.monotonic() + 30  # ray.kill returns before the process ends
    while board.owner() is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not memory.exists("k")  # what the actor owned died with it
    with pytest.raises(KeyError):
        memory.get("k")
    memory.put("k", "again")  # a new actor took the name
    assert memory.get("k") == "again"


# -- the read cache ----------------------------------------------------------------


def remote_delete(namespace: str, key: str) -> None:
    RayMemory(namespace=namespace).delete(key)


@pytest.mark.parametrize("size", [10, 1_000_000], ids=["inline", "object-store"])
def test_cached_reads_see_changes_made_by_other_processes(
        memory: RayMemory, namespace: str, size: int,
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    call = RayMemory._call
    monkeypatch.setattr(RayMemory, "_call", lambda self, method, *a: (
        calls.append(method), call(self, method, *a))[1])
    memory.put("k", np.full(size, 1.0))
    assert memory.get("k")[0] == 1.0
    calls.clear()
    for _ in range(3):  # served by this process, no call to the actor
        assert memory.get("k")[0] == 1.0
        assert memory.exists("k")
    assert calls == []
    # A task (another process) replaces the key: the next get here sees it.
    run_task(detected_backend_puts, namespace, "k", np.full(size, 2.0))
    assert memory.get("k")[0] == 2.0
    assert calls == ["get"]
    run_task(remote_delete, namespace, "k")
    assert not memory.exists("k")
    with pytest.raises(KeyError):
        memory.get("k")


def test_a_cached_value_is_a_copy_of_what_was_put(memory: RayMemory) -> None:
    value = np.zeros(100)
    memory.put("k", value)
    value[:] = 7  # the caller changes its array after the put
    assert memory.get("k").sum() == 0


# -- zero-copy and data kinds ------------------------------------------------------


def test_numpy_get_is_a_read_only_view(memory: RayMemory) -> None:
    array = np.arange(4_000_000, dtype=np.float32).reshape(2000, 2000)
    memory.put("array", array)
    got = memory.get("array")
    assert got.shape == array.shape and got.dtype == array.dtype
    assert np.array_equal(got, array)
    assert not got.flags.writeable  # a view of the object store, not a private copy
    assert not got.flags.owndata
    fortran = np.asfortranarray(array)
    memory.put("fortran", fortran)
    assert memory.get("fortran").flags.f_contiguous


def test_pandas_and_arrow_values(memory: RayMemory) -> None:
    frame = pd.DataFrame({"x": np.arange(100_000), "y": np.linspace(0, 1, 100_000),
                          "name": ["a", "b"] * 50_000})
    table = pa.table({"x": np.arange(100_000)})
    memory.put("frame", frame)
    memory.put("table", table)
    pd.testing.assert_frame_equal(memory.get("frame"), frame)
    assert memory.get("table").equals(table)


def test_sizes_are_the_pickled_sizes(memory: RayMemory) -> None:
    memory.put("small", b"x" * 100)
    memory.put("big", np.zeros(1 << 20, dtype=np.uint8))
    sizes = memory.sizes()
    assert 100 <= sizes["small"] < 400
    assert (1 << 20) <= sizes["big"] < (1 << 20) + 1000


# -- multi-node and the example ----------------------------------------------------


def test_two_node_cluster_put_on_one_get_on_the_other() -> None:
    out = run_script("tests/ray_two_nodes.py")
    assert out.stdout.count("ok:") == 5, out.stdout


def test_example_runs_each_stage_in_its_own_worker() -> None:
    out = run_script("examples/run_ray.py")
    assert "all stages ran" in out.stdout, out.stdout


def test_boards_of_ended_sessions_are_removed(tmp_path: Path) -> None:
    ended, running = tmp_path / "ray-ended.board", tmp_path / "ray-running.board"
    subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                    "from catalogstore.cluster_memory._ray_board import Board; "
                    "Board(Path(sys.argv[1]), owner=True)", str(ended)], check=True)
    mine = Board(running, owner=True)  # written by this (running) process
    board = Board.open(ended)
    assert board is not None and board.owner() is None
    assert mine.owner() == os.getpid()
    remove_ended_boards(tmp_path)
    assert not ended.exists() and running.exists()


def test_cli_memory_ls_joins_the_running_cluster(memory: RayMemory, namespace: str) -> None:
    """`catalogstore memory ls -b ray` from a shell: the command joins the cluster itself
    (ray.init(address="auto"), which follows RAY_ADDRESS: this session's cluster)."""
    import json

    memory.put("frame", b"x" * 1000)
    env = {"RAY_ADDRESS": ray.get_runtime_context().gcs_address}
    out = run_script("-m", "catalogstore", "memory", "ls", "-b", "ray", "-n", namespace,
                     "--json", env=env)
    listing = json.loads(out.stdout)
    assert listing["backend"] == "ray"
    assert [o["key"] for o in listing["objects"]] == ["frame"]
    cleared = run_script("-m", "catalogstore", "memory", "clear", "-b", "ray", "-n", namespace,
                         env=env)
    assert "cleared 1 object(s)" in cleared.stdout
    assert memory.keys() == []


def test_cli_memory_ls_without_a_cluster_to_join_is_one_line() -> None:
    out = subprocess.run([sys.executable, "-m", "catalogstore", "memory", "ls", "-b", "ray"],
                         capture_output=True, text=True, cwd=REPO, timeout=SUBPROCESS_TIMEOUT,
                         env={**os.environ, "RAY_ADDRESS": "not-an-address"}, check=False)
    assert out.returncode == 1, out
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no running Ray cluster to join"), \
        out.stderr
