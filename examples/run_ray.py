"""Run the seed's stages on a local Ray, each stage as a task in a worker process of its own.

The stage functions (``stages.py``) call ``get_cluster_memory()`` without
arguments: inside a Ray task that is the ``ray`` backend. Its objects are owned
by a detached actor, not by the task that put them, so they outlive the worker
process that ran the stage: every task here runs in a fresh worker that exits
after it (``max_calls=1``), and the next stage still reads what it put.

    .venv/bin/python examples/run_ray.py
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import ray
from stages import ARRAY_MIB, STAGES

from catalogstore.cluster_memory import get_cluster_memory


def run_stage(stage: Any) -> Any:
    """Run ``stage`` as a Ray task in a new worker process; returns its result."""
    start = time.perf_counter()
    result = ray.get(ray.remote(max_calls=1)(stage).remote())
    pid = result[-1] if isinstance(result, tuple) else result
    print(f"  {stage.__name__:<20} ran in worker pid {pid} "
          f"in {(time.perf_counter() - start) * 1e3:.0f} ms", flush=True)
    return result


def main() -> int:
    print("starting a local Ray (2 CPUs, 512 MiB object store)", flush=True)
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=512 << 20,
             log_to_driver=False)
    try:
        results = [run_stage(stage) for stage in STAGES]
        creator_pid, (cities, user_pid), (put_sum, sharer_pid), (got_sum, reader_pid) = results
        assert cities == ["St. Louis", "Moab", "Los Angeles"], cities
        assert got_sum == put_sum, (got_sum, put_sum)
        pids = {creator_pid, user_pid, sharer_pid, reader_pid}
        assert len(pids) == len(STAGES) and os.getpid() not in pids, results

        memory = get_cluster_memory()  # the driver finds the same memory (detected: ray)
        sizes = memory.sizes()
        print(f"cluster memory ({type(memory).__name__}, namespace {memory.namespace!r}): "
              + ", ".join(f"{key} {size:,} bytes" for key, size in sizes.items()))
        assert sizes["big_array"] > ARRAY_MIB << 20
        array = memory.get("big_array")  # zero-copy: a read-only view of Ray's object store
        print(f"  the driver reads the {array.nbytes >> 20} MiB array too, read-only "
              f"(writeable={array.flags.writeable}), sum {float(array.sum()):.6g}")
        del array
        memory.clear()
        assert memory.keys() == []
        print(f"all stages ran, each in its own worker process ({len(pids)} pids); "
              "the memory is cleared")
    finally:
        ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
