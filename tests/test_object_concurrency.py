"""Concurrent writers of the same keys converge (issue 13).

N processes put, delete and get the same 4 keys for a while, on SQLite and on
PostgreSQL, through both tiers (artifacts, and a local cluster memory session that
all of them share, so a key's generations move between tiers). Every call is logged
with its start and end (``time.monotonic``, one clock for the machine) and checked
against the ledger of all writes:

- ``put`` always succeeds (the last writer wins) and ``delete`` of a missing key is a
  no-op: any exception is a failure;
- ``get`` returns a value that was current at some moment of the call, or the default
  when the key may have been absent then: never a value that a write finished before
  the call began had replaced, never a checksum or storage error;
- after the run, each key holds a value no finished write replaced.

The fast loop runs a short round (4 processes, 2 s); the bar (8 processes, 20 s on
each stack) is marked ``slow``.
"""

from __future__ import annotations

import multiprocessing
import random
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest
from stacks import stack_param

from catalogstore.cluster_memory._local import LocalMemory
from catalogstore.object_store import get

KEYS = ("k0", "k1", "k2", "k3")
STACKS = [stack_param("sqlite-local"), stack_param("postgres-local")]

Call = tuple[str, str, Any, float, float, str | None]
"""(operation, key, value put or got, start, end, error)."""


def _work(worker: int, seconds: float, seed: int, start_at: float) -> list[Call]:
    from catalogstore.object_store import delete, get, put
    from catalogstore.txn.workspace import close_workspaces

    rng = random.Random(seed * 100 + worker)
    calls: list[Call] = []
    seq = 0
    get("warm-up", default=None)  # opened the catalog: the first call costs no more
    time.sleep(max(0.0, start_at - time.time()))  # all together (spawning is slow)
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        key = rng.choice(KEYS)
        roll = rng.random()
        start = time.monotonic()
        value: Any = None
        error = None
        try:
            if roll < 0.45:
                seq += 1
                value = f"w{worker}-{seq}"
                op = "put"
                # Half of them as artifacts; the others go to the shared memory session.
                put(key, value, artifact_only=rng.random() < 0.5)
            elif roll < 0.6:
                op = "delete"
                delete(key)
            else:
                op = "get"
                value = get(key, default=None)
        except Exception as exc:  # every failure is reported, none expected
            op = locals().get("op", "?")
            error = f"{type(exc).__name__}: {exc}"
        calls.append((op, key, value, start, time.monotonic(), error))
    close_workspaces()
    return calls


def _superseded(writes: list[Call], after: float, before: float) -> bool:
    """Whether a write started after ``after`` and finished before ``before``."""
    return any(w[3] > after and w[4] < before for w in writes)


def _check(calls: list[Call], final: dict[str, Any]) -> list[str]:
    problems = [f"{c[0]} {c[1]}: {c[5]}" for c in calls if c[5] is not None]
    writes: dict[str, list[Call]] = {key: [] for key in KEYS}
    puts: dict[str, Call] = {}
    for c in calls:
        if c[0] in ("put", "delete") and c[5] is None:
            writes[c[1]].append(c)
            if c[0] == "put":
                puts[c[2]] = c
    end = time.monotonic() + 1
    reads = [c for c in calls if c[0] == "get" and c[5] is None]
    reads += [("get", key, value, end, end, None) for key, value in final.items()]
    for _, key, value, start, stop, _ in reads:
        if value is not None:
            put = puts.get(value)
            if put is None or put[1] != key:
                problems.append(f"get {key} returned {value!r}, which nobody put there")
            elif put[3] > stop or _superseded(writes[key], put[4], start):
                problems.append(f"get {key} returned {value!r}, replaced before the call")
            continue
        # The default: the key was absent at some moment of the call (never written yet,
        # or a delete not replaced before the call began).
        absent = [d for d in writes[key] if d[0] == "delete" and d[3] < stop]
        if not (not _superseded(writes[key], -1.0, start)
                or any(not _superseded(writes[key], d[4], start) for d in absent)):
            problems.append(f"get {key} returned nothing while a value was current")
    return problems


def _run(processes: int, seconds: float) -> tuple[list[Call], list[str]]:
    import catalogstore

    # The local backend everywhere (exported to the workers), whatever runtime another
    # test left in this process (a Dask client would be detected).
    catalogstore.configure(memory_backend="local")
    seed = random.randrange(1 << 30)
    with LocalMemory.new_session(), ProcessPoolExecutor(
            processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        start_at = time.time() + 3 + processes / 2
        futures = [pool.submit(_work, w, seconds, seed, start_at) for w in range(processes)]
        calls = [call for future in futures for call in future.result()]
        final = {key: get(key, default=None) for key in KEYS}
    return calls, _check(calls, final)


def _report(calls: list[Call], problems: list[str]) -> str:
    counts = {op: sum(1 for c in calls if c[0] == op) for op in ("put", "delete", "get")}
    return f"{counts}; {len(problems)} problem(s): {problems[:10]}"


@pytest.mark.parametrize("stack", STACKS, indirect=True)
def test_concurrent_writers_converge_quick(stack):
    calls, problems = _run(4, 2.0)
    assert not problems, _report(calls, problems)
    assert sum(1 for c in calls if c[0] == "put") > 10, _report(calls, problems)


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("stack", STACKS, indirect=True)
def test_concurrent_writers_converge(stack):
    calls, problems = _run(8, 20.0)
    print(_report(calls, problems))
    assert not problems, _report(calls, problems)
