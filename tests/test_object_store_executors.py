"""The object store on the Ray and Dask tiers, for real, and the demo on those executors.

The cluster memory tier is the session's Ray or Dask (``tests/executors.py``, one
of each per test session); the artifact tier is the embedded stack (SQLite file +
local folder). Every test works in a namespace of its own, cleared afterwards.

The demo starts and stops a Ray or a Dask of its own, which cannot live beside
the session's in this process: it runs as ``catalogstore demo`` in subprocesses,
in empty folders and without any ``CATALOGSTORE_*`` variable. Both (when selected)
start with the module and run beside its other tests; they mostly wait on process
start-up, and the tests at the end of the module wait for them.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from test_lineage import check_demo_lineage
from test_object_store import clear_memory, prepare_dataframe, use_dataframe

import catalogstore
from catalogstore.artifacts import artifact_exists, get_artifact, list_artifacts
from catalogstore.cluster_memory import ClusterMemory, get_cluster_memory
from catalogstore.errors import ObjectNotFoundError, ObjectTooLargeError
from catalogstore.object_store import delete, exists, get, put

pytest_plugins = ["executors"]  # ray_session and dask_client: one of each per session

BACKENDS = ["ray", "dask"]
CLI = [sys.executable, "-m", "catalogstore"]  # wherever the virtual environment lives
DEMO_TIMEOUT = 300
KEY = "my_dataframe"  # the seed stages' key


# -- the artifact tier on the stack, the cluster memory tier on Ray or Dask -------------


@dataclass
class Tier:
    backend: str
    executor: Any
    """The ``ray`` module, or the Dask client."""
    namespace: str
    memory: ClusterMemory
    catalog_file: Path
    storage_dir: Path
    run: Callable[..., Any]
    """Run a function with arguments as a task in a worker process; its result."""

    def artifacts_untouched(self) -> bool:
        """Nothing wrote to the storage (created lazily). The catalog is opened: every
        put records the key's generation there, whatever the tier (issue 13)."""
        return not self.storage_dir.exists()


# Starting the session's Ray takes over 5 s (14 s measured), and the first test to
# use it pays that: every Ray case is slow.
@pytest.fixture(params=[pytest.param("ray", marks=pytest.mark.slow), "dask"])
def tier(request: pytest.FixtureRequest, local_stack: Any) -> Iterator[Tier]:
    backend = request.param
    if backend == "ray":
        executor = ray = request.getfixturevalue("ray_session")

        def run(fn: Callable[..., Any], *args: Any) -> Any:
            return ray.get(ray.remote(fn).remote(*args))
    else:
        executor = client = request.getfixturevalue("dask_client")

        def run(fn: Callable[..., Any], *args: Any) -> Any:
            return client.submit(fn, *args, pure=False).result()
    namespace = f"os-{uuid.uuid4().hex[:12]}"
    # After the stack fixture: configure() pins every setting, variables no longer count.
    catalogstore.configure(memory_backend=backend, namespace=namespace)
    memory = get_cluster_memory()
    assert memory.name == backend
    catalog_file = Path(local_stack.catalog_url.removeprefix("sqlite:///"))
    yield Tier(backend, executor, namespace, memory, catalog_file,
               Path(local_stack.storage_url), run)
    get_cluster_memory(backend, namespace=namespace).clear(namespace=namespace)


def call_stored(namespace: str, backend: str, key: str, arg: Any) -> tuple[Any, int]:
    """In a worker: call the function stored under ``key`` in cluster memory."""
    fn = get(key, namespace=namespace, backend=backend, strategy="cluster_memory")
    return fn(arg), os.getpid()


# -- strategies ------------------------------------------------------------------------


def test_fallback_puts_into_cluster_memory_and_gets_it_back(tier: Tier) -> None:
    put("small", {"a": 1})
    assert tier.memory.get("small") == {"a": 1}
    assert get("small") == {"a": 1}
    assert exists("small")
    assert tier.artifacts_untouched()  # the memory tier took it: no artifact written
    assert not exists("small", artifact_only=True) and not artifact_exists("small")


def test_over_the_size_limit_falls_back_to_artifacts(tier: Tier,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    catalogstore.configure(memory_max_object_bytes=4096)
    big = np.arange(10_000, dtype=np.int64)  # 80 kB pickled
    put("big", [1])  # an older, small value in memory ...
    assert tier.memory.get("big") == [1]
    with caplog.at_level(logging.DEBUG, logger="catalogstore.object_store"):
        put("big", big)  # ... which must not hide the new one, stored as an artifact
    messages = [r.getMessage() for r in caplog.records if "goes to artifacts" in r.getMessage()]
    assert len(messages) == 1 and f"{tier.backend} cluster memory limit" in messages[0]
    assert not tier.memory.exists("big")
    assert get_artifact("big")["serializer"] == "npy"
    np.testing.assert_array_equal(get("big"), big)
    with pytest.raises(ObjectTooLargeError, match="'big2'"):
        put("big2", big, strategy="cluster_memory")
    assert not exists("big2") and not artifact_exists("big2")


def test_cluster_memory_strategy_never_touches_artifacts(tier: Tier) -> None:
    put("m", {"v": 1}, strategy="cluster_memory")
    assert get("m", strategy="cluster_memory") == {"v": 1}
    assert exists("m", strategy="cluster_memory")
    catalogstore.configure(memory_max_object_bytes=4096)
    with pytest.raises(ObjectTooLargeError):
        put("huge", np.zeros(10_000), strategy="cluster_memory")
    with pytest.raises(ObjectNotFoundError):
        get("huge", strategy="cluster_memory")
    assert not exists("huge", strategy="cluster_memory")
    delete("m", strategy="cluster_memory")
    delete("never-there", strategy="cluster_memory")
    assert tier.memory.keys() == []
    assert tier.artifacts_untouched()
    put("a", 2, artifact_only=True)  # an artifact is not found through cluster memory ...
    with pytest.raises(ObjectNotFoundError):
        get("a", strategy="cluster_memory")
    assert not exists("a", strategy="cluster_memory")
    delete("a", strategy="cluster_memory")  # ... nor deleted through it
    assert artifact_exists("a")


def test_artifact_only_never_touches_cluster_memory(tier: Tier) -> None:
    put("k", {"tier": "artifact"}, artifact_only=True)
    assert tier.memory.keys() == []
    assert get_artifact("k")["serializer"] == "pickle"
    tier.memory.put("k", {"tier": "memory"})  # the same key in memory, directly
    assert get("k", artifact_only=True) == {"tier": "artifact"}  # memory is not read
    # Nor by fallback: it reads the tier of the key's recorded generation (issue 13).
    assert get("k") == {"tier": "artifact"}
    delete("k", artifact_only=True)  # removes the artifact only
    assert not artifact_exists("k") and not exists("k", artifact_only=True)
    assert tier.memory.get("k") == {"tier": "memory"}
    with pytest.raises(ObjectNotFoundError):
        get("k", artifact_only=True)


def test_delete_default_removes_both_tiers_and_each_strategy_one(tier: Tier) -> None:
    def both() -> None:
        put("both", 1)
        put("both", 1, artifact_only=True)
        assert tier.memory.exists("both") and artifact_exists("both")

    both()
    delete("both", strategy="artifact")
    assert tier.memory.exists("both") and not artifact_exists("both")
    both()
    delete("both", strategy="cluster_memory")
    assert not tier.memory.exists("both") and artifact_exists("both")
    both()
    delete("both")  # unlike Flowdapt's, which leaves the artifact copy behind
    assert not tier.memory.exists("both") and not artifact_exists("both")
    assert not exists("both")


def test_deleting_a_missing_key_is_a_no_op_that_creates_nothing(tier: Tier) -> None:
    for strategy in ("fallback", "artifact", "cluster_memory"):
        delete("missing", strategy=strategy)
    assert not exists("missing")
    assert tier.memory.keys() == []
    assert list_artifacts(tier.namespace) == []
    assert not tier.storage_dir.exists()  # (the catalog itself is opened, and created)


# -- a lambda ----------------------------------------------------------------------------


def test_a_lambda_stays_in_cluster_memory(tier: Tier) -> None:
    """pickle refuses a lambda; both backends serialize with cloudpickle and keep it.

    (The local backend refuses it, and the fallback then stores it as a
    cloudpickle artifact: tests/test_object_store.py.)
    """
    offset = 40
    put("fn", lambda x: x + offset)
    assert tier.memory.exists("fn")
    assert get("fn")(2) == 42
    result, pid = tier.run(call_stored, tier.namespace, tier.backend, "fn", 1)
    assert result == 41 and pid != os.getpid()  # a working function in another process
    put("fn2", lambda x: x * 2, strategy="cluster_memory")  # no SerializationError
    assert get("fn2", strategy="cluster_memory")(3) == 6
    assert tier.artifacts_untouched()


# -- the seed's stages, each in a worker process of its own ----------------------------


def seed_stage(step: str) -> dict[str, Any]:
    """One of the seed's stages (imported from test_object_store), run in this worker.

    The artifact tier's configuration comes from the environment.
    """
    value: Any = None
    if step == "prepare":
        value = prepare_dataframe()
    elif step == "use":
        value = use_dataframe(None)
    else:
        clear_memory(None)
    return {"pid": os.getpid(), "value": value, "backend": get_cluster_memory().name,
            "namespace": catalogstore.current_namespace(),
            "in_memory": exists(KEY, strategy="cluster_memory"),
            "in_artifacts": exists(KEY, artifact_only=True)}


def seed_stage_with_environ(environ: dict[str, str], step: str) -> dict[str, Any]:
    """:func:`seed_stage` with ``environ`` as configuration, in a long-lived worker.

    The worker was started before the test configured anything; the variables and
    the settings read from them are restored afterwards.
    """
    from catalogstore.settings import reset_configuration
    from catalogstore.txn.workspace import close_workspaces

    saved = {name: os.environ.get(name) for name in environ}
    os.environ.update(environ)
    reset_configuration()
    try:
        return seed_stage(step)
    finally:
        close_workspaces()
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old
        reset_configuration()


@contextmanager
def three_dask_workers(client: Any) -> Iterator[list[str]]:
    """The session cluster with a third worker for the block (one per seed stage)."""
    client.cluster.scale(3)
    client.wait_for_workers(3, timeout=120)
    try:
        yield sorted(client.scheduler_info()["workers"])
    finally:
        client.cluster.scale(2)  # retires the newest worker, the one added here
        deadline = time.monotonic() + 60
        while len(client.scheduler_info()["workers"]) > 2:
            assert time.monotonic() < deadline, "the third worker did not leave"
            time.sleep(0.05)


@pytest.mark.slow
def test_seed_stages_each_in_another_worker_process(tier: Tier) -> None:
    environ = catalogstore.get_settings().to_environ()
    reports: dict[str, dict[str, Any]] = {}
    if tier.backend == "ray":
        ray = tier.executor
        # max_calls=1: each worker process exits after its stage, the next is a new one.
        stage = ray.remote(max_calls=1, runtime_env={"env_vars": environ})(seed_stage)
        for step in ("prepare", "use", "clear"):
            reports[step] = ray.get(stage.remote(step))
            if step == "prepare":  # the driver reads what the exited worker put
                pd.testing.assert_frame_equal(get(KEY, strategy="cluster_memory"),
                                              reports[step]["value"])
    else:
        client = tier.executor
        with three_dask_workers(client) as workers:
            for step, worker in zip(("prepare", "use", "clear"), workers, strict=True):
                reports[step] = client.submit(seed_stage_with_environ, environ, step,
                                              workers=[worker], pure=False).result()
                if step == "prepare":
                    pd.testing.assert_frame_equal(get(KEY, strategy="cluster_memory"),
                                                  reports[step]["value"])
    pids = {report["pid"] for report in reports.values()}
    assert len(pids) == 3 and os.getpid() not in pids
    for report in reports.values():
        assert report["backend"] == tier.backend and report["namespace"] == tier.namespace
    assert reports["prepare"]["in_memory"] and reports["prepare"]["in_artifacts"]
    assert reports["use"]["in_memory"] and reports["use"]["in_artifacts"]
    pd.testing.assert_frame_equal(reports["use"]["value"], reports["prepare"]["value"])
    assert not reports["clear"]["in_memory"] and not reports["clear"]["in_artifacts"]
    assert not exists(KEY) and tier.memory.keys() == []
    assert [a.name for a in list_artifacts()] == []


# -- the demo on the other executors, in subprocesses ------------------------------------


@dataclass
class DemoRun:
    executor: str
    cwd: Path
    env: dict[str, str]
    process: subprocess.Popen[str]
    started: float

    def result(self) -> tuple[str, float]:
        """The demo's output, once it has ended well, and how long it took."""
        try:
            stdout, stderr = self.process.communicate(timeout=DEMO_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            stdout, stderr = self.process.communicate()
            pytest.fail(f"the {self.executor} demo took over {DEMO_TIMEOUT} s:\n"
                        f"{stdout}\n{stderr}")
        assert self.process.returncode == 0, f"stdout:\n{stdout}\nstderr:\n{stderr}"
        return stdout, time.monotonic() - self.started

    def listing(self) -> list[dict[str, Any]]:
        out = subprocess.run([*CLI, "ls", "demo", "--json"], cwd=self.cwd, env=self.env,
                             capture_output=True, text=True, timeout=120, check=False)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)


@pytest.fixture(scope="module", autouse=True)
def demo_runs(request: pytest.FixtureRequest,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, DemoRun]]:
    """The selected demos, started as the module starts; the tests at its end wait for them."""
    selected = [item.callspec.params["executor"] for item in request.session.items
                if getattr(item, "originalname", "") == DEMO_TEST]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATALOGSTORE_")}
    runs = {}
    for executor in selected:
        cwd = tmp_path_factory.mktemp(f"demo-{executor}")
        run_env = dict(env)
        if executor == "ray":
            # As where a cluster is at hand: the demo still starts a local Ray of its
            # own (joining one with num_cpus=2 fails, and nothing listens here).
            run_env["RAY_ADDRESS"] = "127.0.0.1:9"
        process = subprocess.Popen([*CLI, "demo", "--executor", executor], cwd=cwd,
                                   env=run_env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        runs[executor] = DemoRun(executor, cwd, run_env, process, time.monotonic())
    yield runs
    for run in runs.values():
        if run.process.poll() is None:
            run.process.kill()
            run.process.communicate()


DEMO_TEST = "test_demo_runs_each_stage_in_its_own_process"


@pytest.mark.slow
@pytest.mark.parametrize("executor", BACKENDS)
def test_demo_runs_each_stage_in_its_own_process(executor: str,
                                                 demo_runs: dict[str, DemoRun]) -> None:
    run = demo_runs[executor]
    stdout, seconds = run.result()
    print(f"the {executor} demo took {seconds:.1f} s")
    assert os.listdir(run.cwd) == [".catalogstore"]  # everything under the default home
    printed = dict(re.findall(r"^stage (\w+): pid (\d+)", stdout, re.MULTILINE))
    stages = ["prepare_dataframe", "use_dataframe", "clear_memory"]
    assert list(printed)[:3] == stages
    (record,) = [a for a in run.listing() if a["metadata"].get("kind") == "demo-run"]
    meta = record["metadata"]
    assert meta["executor"] == executor and record["name"] in stdout
    pids = {str(meta[f"stage.{stage}.pid"]) for stage in stages}  # typed: an int
    assert pids == {printed[stage] for stage in stages}
    assert len(pids) == 3 and str(run.process.pid) not in pids
    for stage in stages:
        assert meta[f"stage.{stage}.backend"] == executor
    # After the first stage the frame was in cluster memory and in artifacts ...
    assert int(meta["stage.prepare_dataframe.memory_bytes"]) > 0
    assert int(meta["stage.prepare_dataframe.artifact_bytes"]) > 0
    assert int(meta["stage.use_dataframe.memory_bytes"]) > 0
    # ... and the last stage removed it from both.
    assert meta["stage.clear_memory.memory_bytes"] == 0
    assert meta["stage.clear_memory.artifact_bytes"] == 0
    # Each stage a run, with what it read and made (issue 16).
    check_demo_lineage(f"sqlite:///{run.cwd / '.catalogstore' / 'catalog.db'}")
