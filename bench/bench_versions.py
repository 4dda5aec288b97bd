"""Versions (issue 15): what ten versions cost in storage, and what a new version costs.

(a) Storage. An artifact holding one 64 MiB file; ten more versions, each changing
only metadata; then ten more, each changing one 1 KiB file beside the 64 MiB one.
The storage the artifact uses (every file under the storage root, each hard-linked
file once; on S3 every object) is compared with what one version uses, measured
in the same run. Bars: at most 1.1x, both cases.

(b) Time. Creating a new version of an existing artifact (a 1 KiB file rewritten and
3 metadata keys changed, in one transaction: ``bench_create``'s artifact), against
creating that artifact as the code before this issue did: the commit before the
versions one, checked out with ``git worktree`` and timed in another process on the
same disk (``bench_create``'s atomic creation; the baseline cannot run interleaved,
so it is timed before and after ours and the faster median is kept). Today's
creation, which writes version 1 too, is printed beside them. Bar: at most 1.5x.

Local disk and a SQLite catalog (the bars); ``--storage s3`` runs (a) on a moto S3
server on loopback.

    .venv/bin/python bench/bench_versions.py [--quick] [--repeat N] [--only storage|time]
                                             [--storage local|s3]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import (
    KIB,
    MIB,
    REPO_DIR,
    create_bucket,
    exit_status,
    fmt_time,
    make_parser,
    measure,
    moto_s3,
    note,
    print_header,
    print_table,
    report_bar,
    sample_meta,
    temp_store,
)

BEFORE_VERSIONS = "de64fb9"
"""The last commit before versions (issue 15): its creation is the time bar's baseline."""
PAYLOAD = b"x" * KIB


def used_bytes(store: Any) -> int:
    """The bytes every file under the storage root takes, a hard-linked file once."""
    fs, root = store.fs, store.root
    if store.workspace.files.is_local:
        seen: set[tuple[int, int]] = set()
        total = 0
        for folder, _, names in os.walk(root):
            for name in names:
                info = os.lstat(os.path.join(folder, name))
                if (info.st_dev, info.st_ino) not in seen:
                    seen.add((info.st_dev, info.st_ino))
                    total += info.st_size
        return total
    fs.invalidate_cache()
    return sum(info["size"] for info in fs.find(root, detail=True).values()
               if info["type"] == "file")


def bench_storage(big: int, parent: str | None, storage: str) -> None:
    from catalogstore.artifacts import new_artifact

    def run(store: Any) -> None:
        weights = os.urandom(big)
        model = new_artifact("model")
        model.new_file("weights.bin", content=weights)
        model.new_file("notes.txt", content=os.urandom(KIB))
        one = used_bytes(store)
        for epoch in range(10):
            model["epoch"] = epoch
        metadata_only = used_bytes(store)
        for epoch in range(10):
            model.new_file("notes.txt", content=os.urandom(KIB))
            model["epoch"] = 10 + epoch
        small_files = used_bytes(store)
        versions = len(model.versions())
        print(f"\n-- storage of one artifact ({big // MIB} MiB file + 1 KiB file), {storage}")
        print(f"   one version:                              {one:>12,} bytes")
        print(f"   + 10 versions changing metadata only:     {metadata_only:>12,} bytes "
              f"({metadata_only / one:.4f}x)")
        print(f"   + 10 versions changing the 1 KiB file:    {small_files:>12,} bytes "
              f"({small_files / one:.4f}x; {versions} versions kept)")
        report_bar(f"versions-storage-metadata-{storage}", metadata_only / one, 1.1,
                   "the storage of one version, after 10 metadata-only versions",
                   at_most=True)
        report_bar(f"versions-storage-small-file-{storage}", small_files / one, 1.1,
                   "the storage of one version, after 10 more versions changing a 1 KiB file",
                   at_most=True)

    if storage == "s3":
        with moto_s3() as options:
            url = f"s3://{create_bucket(options)}/root"
            with temp_store(parent, storage_url=url, storage_options=options) as store:
                run(store)
    else:
        with temp_store(parent) as store:
            run(store)


_CREATE = """
import json, os, statistics, sys, time
import catalogstore
from catalogstore.artifacts import new_artifact
root, repeat = sys.argv[1], int(sys.argv[2])
catalogstore.configure(catalog_url=f"sqlite:///{root}/catalog.db", storage_url=f"{root}/storage")
samples = []
for i in range(repeat + 20):  # 20 warm-up creations
    t = time.perf_counter()
    with catalogstore.transaction():
        artifact = new_artifact(f"a-{i}", "bench")
        artifact.new_file("data.bin", content=b"x" * 1024)
        artifact.update_meta({"kind": "sample", "index": str(i), "owner": "bench"})
    samples.append(time.perf_counter() - t)
print(json.dumps({"median": statistics.median(samples[20:])}))
"""


def creation_before_versions(repeat: int, parent: str | None) -> float | None:
    """The median creation of the code before versions, in another process."""
    with tempfile.TemporaryDirectory(prefix="catalogstore-before-", dir=parent) as tmp:
        checkout = Path(tmp) / "checkout"
        try:
            subprocess.run(["git", "-C", str(REPO_DIR), "worktree", "add", "--detach",
                            str(checkout), BEFORE_VERSIONS], check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            note(f"no checkout of {BEFORE_VERSIONS} ({exc}): the baseline is skipped")
            return None
        try:
            store = Path(tmp) / "store"
            store.mkdir()
            env = {**os.environ, "PYTHONPATH": str(checkout)}
            done = subprocess.run([sys.executable, "-c", _CREATE, str(store), str(repeat)],
                                  check=True, capture_output=True, text=True, env=env,
                                  cwd=tmp)
            return float(json.loads(done.stdout.strip().splitlines()[-1])["median"])
        finally:
            subprocess.run(["git", "-C", str(REPO_DIR), "worktree", "remove", "--force",
                            str(checkout)], check=False, capture_output=True)


def bench_time(repeat: int, parent: str | None) -> None:
    import catalogstore
    from catalogstore.artifacts import new_artifact

    before = creation_before_versions(repeat, parent)
    with temp_store(parent) as _:
        existing = new_artifact("existing")
        existing.new_file("data.bin", content=PAYLOAD)

        def new_version(i: int) -> None:
            with existing.transaction():
                existing.new_file("data.bin", content=os.urandom(KIB))
                existing.update_meta(sample_meta(i))

        def creation(i: int) -> None:
            with catalogstore.transaction():
                artifact = new_artifact(f"a-{i}")
                artifact.new_file("data.bin", content=PAYLOAD)
                artifact.update_meta(sample_meta(i))

        timings = measure({"new version of an existing artifact (1 KiB file, 3 keys)":
                           new_version,
                           "creation today (writes version 1 too)": creation},
                          repeat=repeat, warmup=max(5, repeat // 10), collect=False)
    after = creation_before_versions(repeat, parent)
    print_table("a new version versus a creation, SQLite catalog, local disk",
                list(timings.values()))
    version, today = timings.values()
    baselines = [t for t in (before, after) if t is not None]
    if not baselines:
        return
    baseline = min(baselines)
    print(f"   creation before versions ({BEFORE_VERSIONS}, another process): "
          f"{fmt_time(baseline)} (runs: {', '.join(fmt_time(b) for b in baselines)})")
    print(f"   creation today: {today.median / baseline:.2f}x the creation before versions")
    report_bar("versions-new-version", version.median / baseline, 1.5,
               f"the creation of the artifact before versions ({BEFORE_VERSIONS})",
               at_most=True)


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__, ["storage", "time"])
    parser.add_argument("--storage", choices=["local", "s3"], default="local",
                        help="where (a) stores its artifact (s3: a moto server on loopback)")
    args = parser.parse_args(argv)
    print_header("bench_versions")
    big = (8 if args.quick else 64) * MIB
    repeat = args.repeat or (50 if args.quick else 300)
    if args.only in (None, "storage"):
        bench_storage(big, args.dir, args.storage)
    if args.only in (None, "time"):
        bench_time(repeat, args.dir)
    return exit_status()


if __name__ == "__main__":
    sys.exit(main())
