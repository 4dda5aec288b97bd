"""Large files stream: a 1 GiB file goes through ``ArtifactFile.open()`` in bounded memory."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

# Runs in a fresh interpreter so its peak RSS measures only this workload.
CHILD = """
import resource
from catalogstore.artifacts import new_artifact
from catalogstore.storage import CHECKSUM_ALGORITHM, new_hasher

size, chunk = {size}, 4 << 20
block = bytes(range(256)) * (chunk // 256)
artifact = new_artifact("big")
file = artifact.get_file("blob", create=True)
import catalogstore.workspace  # loaded before the baseline, like any real workload
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
digest = new_hasher()
with file.open("wb") as out:
    for _ in range(size // chunk):
        out.write(block)
        digest.update(block)
after_write = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
check = new_hasher()
with file.open("rb") as inp:
    while data := inp.read(chunk):
        check.update(data)
after_read = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
assert file.size == size, file.size
assert file.checksum == f"{{CHECKSUM_ALGORITHM}}:{{digest.hexdigest()}}"
assert check.hexdigest() == digest.hexdigest()
print((after_write - base) // 1024, (after_read - base) // 1024)
"""


def _run(stack, size: int) -> tuple[int, int]:
    env = {**os.environ, **stack.environ()}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(CHILD.format(size=size))],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    grown_write, grown_read = map(int, proc.stdout.split())
    return grown_write, grown_read


@pytest.mark.slow
def test_one_gib_streams_in_bounded_memory(local_stack):
    grown_write, grown_read = _run(local_stack, 1 << 30)
    # A few chunk buffers at most: far from the 1024 MiB the file holds.
    assert grown_write < 64, f"writing grew the process by {grown_write} MiB"
    assert grown_read < 64, f"reading grew the process by {grown_read} MiB"


def test_streams_on_both_stacks(stack):
    grown_write, grown_read = _run(stack, 64 << 20)
    assert grown_write < 64 and grown_read < 64, (grown_write, grown_read)
