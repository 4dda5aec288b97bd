"""Run the seed's stages on a Dask ``LocalCluster``, each stage as a task on a worker process.

The stage functions (``stages.py``) call ``get_cluster_memory()`` without
arguments: inside a Dask task that is the ``dask`` backend. The two workers take
turns, so every stage reads what the stage before it put in another process;
the putting task has ended by then (objects belong to the cluster, not to the
task: small ones sit in the scheduler, the 100 MiB array on a worker).

    .venv/bin/python examples/run_dask.py
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from distributed import Client, LocalCluster
from stages import ARRAY_MIB, STAGES

from catalogstore.cluster_memory import get_cluster_memory


def run_stage(client: Client, stage: Any, worker: str) -> Any:
    """Run ``stage`` as a task on ``worker``; returns its result."""
    start = time.perf_counter()
    result = client.submit(stage, pure=False, workers=[worker]).result()
    pid = result[-1] if isinstance(result, tuple) else result
    print(f"  {stage.__name__:<20} ran on {worker} (pid {pid}) "
          f"in {(time.perf_counter() - start) * 1e3:.0f} ms", flush=True)
    return result


def main() -> int:
    print("starting a Dask LocalCluster (2 worker processes, 1 thread each)", flush=True)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, memory_limit="1GiB") as cluster, \
            Client(cluster) as client:
        workers = sorted(client.scheduler_info()["workers"])
        results = [run_stage(client, stage, workers[i % 2]) for i, stage in enumerate(STAGES)]
        creator_pid, (cities, user_pid), (put_sum, sharer_pid), (got_sum, reader_pid) = results
        assert cities == ["St. Louis", "Moab", "Los Angeles"], cities
        assert got_sum == put_sum, (got_sum, put_sum)
        # Each get ran in another process than its put, and none in this driver.
        assert creator_pid != user_pid and sharer_pid != reader_pid, results
        assert os.getpid() not in {creator_pid, user_pid, sharer_pid, reader_pid}

        memory = get_cluster_memory()  # the driver finds the same memory (detected: dask)
        sizes = memory.sizes()
        print(f"cluster memory ({type(memory).__name__}, namespace {memory.namespace!r}): "
              + ", ".join(f"{key} {size:,} bytes" for key, size in sizes.items()))
        assert sizes["big_array"] > ARRAY_MIB << 20
        print(f"  published datasets holding large values: {list(client.list_datasets())}")
        array = memory.get("big_array")
        print(f"  the driver reads the {array.nbytes >> 20} MiB array too, "
              f"sum {float(array.sum()):.6g}")
        memory.clear()
        assert memory.keys() == [] and not client.list_datasets()
        print("all stages passed; the memory is cleared")
    return 0


if __name__ == "__main__":
    sys.exit(main())
