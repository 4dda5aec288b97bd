"""Session fixtures of the executors: one local Ray and one Dask ``LocalCluster`` per run.

A test module uses them with ``pytest_plugins = ["executors"]``, not by importing
the fixture functions: a fixture imported into several modules is defined once per
module, and pytest would then start a Ray or a Dask cluster for each of them.
Registered as a plugin, each fixture exists once, whichever modules ask for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def ray_session() -> Iterator[Any]:
    """A local Ray for the whole test session, small enough for a 2-core machine."""
    import ray

    started = not ray.is_initialized()
    if started:
        # Workers import the functions the tests send them from this folder. (Not
        # JobConfig(code_search_path): a job with it exports no class definitions,
        # so other jobs could not get a handle to the actor it created.)
        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=1 << 30,
                 log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": str(TESTS)}})
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="session")
def dask_client() -> Iterator[Any]:
    """A Dask ``LocalCluster`` of two single-threaded worker processes, and its client."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, memory_limit="1GiB") as cluster, \
            Client(cluster) as client:
        yield client
