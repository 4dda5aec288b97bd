"""The ``dask`` cluster memory on a real Dask ``LocalCluster`` (two worker processes).

The cluster starts once per session. Every test works in a namespace of its own,
cleared afterwards, so the tests share the cluster without seeing each other.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from catalogstore.cluster_memory import get_cluster_memory
from catalogstore.cluster_memory._dask import INLINE_MAX_BYTES, DaskMemory
from catalogstore.cluster_memory._dask_scheduler import PLUGIN_NAME
from catalogstore.errors import ObjectNotFoundError, ObjectTooLargeError
from catalogstore.testing.memory import ClusterMemoryContract, remote_get

REPO = Path(__file__).resolve().parent.parent
LARGE = INLINE_MAX_BYTES // 8 + 1_000  # float64 items: just over the scheduler-held size
pytest_plugins = ["executors"]  # dask_client: one Dask cluster for the whole test session


@pytest.fixture
def memory_kwargs(dask_client: Any) -> dict[str, Any]:
    return {"backend": "dask", "namespace": f"t-{uuid.uuid4().hex[:12]}"}


@pytest.fixture
def memory(memory_kwargs: dict[str, Any]) -> Iterator[DaskMemory]:
    memory = get_cluster_memory(**memory_kwargs)
    assert isinstance(memory, DaskMemory)
    yield memory
    memory.clear(namespace="")


@pytest.fixture
def remote(dask_client: Any) -> Callable[..., Any]:
    def run(fn: Callable[..., Any], *args: Any) -> Any:
        return dask_client.submit(fn, *args, pure=False).result()
    return run


def workers(client: Any) -> list[str]:
    return sorted(client.scheduler_info()["workers"])


def index_state(dask_scheduler: Any = None) -> dict[str, Any]:
    """What the scheduler plugin holds (runs on the scheduler)."""
    plugin = dask_scheduler.plugins[PLUGIN_NAME]
    return {"pins": len(plugin.pins), "namespaces": sorted(plugin.records),
            "pin_clients": [c for c in dask_scheduler.clients if c.startswith("catalogstore-")]}


def our_datasets(client: Any, namespace: str) -> list[str]:
    return [d for d in client.list_datasets() if d.startswith(f"catalogstore/{namespace}/")]


class TestDaskContract(ClusterMemoryContract):
    """The contract every backend passes, on the Dask cluster."""


# -- functions that run as tasks on the workers ------------------------------------------


def detected_backend() -> str:
    return type(get_cluster_memory()).__name__


def put_and_pid(memory_kwargs: dict[str, Any], key: str, value: Any) -> int:
    get_cluster_memory(**memory_kwargs).put(key, value)
    return os.getpid()


def get_and_pid(memory_kwargs: dict[str, Any], key: str) -> tuple[Any, int]:
    return get_cluster_memory(**memory_kwargs).get(key), os.getpid()


def call_stored(memory_kwargs: dict[str, Any], key: str, arg: Any) -> Any:
    return get_cluster_memory(**memory_kwargs).get(key)(arg)


def put_dask_array(memory_kwargs: dict[str, Any], key: str) -> None:
    """Persist a collection from inside a task (the task must give its thread back)."""
    import dask.array as da

    get_cluster_memory(**memory_kwargs).put(key, da.arange(1000, chunks=100) * 2)


def sum_collection(memory_kwargs: dict[str, Any], key: str) -> tuple[bool, float]:
    import dask
    from distributed import worker_client

    collection = get_cluster_memory(**memory_kwargs).get(key)
    with worker_client() as client:  # computing from a task: give the thread back
        total = client.compute(collection.sum().sum()).result()
    return dask.is_dask_collection(collection), float(total)


def write_many(memory_kwargs: dict[str, Any], key: str, rounds: int) -> int:
    """Replace ``key`` ``rounds`` times, alternating scheduler-held and worker-held values."""
    import numpy as np

    memory = get_cluster_memory(**memory_kwargs)
    for i in range(rounds):
        memory.put(key, [i] * 10 if i % 2 else np.full(LARGE, float(i)))
    return rounds


def failing_chunk() -> Any:
    raise ZeroDivisionError("the computation failed")


# -- detection and availability ----------------------------------------------------------


def test_detected_on_the_client_and_in_tasks(dask_client: Any, remote: Callable) -> None:
    assert DaskMemory.is_available()
    # The session's Ray (tests/executors.py) may run in this process too: it goes first.
    ray = sys.modules.get("ray")
    here = "RayMemory" if ray is not None and ray.is_initialized() else "DaskMemory"
    assert type(get_cluster_memory()).__name__ == here
    assert remote(detected_backend) == "DaskMemory"


def test_without_a_client_local_is_chosen_and_dask_explains() -> None:
    code = """if True:
        import sys
        from catalogstore.cluster_memory import get_cluster_memory, resolve_backend
        from catalogstore.errors import BackendUnavailableError
        assert resolve_backend() == "local"
        assert "distributed" not in sys.modules  # detection imports no runtime
        import distributed
        from catalogstore.cluster_memory._dask import DaskMemory
        assert not DaskMemory.is_available() and resolve_backend() == "local"
        try:
            get_cluster_memory("dask")
        except BackendUnavailableError as exc:
            print(exc)
        else:
            raise SystemExit("no error without a client")
    """
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=False)
    assert out.returncode == 0, out.stderr
    assert "distributed.Client" in out.stdout and "another backend" in out.stdout


def test_scheduler_plugin_ships_without_catalogstore() -> None:
    """The scheduler needs Dask, not catalogstore: the plugin travels by value."""
    import cloudpickle
    from distributed.protocol.pickle import dumps

    from catalogstore.cluster_memory import _dask_scheduler

    cloudpickle.register_pickle_by_value(_dask_scheduler)
    try:
        payload = dumps(_dask_scheduler.MemoryIndex())
    finally:
        cloudpickle.unregister_pickle_by_value(_dask_scheduler)
    code = ("import pickle, sys; sys.modules['catalogstore'] = None; "
            "p = pickle.loads(sys.stdin.buffer.read()); print(p.name, p.records)")
    out = subprocess.run([sys.executable, "-c", code], input=payload, capture_output=True,
                         check=False)
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout.decode().split() == [PLUGIN_NAME, "{}"]


# -- lifetime and placement ----------------------------------------------------------------


def test_put_in_a_task_is_read_by_a_task_on_the_other_worker(
        dask_client: Any, memory_kwargs: dict[str, Any], memory: DaskMemory) -> None:
    first, second = workers(dask_client)
    values = {"small": {"cities": ["Moab"]}, "large": np.arange(LARGE, dtype=float)}
    for key, value in values.items():
        put_pid = dask_client.submit(put_and_pid, memory_kwargs, key, value, pure=False,
                                     workers=[first]).result()  # the putting task has ended
        got, get_pid = dask_client.submit(get_and_pid, memory_kwargs, key, pure=False,
                                          workers=[second]).result()
        assert put_pid != get_pid
        assert np.array_equal(got, value) if key == "large" else got == value
    assert memory.sizes()["large"] >= LARGE * 8
    assert len(our_datasets(dask_client, memory.namespace)) == 1  # only the large one


def test_objects_survive_the_client_that_put_them(dask_client: Any,
                                                  memory: DaskMemory) -> None:
    from distributed import Client, get_client

    with Client(dask_client.scheduler.address) as other:
        assert get_client() is other
        putter = get_cluster_memory("dask", namespace=memory.namespace)
        putter.put("small", "kept")
        putter.put("large", np.ones(LARGE))
    assert get_client() is dask_client
    assert memory.get("small") == "kept"
    assert memory.get("large").sum() == LARGE


def test_a_value_lost_with_its_worker_is_reported(dask_client: Any,
                                                  memory: DaskMemory) -> None:
    from distributed.comm import CommClosedError

    memory.put("large", np.ones(LARGE))
    (holder,) = holders(dask_client, memory.namespace, "large")
    with pytest.raises(CommClosedError):
        dask_client.run(os._exit, 1, workers=[holder])  # the nanny starts a new worker
    while holder in dask_client.run_on_scheduler(scheduler_workers):
        pass  # until the scheduler has noticed
    dask_client.wait_for_workers(2)
    with pytest.raises(ObjectNotFoundError, match="lost with the worker"):
        memory.get("large")
    assert memory.delete("large")


def holders(client: Any, namespace: str, key: str) -> list[str]:
    """The workers that hold the value of ``key`` (asks the scheduler plugin)."""
    def find(dask_scheduler: Any = None) -> list[str]:
        plugin = dask_scheduler.plugins[PLUGIN_NAME]
        return sorted({worker.address for k in plugin.records[namespace][key]["keys"]
                       for worker in dask_scheduler.tasks[k].who_has})
    return client.run_on_scheduler(find)


def scheduler_workers(dask_scheduler: Any = None) -> list[str]:
    return list(dask_scheduler.workers)


# -- values ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_dask_collections_stay_lazy(dask_client: Any, memory: DaskMemory,
                                    memory_kwargs: dict[str, Any], remote: Callable) -> None:
    import dask
    import dask.array as da
    import dask.dataframe as dd

    frame = pd.DataFrame({"a": range(100), "b": [float(i) / 2 for i in range(100)]})
    memory.put("frame", dd.from_pandas(frame, npartitions=4))
    memory.put("array", da.arange(1000, chunks=100) ** 2)
    got_frame, got_array = memory.get("frame"), memory.get("array")
    assert isinstance(got_frame, dd.DataFrame) and isinstance(got_array, da.Array)
    pd.testing.assert_frame_equal(got_frame.compute(), frame)
    assert got_array.sum().compute() == sum(i * i for i in range(1000))
    assert remote(sum_collection, memory_kwargs, "frame") == (True, float(frame.sum().sum()))
    # Put from inside a task: the persisting task gives its worker thread back.
    remote(put_dask_array, memory_kwargs, "from-task")
    assert dask.is_dask_collection(memory.get("from-task"))
    assert memory.get("from-task").sum().compute() == 999_000
    assert memory.sizes()["array"] == 8000


def test_a_future_stores_its_result_where_it_was_computed(
        dask_client: Any, memory: DaskMemory, memory_kwargs: dict[str, Any],
        remote: Callable) -> None:
    memory.put("total", dask_client.submit(sum, range(10), pure=False))
    assert memory.get("total") == 45
    assert remote(remote_get, memory_kwargs, "total") == 45
    assert len(our_datasets(dask_client, memory.namespace)) == 1


def test_collections_obey_the_size_limit(dask_client: Any, memory: DaskMemory) -> None:
    import dask
    import dask.array as da
    import dask.dataframe as dd

    limited = DaskMemory(namespace=memory.namespace, max_object_bytes=1000)
    with pytest.raises(ObjectTooLargeError, match="'array'"):
        limited.put("array", da.ones(10_000, chunks=1000))  # refused before computing
    with pytest.raises(ObjectTooLargeError, match="'frame'"):
        limited.put("frame", dd.from_pandas(pd.DataFrame({"a": range(10_000)}), npartitions=2))
    failing = da.from_delayed(dask.delayed(failing_chunk)(), shape=(3,), dtype=float)
    with pytest.raises(ZeroDivisionError):
        memory.put("failing", failing)
    assert memory.keys() == [] and our_datasets(dask_client, memory.namespace) == []


def test_lambdas_and_closures(memory: DaskMemory, memory_kwargs: dict[str, Any],
                              remote: Callable) -> None:
    offset = 10
    memory.put("lambda", lambda x: x + 1)
    memory.put("closure", lambda x: x + offset)
    assert memory.get("lambda")(1) == 2
    assert remote(call_stored, memory_kwargs, "closure", 5) == 15


def test_arrays_come_back_writeable(memory: DaskMemory) -> None:
    for key, size in {"small": 100, "large": LARGE}.items():
        memory.put(key, np.zeros(size))
        got = memory.get(key)
        got[0] = 1.0  # a copy of its own, as with any non zero-copy backend
        assert memory.get(key)[0] == 0.0


# -- concurrency and cleanup -----------------------------------------------------------------


def test_readers_see_old_or_new_while_a_task_replaces(
        dask_client: Any, memory: DaskMemory, memory_kwargs: dict[str, Any]) -> None:
    first = workers(dask_client)[0]
    rounds = 80
    dask_client.submit(write_many, memory_kwargs, "k", 1, pure=False, workers=[first]).result()
    writer = dask_client.submit(write_many, memory_kwargs, "k", rounds, pure=False,
                                workers=[first])
    reads = 0
    while not writer.done() or reads < 5:
        value = memory.get("k")
        values = set(value) if isinstance(value, list) else set(np.unique(value).tolist())
        assert len(values) == 1  # one whole value, never a mix or a half
        reads += 1
    assert writer.result() == rounds
    assert memory.get("k") == [rounds - 1] * 10
    state = dask_client.run_on_scheduler(index_state)
    assert state["pins"] == 0 and state["pin_clients"] == []
    assert our_datasets(dask_client, memory.namespace) == []  # every replaced one unpublished


def test_delete_and_clear_unpublish(dask_client: Any, memory: DaskMemory) -> None:
    memory.put("a", np.ones(LARGE))
    memory.put("b", np.ones(LARGE))
    memory.put("c", "small")
    assert len(our_datasets(dask_client, memory.namespace)) == 2
    assert memory.delete("a") and not memory.exists("a")
    assert len(our_datasets(dask_client, memory.namespace)) == 1
    memory.clear()
    assert memory.keys() == [] and our_datasets(dask_client, memory.namespace) == []
    assert memory.namespace not in dask_client.run_on_scheduler(index_state)["namespaces"]


def test_handle_pickles_with_its_settings(memory: DaskMemory, remote: Callable) -> None:
    limited = DaskMemory(namespace=memory.namespace, max_object_bytes=1234, inline_max_bytes=10)
    copy = pickle.loads(pickle.dumps(limited))
    assert (copy.namespace, copy.max_object_bytes, copy.inline_max_bytes) == \
        (memory.namespace, 1234, 10)
    copy.put("k", "through a worker")  # over 10 bytes: scattered, not kept in the scheduler
    assert remote(limited.get, "k") == "through a worker"


# -- the example ---------------------------------------------------------------------------


@pytest.mark.slow
def test_example_runs() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATALOGSTORE_")}
    out = subprocess.run([sys.executable, str(REPO / "examples" / "run_dask.py")],
                         capture_output=True, text=True, cwd=REPO, env=env, check=False,
                         timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "all stages passed" in out.stdout
