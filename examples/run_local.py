"""The seed's stages on the local cluster memory, each in a different worker process.

    .venv/bin/python examples/run_local.py

A ``ProcessPoolExecutor`` (spawn, one task per worker) runs the stages of
``stages.py`` one after the other, so every stage is a fresh process. The
stages call ``get_cluster_memory()`` with no arguments: started by this driver,
the workers are in its process group, which names the memory session they all
share. Started from a shell, the driver leads its process group and owns the
session: its memory is released when the driver exits.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stages import ARRAY_MIB, STAGES

from catalogstore.cluster_memory import get_cluster_memory


def main() -> int:
    memory = get_cluster_memory("local")
    print(f"session: {memory.session}")
    owner = os.getpgid(0) == os.getpid()
    print(f"driver pid {os.getpid()}, process group {os.getpgid(0)}: "
          + ("this driver owns the session; it is removed when the driver exits" if owner
             else "the group leader owns the session; `catalogstore memory clear --stale` "
                  "frees it once that process is gone"))
    context = multiprocessing.get_context("spawn")
    results = {}
    # max_tasks_per_child=1: every stage runs in a new worker process.
    with ProcessPoolExecutor(1, mp_context=context, max_tasks_per_child=1) as pool:
        for stage in STAGES:
            results[stage.__name__] = result = pool.submit(stage).result()
            print(f"{stage.__name__:<20} -> {result!r}")
    # Stages return their worker's pid (alone, or last in a tuple).
    pids = [r if isinstance(r, int) else r[-1] for r in results.values()]
    assert len(set(pids)) == len(pids) and os.getpid() not in pids, pids
    assert results["use_cities_list"][0] == ["St. Louis", "Moab", "Los Angeles"]
    assert results["use_array"][0] == results["share_array"][0]
    print(f"every stage ran in a different process: pids {pids}")
    sizes = memory.sizes()
    print("the memory holds: " + ", ".join(f"{k} ({v:,} bytes)" for k, v in sizes.items()))
    assert sizes["big_array"] > ARRAY_MIB << 20
    array = memory.get("big_array")  # zero-copy: a read-only view of the shared memory
    print(f"the driver sees the {array.nbytes >> 20} MiB array too, read-only "
          f"(writeable={array.flags.writeable}), sum {float(array.sum()):.6g}")
    del array
    memory.clear()
    print(f"cleared; {memory.pool_usage()[0]:,} bytes kept in the free pool for reuse")
    return 0


if __name__ == "__main__":
    sys.exit(main())
