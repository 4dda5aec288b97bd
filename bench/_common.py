"""Shared helpers of the benchmarks: timing, temporary stores, a moto S3 server, reports.

Every benchmark compares catalogstore with a baseline measured in the same run
(raw fsspec, a storage walk, a bare interpreter) and prints the ratio; no figure
is hard-coded. The machine may be shared and noisy, so cases are timed round
robin (drift hits every case alike), after warm-up rounds, and reported as
median and 90th percentile.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
# Optional: a virtual environment with the real Flowdapt, for side-by-side figures
# (tests/flowdapt_env.py builds flowdapt-<version>). Flowdapt is never a dependency
# of catalogstore; without such a venv those rows are skipped.
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "catalogstore"
FLOWDAPT_VENVS = ("flowdapt-venv", "flowdapt-0.1.52")
KIB = 1 << 10
MIB = 1 << 20

_failed: list[str] = []


# -- command line ------------------------------------------------------------------


def make_parser(doc: str, parts: Sequence[str] = ()) -> argparse.ArgumentParser:
    """A parser with the options every benchmark takes; ``--only`` picks one of ``parts``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    if parts:
        parser.add_argument("--only", choices=parts, default=None,
                            help="run only this part of the benchmark")
    parser.add_argument("--quick", action="store_true",
                        help="smaller sizes and fewer repeats (a smoke run; bars still printed)")
    parser.add_argument("--repeat", type=int, default=None,
                        help="timed repeats of each case (default depends on the benchmark)")
    parser.add_argument("--dir", default=None,
                        help="folder for the temporary stores (default: the system temp folder)")
    return parser


def print_header(title: str) -> None:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"== {title}")
    print(f"   python {platform.python_version()} on {platform.machine()}, "
          f"{os.cpu_count()} cpus, load average {load}")


# -- timing ------------------------------------------------------------------------


@dataclass
class Timing:
    """Samples of one case, in seconds; ``per`` items were handled in each sample."""

    label: str
    samples: list[float]
    per: int = 1

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p90(self) -> float:
        if len(self.samples) < 2:
            return self.samples[0]
        return statistics.quantiles(self.samples, n=10, method="inclusive")[-1]

    @property
    def per_item(self) -> float:
        return self.median / self.per


def measure(cases: dict[str, Callable[[int], object]], *, repeat: int, warmup: int = 1,
            per: int = 1, before: Callable[[], object] | None = None,
            collect: bool = True) -> dict[str, Timing]:
    """Time each case ``repeat`` times after ``warmup`` untimed rounds.

    Cases run round robin, in alternating order, so that a slow phase of a shared
    machine hits all of them alike. Each call gets the round number (distinct
    across rounds, for fresh names). Before each sample ``before`` (untimed) runs
    and, with ``collect``, garbage is collected: right for samples that allocate a
    lot, but it leaves cold caches behind, which distorts sub-millisecond samples.
    The garbage collector stays on while timing, as in real use.
    """
    names = list(cases)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_no in range(warmup + repeat):
        for name in names if round_no % 2 == 0 else reversed(names):
            if before is not None:
                before()
            if collect:
                gc.collect()
            start = time.perf_counter()
            cases[name](round_no)
            elapsed = time.perf_counter() - start
            if round_no >= warmup:
                samples[name].append(elapsed)
    return {name: Timing(name, samples[name], per) for name in names}


def fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def print_table(title: str, timings: Sequence[Timing], per_label: str = "") -> None:
    """A table of the timings: median, p90, and the median per item when ``per`` > 1."""
    print(f"\n-- {title}")
    width = max(len(t.label) for t in timings)
    per_col = f"{'per ' + per_label:>16}" if per_label else ""
    print(f"   {'case':<{width}}  {'median':>10}  {'p90':>10}{per_col}  samples")
    for t in timings:
        per_cell = f"{fmt_time(t.per_item):>16}" if per_label else ""
        print(f"   {t.label:<{width}}  {fmt_time(t.median):>10}  {fmt_time(t.p90):>10}"
              f"{per_cell}  {len(t.samples)}")


# -- bars --------------------------------------------------------------------------


def report_bar(name: str, value: float, need: float, text: str, *, at_most: bool = False,
               unit: str = "x") -> bool:
    """Print the verdict line of one bar, e.g.
    ``BAR listing-local: 4.1x faster than walk (need >= 3x) PASS``."""
    ok = value <= need if at_most else value >= need
    if not ok:
        _failed.append(name)
    shown = f"{value:.0f} {unit}" if unit != "x" else f"{value:.2f}x" if value < 10 \
        else f"{value:.0f}x"
    op = "<=" if at_most else ">="
    print(f"BAR {name}: {shown} {text} (need {op} {need:g}{'' if unit == 'x' else ' '}{unit}) "
          f"{'PASS' if ok else 'FAIL'}")
    return ok


def exit_status() -> int:
    """0 when every bar reported so far passed, else 1."""
    return 1 if _failed else 0


# -- stores ------------------------------------------------------------------------


@dataclass
class Store:
    """A configured catalogstore: its workspace, storage root and scratch folder."""

    workspace: Any
    tmp: Path

    @property
    def fs(self) -> Any:
        return self.workspace.files.fs

    @property
    def root(self) -> str:
        return str(self.workspace.files.root)


@contextlib.contextmanager
def scratch_dir(parent: str | None = None) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="catalogstore-bench-", dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def temp_store(parent: str | None = None, *, storage_url: str | None = None,
               storage_options: dict[str, Any] | None = None,
               namespace: str = "bench", **settings: Any) -> Iterator[Store]:
    """A SQLite catalog in a scratch folder, and storage there too unless ``storage_url``.

    ``settings``: further fields of the configuration (``memory_backend="local"``).
    """
    import catalogstore
    from catalogstore.settings import reset_configuration
    from catalogstore.txn.runs import end_process_runs
    from catalogstore.txn.workspace import close_workspaces, get_workspace

    with scratch_dir(parent) as tmp:
        settings = catalogstore.configure(
            catalog_url=f"sqlite:///{tmp / 'catalog.db'}",
            storage_url=storage_url or str(tmp / "storage"),
            storage_options=storage_options or {}, namespace=namespace, **settings)
        try:
            yield Store(get_workspace(settings), tmp)
        finally:
            end_process_runs()  # as the exit would, while the catalog is still there
            close_workspaces()
            reset_configuration()
            for key in settings.to_environ():
                os.environ.pop(key, None)


@contextlib.contextmanager
def moto_s3() -> Iterator[dict[str, Any]]:
    """A moto S3 server on 127.0.0.1 (a real HTTP S3 API); yields s3fs storage options."""
    from moto.server import ThreadedMotoServer

    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    # werkzeug logs every request to stderr otherwise, and that logging runs in
    # this process: it would slow the storage walk down and flood the output.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield {
            "endpoint_url": f"http://{host}:{port}",
            "key": "bench-access-key",
            "secret": "bench-secret-key",
            "client_kwargs": {"region_name": "us-east-1"},
        }
    finally:
        server.stop()


def create_bucket(options: dict[str, Any]) -> str:
    """A fresh bucket on the server of ``options``; returns its name.

    boto3's ``create_bucket``, because s3fs ``mkdir`` sends a location constraint
    that moto refuses for us-east-1.
    """
    import boto3

    name = f"bench-{uuid.uuid4().hex[:12]}"
    boto3.client(
        "s3", endpoint_url=options["endpoint_url"], region_name="us-east-1",
        aws_access_key_id=options["key"], aws_secret_access_key=options["secret"],
    ).create_bucket(Bucket=name)
    return name


def populate(namespace: str, count: int, payload: bytes, *, batch: int = 1000) -> None:
    """``count`` artifacts in ``namespace``, each with one file and 3 metadata keys."""
    import catalogstore
    from catalogstore.artifacts import new_artifact

    for start in range(0, count, batch):
        with catalogstore.transaction():
            for i in range(start, min(count, start + batch)):
                artifact = new_artifact(f"a{i:06d}", namespace)
                artifact.new_file("data.bin", content=payload)
                artifact.update_meta(sample_meta(i))


def sample_meta(i: int) -> dict[str, str]:
    """The 3 metadata keys every benchmark artifact carries."""
    return {"kind": "sample", "index": str(i), "owner": "bench"}


# -- the Flowdapt comparison ---------------------------------------------------------


def flowdapt_python() -> Path | None:
    """The interpreter of a Flowdapt virtual environment, if one was made."""
    for name in FLOWDAPT_VENVS:
        python = CACHE_DIR / name / "bin" / "python"
        if python.exists() and any((CACHE_DIR / name).glob("lib/python*/site-packages/flowdapt")):
            return python
    return None


def run_in_flowdapt(script: str, *args: str, what: str) -> dict[str, Any] | None:
    """Run ``script`` in Flowdapt's virtual environment; the JSON object it prints last,
    or ``None`` (with a note saying why) when there is none or it fails."""
    python = flowdapt_python()
    if python is None:
        note(f"Flowdapt's {what} not measured (no Flowdapt virtual environment)")
        return None
    out = subprocess.run([str(python), "-c", script, *args], capture_output=True, text=True,
                         check=False)
    if out.returncode != 0:
        note(f"Flowdapt's {what} failed: {out.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def note(text: str) -> None:
    print(f"   note: {text}")
