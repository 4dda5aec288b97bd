"""The local cluster memory against ``memcpy`` and ``pickle``, measured in the same run.

- **get, 100 MiB array, in another process** (a spawn worker): ``memory.get(key)``
  with the array dropped after each sample, so every get opens, locks and maps
  the file anew; against one ``arr.copy()`` of a 100 MiB array in that worker.
  A 1 KiB array's get is shown beside it (zero-copy costs the same).
- **put, 100 MiB array, steady state**: repeated ``put``/``delete`` cycles, as a
  workflow does run after run (the delete, untimed, sends the file to the pool
  and the next put refills it); against one ``arr.copy()``. The cold first put
  (a fresh tmpfs file, empty pool) is reported too.
- **1 KiB dict, put + get round trip from a worker process**, beside a plain
  ``pickle.loads(pickle.dumps(d))``.

Bars (issue 3): get >= 50x faster than a copy; steady put <= 2x a copy; the
small round trip < 200 us (median).

For comparison only, not measured here: Flowdapt's local backend (a unix-socket
server that pickles every value through the socket), measured on this machine
for issue 3: 1 KiB dict put 0.72 ms, get 0.86 ms (1.58 ms the pair); 100 MiB array
put 345 ms, get 383 ms (a full copy each way).

    .venv/bin/python bench/bench_memory_local.py [--quick] [--repeat N]
"""

from __future__ import annotations

import multiprocessing
import pickle
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
from _common import (
    KIB,
    MIB,
    Timing,
    exit_status,
    fmt_time,
    make_parser,
    measure,
    note,
    print_header,
    print_table,
    report_bar,
)

from catalogstore.cluster_memory._local import LocalMemory
from catalogstore.cluster_memory._local_session import SESSION_ENV

ARRAY_BYTES = 100 * MIB
NAMESPACE = "bench"
FLOWDAPT = {"1 KiB put + get": 0.72e-3 + 0.86e-3, "100 MiB put": 345e-3, "100 MiB get": 383e-3}
"""Flowdapt's local backend on this machine, quoted from issue 3 (not measured here)."""


def small_dict() -> dict[str, Any]:
    """A dict that pickles to about 1 KiB."""
    value = {f"field_{i:02d}": f"value {i:04d} " * 2 for i in range(32)}
    assert 900 < len(pickle.dumps(value, protocol=5)) < 1200
    return value


def _join(session: str) -> LocalMemory:
    import os

    os.environ[SESSION_ENV] = session
    return LocalMemory(namespace=NAMESPACE)


def worker_get(session: str, repeat: int) -> list[Timing]:
    """In a worker: get of the 100 MiB and the 1 KiB array, against a copy of 100 MiB.

    No garbage collection before samples: a full collection before a sample of tens
    of microseconds leaves the caches cold and costs the sample ~200 us by itself
    (none of these cases makes cyclic garbage).
    """
    memory = _join(session)
    local = np.ones(ARRAY_BYTES // 8)
    assert memory.get("big").nbytes == local.nbytes
    return list(measure({
        "get 100 MiB array (other process)": lambda _: memory.get("big"),
        "get 1 KiB array (other process)": lambda _: memory.get("tiny"),
        "arr.copy() 100 MiB": lambda _: local.copy(),
    }, repeat=repeat, warmup=2, collect=False).values())


def worker_small(session: str, repeat: int) -> list[Timing]:
    """In a worker: 1 KiB dict put + get through the memory, and through pickle alone."""
    memory = _join(session)
    value = small_dict()

    def round_trip(_: int) -> None:
        memory.put("small", value)
        if memory.get("small") != value:
            raise SystemExit("the small dict came back different")

    # collect=False: a gc pass before each sub-millisecond sample would leave cold caches.
    return list(measure({
        "1 KiB dict put + get (other process)": round_trip,
        "pickle.dumps + loads": lambda _: pickle.loads(pickle.dumps(value, protocol=5)),
    }, repeat=repeat, warmup=50, collect=False).values())


def bench_put(memory: LocalMemory, repeat: int) -> tuple[Timing, Timing, Timing]:
    array = np.random.default_rng(0).random(ARRAY_BYTES // 8)

    def cold(round_no: int) -> None:
        memory.put(f"cold-{round_no}", array)

    def forget_cold() -> None:
        memory.clear()
        memory.release_pool()

    # Each cold sample writes a new file into an empty pool: fresh tmpfs pages.
    cold_put = measure({"cold put 100 MiB (fresh memory)": cold}, repeat=max(3, repeat // 3),
                       warmup=0, before=forget_cold)
    forget_cold()
    steady = measure({
        "put 100 MiB (steady: put/delete cycles)": lambda _: memory.put("big", array),
        "arr.copy() 100 MiB": lambda _: array.copy(),
    }, repeat=repeat, warmup=2, before=lambda: memory.delete("big"))
    return cold_put["cold put 100 MiB (fresh memory)"], *steady.values()


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    args = parser.parse_args(argv)
    repeat = args.repeat or (7 if args.quick else 21)
    small_repeat = 500 if args.quick else 3000
    print_header("cluster memory, local backend: get, put and small objects")
    if args.dir:
        note("--dir is not used: the local cluster memory lives on tmpfs (/dev/shm)")
    with LocalMemory.new_session() as session, ProcessPoolExecutor(
            1, mp_context=multiprocessing.get_context("spawn")) as pool:
        memory = LocalMemory(namespace=NAMESPACE)
        note(f"session {session} in {memory.path.parent}")
        cold, put, put_copy = bench_put(memory, repeat)
        print_table("put of a 100 MiB array (this process)", [cold, put, put_copy])

        memory.put("big", np.ones(ARRAY_BYTES // 8))
        memory.put("tiny", np.ones(KIB // 8))
        get, tiny, get_copy = pool.submit(worker_get, session, repeat).result()
        print_table("get of a 100 MiB array in a worker process (spawn)", [get, tiny, get_copy])

        small, plain = pool.submit(worker_small, session, small_repeat).result()
        print_table("1 KiB dict in a worker process (spawn)", [small, plain])

    print("\n-- Flowdapt's local backend, quoted from issue 3 (not measured here)")
    for label, seconds in FLOWDAPT.items():
        print(f"   {label:<16} {fmt_time(seconds):>10}")
    note(f"here: 1 KiB put + get {fmt_time(small.median)}, 100 MiB put {fmt_time(put.median)} "
         f"(cold {fmt_time(cold.median)}), get {fmt_time(get.median)}")
    print()
    report_bar("memory-local-get", get_copy.median / get.median, 50,
               f"faster than arr.copy() of 100 MiB ({fmt_time(get.median)} vs "
               f"{fmt_time(get_copy.median)})")
    report_bar("memory-local-put", put.median / put_copy.median, 2,
               f"the time of arr.copy() for a steady-state 100 MiB put ({fmt_time(put.median)} "
               f"vs {fmt_time(put_copy.median)}; cold first put {fmt_time(cold.median)})",
               at_most=True)
    report_bar("memory-local-small", small.median * 1e6, 200,
               f"median 1 KiB dict put + get from a worker (pickle alone "
               f"{fmt_time(plain.median)})", at_most=True, unit="us")
    return exit_status()


if __name__ == "__main__":
    sys.exit(main())
