"""Transfers: a folder of many small files uploaded to S3, against one put_file after another.

A folder of 1,000 files of 4 KiB is uploaded into a new artifact on S3 (a moto
server on loopback; the catalog is SQLite) with ``Artifact.upload`` — staged,
hashed and committed in one transaction — and, as the baseline in the same run,
copied by s3fs ``put_file`` one file after another into a fresh prefix (no
catalog, no checksums, no atomicity). Each case runs round robin. The bar: the
upload at least 4x faster than the baseline. ``download`` of the artifact back
to a local folder is timed against ``get_file`` one after another (not a bar).
"""

from __future__ import annotations

import itertools
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import fsspec
from _common import (
    KIB,
    create_bucket,
    exit_status,
    make_parser,
    measure,
    moto_s3,
    print_header,
    print_table,
    report_bar,
    scratch_dir,
    temp_store,
)

NAMESPACE = "bench"


def make_folder(folder: Path, count: int, size: int) -> list[Path]:
    folder.mkdir(parents=True)
    paths = []
    for i in range(count):
        path = folder / f"part-{i:05d}.bin"
        path.write_bytes(os.urandom(size))
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    args = make_parser(__doc__).parse_args(argv)
    print_header("transfer: folder of small files to S3, versus put_file one by one")
    count = 200 if args.quick else 1000
    repeat = args.repeat or (2 if args.quick else 3)
    from catalogstore.artifacts import new_artifact

    with moto_s3() as options, scratch_dir(args.dir) as tmp:
        paths = make_folder(tmp / "src", count, 4 * KIB)
        bucket = create_bucket(options)
        url = f"s3://{bucket}/root"
        fs, _ = fsspec.core.url_to_fs(url, skip_instance_cache=True, **options)
        ids = itertools.count()
        with temp_store(args.dir, storage_url=url, storage_options=options):

            def ours(_: int) -> None:
                artifact = new_artifact(f"up-{next(ids)}", NAMESPACE)
                artifact.upload(tmp / "src")

            def one_by_one(_: int) -> None:
                prefix = f"{bucket}/plain/{uuid.uuid4().hex}"
                for path in paths:
                    fs.put_file(str(path), f"{prefix}/{path.name}")

            up = measure({"catalogstore Artifact.upload(folder)": ours,
                          "s3fs put_file one after another": one_by_one},
                         repeat=repeat, warmup=1, per=count)
            print_table(f"upload {count} files of 4 KiB", list(up.values()), "file")
            mine, plain = up.values()

            sample = new_artifact("down", NAMESPACE)
            sample.upload(tmp / "src")
            prefix = f"{bucket}/plain/down"
            fs.put(str(tmp / "src") + "/", prefix + "/", recursive=True)
            outs = itertools.count()

            def download(_: int) -> Any:
                return sample.download(tmp / f"down-{next(outs)}")

            def get_one_by_one(_: int) -> None:
                dest = tmp / f"get-{next(outs)}"
                dest.mkdir()
                for path in paths:
                    fs.get_file(f"{prefix}/{path.name}", str(dest / path.name))

            down = measure({"catalogstore Artifact.download(folder)": download,
                            "s3fs get_file one after another": get_one_by_one},
                           repeat=repeat, warmup=1, per=count)
            print_table(f"download {count} files of 4 KiB", list(down.values()), "file")
            mine_d, plain_d = down.values()
            print(f"   download: {plain_d.median / mine_d.median:.2f}x faster than "
                  f"get_file one by one (not a bar)")
        report_bar("upload-s3-folder", plain.median / mine.median, 4,
                   "faster than put_file one by one")
    return exit_status()


if __name__ == "__main__":
    sys.exit(main())
