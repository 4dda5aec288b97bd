"""The ``dask`` cluster memory versus raw Dask calls, on a 2-worker ``LocalCluster``.

- **small**: ``put`` + ``get`` of a 1 KiB dict from the client, against the raw
  way to share an object through a Dask cluster: ``client.scatter`` +
  ``publish_dataset`` + ``get_dataset`` (and ``.result()``), with unpublishing
  left out of the timing. One scheduler round trip (``get_metadata``) is shown
  for reference. Bar (issue 3): at least 3x faster.
- **threshold**: ``put`` + ``get`` of NumPy arrays from 1 KiB to 16 MiB, kept in
  the scheduler (inline) or scattered to a worker, the measurement behind
  ``INLINE_MAX_BYTES``.
- **large**: a 100 MiB NumPy array (``--quick``: 25 MiB), ``put``, ``get`` and
  both, beside raw ``client.scatter`` + ``client.gather`` (reported, no bar).

    .venv/bin/python bench/bench_memory_dask.py [--quick] [--repeat N]
                                                [--only small|threshold|large]
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from _common import (
    KIB,
    MIB,
    exit_status,
    fmt_time,
    make_parser,
    measure,
    note,
    print_header,
    print_table,
    report_bar,
)

PARTS = ("small", "threshold", "large")
NAMESPACE = "bench-dask"


@contextmanager
def dask_cluster() -> Iterator[Any]:
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, memory_limit="2GiB") as cluster, \
            Client(cluster) as client:
        yield client


def small_value() -> dict[str, str]:
    """A dict that pickles to about 1 KiB."""
    return {f"key-{i:02d}": f"value-{i:02d}-" + "v" * 12 for i in range(31)}


def bench_small(client: Any, repeat: int) -> None:
    import pickle

    from catalogstore.cluster_memory import get_cluster_memory

    memory = get_cluster_memory("dask", namespace=NAMESPACE)
    value = small_value()
    published: list[str] = []

    def ours(_: int) -> None:
        memory.put("small", value)
        memory.get("small")

    def raw(_: int) -> None:
        future = client.scatter([value], hash=False)[0]  # hash=False: a fresh key each time
        name = f"bench-{uuid.uuid4().hex}"
        client.publish_dataset(future, name=name)
        del future
        client.get_dataset(name).result()
        published.append(name)

    def unpublish() -> None:  # untimed, before each sample
        if published:
            client.unpublish_dataset(published[:])
            published.clear()

    cases: dict[str, Callable[[int], object]] = {
        "catalogstore put + get": ours,
        "raw scatter + publish_dataset + get_dataset": raw,
        "catalogstore put": lambda _: memory.put("small", value),
        "catalogstore get": lambda _: memory.get("small"),
        "one scheduler round trip (get_metadata)":
            lambda _: client.get_metadata(["catalogstore-bench"], default=None),
    }
    # No gc.collect before samples: it leaves cold caches behind, which distorts
    # sub-millisecond samples (see measure()).
    timings = measure(cases, repeat=repeat, warmup=5, before=unpublish, collect=False)
    unpublish()
    memory.clear()
    print_table(f"a {len(pickle.dumps(value))}-byte dict, from the client", list(timings.values()))
    ratio = timings["raw scatter + publish_dataset + get_dataset"].median \
        / timings["catalogstore put + get"].median
    report_bar("dask-small", ratio, 3,
               "faster put + get than raw scatter + publish_dataset + get_dataset")


def roundtrip(memory: Any, value: Any) -> Callable[[int], None]:
    def run(_: int) -> None:
        memory.put("sized", value)
        memory.get("sized")
    return run


def bench_threshold(repeat: int) -> None:
    import numpy as np

    from catalogstore.cluster_memory._dask import INLINE_MAX_BYTES, DaskMemory

    inline = DaskMemory(namespace=NAMESPACE, inline_max_bytes=1 << 40)
    scattered = DaskMemory(namespace=NAMESPACE, inline_max_bytes=0)
    print("\n-- put + get by size: kept in the scheduler (inline) or scattered to a worker")
    print(f"   {'size':>9}  {'inline':>10}  {'scattered':>10}  scattered / inline")
    for size in (KIB, 64 * KIB, 256 * KIB, MIB, 4 * MIB, 16 * MIB):
        array = np.random.default_rng(0).random(size // 8)
        # One block per path, not round robin: a scattered put leaves releases running
        # on the scheduler and workers, which would land in the next inline sample.
        a, b = (measure({path: roundtrip(memory, array)}, repeat=repeat, warmup=2,
                        collect=size >= 4 * MIB)[path].median
                for path, memory in (("inline", inline), ("scattered", scattered)))
        print(f"   {size // KIB:>5} KiB  {fmt_time(a):>10}  {fmt_time(b):>10}  {b / a:.1f}x")
    inline.clear()
    note(f"values up to INLINE_MAX_BYTES = {INLINE_MAX_BYTES // KIB} KiB stay in the scheduler. "
         "Larger ones still gain there, but the scheduler's memory and event loop serve the "
         "whole cluster, so they go to a worker")


def bench_large(client: Any, size: int, repeat: int) -> None:
    import numpy as np

    from catalogstore.cluster_memory import get_cluster_memory

    memory = get_cluster_memory("dask", namespace=NAMESPACE)
    array = np.random.default_rng(0).random(size // 8)

    def ours(_: int) -> None:
        memory.put("large", array)
        memory.get("large")

    def raw(_: int) -> None:
        future = client.scatter([array], hash=False)[0]
        client.gather(future)
        del future

    timings = measure({"catalogstore put + get": ours, "raw scatter + gather": raw,
                       "catalogstore put": lambda _: memory.put("large", array),
                       "catalogstore get": lambda _: memory.get("large")},
                      repeat=repeat, warmup=1)
    memory.clear()
    print_table(f"a {size // MIB} MiB NumPy array, from the client", list(timings.values()))
    ratio = timings["catalogstore put + get"].median / timings["raw scatter + gather"].median
    note(f"put + get takes {ratio:.2f}x the time of raw scatter + gather (reported, no bar): "
         "the same transfers plus publishing, the index update and the read pin")


def main(argv: list[str] | None = None) -> int:
    args = make_parser(__doc__, PARTS).parse_args(argv)
    parts = [args.only] if args.only else list(PARTS)
    print_header("memory-dask: the dask cluster memory versus raw Dask calls")
    with dask_cluster() as client:
        if "small" in parts:
            bench_small(client, args.repeat or (50 if args.quick else 300))
        if "threshold" in parts:
            bench_threshold(args.repeat or (5 if args.quick else 20))
        if "large" in parts:
            bench_large(client, (25 if args.quick else 100) * MIB,
                        args.repeat or (3 if args.quick else 10))
    return exit_status()


if __name__ == "__main__":
    sys.exit(main())
