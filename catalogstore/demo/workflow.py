"""The main job of ``catalogstore demo``: the seed's Object Store workflow on an executor.

Three stages — prepare a DataFrame, use it, clear it — each in its own worker
process of a local process pool, a Ray local cluster or a Dask ``LocalCluster``.
The stage bodies are the seed's code with the import prefix changed (and its
``pd.Dataframe`` typo and missing ``numpy`` import fixed, without which it
cannot run anywhere). Each stage is a run of the lineage (``catalogstore.run``) and
reports where its object is stored; the whole run is
recorded as an artifact whose metadata holds the stages' timings and sizes, so
``catalogstore ls`` shows it afterwards.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

from catalogstore.demo.stages import DEMO_NAMESPACE

EXECUTORS = ("local", "ray", "dask")
KEY = "my_dataframe"


# -- the seed's stages -------------------------------------------------------------


def prepare_dataframe():  # type: ignore[no-untyped-def]
    import numpy as np
    import pandas as pd

    from catalogstore.object_store import put

    # Create the dataframe
    df = pd.DataFrame(np.random.rand(10, 100))

    # Put the object in the Object Store (Cluster Memory, high performance) and name it
    # "my_dataframe" to be retrieved in any subsequent stage/workflow
    put("my_dataframe", df)

    # Persist the object to distributed storage (Artifacts) for full persistence
    put("my_dataframe", df, artifact_only=True)


def use_dataframe(prepare_dataframe):  # type: ignore[no-untyped-def]
    from catalogstore.object_store import get

    # Get the object from the Object Store (Cluster Memory, high performance) using the
    # name "my_dataframe"
    df = get("my_dataframe")

    # Get the object from distributed storage (Artifacts)
    df = get("my_dataframe", artifact_only=True)

    # Do some calculations
    return float(df.to_numpy().sum())


def clear_memory(use_dataframe):  # type: ignore[no-untyped-def]
    from catalogstore.object_store import delete

    # Delete the object, if desired, from the Object Store (Cluster Memory)
    delete("my_dataframe")

    # Delete the object, if desired, from distributed storage (Artifacts)
    delete("my_dataframe", artifact_only=True)


STAGES: dict[str, Callable[..., Any]] = {
    "prepare_dataframe": prepare_dataframe,
    "use_dataframe": use_dataframe,
    "clear_memory": clear_memory,
}


def run_stage(name: str) -> dict[str, Any]:
    """Run one stage in this worker, then report where ``my_dataframe`` is stored."""
    import catalogstore
    from catalogstore.artifacts import artifact_exists, get_artifact
    from catalogstore.cluster_memory import get_cluster_memory

    # Each stage a run of its name: the lineage shows what each read and made.
    with catalogstore.namespace(DEMO_NAMESPACE):
        started = time.perf_counter()
        stage = STAGES[name]
        with catalogstore.run(name):
            if name == "prepare_dataframe":
                stage()
            else:
                stage(None)  # the seed's stages take the previous stage's result
        seconds = time.perf_counter() - started
        memory = get_cluster_memory()
        in_memory = memory.sizes().get(KEY)
        in_artifacts = sum(f.size for f in get_artifact(KEY).list_files()) \
            if artifact_exists(KEY) else None
    return {"stage": name, "pid": os.getpid(), "seconds": round(seconds, 4),
            "backend": memory.name, "memory_bytes": in_memory,
            "artifact_bytes": in_artifacts}


# -- executors: each stage in a process of its own ------------------------------------


@contextlib.contextmanager
def _local() -> Iterator[Callable[[str], dict[str, Any]]]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from catalogstore.cluster_memory._local import LocalMemory

    context = multiprocessing.get_context("spawn")

    def submit(name: str) -> dict[str, Any]:
        with ProcessPoolExecutor(1, mp_context=context) as pool:  # a new process a stage
            return pool.submit(run_stage, name).result()

    with LocalMemory.new_session():  # freed when the demo ends
        yield submit


@contextlib.contextmanager
def _ray() -> Iterator[Callable[[str], dict[str, Any]]]:
    import ray

    from catalogstore.settings import get_settings

    # address="local": a Ray of the demo's own, even where RAY_ADDRESS names a cluster
    # (joining it with num_cpus fails); a Ray this process runs already is used as is.
    started = not ray.is_initialized()
    if started:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        # A fresh worker process per stage, with this process's configuration.
        remote = ray.remote(max_calls=1, runtime_env={
            "env_vars": get_settings().to_environ()})(run_stage)
        yield lambda name: ray.get(remote.remote(name))
    finally:
        if started:
            ray.shutdown()


@contextlib.contextmanager
def _dask() -> Iterator[Callable[[str], dict[str, Any]]]:
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=len(STAGES), threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        workers = sorted(client.scheduler_info()["workers"])
        turn = iter(range(len(workers) * len(STAGES)))

        def submit(name: str) -> dict[str, Any]:
            worker = workers[next(turn) % len(workers)]  # each stage on another worker
            result: dict[str, Any] = client.submit(run_stage, name, workers=[worker],
                                                   pure=False).result()
            return result

        yield submit


_RUNNERS = {"local": _local, "ray": _ray, "dask": _dask}


def run_workflow(executor: str = "local",
                 echo: Callable[[str], None] = print) -> tuple[list[dict[str, Any]], str]:
    """Run the three stages on ``executor``; returns their reports and the run record's name."""
    from catalogstore.artifacts import new_artifact
    from catalogstore.errors import BackendUnavailableError

    if executor not in _RUNNERS:
        raise BackendUnavailableError(f"unknown executor {executor!r}; use one of "
                                      f"{', '.join(EXECUTORS)}")
    try:
        runner = _RUNNERS[executor]()
        started = datetime.now(timezone.utc)
        reports = []
        with runner as submit:
            echo(f"executor {executor}: started")
            for name in STAGES:
                report = submit(name)
                reports.append(report)
                echo(f"stage {name}: pid {report['pid']}, {report['seconds'] * 1000:.1f} ms")
    except ImportError as exc:
        raise BackendUnavailableError(
            f"the {executor} executor needs {exc.name or exc}: "
            f"pip install 'catalogstore[{executor if executor != 'local' else 'dataframe'}]'"
        ) from exc
    record = f"run-{started:%Y%m%d-%H%M%S}-{executor}-{os.getpid()}"
    meta: dict[str, Any] = {"kind": "demo-run", "executor": executor,
                            "started_at": started.isoformat(timespec="seconds")}
    for report in reports:
        prefix = f"stage.{report['stage']}"
        meta.update({f"{prefix}.seconds": report["seconds"], f"{prefix}.pid": report["pid"],
                     f"{prefix}.backend": report["backend"],
                     f"{prefix}.memory_bytes": report["memory_bytes"] or 0,
                     f"{prefix}.artifact_bytes": report["artifact_bytes"] or 0})
    new_artifact(record, DEMO_NAMESPACE).update_meta(meta)
    echo(f"run recorded as artifact {DEMO_NAMESPACE}/{record}")
    return reports, record
