"""Listing a namespace, metadata included: the catalog versus walking the storage.

Baseline: what a file-only store (Flowdapt's layout) must do to list a namespace
with its metadata, with plain fsspec: ``ls`` of ``{root}/artifacts/{ns}``, then for
each artifact an existence check, a listing of its folder, and a read + JSON parse
of ``.artifact.json``. (Flowdapt itself does more: about four existence checks and
a read per artifact.) ``fs.invalidate_cache()`` before each walk keeps s3fs from
answering listings from its cache.

Bars (issue 2): >= 3x faster on local disk with 10,000 artifacts, >= 50x on S3
(moto server on loopback) with 1,000 artifacts; the catalog is SQLite in both.

    .venv/bin/python bench/bench_listing.py [--quick] [--repeat N] [--only local|s3]
"""

from __future__ import annotations

import json
import sys
from typing import Any

import fsspec
from _common import (
    KIB,
    create_bucket,
    exit_status,
    make_parser,
    measure,
    moto_s3,
    note,
    populate,
    print_header,
    print_table,
    report_bar,
    run_in_flowdapt,
    temp_store,
)

NAMESPACE = "listing"
PAYLOAD = b"x" * KIB


def walk(fs: Any, root: str, namespace: str) -> dict[str, dict[str, Any]]:
    """Metadata of every artifact of ``namespace``, found by walking the storage."""
    fs.invalidate_cache()
    found: dict[str, dict[str, Any]] = {}
    for path in fs.ls(f"{root}/artifacts/{namespace}", detail=False):
        path = path.rstrip("/")
        if not fs.exists(path):
            continue
        fs.ls(path, detail=False)
        with fs.open(f"{path}/.artifact.json", "rb") as f:
            found[path.rsplit("/", 1)[-1]] = json.loads(f.read())
    return found


def catalog_listing(namespace: str) -> dict[str, dict[str, str]]:
    from catalogstore.artifacts import list_artifacts

    return {a.name: a.metadata for a in list_artifacts(namespace)}


def run_case(label: str, count: int, repeat: int, storage_url: str | None,
             options: dict[str, Any], parent: str | None) -> tuple[float, str]:
    """Populate a store, time both listings; returns (speed-up, storage root)."""
    with temp_store(parent, storage_url=storage_url, storage_options=options) as store:
        print(f"   {label}: creating {count} artifacts ...", flush=True)
        populate(NAMESPACE, count, PAYLOAD)
        # A filesystem of its own, as a file-only store would have.
        fs, root = fsspec.core.url_to_fs(storage_url or f"{store.tmp}/storage",
                                         skip_instance_cache=True, **options)
        root = root.rstrip("/")
        expected = catalog_listing(NAMESPACE)
        walked = walk(fs, root, NAMESPACE)
        if walked != expected or len(expected) != count:
            raise SystemExit(f"{label}: the walk and the catalog disagree "
                             f"({len(walked)} vs {len(expected)} artifacts)")
        timings = measure({
            "catalogstore list_artifacts + .metadata": lambda _: catalog_listing(NAMESPACE),
            "walk (ls, exists, ls, read .artifact.json)": lambda _: walk(fs, root, NAMESPACE),
        }, repeat=repeat, warmup=1, per=count)
        print_table(f"{label}: list {count} artifacts with metadata", list(timings.values()),
                    "artifact")
        catalog, walked_t = timings.values()
        if storage_url is None:
            flowdapt_listing(root, count, catalog.median)
        return walked_t.median / catalog.median, root


_FLOWDAPT_LISTING = """
import importlib.metadata, json, statistics, sys, time
from flowdapt.compute.artifacts.interface import Artifact
root, ns, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
samples = []
for _ in range(repeat + 1):
    t = time.perf_counter()
    found = {a.name: a.metadata for a in Artifact.list_artifacts(ns, "file", root)}
    samples.append(time.perf_counter() - t)
print(json.dumps({"median": statistics.median(samples[1:]), "count": len(found),
                  "version": importlib.metadata.version("flowdapt")}))
"""


def flowdapt_listing(root: str, count: int, ours: float) -> None:
    """Flowdapt's own ``list_artifacts`` on the same tree, for reference (not a bar)."""
    result = run_in_flowdapt(_FLOWDAPT_LISTING, root, NAMESPACE, "3", what="listing")
    if result is not None:
        note(f"Flowdapt {result['version']} list_artifacts + .metadata on the same tree: "
             f"{result['median'] * 1e3:.1f} ms for {result['count']} artifacts "
             f"({result['median'] / count * 1e6:.1f} us each); catalogstore is "
             f"{result['median'] / ours:.1f}x faster (not a bar)")


def main(argv: list[str] | None = None) -> int:
    args = make_parser(__doc__, ["local", "s3"]).parse_args(argv)
    print_header("listing: catalog versus storage walk")
    if args.only != "s3":
        count = 2000 if args.quick else 10_000
        ratio, _ = run_case("local disk", count, args.repeat or (3 if args.quick else 7),
                            None, {}, args.dir)
        report_bar("listing-local", ratio, 3, "faster than walk")
    if args.only != "local":
        count = 200 if args.quick else 1000
        with moto_s3() as options:
            url = f"s3://{create_bucket(options)}/root"
            ratio, _ = run_case("S3 (moto server)", count, args.repeat or 3, url, options,
                                args.dir)
        report_bar("listing-s3", ratio, 50, "faster than walk")
    return exit_status()


if __name__ == "__main__":
    sys.exit(main())
