"""Lineage (issue 16): what recording costs, and how fast the walk answers.

(a) Recording on against off, side by side in one run (rounds alternate, each mode in
turn; switching is untimed): bench_create's transactional creation (``new_artifact``,
then one ``transaction()`` with a 1 KiB file and 3 metadata keys: two commits, two
output rows), and bench_object_store-like loops (1 KiB object ``put`` + ``get`` to
artifacts, and to local cluster memory). Bar: at most 1.10x with recording on.

(b) The lineage walk upstream from the end of a chain of 1,000 runs (each read the
previous run's output and made one version; rows inserted straight into the tables),
on SQLite and on a fresh PostgreSQL schema. Bar: under 50 ms.

    .venv/bin/python bench/bench_lineage.py [--quick] [--repeat N] [--only cost|chain]
                                            [--catalog sqlite|postgres|both]
"""

from __future__ import annotations

import gc
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

from _common import (
    KIB,
    exit_status,
    fmt_time,
    make_parser,
    print_header,
    report_bar,
    sample_meta,
    temp_store,
)
from bench_query import postgres_store

CHAIN = 1000
PAYLOAD = b"x" * KIB


def alternate(cases: dict[str, Callable[[int], object]], modes: dict[str, Callable[[], object]],
              repeat: int, warmup: int = 20, calls: int = 1,
              settle: Callable[[], object] | None = None) -> dict[tuple[str, str], list[float]]:
    """Each case in each mode, round robin: the mode is switched (untimed) before
    every sample of ``calls`` calls (the time per call is kept), the order flips every
    round. ``settle`` (untimed, before each sample) ends the background work the sample
    before left, which would otherwise be charged to the next case in the order."""
    samples: dict[tuple[str, str], list[float]] = {(c, m): [] for c in cases for m in modes}
    order = [(c, m) for c in cases for m in modes]
    for round_no in range(warmup + repeat):
        for case, mode in order if round_no % 2 == 0 else reversed(order):
            if settle is not None:
                settle()
            modes[mode]()
            start = time.perf_counter()
            for call in range(calls):
                cases[case](round_no * calls + call)
            elapsed = (time.perf_counter() - start) / calls
            if round_no >= warmup:
                samples[(case, mode)].append(elapsed)
    return samples


def bench_cost(repeat: int) -> None:
    import catalogstore
    from catalogstore.artifacts import new_artifact
    from catalogstore.cluster_memory._local import LocalMemory
    from catalogstore.object_store import flush, get, put

    meta = sample_meta(0)

    def create(i: int) -> None:
        artifact = new_artifact(f"a-{uuid.uuid4().hex[:12]}")
        with artifact.transaction():
            artifact.new_file("data.bin", content=PAYLOAD)
            artifact.update_meta(meta)

    def put_get(strategy: str) -> Callable[[int], object]:
        def cycle(i: int) -> None:
            key = f"k-{strategy}-{i % 50}"
            put(key, PAYLOAD, strategy=strategy)
            get(key, strategy=strategy)
        return cycle

    with temp_store(memory_backend="local"), LocalMemory.new_session():
        cases: dict[str, Callable[[int], object]] = {
            "create (new_artifact + transaction)": create,
            "object put + get, artifacts": put_get("artifact"),
            "object put + get, cluster memory": put_get("cluster_memory"),
        }
        modes = {"off": lambda: catalogstore.configure(lineage=False),
                 "on": lambda: catalogstore.configure(lineage=True)}
        gc.collect()
        # The files of small object store values are written in the background: before
        # each sample, not during the next case's (no lineage work is left to settle:
        # a commit writes the reads the run made before it).
        samples = alternate(cases, modes, repeat, warmup=2, calls=10, settle=flush)
        from catalogstore.txn import runs

        runs.end_process_runs()  # while its catalog is there
    print(f"{'case':<40} {'off':>10} {'on':>10} {'ratio':>7}   (median of {repeat})")
    for case in cases:
        off = statistics.median(samples[(case, "off")])
        on = statistics.median(samples[(case, "on")])
        print(f"{case:<40} {fmt_time(off):>10} {fmt_time(on):>10} {on / off:>6.2f}x")
        report_bar(f"lineage cost: {case}", on / off, 1.10, "recording on / off",
                   at_most=True)


def build_chain(workspace: Any, length: int) -> str:
    """``length`` runs, each reading the previous one's output; the last output's node."""
    from sqlalchemy import insert

    from catalogstore.catalog.lineage import artifact_node, run_row
    from catalogstore.catalog.models import RUN_EDGES, RUNS, utcnow

    now = utcnow()
    runs, edges = [], []
    for i in range(length):
        run_id = f"{i:032x}"
        row = run_row(run_id, f"step-{i}", {"i": i}, {}, None, None, now)
        runs.append({**row, "status": "succeeded"})
        base = {"run_id": run_id, "namespace": "chain", "name": f"a{i}", "generation": None,
                "created_at": now}
        edges.append({**base, "direction": "output", "node": artifact_node(10_000 + i, 1),
                      "artifact_id": 10_000 + i, "version": 1, "producer_id": None})
        if i:  # with its producer, as recording writes it
            edges.append({**base, "direction": "input", "name": f"a{i - 1}",
                          "node": artifact_node(10_000 + i - 1, 1),
                          "artifact_id": 10_000 + i - 1, "version": 1,
                          "producer_id": f"{i - 1:032x}"})
    with workspace.catalog.engine.begin() as conn:
        conn.execute(insert(RUNS), runs)
        conn.execute(insert(RUN_EDGES), edges)
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE runs")
            conn.exec_driver_sql("ANALYZE run_edges")
    return artifact_node(10_000 + length - 1, 1)


def bench_chain(workspace: Any, label: str, repeat: int) -> None:
    from catalogstore.catalog.lineage import Node, walk

    node = build_chain(workspace, CHAIN)
    root = Node(node, "chain", f"a{CHAIN - 1}", 10_000 + CHAIN - 1, 1, None, "removed")
    times = []
    for round_no in range(3 + repeat):
        start = time.perf_counter()
        graph = walk(workspace.catalog, root, downstream=False)
        elapsed = time.perf_counter() - start
        if round_no >= 3:
            times.append(elapsed)
    assert len(graph.runs) == CHAIN, len(graph.runs)
    median = statistics.median(times)
    print(f"{label}: walk over {CHAIN} runs ({len(graph.edges)} edges): median "
          f"{fmt_time(median)}, best {fmt_time(min(times))} (of {repeat})")
    report_bar(f"lineage walk, chain of {CHAIN}, {label}", median * 1000, 50, "median",
               at_most=True, unit="ms")


def main() -> int:
    parser = make_parser(__doc__ or "", ["cost", "chain"])
    parser.add_argument("--catalog", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    repeat = args.repeat or (5 if args.quick else 30)
    if args.only in (None, "cost"):
        print_header("lineage recording: on against off (SQLite, local disk)")
        bench_cost(repeat)
    if args.only in (None, "chain"):
        print_header(f"lineage walk over a chain of {CHAIN} runs")
        walk_repeat = 5 if args.quick else 20
        if args.catalog in ("sqlite", "both"):
            with temp_store() as store:
                bench_chain(store.workspace, "SQLite", walk_repeat)
        if args.catalog in ("postgres", "both"):
            with postgres_store(None) as workspace:
                bench_chain(workspace, "PostgreSQL", walk_repeat)
    return exit_status()


if __name__ == "__main__":
    raise SystemExit(main())
