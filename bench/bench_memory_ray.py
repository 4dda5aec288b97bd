"""The ray cluster memory against raw Ray, measured in the same run on a local Ray.

- **get, 100 MiB array**: ``memory.get(key)`` (the board check that the key did
  not change since this process last read it, then unpickling the frames that its
  first get mapped from the object store: zero-copy) against a raw
  ``ray.get(ref)`` of the same array put with ``ray.put`` by this driver. Beside
  them, what a get costs after another process changed the key: the lookup call
  to the memory actor plus the data path (``ray.get`` of the object the actor owns,
  which asks the owner, and unpickling); and one ``arr.copy()``.
- **put, 100 MiB array** (no bar): ``memory.put`` (Ray copies the frames into the
  object store as the call's argument, and the actor's ``ray.put`` copies them
  again so that the actor owns the object) against a raw ``ray.put``.
- **small object (a 1 KiB dict), put + get round trip**: ``memory.put`` then
  ``memory.get``, against raw ``ray.get(ray.put(d))`` plus the actor calls the
  design needs: ``MemoryActor.put`` (store, and wait for the acknowledgement) and
  ``MemoryActor.get`` (the lookup, whose reply carries a small value inline),
  each measured as a no-op call to an actor started with the memory actor's
  options.

Bars (issue 3): 100 MiB get within 1.5x of the raw ``ray.get``; the small round trip
within 1.5x of raw ``ray.put`` + ``ray.get`` plus those two actor calls.

    .venv/bin/python bench/bench_memory_ray.py [--quick] [--repeat N] [--only big|small]
"""

from __future__ import annotations

import pickle
import sys
from typing import Any

import numpy as np
import ray
from _common import (
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
from bench_memory_local import small_dict  # the same 1 KiB dict in every memory benchmark

from catalogstore.cluster_memory._ray import RayMemory, memory_actor

ARRAY_BYTES = 100 * MIB
NAMESPACE = "bench"


@ray.remote(num_cpus=0, max_concurrency=8, enable_task_events=False)
class NoopActor:
    """Options of the memory actor, methods that do nothing: the cost of a call alone."""

    def call(self, *args: Any) -> None:
        return None


def bench_big(memory: RayMemory, repeat: int) -> None:
    array = np.random.default_rng(0).random(ARRAY_BYTES // 8)
    ref = ray.put(array)
    memory.put("big", array)
    got = memory.get("big")
    if got.flags.writeable or not np.array_equal(got, array):
        raise SystemExit("memory.get did not return a read-only view equal to the array")
    del got
    actor = memory_actor()
    owned_ref = ray.get(actor.get.remote(NAMESPACE, "big"))[1]  # what a lookup returns

    def data_path(_: int) -> None:
        frames = ray.get(owned_ref)
        pickle.loads(frames[0], buffers=frames[1:])

    gets = measure({
        "raw ray.get": lambda _: ray.get(ref),
        "RayMemory.get": lambda _: memory.get("big"),
        "  its lookup (MemoryActor.get call)": lambda _: ray.get(
            actor.get.remote(NAMESPACE, "big")),
        "  its data path (ray.get + unpickle)": data_path,
        "arr.copy()": lambda _: array.copy(),
    }, repeat=repeat * 3, warmup=3, collect=False)
    print_table("get of a 100 MiB float64 array on the driver (zero-copy)", list(gets.values()))
    puts = measure({
        "raw ray.put": lambda _: ray.put(array),
        "RayMemory.put": lambda _: memory.put("big-put", array),
        "arr.copy()": lambda _: array.copy(),
    }, repeat=repeat, warmup=1)
    print_table("put of a 100 MiB float64 array (no bar)", list(puts.values()))
    raw, ours, lookup, data, copy = (gets[name].median for name in gets)
    note(f"a get after another process changed the key costs the lookup call plus the "
         f"data path: {fmt_time(lookup + data)}; RayMemory.get is {copy / ours:.0f}x faster "
         "than one copy")
    report_bar("memory-ray-get", ours / raw, 1.5,
               f"the time of a raw ray.get of the 100 MiB array ({fmt_time(ours)} vs "
               f"{fmt_time(raw)})", at_most=True)


def bench_small(memory: RayMemory, repeat: int) -> None:
    value = small_dict()
    noop = NoopActor.remote()
    ray.get(noop.call.remote())

    def ours(_: int) -> None:
        memory.put("small", value)
        if memory.get("small") != value:
            raise SystemExit("memory.get returned another value")

    rounds = measure({
        "RayMemory put + get": ours,
        "raw ray.get(ray.put(d))": lambda _: ray.get(ray.put(value)),
        "no-op actor call": lambda _: ray.get(noop.call.remote(NAMESPACE, "small")),
        "pickle dumps + loads": lambda _: pickle.loads(pickle.dumps(value, protocol=5)),
    }, repeat=repeat * 20, warmup=20, collect=False)
    print_table(f"1 KiB dict ({len(pickle.dumps(value, protocol=5))} bytes pickled), put + get "
                "round trip on the driver", list(rounds.values()))
    ours_t, raw, call = (rounds[name].median for name in list(rounds)[:3])
    baseline = raw + 2 * call
    report_bar("memory-ray-small", ours_t / baseline, 1.5,
               f"the time of raw ray.put + ray.get plus 2 actor calls, MemoryActor.put and "
               f"MemoryActor.get ({fmt_time(ours_t)} vs {fmt_time(raw)} + 2 x "
               f"{fmt_time(call)})", at_most=True)
    ray.kill(noop)


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__, parts=("big", "small"))
    args = parser.parse_args(argv)
    repeat = args.repeat or (5 if args.quick else 15)
    print_header("ray cluster memory versus raw Ray")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=1 << 30,
             log_to_driver=False)
    try:
        memory = RayMemory(namespace=NAMESPACE)
        memory.clear()
        if args.only in (None, "big"):
            bench_big(memory, repeat)
        if args.only in (None, "small"):
            bench_small(memory, repeat)
        memory.clear()
    finally:
        ray.shutdown()
    return exit_status()


if __name__ == "__main__":
    sys.exit(main())
