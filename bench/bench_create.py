"""Creating artifacts: catalogstore versus the plain fsspec sequence of a file-only store.

(a) One artifact with one 1 KiB file and 3 metadata keys. catalogstore forms:

- seed-style: ``new_artifact``, ``new_file(content=...)``, 3x ``set_meta``
  (every call commits on its own);
- transactional: ``new_artifact``, then ``with a.transaction():`` ``new_file`` +
  ``update_meta``;
- atomic creation: all of it inside one ``catalogstore.transaction()`` (one commit;
  the form to use when an artifact must appear with its files and metadata or not
  at all).

Baseline: what a file-only store must do with plain fsspec: ``mkdir``, write the
file, rewrite ``.artifact.json`` after each of the 3 metadata changes.
Bar: at most 1.5x the baseline, judged on the best form (all three are printed).
For reference (not a bar), Flowdapt's own creation of the same artifact, timed in
its virtual environment on the same disk when one exists (see ``bench_listing``).

(b) 1,000 such artifacts inside one ``catalogstore.transaction()`` versus one by one
(seed-style). Bar: at least 5x less per artifact.

Local disk and a SQLite catalog (the bars); ``--catalog postgres`` runs the same on a
fresh PostgreSQL schema and reports the ratios without bars.

    .venv/bin/python bench/bench_create.py [--quick] [--repeat N] [--only one|batch]
                                           [--catalog sqlite|postgres]
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from typing import Any

import fsspec
from _common import (
    KIB,
    exit_status,
    make_parser,
    measure,
    note,
    print_header,
    print_table,
    report_bar,
    run_in_flowdapt,
    sample_meta,
    temp_store,
)

PAYLOAD = b"x" * KIB
FILE_NAME = "data.bin"


def seed_style(name: str, namespace: str, i: int) -> None:
    from catalogstore.artifacts import new_artifact

    artifact = new_artifact(name, namespace)
    artifact.new_file(FILE_NAME, content=PAYLOAD)
    for key, value in sample_meta(i).items():
        artifact.set_meta(key, value)


def transactional(name: str, namespace: str, i: int) -> None:
    from catalogstore.artifacts import new_artifact

    artifact = new_artifact(name, namespace)
    with artifact.transaction():
        artifact.new_file(FILE_NAME, content=PAYLOAD)
        artifact.update_meta(sample_meta(i))


def atomic_creation(name: str, namespace: str, i: int) -> None:
    import catalogstore
    from catalogstore.artifacts import new_artifact

    with catalogstore.transaction():
        artifact = new_artifact(name, namespace)
        artifact.new_file(FILE_NAME, content=PAYLOAD)
        artifact.update_meta(sample_meta(i))


def plain_fsspec(fs: Any, folder: str, i: int) -> None:
    """A file-only store: the folder, the file, and ``.artifact.json`` after each change."""
    fs.mkdir(folder, create_parents=True)
    with fs.open(f"{folder}/{FILE_NAME}", "wb") as f:
        f.write(PAYLOAD)
    meta: dict[str, str] = {}
    for key, value in sample_meta(i).items():
        meta[key] = value
        with fs.open(f"{folder}/.artifact.json", "wb") as f:
            f.write(json.dumps(meta).encode())


_FLOWDAPT_CREATE = """
import importlib.metadata, json, statistics, sys, time
from flowdapt.compute.artifacts.interface import Artifact
root, repeat = sys.argv[1], int(sys.argv[2])
samples = []
for i in range(repeat + 20):  # 20 warm-up creations
    t = time.perf_counter()
    artifact = Artifact.new_artifact(f"f-{i}", "one", "file", root)
    artifact.new_file("data.bin", content=b"x" * 1024)
    for key, value in {"kind": "sample", "index": str(i), "owner": "bench"}.items():
        artifact.set_meta(key, value)
    samples.append(time.perf_counter() - t)
print(json.dumps({"median": statistics.median(samples[20:]),
                  "version": importlib.metadata.version("flowdapt")}))
"""


def flowdapt_create(root: str, repeat: int, ours: float) -> None:
    """Flowdapt's own creation of the same artifact on the same disk, for reference: run
    after ours in another process, so not interleaved with it (not a bar)."""
    result = run_in_flowdapt(_FLOWDAPT_CREATE, root, str(repeat), what="creation")
    if result is not None:
        ratio = result["median"] / ours
        than = f"{ratio:.1f}x faster" if ratio >= 1 else f"{1 / ratio:.1f}x slower"
        note(f"Flowdapt {result['version']} new_artifact + new_file + 3x set_meta on the "
             f"same disk: {result['median'] * 1e6:.0f} us; catalogstore's atomic creation "
             f"is {than} (not a bar; not interleaved)")


@contextlib.contextmanager
def catalog_store(catalog: str, parent: str | None) -> Iterator[str]:
    """A configured store whose catalog is SQLite (the embedded default) or a fresh
    PostgreSQL schema; yields a scratch folder beside its storage."""
    if catalog == "postgres":
        from bench_query import postgres_store

        with postgres_store(parent) as workspace:
            yield os.path.dirname(workspace.files.root)
    else:
        with temp_store(parent) as store:
            yield str(store.tmp)


def bench_one(repeat: int, parent: str | None, catalog: str) -> None:
    forms = {"seed-style": seed_style, "transactional": transactional,
             "atomic creation": atomic_creation}
    with catalog_store(catalog, parent) as tmp:
        fs = fsspec.filesystem("file", skip_instance_cache=True)
        raw_root = f"{tmp}/raw/artifacts/one"
        cases = {f"catalogstore {label}": (lambda i, fn=fn, label=label: fn(
            f"{label.replace(' ', '-')}-{i}", "one", i)) for label, fn in forms.items()}
        cases["plain fsspec (mkdir, file, 3x .artifact.json)"] = \
            lambda i: plain_fsspec(fs, f"{raw_root}/r{i}", i)
        timings = measure(cases, repeat=repeat, warmup=max(5, repeat // 10), collect=False)
        print_table(f"create one artifact (1 KiB file, 3 metadata keys), {catalog} catalog",
                    list(timings.values()))
        flowdapt_create(f"{tmp}/flowdapt", repeat,
                        timings["catalogstore atomic creation"].median)
    *forms_timed, raw = timings.values()
    for t in forms_timed:
        print(f"   {t.label}: {t.median / raw.median:.2f}x the plain fsspec sequence "
              f"(p90 {t.p90 / raw.p90:.2f}x)")
    best = min(forms_timed, key=lambda t: t.median)
    if catalog != "sqlite":  # the bar is the embedded default's; a server is reported
        note(f"best form on {catalog}: {best.median / raw.median:.2f}x (not a bar)")
        return
    report_bar("create-one", best.median / raw.median, 1.5,
               f"the plain fsspec sequence (best form: {best.label.removeprefix('catalogstore ')})",
               at_most=True)


def bench_batch(count: int, repeat: int, parent: str | None, catalog: str) -> None:
    import catalogstore

    def one_by_one(round_no: int) -> None:
        for i in range(count):
            seed_style(f"a{i:05d}", f"single{round_no}", i)

    def batched(round_no: int) -> None:
        with catalogstore.transaction():
            for i in range(count):
                seed_style(f"a{i:05d}", f"batch{round_no}", i)

    with catalog_store(catalog, parent):
        timings = measure({"one by one (seed-style)": one_by_one,
                           "one catalogstore.transaction()": batched},
                          repeat=repeat, warmup=1, per=count)
    print_table(f"create {count} artifacts, {catalog} catalog", list(timings.values()),
                "artifact")
    single, batch = timings.values()
    if catalog != "sqlite":
        note(f"on {catalog}: {single.median / batch.median:.1f}x less per artifact in one "
             "transaction (not a bar)")
        return
    report_bar("create-batch", single.median / batch.median, 5,
               "less per artifact in one transaction than one by one")


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__, ["one", "batch"])
    parser.add_argument("--catalog", choices=["sqlite", "postgres"], default="sqlite",
                        help="the catalog database (bars: sqlite; postgres: a fresh schema "
                             "on 127.0.0.1:5432, reported only)")
    args = parser.parse_args(argv)
    print_header("create: catalogstore versus a plain fsspec sequence")
    if args.only != "batch":
        bench_one(args.repeat or (60 if args.quick else 300), args.dir, args.catalog)
    if args.only != "one":
        bench_batch(200 if args.quick else 1000, args.repeat or 3, args.dir, args.catalog)
    return exit_status()


if __name__ == "__main__":
    sys.exit(main())
