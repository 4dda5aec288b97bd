"""Retention on S3: ``gc`` over 1,000 artifacts x 5 versions frees exactly what it must.

On S3 through a moto server on loopback, a SQLite catalog (``--catalog postgres``: a
fresh PostgreSQL schema on 127.0.0.1:5432 instead), 1,000 artifacts (200 with
``--quick``) each get 5 versions: version 1 creates it with one small file, each
later one replaces that file (so each replaced content's bytes are kept under
``.catalogstore/versions/``: 4,000 kept files, more than one S3 listing page). Every
7th artifact has the alias ``prod`` on version 2, every 11th is pinned at version 3,
and in every 10th version 4 writes version 1's content again (so version 1's kept
bytes are still needed when version 1 goes). Policy: ``keep_last=2, keep_days=0``.

The bench computes what must go from what it wrote, on its own: the versions beyond
the last 2 that are neither aliased nor pinned, and the kept files whose content no
remaining version holds, with their sizes. Then it runs ``gc`` and checks (the bars):
the versions removed and the bytes freed are exactly those; the storage listing
(raw fsspec) shows exactly those bytes gone; every aliased and pinned version still
reads back as written; a second ``gc`` finds nothing to do.

Figures: versions removed, kept files and bytes freed, and the seconds of the dry
run, the gc and the second gc; beside them, for scale (not a bar), the bare storage
work of the same size with raw fsspec: listing the kept files and deleting as many
objects in bulk.

    .venv/bin/python bench/bench_versions_gc.py [--quick] [--catalog sqlite|postgres]
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import Any

import fsspec
from _common import (
    create_bucket,
    exit_status,
    fmt_time,
    make_parser,
    moto_s3,
    note,
    print_header,
    report_bar,
    temp_store,
)

NAMESPACE = "gcbench"
VERSIONS = 5
KEEP_LAST = 2
ALIASED, PINNED, REPEATED = 7, 11, 10
"""Every ALIASED-th artifact aliases version 2, every PINNED-th pins version 3, every
REPEATED-th writes version 1's content again as version 4."""


def contents(i: int) -> list[bytes]:
    """What versions 1..5 of artifact ``i`` hold in their one file (distinct sizes)."""
    out = [f"artifact {i} version {k} ".encode() * (3 + (i * 7 + k * 13) % 40)
           for k in range(1, VERSIONS + 1)]
    if i % REPEATED == 0:
        out[3] = out[0]
    return out


def protected(i: int) -> set[int]:
    """The versions of artifact ``i`` that no policy may remove besides the last two."""
    return ({2} if i % ALIASED == 0 else set()) | ({3} if i % PINNED == 0 else set())


def expected(count: int) -> tuple[int, int, int, dict[int, set[int]]]:
    """Computed from what was written alone: versions to remove, kept files and bytes to
    free, and the versions each artifact keeps."""
    versions = files = size = 0
    keeps: dict[int, set[int]] = {}
    for i in range(count):
        data = contents(i)
        keep = set(range(VERSIONS - KEEP_LAST + 1, VERSIONS + 1)) | protected(i)
        keeps[i] = keep
        versions += VERSIONS - len(keep)
        # Kept files: one per distinct content that a later version replaced.
        kept = {data[k] for k in range(VERSIONS - 1) if data[k] != data[k + 1]}
        needed = {data[k - 1] for k in keep}
        gone = kept - needed
        files += len(gone)
        size += sum(len(d) for d in gone)
    return versions, files, size, keeps


def write(count: int) -> None:
    """Version 1 (creation with the file), then versions 2..5, one transaction per round."""
    import catalogstore
    from catalogstore.artifacts import get_artifact, new_artifact, set_retention
    from catalogstore.txn.workspace import close_workspaces

    for k in range(VERSIONS):
        started = time.perf_counter()
        with catalogstore.transaction():
            for i in range(count):
                artifact = new_artifact(f"a{i:05d}", NAMESPACE) if k == 0 else \
                    get_artifact(f"a{i:05d}", NAMESPACE)
                artifact.new_file("model.bin", content=contents(i)[k])
        print(f"   version {k + 1} of {count} artifacts written in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
    for i in range(count):
        artifact = get_artifact(f"a{i:05d}", NAMESPACE)
        if i % ALIASED == 0:
            artifact.set_alias("prod", 2)
        if i % PINNED == 0:
            artifact.pin(3)
    set_retention(NAMESPACE, keep_last=KEEP_LAST, keep_days=0)
    # As a writer process ending does: its journal rows, applied, are forgotten (a gc
    # would otherwise check each again under its lock; that is not retention's work).
    close_workspaces()


def listed_bytes(fs: Any, root: str) -> tuple[int, int]:
    """Files and bytes under the kept versions' folder, by a raw (paginated) listing."""
    fs.invalidate_cache()
    found = fs.find(f"{root}/.catalogstore/versions", detail=True)
    return len(found), sum(int(info.get("size") or 0) for info in found.values())


def check_versions(count: int, keeps: dict[int, set[int]]) -> int:
    """Every artifact keeps exactly its versions; aliased and pinned ones read back as
    written. Returns the number of problems (each printed)."""
    from catalogstore.artifacts import get_artifact

    problems = 0
    for i in range(count):
        name = f"a{i:05d}"
        kept = {v.version for v in get_artifact(name, NAMESPACE).versions()}
        if kept != keeps[i]:
            problems += 1
            print(f"   PROBLEM {name}: keeps versions {sorted(kept)}, expected {sorted(keeps[i])}")
        for k in protected(i):
            data = get_artifact(name, NAMESPACE, version=k).get_file("model.bin").read()
            if data != contents(i)[k - 1]:
                problems += 1
                print(f"   PROBLEM {name}:v{k} reads other bytes")
    return problems


def raw_baseline(fs: Any, root: str, files: int, size: int) -> float:
    """Seconds raw fsspec takes to list the kept files and bulk-delete ``files`` objects
    of ``size`` bytes in all (written first, untimed)."""
    scratch = f"{root}/raw-baseline"
    each = max(1, size // max(1, files))
    fs.pipe({f"{scratch}/{n:06d}": b"x" * each for n in range(files)})
    fs.invalidate_cache()
    started = time.perf_counter()
    fs.find(f"{root}/.catalogstore/versions", detail=True)
    fs.rm(sorted(fs.find(scratch)))
    return time.perf_counter() - started


@contextlib.contextmanager
def store(catalog: str, options: dict[str, Any], parent: str | None) -> Iterator[str]:
    """A configured store on a fresh bucket; yields its storage URL."""
    url = f"s3://{create_bucket(options)}/root"
    if catalog == "postgres":
        from bench_query import postgres_store

        with postgres_store(parent, url, options):
            yield url
    else:
        with temp_store(parent, storage_url=url, storage_options=options):
            yield url


def run(count: int, catalog: str, parent: str | None) -> None:
    from catalogstore import maintenance

    with moto_s3() as options, store(catalog, options, parent) as url:
        print(f"   writing {count} artifacts x {VERSIONS} versions on S3 (moto), {catalog} "
              "catalog ...", flush=True)
        write(count)
        fs, root = fsspec.core.url_to_fs(url, skip_instance_cache=True, **options)
        root = root.rstrip("/")
        versions, files, size, keeps = expected(count)
        before = listed_bytes(fs, root)
        print(f"   kept before gc: {before[0]} files, {before[1]:,} bytes; expected to go: "
              f"{versions} versions, {files} files, {size:,} bytes")

        started = time.perf_counter()
        dry = maintenance.gc(dry_run=True)
        dry_seconds = time.perf_counter() - started
        unchanged = listed_bytes(fs, root) == before
        started = time.perf_counter()
        report = maintenance.gc()
        gc_seconds = time.perf_counter() - started
        after = listed_bytes(fs, root)
        started = time.perf_counter()
        again = maintenance.gc()
        again_seconds = time.perf_counter() - started
        reclaimed = report.retention.get(NAMESPACE, maintenance.Reclaimed())
        problems = check_versions(count, keeps)
        baseline = raw_baseline(fs, root, reclaimed.files, reclaimed.bytes)

    print(f"\n-- gc, keep_last={KEEP_LAST} keep_days=0, {count} artifacts x {VERSIONS} versions, "
          f"S3 (moto) + {catalog}")
    print(f"   dry run:   {dry.versions_removed} versions, {dry.bytes_freed:,} bytes would go "
          f"({fmt_time(dry_seconds)}); storage unchanged: {unchanged}")
    print(f"   gc:        {reclaimed.versions} versions removed, {reclaimed.files} kept files "
          f"and {reclaimed.bytes:,} bytes freed in {fmt_time(gc_seconds)}")
    print(f"   listing:   {before[0] - after[0]} files and {before[1] - after[1]:,} bytes gone "
          f"(raw fsspec find before and after)")
    print(f"   second gc: {again.versions_removed} versions, {again.bytes_freed:,} bytes "
          f"({fmt_time(again_seconds)}); nothing to do: {again.nothing_to_do}")
    print(f"   raw fsspec listing + bulk delete of as many objects: {fmt_time(baseline)} "
          f"(gc: {gc_seconds / baseline:.1f}x, with the catalog's work; not a bar)")
    if report.left:
        note(f"{len(report.left)} entries left alone: {report.left[:3]}")

    figures = {  # what gc and the listing say: what the bench computed from what it wrote
        "versions removed": (reclaimed.versions, versions),
        "kept files freed": (reclaimed.files, files),
        "bytes freed": (reclaimed.bytes, size),
        "bytes freed, every namespace": (report.bytes_freed, size),
        "files gone from the listing": (before[0] - after[0], files),
        "bytes gone from the listing": (before[1] - after[1], size),
        "dry run: versions": (dry.versions_removed, versions),
        "dry run: bytes": (dry.bytes_freed, size),
        "dry run: storage unchanged": (unchanged, True),
    }
    wrong = [f"{what}: {got} (expected {want})" for what, (got, want) in figures.items()
             if got != want]
    for line in wrong:
        print(f"   MISMATCH {line}")
    suffix = "" if catalog == "sqlite" else f"-{catalog}"
    report_bar(f"gc-exact{suffix}", len(wrong), 0, f"of {len(figures)} figures differ from "
               f"what the bench wrote ({versions} versions, {size:,} bytes)", at_most=True,
               unit="mismatches")
    report_bar(f"gc-keeps{suffix}", problems, 0, "with the kept versions (the last 2, "
               "aliased and pinned ones read back)", at_most=True, unit="problems")
    found = again.versions_removed + again.bytes_freed + (not again.nothing_to_do)
    report_bar(f"gc-second{suffix}", found, 0, "found by a second gc", at_most=True,
               unit="things to do")


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--catalog", choices=["sqlite", "postgres"], default="sqlite",
                        help="the catalog database (default: SQLite; postgres: a fresh "
                             "schema on 127.0.0.1:5432)")
    args = parser.parse_args(argv)
    print_header("versions gc: retention on S3 frees exactly what it must")
    run(200 if args.quick else 1000, args.catalog, args.dir)
    return exit_status()


if __name__ == "__main__":
    sys.exit(main())
