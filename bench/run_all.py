"""Run every benchmark (each in its own interpreter) and print all BAR lines at the end.

    .venv/bin/python bench/run_all.py [--quick] [--repeat N] [--dir DIR] [--only NAME ...]

Exits 1 when a bar fails or a benchmark crashes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from _common import BENCH_DIR

BENCHMARKS = ["import", "create", "stream", "listing", "memory_local", "memory_ray", "memory_dask",
              "object_store", "reindex", "query", "where", "transfer", "versions", "versions_gc",
              "alias_query", "lineage", "cache", "web", "soak", "pg_writes", "bounded_json",
              "pg_order"]


def run(name: str, options: list[str]) -> tuple[list[str], int]:
    """Run ``bench_{name}.py``, echoing its output; returns its BAR lines and exit code."""
    bars = []
    with subprocess.Popen([sys.executable, str(BENCH_DIR / f"bench_{name}.py"), *options],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          bufsize=1) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="", flush=True)
            if line.startswith("BAR "):
                bars.append(line.rstrip())
    if proc.returncode not in (0, 1) or not bars:
        bars.append(f"BAR {name}: benchmark crashed (exit {proc.returncode}) FAIL")
    return bars, proc.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--dir", default=None, help="folder for the temporary stores")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, default=BENCHMARKS)
    args = parser.parse_args()
    options = ["--quick"] * args.quick
    if args.repeat:
        options += ["--repeat", str(args.repeat)]
    if args.dir:
        options += ["--dir", args.dir]
    bars = []
    for name in args.only:
        bars += run(name, options)[0]
        print()
    print("== summary")
    for line in bars:
        print(line)
    return 1 if any(line.endswith("FAIL") for line in bars) else 0


if __name__ == "__main__":
    sys.exit(main())
