"""The object store against the calls it wraps, measured in the same run.

- **100 MiB NumPy array, put + get, default (fallback) strategy, local cluster
  memory**: ``object_store.put(key, arr)`` + ``object_store.get(key)`` against
  ``memory.put`` + ``memory.get`` on ``get_cluster_memory("local")``, in the same
  process, in a fresh ``LocalMemory.new_session()``. Steady state: repeated
  put/get/delete cycles, as a workflow does run after run (the delete, untimed,
  sends the file to the pool and the next put refills it; the array got is dropped
  before it). The cold first cycle (fresh tmpfs pages, empty pool) is reported
  too, and the get of either in another process (a spawn worker). Before timing,
  the value is checked to be in cluster memory (no artifact) and the object
  store's get to share memory with the cluster memory's (no copy).
- **~100 MiB pandas DataFrame** (float64 and int64 columns, a string column, a
  few missing values; size as ``memory_usage(deep=True)``): ``put(key, df,
  artifact_only=True)`` + ``get(key, artifact_only=True)`` on local disk with the
  embedded SQLite catalog, against ``pq.write_table(pa.Table.from_pandas(df,
  preserve_index=True), path)`` + ``pq.read_table(path).to_pandas()`` of a file
  under the same storage root. Each cycle starts without the key or file (removed
  untimed) and with dirty pages flushed (``os.sync``, untimed); reads come from
  the page cache for both. Put and get are shown apart as well. The frames read
  back are checked equal to the original (``pandas.testing``) outside the timed
  region.

Bars (issue 4): the array's put + get within 1.2x of the cluster memory's (steady
state); the DataFrame's put + get within 1.5x of pyarrow's write + read.

    .venv/bin/python bench/bench_object_store.py [--only memory|artifact] [--quick]
        [--repeat N] [--dir DIR]
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from _common import (
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
    temp_store,
)

from catalogstore import object_store
from catalogstore.cluster_memory import get_cluster_memory
from catalogstore.cluster_memory._local import LocalMemory

ARRAY_BYTES = 100 * MIB
FRAME_BYTES = 100 * MIB
STORE_KEY = "via-object-store"
MEMORY_KEY = "via-cluster-memory"
FRAME_KEY = "frame"
STORE_CASE = "object store put + get"
MEMORY_CASE = "cluster memory put + get"


# -- the array through cluster memory ----------------------------------------------


def worker_get(repeat: int) -> list[Timing]:
    """In a worker process: get of each key, through the object store and the memory."""
    memory = get_cluster_memory("local")
    for key in (STORE_KEY, MEMORY_KEY):
        if object_store.get(key).nbytes != ARRAY_BYTES:
            raise SystemExit(f"{key} came back with another size in the worker")
    # No garbage collection before samples: they take microseconds (see bench_memory_local).
    return list(measure({
        "object_store.get (other process)": lambda _: object_store.get(STORE_KEY),
        "memory.get (other process)": lambda _: memory.get(MEMORY_KEY),
    }, repeat=repeat, warmup=2, collect=False).values())


def check_array_path(memory: Any, array: np.ndarray) -> None:
    """The object store keeps the array in cluster memory and hands out the same memory."""
    from catalogstore.artifacts import artifact_exists

    object_store.put(STORE_KEY, array)
    if not memory.exists(STORE_KEY) or artifact_exists(STORE_KEY):
        raise SystemExit("the object store did not put the array into cluster memory")
    got = object_store.get(STORE_KEY)
    if not (np.shares_memory(got, memory.get(STORE_KEY)) and np.array_equal(got, array)):
        raise SystemExit("the object store's get is not the cluster memory's mapping")
    del got
    object_store.delete(STORE_KEY)


def bench_array(repeat: int, parent: str | None) -> tuple[Timing, Timing, Timing, Timing]:
    """Steady object store, steady cluster memory, cold object store, cold cluster memory."""
    with temp_store(parent, memory_backend="local"), LocalMemory.new_session() as session:
        memory = get_cluster_memory("local")
        if not isinstance(memory, LocalMemory):
            raise SystemExit(f"expected the local cluster memory, got {memory!r}")
        note(f"session {session} in {memory.path.parent}")
        array = np.random.default_rng(0).random(ARRAY_BYTES // 8)
        check_array_path(memory, array)

        def via_store(_: int) -> None:
            object_store.put(STORE_KEY, array)
            object_store.get(STORE_KEY)

        def via_memory(_: int) -> None:
            memory.put(MEMORY_KEY, array)
            memory.get(MEMORY_KEY)

        def delete_both() -> None:
            object_store.delete(STORE_KEY)
            memory.delete(MEMORY_KEY)

        def forget_all() -> None:
            memory.clear()
            memory.release_pool()

        cycles = {STORE_CASE: via_store, MEMORY_CASE: via_memory}
        # Each cold sample writes into an empty pool: fresh tmpfs pages.
        cold = measure(cycles, repeat=max(3, repeat // 3), warmup=0, before=forget_all)
        forget_all()
        steady = measure(cycles, repeat=repeat, warmup=2, before=delete_both)
        for t in cold.values():
            t.label = f"cold first {t.label} (fresh memory)"
        for t in steady.values():
            t.label = f"{t.label} (steady: put/get/delete cycles)"
        print_table("put + get of a 100 MiB array, same process (local cluster memory)",
                    [*steady.values(), *cold.values()])

        object_store.put(STORE_KEY, array)
        memory.put(MEMORY_KEY, array)
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            remote = pool.submit(worker_get, repeat).result()
        print_table("get of the 100 MiB array in a worker process (spawn)", remote)
    return steady[STORE_CASE], steady[MEMORY_CASE], cold[STORE_CASE], cold[MEMORY_CASE]


# -- the DataFrame as an artifact -----------------------------------------------------


def _frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    df = pd.DataFrame({
        "price": rng.random(rows) * 100,
        "score": rng.normal(size=rows),
        "weight": rng.exponential(size=rows),
        "ratio": rng.random(rows),
        "count": rng.integers(0, 1_000_000, rows),
        "ident": rng.integers(0, 1 << 62, rows),
        "label": [f"item-{k:07d}" for k in rng.integers(0, 10_000_000, rows)],
    })
    df.loc[[3, rows // 2], "score"] = np.nan
    df.loc[rows - 1, "price"] = np.nan
    df.loc[7, "label"] = None
    return df


def make_frame(nbytes: int) -> pd.DataFrame:
    """A frame of about ``nbytes`` in memory (``memory_usage(deep=True)``)."""
    sample = _frame(10_000)
    per_row = sample.memory_usage(deep=True).sum() / len(sample)
    return _frame(int(nbytes / per_row))


def timed_pair(write: Callable[[], object], read: Callable[[], object],
               splits: dict[str, list[float]], warmup: int) -> Callable[[int], None]:
    """A cycle ``write(); read()`` that also records the time of each part after warm-up."""
    write_label, read_label = splits

    def cycle(round_no: int) -> None:
        start = time.perf_counter()
        write()
        middle = time.perf_counter()
        read()
        if round_no >= warmup:
            splits[write_label].append(middle - start)
            splits[read_label].append(time.perf_counter() - middle)
    return cycle


def bench_frame(nbytes: int, repeat: int, parent: str | None) -> tuple[Timing, Timing]:
    from catalogstore.artifacts import get_artifact

    df = make_frame(nbytes)
    dtypes = ", ".join(sorted({str(t) for t in df.dtypes}))
    with temp_store(parent) as store:
        direct = f"{store.root}/pyarrow-direct/frame.parquet"
        os.makedirs(os.path.dirname(direct))

        def pyarrow_write() -> None:
            pq.write_table(pa.Table.from_pandas(df, preserve_index=True), direct)

        def pyarrow_read() -> pd.DataFrame:
            return pq.read_table(direct).to_pandas()

        def store_write() -> None:
            object_store.put(FRAME_KEY, df, artifact_only=True)

        def store_read() -> pd.DataFrame:
            return object_store.get(FRAME_KEY, artifact_only=True)

        def remove_both() -> None:
            object_store.delete(FRAME_KEY, artifact_only=True)
            if os.path.exists(direct):
                os.remove(direct)
            os.sync()

        # Outside the timed region: both round trips give the frame back (and warm up).
        for write, read in ((store_write, store_read), (pyarrow_write, pyarrow_read)):
            write()
            pd.testing.assert_frame_equal(read(), df)
        file = get_artifact(FRAME_KEY).get_file("object.parquet")
        note(f"{len(df):,} rows, {df.memory_usage(deep=True).sum() / MIB:.0f} MiB in memory "
             f"({dtypes}); Parquet: artifact {file.size / MIB:.1f} MiB, pyarrow "
             f"{os.path.getsize(direct) / MIB:.1f} MiB; storage {store.root}")
        remove_both()

        warmup = 1
        splits: dict[str, dict[str, list[float]]] = {
            STORE_CASE: {"put(artifact_only=True)": [], "get(artifact_only=True)": []},
            "pyarrow write + read": {"pq.write_table(from_pandas)": [],
                                     "pq.read_table().to_pandas()": []},
        }
        cycles = {
            STORE_CASE: timed_pair(store_write, store_read, splits[STORE_CASE], warmup),
            "pyarrow write + read": timed_pair(pyarrow_write, pyarrow_read,
                                               splits["pyarrow write + read"], warmup),
        }
        timings = measure(cycles, repeat=repeat, warmup=warmup, before=remove_both)
    parts = [Timing(label, samples) for case in splits.values()
             for label, samples in case.items()]
    print_table(f"put + get of a {nbytes // MIB} MiB DataFrame as Parquet (local disk, "
                "SQLite catalog)", [*timings.values(), *parts])
    return timings[STORE_CASE], timings["pyarrow write + read"]


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__, parts=("memory", "artifact"))
    args = parser.parse_args(argv)
    repeat = args.repeat or (7 if args.quick else 21)
    frame_repeat = args.repeat or (3 if args.quick else 11)
    frame_bytes = FRAME_BYTES // 4 if args.quick else FRAME_BYTES
    print_header("object store: the layer against the calls it wraps")
    if args.only in (None, "memory"):
        store, memory, store_cold, memory_cold = bench_array(repeat, args.dir)
    if args.only in (None, "artifact"):
        frame_store, frame_pyarrow = bench_frame(frame_bytes, frame_repeat, args.dir)
    print()
    if args.only in (None, "memory"):
        report_bar("object-store-memory", store.median / memory.median, 1.2,
                   f"the time of the cluster memory's put + get of a 100 MiB array "
                   f"({fmt_time(store.median)} vs {fmt_time(memory.median)}, steady; cold "
                   f"first cycle {fmt_time(store_cold.median)} vs "
                   f"{fmt_time(memory_cold.median)})", at_most=True)
    if args.only in (None, "artifact"):
        report_bar("object-store-artifact", frame_store.median / frame_pyarrow.median, 1.5,
                   f"the time of pyarrow's Parquet write + read of a {frame_bytes // MIB} MiB "
                   f"DataFrame ({fmt_time(frame_store.median)} vs "
                   f"{fmt_time(frame_pyarrow.median)})", at_most=True)
    return exit_status()


if __name__ == "__main__":
    sys.exit(main())
