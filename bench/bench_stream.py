"""Streaming a large file through ``ArtifactFile.open()`` versus raw fsspec on the same disk.

Writes a 256 MiB file in 4 MiB chunks (one ``os.urandom`` chunk, reused) and reads
it back in 4 MiB chunks, through ``ArtifactFile.open("wb")``/``open("rb")`` (staging,
XXH3-128 while streaming, the commit when the stream closes) and through
``fs.open`` of plain fsspec on the same local storage. Before each write, untimed,
catalogstore's removal of the file it replaced (on a helper thread) is waited
for and dirty pages are flushed (``os.sync``), so that one write's leftovers do not
land in the next one's time; reads come from the page cache for both.

Peak memory growth is measured in a fresh interpreter per side: ``ru_maxrss``
before and after writing and reading the file (the chunk buffer counts, it is
allocated after the first reading). The verdict uses the larger of the
``ru_maxrss`` delta and the peak over the resident size before, so an earlier
transient peak cannot hide growth. A 1 KiB write through the same path runs
first, so one-time set-up (imports, the hashing thread) is not counted.

Bars (issue 2): write and read each within 1.2x of raw fsspec, peak memory growth
under 64 MiB.

    .venv/bin/python bench/bench_stream.py [--quick] [--repeat N] [--size-mib N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from typing import IO, Any

import fsspec
from _common import (
    MIB,
    exit_status,
    make_parser,
    measure,
    print_header,
    print_table,
    report_bar,
    temp_store,
)

from catalogstore.storage.checksum import CHECKSUM_ALGORITHM, new_hasher
from catalogstore.storage.filestore import wait_for_frees

CHUNK = 4 * MIB
FILE_NAME = "data.bin"


def write_chunks(f: IO[bytes], chunk: bytes, count: int) -> None:
    for _ in range(count):
        f.write(chunk)


def read_all(f: IO[bytes]) -> int:
    total = 0
    while True:
        data = f.read(CHUNK)
        if not data:
            return total
        total += len(data)


def openers(store: Any) -> dict[str, Callable[[str], IO[bytes]]]:
    """``mode -> stream`` for each side: an artifact file, and a raw fsspec path beside it."""
    from catalogstore.artifacts import new_artifact

    artifact_file = new_artifact("stream").new_file(FILE_NAME)
    fs = fsspec.filesystem("file", skip_instance_cache=True)
    raw_dir = f"{store.tmp}/raw"
    fs.makedirs(raw_dir, exist_ok=True)
    return {"catalogstore": artifact_file.open,
            "raw fsspec": lambda mode: fs.open(f"{raw_dir}/{FILE_NAME}", mode)}


def bench_speed(size: int, repeat: int, parent: str | None) -> None:
    count = size // CHUNK
    chunk = os.urandom(CHUNK)
    expected = new_hasher()
    for _ in range(count):
        expected.update(chunk)
    with temp_store(parent) as store:
        sides = openers(store)

        def writer(open_: Callable[[str], IO[bytes]]) -> Callable[[int], None]:
            def run(_: int) -> None:
                with open_("wb") as f:
                    write_chunks(f, chunk, count)
            return run

        def reader(open_: Callable[[str], IO[bytes]]) -> Callable[[int], None]:
            def run(_: int) -> None:
                with open_("rb") as f:
                    if read_all(f) != count * CHUNK:
                        raise SystemExit("read back a different size")
            return run

        def settle() -> None:
            # Neither side's write may be timed while the disk still works for the other:
            # catalogstore frees a replaced large file on a helper thread.
            wait_for_frees()
            os.sync()

        writes = measure({f"{name} write": writer(o) for name, o in sides.items()},
                         repeat=repeat, warmup=1, before=settle)
        reads = measure({f"{name} read": reader(o) for name, o in sides.items()},
                        repeat=repeat, warmup=1)
        from catalogstore.artifacts import get_artifact

        recorded = get_artifact("stream").get_file(FILE_NAME).checksum
        if recorded != f"{CHECKSUM_ALGORITHM}:{expected.hexdigest()}":
            raise SystemExit(f"catalogstore recorded checksum {recorded}, expected "
                             f"{CHECKSUM_ALGORITHM}:{expected.hexdigest()}")
    mib = size // MIB
    print_table(f"write and read back {mib} MiB in 4 MiB chunks (local disk)",
                [*writes.values(), *reads.values()])
    (cw, rw), (cr, rr) = writes.values(), reads.values()
    for t in (cw, rw, cr, rr):
        print(f"   {t.label}: {mib / t.median:.0f} MiB/s (median)")
    report_bar("stream-write", cw.median / rw.median, 1.2, "the time of raw fsspec to write",
               at_most=True)
    report_bar("stream-read", cr.median / rr.median, 1.2, "the time of raw fsspec to read",
               at_most=True)
    report_bar("stream-combined", (cw.median + cr.median) / (rw.median + rr.median), 1.2,
               "the time of raw fsspec to write and read", at_most=True)


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def probe_memory(side: str, size: int, parent: str | None) -> None:
    """Child mode: print the memory figures of streaming ``size`` bytes on ``side``."""
    with temp_store(parent) as store:
        open_ = openers(store)[side]
        with open_("wb") as f:  # one-time set-up, not counted
            f.write(b"x" * 1024)
        with open_("rb") as f:
            f.read()
        maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rss_before = _rss_kib()
        chunk = os.urandom(CHUNK)
        with open_("wb") as f:
            write_chunks(f, chunk, size // CHUNK)
        del chunk
        with open_("rb") as f:
            read_all(f)
        maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"maxrss_before": maxrss_before, "rss_before": rss_before,
                      "maxrss_after": maxrss_after}))


def bench_memory(size: int, parent: str | None) -> None:
    print(f"\n-- peak memory growth while writing and reading {size // MIB} MiB "
          "(fresh interpreter each)")
    growth = {}
    for side in ("catalogstore", "raw fsspec"):
        cmd = [sys.executable, __file__, "--probe", side, "--size-mib", str(size // MIB)]
        if parent:
            cmd += ["--dir", parent]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise SystemExit(f"memory probe of {side} failed:\n{out.stderr}")
        m = json.loads(out.stdout.strip().splitlines()[-1])
        delta = (m["maxrss_after"] - m["maxrss_before"]) / 1024
        over_rss = (m["maxrss_after"] - m["rss_before"]) / 1024
        growth[side] = max(delta, over_rss)
        print(f"   {side:<13} ru_maxrss delta {delta:6.1f} MiB, peak over RSS before "
              f"{over_rss:6.1f} MiB (RSS before {m['rss_before'] / 1024:.0f} MiB)")
    report_bar("stream-memory", growth["catalogstore"], 64,
               f"peak growth streaming through ArtifactFile.open() (raw fsspec: "
               f"{growth['raw fsspec']:.0f} MiB)", at_most=True, unit="MiB")


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--size-mib", type=int, default=None,
                        help="file size in MiB (default 256, 64 with --quick)")
    parser.add_argument("--probe", choices=["catalogstore", "raw fsspec"], default=None,
                        help=argparse.SUPPRESS)  # child mode of bench_memory
    args = parser.parse_args(argv)
    size = (args.size_mib or (64 if args.quick else 256)) * MIB
    if args.probe:
        probe_memory(args.probe, size, args.dir)
        return 0
    print_header("stream: ArtifactFile.open() versus raw fsspec")
    bench_speed(size, args.repeat or (3 if args.quick else 5), args.dir)
    bench_memory(size, args.dir)
    return exit_status()


if __name__ == "__main__":
    sys.exit(main())
