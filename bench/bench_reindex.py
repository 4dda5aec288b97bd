"""Reindexing a foreign tree: ``catalogstore.maintenance.reindex`` versus a bare walk of it.

The tree is written with plain file I/O, as another tool (Flowdapt) would leave
it: 10,000 folders ``artifacts/reindex/aNNNNNN/``, each with one 1 KiB file and a
``.artifact.json`` of 3 metadata keys. Each round reindexes it into a new, empty
SQLite catalog (every file hashed, every row inserted), then reindexes again
(nothing may change; files whose size and mtime match are not read again).
``verify`` (checksums, and ``--fast``: sizes only) on the result is reported too.
The runs start once the tree is ``SETTLE`` (2 s) old, as a tree found on disk
is: a file modified less than that before a run is hashed again by the next one
(its mtime could still hide a change), which the notes show.

Baseline, in the same run: the least any indexer must do, a walk that lists each
folder, reads and hashes (XXH3-128) each file and parses each ``.artifact.json``,
with no catalog at all.

Bars (issue 5): the first reindex of 10,000 artifacts takes under 30 s, and the
second run changes nothing.

    .venv/bin/python bench/bench_reindex.py [--quick] [--repeat N] [--dir DIR]
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from _common import (
    KIB,
    exit_status,
    fmt_time,
    make_parser,
    measure,
    note,
    print_header,
    print_table,
    report_bar,
    sample_meta,
    scratch_dir,
)

NAMESPACE = "reindex"
PAYLOAD = b"x" * KIB


def write_tree(storage: Path, count: int) -> None:
    """The foreign tree, with plain file I/O (no catalogstore, no fsspec)."""
    base = storage / "artifacts" / NAMESPACE
    for i in range(count):
        folder = base / f"a{i:06d}"
        os.makedirs(folder)
        (folder / "data.bin").write_bytes(PAYLOAD)
        (folder / ".artifact.json").write_text(json.dumps(sample_meta(i)))


def walk(storage: Path) -> int:
    """Read, hash and parse everything in the tree; returns the number of artifacts."""
    import xxhash

    found = 0
    for entry in os.scandir(storage / "artifacts" / NAMESPACE):
        for item in os.scandir(entry.path):
            with open(item.path, "rb") as f:
                data = f.read()
            if item.name == ".artifact.json":
                json.loads(data)
            else:
                xxhash.xxh3_128(data).hexdigest()
        found += 1
    return found


def main(argv: list[str] | None = None) -> int:
    args = make_parser(__doc__).parse_args(argv)
    from catalogstore.maintenance import reindex, verify
    from catalogstore.maintenance._reindex import SETTLE
    from catalogstore.settings import load_settings

    count = 1000 if args.quick else 10_000
    repeat = args.repeat or 3
    print_header(f"reindex: {count} artifacts written by another tool, local disk, SQLite")
    with scratch_dir(args.dir) as tmp:
        storage = tmp / "storage"
        started = time.perf_counter()
        write_tree(storage, count)
        note(f"tree written in {fmt_time(time.perf_counter() - started)} "
             f"({count} folders, {count} files of 1 KiB, {count} .artifact.json)")
        time.sleep(SETTLE)

        def settings(round_no: int) -> Any:
            return load_settings(catalog_url=f"sqlite:///{tmp / f'catalog-{round_no}.db'}",
                                 storage_url=str(storage))

        reports: dict[str, list[Any]] = {"first": [], "second": []}

        def first(round_no: int) -> None:
            report = reindex(settings=settings(round_no))
            if len(report.added) != count or report.broken or report.skipped:
                raise SystemExit(f"first reindex: {len(report.added)} added of {count}, "
                                 f"{len(report.broken)} broken, {len(report.skipped)} skipped")
            reports["first"].append(report)

        def second(round_no: int) -> None:
            reports["second"].append(reindex(settings=settings(round_no)))

        def walked(_: int) -> None:
            if walk(storage) != count:
                raise SystemExit("the walk did not find every artifact")

        # Every round needs its own empty catalog: the first reindex of round n runs
        # before its second, so they are timed as one case each, in that order.
        timings = {}
        for name, case in (("reindex into an empty catalog", first),
                           ("second reindex (nothing changed)", second)):
            timings.update(measure({name: case}, repeat=repeat, warmup=0, per=count))
        timings.update(measure({"walk (list, read + hash, parse .artifact.json)": walked},
                               repeat=repeat, warmup=1, per=count))
        ours = settings(0)
        timings.update(measure({
            "verify (checksums)": lambda _: verify(settings=ours),
            "verify --fast (sizes only)": lambda _: verify(settings=ours, fast=True),
        }, repeat=repeat, warmup=0, per=count))
        print_table(f"{count} artifacts", list(timings.values()), "artifact")

        first_t = timings["reindex into an empty catalog"]
        second_t = timings["second reindex (nothing changed)"]
        walk_t = timings["walk (list, read + hash, parse .artifact.json)"]
        note(f"first reindex is {first_t.median / walk_t.median:.1f}x the bare walk "
             f"(the catalog's inserts are the difference)")
        again = reports["second"]
        note(f"second run: {fmt_time(second_t.median)} ({second_t.median / first_t.median:.0%} "
             "of the first); per round: " + "; ".join(
                 f"{r.changes} changed, {r.files_hashed} file(s) hashed again" for r in again))
        if not verify(settings=ours).ok:
            raise SystemExit("verify found differences after reindex")
    report_bar(f"reindex-{count // 1000}k", first_t.median * 1000, 30_000,
               f"for the first reindex of {count} artifacts", at_most=True, unit="ms")
    report_bar("reindex-second-run", max(r.changes for r in again), 0,
               "changed by a second run", at_most=True, unit="artifacts")
    return exit_status()


if __name__ == "__main__":
    sys.exit(main())
