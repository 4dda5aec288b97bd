"""A process killed (SIGKILL) inside an object store ``put`` or a cluster memory ``put``.

Afterwards every reader sees the old value (or no key, or the new value once it was
committed), never a part of one; ``exists`` and ``keys`` agree with ``get``; what the
killed writer left is reported by ``catalogstore verify`` and removed by ``gc`` (for
artifacts) or by ``catalogstore memory clear --stale`` (for local cluster memory)
without touching committed data; and the key takes a new ``put``.

The children kill themselves at chosen steps, as in ``test_recovery``: real
SIGKILLs of real processes at points that the test picks, on real SQLite, local
disk, PostgreSQL, S3 (moto) and tmpfs. One case kills from outside instead, at a
moment the parent only observes (a temporary file that appeared).
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_cli import run
from test_maintenance import catalog_rows, staged_files

import catalogstore
from catalogstore import maintenance
from catalogstore.artifacts import artifact_exists, list_artifacts
from catalogstore.cluster_memory._local import LocalMemory
from catalogstore.cluster_memory._local_session import FREE_DIR, LOCK_FILE, default_root
from catalogstore.errors import ObjectNotFoundError
from catalogstore.names import ARTIFACTS_DIR, STAGING_DIR
from catalogstore.object_store import exists, flush, get, put
from catalogstore.storage.checksum import checksum_bytes
from catalogstore.txn.workspace import close_workspaces

pytest_plugins = ["executors"]  # ray_session: one Ray for the whole test session

MEMORY_ELEMENTS = 200 << 17
"""float64 elements of the cluster memory arrays: 200 MiB."""
STORE_ELEMENTS = 3 << 20
"""float64 elements of the object store arrays: 24 MiB, streamed by ``np.save`` in
16 MiB chunks and to S3 in 8 MiB parts: a kill half way, after the first chunk,
leaves a partial staged file (or, on S3, an unfinished multipart upload)."""
TIMEOUT = 120

# Code that every child runs first: kill this process at one step of a put.
KILL_POINTS = """
import os, signal
import numpy as np
from catalogstore.storage import filestore as storage
from catalogstore.txn import workspace
from catalogstore.cluster_memory import _local, _local_format

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

def half(piece):
    view = memoryview(piece).cast("B")
    return view[:view.nbytes // 2]

def install(point):
    if point == "memory-new-file":  # half of the array written into a new file
        real_write_all = _local.write_all
        def write_all(fd, parts, offset=0):
            real_write_all(fd, [*parts[:-1], half(parts[-1])], offset)
            die()
        _local.write_all = write_all
    elif point == "memory-pool-file":  # half of it written into a pool file's mapping
        real_placed = _local_format.Payload.placed
        def placed(self):
            for offset, piece in real_placed(self):
                if piece is self.buffers[-1]:
                    yield offset, half(piece)
                    die()
                yield offset, piece
        _local_format.Payload.placed = placed
    elif point in ("memory-before-rename", "memory-after-rename"):
        real_rename = os.rename
        def rename(src, dst):
            over_key = os.path.basename(src).startswith(".tmp-") \\
                and not os.path.basename(dst).startswith(".")
            if over_key and point == "memory-before-rename":
                die()
            real_rename(src, dst)
            if over_key:
                die()
        os.rename = rename
    elif point == "artifact-mid-stream":  # after half of the file went to the staging area
        real_write = storage.StagedWriter.write
        def write(self, data):
            written = real_write(self, data)
            if self._size >= {half_bytes}:
                die()
            return written
        storage.StagedWriter.write = write
    elif point == "artifact-before-commit":
        workspace.Catalog.writing = die
    elif point == "artifact-after-commit":
        workspace.Workspace._apply_named = die
    else:
        assert point == "none", point
"""

MEMORY_CHILD = KILL_POINTS + """
from catalogstore.cluster_memory._local import LocalMemory

install({point!r})
memory = LocalMemory(namespace="crash", root={root!r})
print(memory.session, flush=True)
memory.put("arr", np.full({elements}, 2.0))
raise SystemExit("the crash did not happen")
"""

STORE_CHILD = KILL_POINTS + """
from catalogstore.object_store import put

install({point!r})
put("obj", np.full({elements}, 2.0), backend="local", **{kwargs!r})
raise SystemExit("the crash did not happen")
"""


def _child(template: str, point: str, *, elements: int, **fields: Any) -> str:
    code = template.replace("{half_bytes}", str(elements * 4))
    return textwrap.dedent(code).format(point=point, elements=elements, **fields)


def _killed(code: str, env: dict[str, str] | None = None, **popen: Any) -> str:
    """Run ``code`` in a new interpreter that must die of SIGKILL; its standard output."""
    proc = subprocess.run([sys.executable, "-c", code], env=env or dict(os.environ),
                          capture_output=True, text=True, timeout=TIMEOUT, **popen)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    return proc.stdout


@functools.cache
def _array(value: float) -> Any:
    """A cluster memory array of ``value`` (made once: 200 MiB of fresh pages take a while)."""
    return np.full(MEMORY_ELEMENTS, value)


def _value(read: Any) -> float | None:
    """The one value an array read back holds everywhere (``None``: no such key).

    Any mixture (a torn read) fails here.
    """
    try:
        arr = read()
    except ObjectNotFoundError:
        return None
    first = float(arr[0])
    assert arr.dtype == np.float64 and bool((arr == first).all()), "a torn value"
    return first


# -- local cluster memory --------------------------------------------------------------


@pytest.fixture
def root() -> Iterator[Path]:
    """A folder of sessions of this test's own, beside the user's (on tmpfs).

    Any process that starts a session sweeps every live session of the user's
    folder (other test runs on this machine too): what a kill left there could be
    freed before the test looks at it.
    """
    path = default_root().parent / f"catalogstore-crash-{os.urandom(6).hex()}"
    path.mkdir(0o700)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def session(root: Path) -> Iterator[Path]:
    """A session of this process in ``root`` (the children inherit it), removed at the end."""
    with LocalMemory.new_session(root=root) as name:
        yield root / name


@pytest.fixture
def shared_session() -> Iterator[Path]:
    """A session of this process in the user's folder, which the CLI looks at."""
    with LocalMemory.new_session() as name:
        yield default_root() / name


def _dot_files(folder: Path) -> list[str]:
    """What a namespace folder holds besides keys and the writers' lock."""
    if not folder.exists():
        return []
    return sorted(n for n in os.listdir(folder) if n.startswith(".") and n != LOCK_FILE)


def _pool_files_unlocked(session: Path) -> list[str]:
    """The pool's files, each checked to be free for a writer to take (no lock left)."""
    names = sorted(os.listdir(session / FREE_DIR))
    for name in names:
        fd = os.open(session / FREE_DIR / name, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if someone holds it
        finally:
            os.close(fd)
    return names


def _session_bytes(session: Path) -> int:
    """Memory the session's files take (a file under two names counts once)."""
    sizes = {}
    for path in session.rglob("*"):
        if path.is_file():
            st = path.stat()
            sizes[st.st_ino] = st.st_size
    return sum(sizes.values())


# point, whether the key existed, the leftovers the kill leaves, the value then readable
MEMORY_CASES = [
    pytest.param("memory-new-file", False, [".tmp-"], None, id="new-file-new-key"),
    pytest.param("memory-new-file", True, [".tmp-"], 1.0, id="new-file-then-clear"),
    pytest.param("memory-new-file", True, [".tmp-"], 1.0, id="new-file"),
    pytest.param("memory-pool-file", True, [".tmp-"], 1.0, id="pool-file"),
    pytest.param("memory-before-rename", True, [".pending-", ".tmp-"], 1.0,
                 id="before-rename"),
    pytest.param("memory-after-rename", True, [".pending-"], 2.0, id="after-rename"),
]


@pytest.mark.parametrize(("point", "existed", "leftovers", "after"), MEMORY_CASES)
def test_killed_local_memory_put(request, root, session, point, existed, leftovers, after):
    memory = LocalMemory(namespace="crash", root=root)
    folder = session / "crash"
    if point == "memory-pool-file":
        memory.put("arr", _array(0.0))  # replaced: its file goes to the pool
    if existed:
        memory.put("arr", _array(1.0))
    else:
        memory.put("other", 1)  # the namespace folder exists
    size = os.stat(folder / "arr").st_size if existed else None
    pool = _pool_files_unlocked(session)
    assert len(pool) == (1 if point == "memory-pool-file" else 0)

    _killed(_child(MEMORY_CHILD, point, elements=MEMORY_ELEMENTS, root=str(root)))

    left = _dot_files(folder)
    assert [name[:name.index("-") + 1] for name in left] == leftovers
    if point == "memory-new-file":
        assert 0 < os.stat(folder / left[0]).st_size < 2 * MEMORY_ELEMENTS * 8 // 3
    if point == "memory-pool-file":
        assert _pool_files_unlocked(session) == []  # the writer had taken it
    # This process is another process than the killed writer: it reads the old value
    # (or none, or the whole new one after the rename), never a part of one.
    assert _value(lambda: memory.get("arr")) == after
    assert memory.exists("arr") is (after is not None)
    assert memory.keys() == (["arr"] if after is not None else ["other"])
    if after is not None:
        assert memory.sizes()["arr"] == (size or os.stat(folder / "arr").st_size)
    held = _session_bytes(session)

    cleared = request.node.callspec.id == "new-file-then-clear"
    if cleared:
        memory.clear()  # (`catalogstore memory clear`) sweeps the namespace as well
        after = None
    else:
        # What `catalogstore memory clear --stale` runs (here on this test's folder).
        # No stale session: the live one is swept (and listed when that freed bytes).
        assert all(info.alive for info, _ in LocalMemory.clear_stale(root))
    assert _dot_files(folder) == []
    assert held - _session_bytes(session) >= MEMORY_ELEMENTS * 8 // 2  # memory given back
    assert _value(lambda: memory.get("arr")) == after  # the sweep touched no object
    assert len(_pool_files_unlocked(session)) == cleared  # (clear pools the old value)

    memory.put("arr", _array(3.0))
    assert _value(lambda: memory.get("arr")) == 3.0 and "arr" in memory
    assert _dot_files(folder) == []


def test_local_memory_put_killed_from_outside(shared_session):
    """Killed when its temporary file shows up, not at a chosen step; then the CLI."""
    memory = LocalMemory(namespace="crash")
    memory.put("arr", _array(1.0))
    folder = shared_session / "crash"
    child = subprocess.Popen(
        [sys.executable, "-c", _child(MEMORY_CHILD, "none", elements=MEMORY_ELEMENTS,
                                      root=None)],
        stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not any(n.startswith(".tmp-") for n in os.listdir(folder)):
            assert child.poll() is None and time.monotonic() < deadline
            time.sleep(0.0005)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        assert child.wait() == -signal.SIGKILL
    assert _value(lambda: memory.get("arr")) in (1.0, 2.0)
    assert memory.keys() == ["arr"]
    out = run("memory", "clear", "--stale").stdout  # only swept: no session is stale
    assert "freed session" not in out and "no stale sessions" in out
    assert _dot_files(folder) == []
    assert _value(lambda: memory.get("arr")) in (1.0, 2.0)
    memory.put("arr", _array(3.0))
    assert _value(lambda: memory.get("arr")) == 3.0


def test_killed_driver_put_leaves_a_stale_session(root):
    """A driver of its own process group, killed mid-put: its whole session is freed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATALOGSTORE_")}
    name = _killed(_child(MEMORY_CHILD, "memory-new-file", elements=MEMORY_ELEMENTS,
                          root=str(root)), env, start_new_session=True).strip()
    stale = root / name
    assert _dot_files(stale / "crash")
    assert [s.name for s in LocalMemory.stale_sessions(root)] == [name]
    assert LocalMemory(namespace="crash", session=name, root=root).keys() == []
    [(info, freed)] = LocalMemory.clear_stale(root)
    assert info.name == name and freed >= MEMORY_ELEMENTS * 8 // 2
    assert not stale.exists()


# -- the object store ------------------------------------------------------------------


def _storage_snapshot(stack: Any) -> dict[str, Any]:
    """Every committed file in storage (the ``artifacts/`` tree): its content's checksum
    on local disk, its ETag (an MD5 of the content) and size on S3."""
    fs = stack.filesystem()
    fs.invalidate_cache()
    folder = f"{stack.root.rstrip('/')}/{ARTIFACTS_DIR}"
    if not fs.exists(folder):
        return {}
    found = fs.find(folder, detail=True)
    if stack.name == "postgres-s3":
        return {path: (info["size"], info["ETag"]) for path, info in sorted(found.items())}
    return {path: checksum_bytes(fs.cat_file(path)) for path in sorted(found)}


def _committed(stack: Any) -> tuple[Any, ...]:
    return catalog_rows(stack), _storage_snapshot(stack)


def _uploads(stack: Any) -> list[str]:
    """Keys of the unfinished multipart uploads in the stack's bucket (S3 only)."""
    if stack.name != "postgres-s3":
        return []
    bucket = stack.root.split("/", 1)[0]
    page = stack.filesystem().call_s3("list_multipart_uploads", Bucket=bucket)
    return [upload["Key"] for upload in page.get("Uploads") or []]


# point, put's arguments, whether the key existed, the value then readable, the command
# that collects the leftovers
STORE_CASES = [
    pytest.param("artifact-mid-stream", {"artifact_only": True}, True, 1.0, "gc",
                 id="artifact-mid-stream"),
    pytest.param("artifact-mid-stream", {"artifact_only": True}, False, None, "repair",
                 id="artifact-mid-stream-new-key"),
    pytest.param("artifact-before-commit", {"artifact_only": True}, True, 1.0, "gc",
                 id="artifact-before-commit"),
    pytest.param("artifact-after-commit", {"artifact_only": True}, True, 2.0, "gc",
                 id="artifact-after-commit"),
    pytest.param("memory-new-file", {}, True, 1.0, "gc", id="memory-mid-write"),
    # cluster memory refuses the value (too large): the artifact fallback is killed
    pytest.param("fallback-mid-stream", {}, True, 1.0, "repair", id="fallback-mid-stream"),
]


@pytest.mark.parametrize(("point", "kwargs", "existed", "after", "collect"), STORE_CASES)
def test_killed_object_store_put(stack, shared_session, point, kwargs, existed, after,
                                 collect):
    fallback = point == "fallback-mid-stream"
    if fallback:
        catalogstore.configure(memory_max_object_bytes=1 << 20)  # children inherit it
        point = "artifact-mid-stream"
    if existed:
        # The old value, in the tier the new one was going to: artifacts, or memory.
        # (A fallback put finds the old one in memory and puts the new one aside.)
        put("obj", np.full(1000, 1.0), backend="local", **kwargs)
    else:
        put("unrelated", np.full(1000, 5.0), backend="local", **kwargs)
    list_artifacts()  # the catalog exists (an embedded one is made on first use)
    flush()  # a small value's files are written after its commit (issue 19)
    before = _committed(stack)
    close_workspaces()

    _killed(_child(STORE_CHILD, point, elements=STORE_ELEMENTS, kwargs=kwargs))

    def read() -> Any:
        return get("obj", backend="local", **kwargs)

    # A fresh workspace: it rolls a committed put forward (after-commit).
    assert _value(read) == after
    assert exists("obj", backend="local", **kwargs) is (after is not None)
    if after is None:
        assert not artifact_exists("obj") and "obj" not in [a.name for a in list_artifacts()]
    if point != "artifact-after-commit":
        assert _committed(stack) == before  # the kill changed no committed data

    # What the kill left in storage: reported (once old enough), then collected.
    expected = 1 if point.startswith("artifact-") and point != "artifact-after-commit" else 0
    report = json.loads(run("verify", "--grace", "0", "--json", code=1 if expected else 0).stdout)
    assert [d["kind"] for d in report["differences"]] == ["orphan-staged"] * expected
    if point == "artifact-mid-stream":
        partial = report["differences"][0]
        assert partial["file"].startswith(f"{STAGING_DIR}/")
        if stack.name == "postgres-s3":  # no listing shows it
            assert "unfinished upload" in partial["detail"] and len(_uploads(stack)) == 1
            assert staged_files(stack) == []
        else:
            assert len(staged_files(stack)) == 1
    committed = _committed(stack)
    if collect == "gc":
        assert f"{expected} orphaned file(s) removed" in run("gc", "--grace", "0").stdout
    else:
        assert run("verify", "--grace", "0", "--repair").stdout.count("(repaired)") == expected
    assert staged_files(stack) == [] and _uploads(stack) == []
    assert _committed(stack) == committed  # gc touched no committed data
    assert maintenance.verify(grace=0).ok

    # What it left in cluster memory (a temporary file): freed by memory clear --stale.
    run("memory", "clear", "--stale")
    assert _dot_files(shared_session / "default") == []
    assert _value(read) == after

    put("obj", np.full(1000, 3.0), backend="local", **kwargs)
    assert _value(read) == 3.0 and exists("obj", backend="local", **kwargs)
    assert maintenance.verify(grace=0).ok


# -- ray -------------------------------------------------------------------------------

RAY_ELEMENTS = 2 << 20
"""float64 elements of the Ray arrays: 16 MiB, far over the size kept in the actor."""


@pytest.mark.parametrize(("point", "after"), [
    pytest.param("serialized", (1.0,), id="serialized"),
    pytest.param("call-sent", (1.0, 2.0), id="call-sent"),
    pytest.param("after-call", (2.0,), id="after-call")])
@pytest.mark.slow
def test_killed_ray_task_put(ray_session, point, after):
    """A task SIGKILLed in a put: the detached actor holds the old value or the new one."""
    import ray

    from catalogstore.cluster_memory._ray import RayMemory

    memory = RayMemory(namespace=f"crash-{os.urandom(6).hex()}")
    memory.put("arr", np.full(RAY_ELEMENTS, 1.0))

    def put_and_die(memory: Any, point: str, elements: int) -> None:
        import os
        import signal

        import numpy as np
        import ray

        from catalogstore.cluster_memory import _ray

        def die(*args: Any, **kwargs: Any) -> None:
            os.kill(os.getpid(), signal.SIGKILL)

        if point == "serialized":  # the frames are made, the actor is not called
            serialize = _ray._serialize
            _ray._serialize = lambda key, value: die(serialize(key, value))
        elif point == "call-sent":  # the put is sent to the actor, its reply never awaited
            ray.get = die
        memory.put("arr", np.full(elements, 2.0))
        die()

    task = ray.remote(max_retries=0)(put_and_die)
    try:
        with pytest.raises(ray.exceptions.WorkerCrashedError):
            ray.get(task.remote(memory, point, RAY_ELEMENTS), timeout=TIMEOUT)
        assert _value(lambda: memory.get("arr")) in after
        assert memory.keys() == ["arr"] and memory.exists("arr")
        if point != "call-sent":  # (a put sent by the dead task may still land)
            memory.put("arr", np.full(RAY_ELEMENTS, 3.0))
            assert _value(lambda: memory.get("arr")) == 3.0
    finally:
        memory.clear()
