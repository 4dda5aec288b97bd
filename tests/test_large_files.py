"""Large files stream: a 1 GiB file goes through ``ArtifactFile.open()`` in bounded memory;
a replaced large file is freed after the commit, not during it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from catalogstore import maintenance
from catalogstore.artifacts import new_artifact
from catalogstore.names import STAGING_DIR
from catalogstore.storage import filestore as storage
from catalogstore.storage.filestore import wait_for_frees

# Runs in a fresh interpreter so its peak RSS measures only this workload.
CHILD = """
import resource
from catalogstore.artifacts import new_artifact
from catalogstore.storage.checksum import CHECKSUM_ALGORITHM, new_hasher

size, chunk = {size}, 4 << 20
block = bytes(range(256)) * (chunk // 256)
artifact = new_artifact("big")
file = artifact.get_file("blob", create=True)
import catalogstore.txn.workspace  # loaded before the baseline, like any real workload
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


def _staged(root: str) -> list[str]:
    staging = os.path.join(root, STAGING_DIR)
    return sorted(os.listdir(staging)) if os.path.isdir(staging) else []


def test_a_replaced_large_file_is_freed_after_the_commit(local_stack):
    """Freeing a large replaced file (ext4: ~100 ms per 256 MiB) happens on a helper
    thread, through a second link in the staging area that keeps its blocks until then."""
    old, new = os.urandom(9 << 20), os.urandom(9 << 20)
    artifact = new_artifact("big")
    artifact.new_file("weights", content=old)
    path = os.path.join(local_stack.storage_url, "artifacts", "default", "big", "weights")
    old_inode = os.stat(path).st_ino
    artifact.get_file("weights").write(new)
    assert artifact.get_file("weights").read() == new
    assert os.stat(path).st_ino != old_inode
    wait_for_frees()
    assert _staged(local_stack.storage_url) == []


def test_gc_removes_a_replaced_file_left_by_a_process_that_died(local_stack, monkeypatch):
    class Dead:  # the helper thread never got to it
        def submit(self, *args, **kwargs):
            return None

    artifact = new_artifact("big")
    artifact.new_file("weights", content=os.urandom(9 << 20))
    monkeypatch.setattr(storage, "_free_pool", Dead())
    artifact.get_file("weights").write(b"small now")
    (left,) = _staged(local_stack.storage_url)  # the old content's second link
    assert os.path.getsize(os.path.join(local_stack.storage_url, STAGING_DIR, left)) == 9 << 20
    assert maintenance.gc().removed == []  # young: it could be a live writer's
    assert maintenance.gc(grace=0).removed == [f"{STAGING_DIR}/{left}"]
    assert _staged(local_stack.storage_url) == []
    assert artifact.get_file("weights").read(verify=True) == b"small now"


def test_a_forked_child_streams_and_frees_after_its_parent_did(local_stack):
    """The helper threads (hashing a stream, freeing replaced files) are the process's
    own: a child forked after its parent used them gets new ones, instead of copies
    without a thread that would never run its work (the child hung, waiting for a hash)."""
    import multiprocessing

    artifact = new_artifact("big")
    for _ in range(2):  # the second write replaces a large file: both helpers used
        with artifact.get_file("blob", create=True).open("wb") as out:
            out.write(os.urandom(9 << 20))
    wait_for_frees()

    def child() -> None:
        mine = new_artifact(f"child-{os.getpid()}")
        for _ in range(2):
            with mine.get_file("blob", create=True).open("wb") as out:
                out.write(os.urandom(9 << 20))
        wait_for_frees()
        assert _staged(local_stack.storage_url) == []

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join(60)
    if process.is_alive():
        process.kill()
        pytest.fail("the forked child hung")
    assert process.exitcode == 0
