"""The ``local`` cluster memory: the shared contract, plus zero-copy, atomic replacement,
memory reuse, file modes, sessions and the ``memory`` CLI.

Every test gets a session of its own (:meth:`LocalMemory.new_session`, removed at
teardown). Other processes are a module-wide spawn pool, which joins the test's
session by the variable set in each task, and a fork pool, which inherits it.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from catalogstore.cli import app
from catalogstore.cluster_memory import get_cluster_memory, register_backend
from catalogstore.cluster_memory._local import POOL_MIN_BYTES, LocalMemory
from catalogstore.cluster_memory._local_session import (
    SESSION_ENV,
    current_session,
    default_root,
    start_time,
)
from catalogstore.errors import (
    ConfigurationError,
    ObjectTooLargeError,
    SerializationError,
    StorageError,
)
from catalogstore.testing.memory import (
    CITIES,
    ClusterMemoryContract,
    create_cities_list,
    remote_array_sum,
    remote_get,
    use_cities_list,
)

REPO = Path(__file__).resolve().parent.parent
BIG = 1 << 20
"""Elements of the test arrays: 8 MiB, well over the pool's minimum file size."""
assert BIG * 8 > POOL_MIN_BYTES
runner = CliRunner()


def _in_session(session: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn(*args)`` in a pool worker, in the test's session (workers outlive tests)."""
    os.environ[SESSION_ENV] = session
    return fn(*args)


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CATALOGSTORE_")}


@pytest.fixture(scope="module")
def spawn_pool() -> Iterator[ProcessPoolExecutor]:
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


@pytest.fixture
def session() -> Iterator[str]:
    with LocalMemory.new_session() as name:
        yield name
    assert not (default_root() / name).exists()


@pytest.fixture
def memory(session: str) -> Iterator[LocalMemory]:
    with LocalMemory(namespace=f"t-{uuid.uuid4().hex[:8]}") as memory:
        assert memory.session == session
        yield memory


@pytest.fixture
def memory_kwargs(memory: LocalMemory) -> dict[str, Any]:
    return {"backend": "local", "namespace": memory.namespace}


@pytest.fixture
def remote(spawn_pool: ProcessPoolExecutor, session: str) -> Callable[..., Any]:
    def run(fn: Callable[..., Any], *args: Any) -> Any:
        return spawn_pool.submit(_in_session, session, fn, *args).result(timeout=120)
    return run


class TestLocalContract(ClusterMemoryContract):
    """The contract every backend passes, on the local backend."""


def _inode(memory: LocalMemory, key: str) -> int:
    return os.stat(memory.path / memory.namespace / key).st_ino


# -- across processes ----------------------------------------------------------------------


def test_fork_workers_share_the_memory(memory: LocalMemory, memory_kwargs) -> None:
    # Forked workers inherit the session variable (and the process group).
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        pool.submit(create_cities_list, memory_kwargs).result(timeout=60)
        assert pool.submit(use_cities_list, memory_kwargs).result(timeout=60) == CITIES
        memory.put("array", np.ones(BIG))
        assert pool.submit(remote_array_sum, memory_kwargs, "array").result(timeout=60) == \
            (float(BIG), False)


def test_get_is_zero_copy_and_read_only(memory: LocalMemory) -> None:
    array = np.arange(BIG, dtype=np.float64)
    memory.put("array", array)
    first, second = memory.get("array"), memory.get("array")
    assert first.ctypes.data == second.ctypes.data  # one mapping, handed out twice
    assert np.shares_memory(first, second)
    assert not first.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        first[0] = 1.0
    assert np.array_equal(first, array)
    # An object without buffers holds no mapping: it is an ordinary copy.
    memory.put("blob", b"x" * (2 * POOL_MIN_BYTES))
    assert memory.get("blob") == b"x" * (2 * POOL_MIN_BYTES)


def _tear_reader(memory_kwargs: dict[str, Any], size: int) -> tuple[int, str]:
    """Get the array until the writer is done; each must be uniform. Returns (gets, error)."""
    memory = get_cluster_memory(**memory_kwargs)
    memory.put("reader-ready", True)
    held: list[tuple[float, Any]] = []
    gets = 0
    deadline = time.monotonic() + 60  # a safety net against a hang, not a measurement
    while not memory.exists("writer-done") and time.monotonic() < deadline:
        array = memory.get("array")
        low, high = float(array.min()), float(array.max())
        if low != high or array.size != size:
            return gets, f"torn read: values from {low} to {high}, {array.size} elements"
        gets += 1
        if gets % 7 == 0:  # keep a few old arrays mapped while the writer goes on
            held = [*held[-2:], (low, array)]
    for value, array in held:
        if not (array == value).all():
            return gets, "an array held by the reader changed"
    return gets, ""


def _tear_writer(memory_kwargs: dict[str, Any], size: int, rounds: int) -> None:
    memory = get_cluster_memory(**memory_kwargs)
    while not memory.exists("reader-ready"):
        time.sleep(0.001)
    for i in range(rounds):
        memory.put("array", np.full(size, float(i)))
    memory.put("writer-done", True)


@pytest.mark.slow
def test_concurrent_replace_is_never_torn(memory: LocalMemory, memory_kwargs,
                                          spawn_pool: ProcessPoolExecutor) -> None:
    size = BIG // 2  # 4 MiB: replaced files go through the pool and are refilled
    memory.put("array", np.full(size, -1.0))
    reader = spawn_pool.submit(_in_session, memory.session, _tear_reader, memory_kwargs, size)
    writer = spawn_pool.submit(_in_session, memory.session, _tear_writer, memory_kwargs, size,
                               300)
    writer.result(timeout=120)
    gets, error = reader.result(timeout=120)
    assert error == ""
    assert gets > 0
    assert float(memory.get("array")[0]) == 299.0


# -- memory reuse ---------------------------------------------------------------------------


def test_freed_memory_is_reused(memory: LocalMemory) -> None:
    memory.put("a", np.full(BIG, 1.0))
    first = os.stat(memory.path / memory.namespace / "a")
    memory.delete("a")
    assert memory.pool_usage() == (first.st_size, 1)
    memory.put("b", np.full(BIG, 2.0))
    assert _inode(memory, "b") == first.st_ino  # the same file, refilled
    assert memory.pool_usage() == (0, 0)
    # Replacing a key releases the old file to the pool, and the next put takes it.
    memory.put("b", np.full(BIG, 3.0))
    assert memory.pool_usage() == (first.st_size, 1)
    memory.put("b", np.full(BIG, 4.0))
    assert _inode(memory, "b") == first.st_ino
    assert float(memory.get("b")[-1]) == 4.0
    memory.clear()
    assert memory.pool_usage()[1] == 2
    assert memory.release_pool() == 2 * first.st_size
    assert memory.pool_usage() == (0, 0)


def test_memory_a_reader_maps_is_not_reused(memory: LocalMemory) -> None:
    memory.put("a", np.full(BIG, 1.0))
    held = memory.get("a")
    mapped = _inode(memory, "a")
    memory.delete("a")
    memory.put("b", np.full(BIG, 2.0))
    assert _inode(memory, "b") != mapped  # the pool file is still mapped: a new one
    assert (held == 1.0).all()
    del held
    gc.collect()
    memory.put("c", np.full(BIG, 3.0))
    assert _inode(memory, "c") == mapped  # let go of: reused
    assert (memory.get("c") == 3.0).all() and (memory.get("b") == 2.0).all()


def test_pool_is_bounded(memory: LocalMemory) -> None:
    held = []
    for i in range(5):  # every released file stays mapped, so none can be reused
        memory.put(f"k{i}", np.full(BIG, float(i)))
        held.append(memory.get(f"k{i}"))
        memory.delete(f"k{i}")
    size = BIG * 8
    total, files = memory.pool_usage()
    assert files == 2 and size * 2 <= total < size * 3  # twice the largest file
    assert [float(h[0]) for h in held] == [0.0, 1.0, 2.0, 3.0, 4.0]


# -- files, modes, errors -------------------------------------------------------------------


def test_files_are_private(memory: LocalMemory) -> None:
    memory.put("small", {"a": 1})
    memory.put("big", np.zeros(BIG))
    memory.put("big", np.ones(BIG))  # one file in the pool
    root = memory.path.parent
    st = os.stat(root)
    assert st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) == 0o700
    seen = 0
    for folder, dirs, files in os.walk(memory.path):
        for name in dirs:
            assert stat.S_IMODE(os.stat(Path(folder, name)).st_mode) == 0o700, name
        for name in files:
            assert stat.S_IMODE(os.stat(Path(folder, name)).st_mode) == 0o600, name
            seen += 1
    assert seen >= 4  # .owner, the lock, two objects, the pooled file
    assert stat.S_IMODE(os.stat(memory.path).st_mode) == 0o700


def test_unsafe_folder_is_refused(tmp_path: Path) -> None:
    open_root = tmp_path / "open"
    open_root.mkdir()
    os.chmod(open_root, 0o755)
    memory = LocalMemory(namespace="ns", session="s1", root=open_root)
    with pytest.raises(StorageError, match="mode 755 lets group or others in"):
        memory.put("k", 1)
    with pytest.raises(StorageError, match="mode 755"):
        memory.get("k")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(private)
    with pytest.raises(StorageError, match="not a folder"):
        LocalMemory(namespace="ns", session="s1", root=tmp_path / "link").put("k", 1)
    if os.getuid() == 0:  # only root can give a folder away
        other = tmp_path / "other"
        other.mkdir(mode=0o700)
        os.chown(other, 65534, 65534)
        with pytest.raises(StorageError, match="belongs to uid 65534"):
            LocalMemory(namespace="ns", session="s1", root=other).put("k", 1)
    assert os.listdir(open_root) == []


def test_errors_leave_nothing_behind(memory: LocalMemory) -> None:
    memory.put("big", np.zeros(BIG))
    folder = memory.path / memory.namespace
    before = sorted(os.listdir(folder))
    with pytest.raises(SerializationError, match=r"'big'.*list.*cannot be pickled"):
        memory.put("big", [np.ones(BIG), threading.Lock()])
    limited = LocalMemory(namespace=memory.namespace, max_object_bytes=BIG)
    with pytest.raises(ObjectTooLargeError, match=r"'big' takes \d+ bytes"):
        limited.put("big", np.ones(BIG))
    with pytest.raises(ObjectTooLargeError):
        limited.put("other", np.ones(BIG))
    assert sorted(os.listdir(folder)) == before == [".lock", "big"]
    assert memory.pool_usage() == (0, 0)
    assert (memory.get("big") == 0).all()


def test_dataframe_and_table_round_trip(memory: LocalMemory, memory_kwargs, remote) -> None:
    frame = pd.DataFrame({"x": np.arange(200_000, dtype=np.float64),
                          "n": np.arange(200_000), "s": ["a", "b"] * 100_000})
    memory.put("frame", frame)
    got = memory.get("frame")
    pd.testing.assert_frame_equal(got, frame)
    assert np.shares_memory(got["x"].to_numpy(), memory.get("frame")["x"].to_numpy())
    pd.testing.assert_frame_equal(remote(remote_get, memory_kwargs, "frame"), frame)
    table = pa.table({"x": np.arange(200_000), "s": ["q"] * 200_000})
    memory.put("table", table)
    assert memory.get("table").equals(table)
    assert remote(remote_get, memory_kwargs, "table").equals(table)


# -- sessions -------------------------------------------------------------------------------


def test_process_group_session(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SESSION_ENV, raising=False)
    pgid = os.getpgid(0)
    name, owner = current_session()
    # start time 0: the leader is not visible here (it may run in another pid namespace)
    assert name == f"pg{pgid}-{start_time(pgid) or 0}"
    assert owner == (os.getpid() == pgid)
    monkeypatch.setenv(SESSION_ENV, "../escape")
    with pytest.raises(ConfigurationError, match=SESSION_ENV):
        LocalMemory()


def test_new_session_is_exported_and_removed() -> None:
    assert SESSION_ENV not in os.environ
    with LocalMemory.new_session() as name:
        assert os.environ[SESSION_ENV] == name
        memory = LocalMemory(namespace="ns")
        memory.put("k", np.zeros(BIG))
        assert memory.session == name and memory.path.is_dir()
        with pytest.raises(ConfigurationError, match="exists already"), \
                LocalMemory.new_session(name):
            pass
    assert SESSION_ENV not in os.environ
    assert not memory.path.exists()


STALE_CHILD = """
import time
from catalogstore.cluster_memory._local import LocalMemory
memory = LocalMemory(namespace="stale-test")
memory.put("x", b"y" * 300_000)
print(memory.session, flush=True)
time.sleep(120)
"""


def _killed_driver_session() -> Path:
    """The session folder of a driver in a process group of its own, killed by SIGKILL."""
    child = subprocess.Popen([sys.executable, "-c", STALE_CHILD], stdout=subprocess.PIPE,
                             text=True, env=_clean_env(), start_new_session=True)
    try:
        name = child.stdout.readline().strip()
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    assert name.startswith(f"pg{child.pid}-")
    stale = default_root() / name
    assert (stale / "stale-test" / "x").is_file()
    return stale


def test_clear_stale_frees_killed_sessions(memory: LocalMemory) -> None:
    memory.put("live", 1)
    stale = _killed_driver_session()
    assert stale.name in [s.name for s in LocalMemory.stale_sessions()]
    assert memory.session not in [s.name for s in LocalMemory.stale_sessions()]
    result = runner.invoke(app, ["memory", "clear", "--stale"])
    assert result.exit_code == 0, result.output
    assert f"freed session {stale.name}" in result.stdout
    assert not stale.exists()
    assert memory.get("live") == 1  # a live session is left alone
    # Starting a new session frees the stale ones too.
    stale = _killed_driver_session()
    with LocalMemory.new_session():
        LocalMemory(namespace="ns").put("k", 1)
        assert not stale.exists()
    assert memory.get("live") == 1


def test_subprocess_inherits_the_session(memory: LocalMemory) -> None:
    memory.put("greeting", "hello from the driver")
    code = ("from catalogstore.cluster_memory import get_cluster_memory;"
            f"m = get_cluster_memory('local', namespace={memory.namespace!r});"
            "print(m.get('greeting')); m.put('reply', 'hello from a subprocess')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.strip() == "hello from the driver"
    assert memory.get("reply") == "hello from a subprocess"


# -- the memory CLI -----------------------------------------------------------------------------


def _cli(*args: str, code: int = 0) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result


def test_memory_ls_and_clear(memory: LocalMemory) -> None:
    # --backend: Ray or Dask fixtures of other modules may be running in this process.
    memory.put("small", b"x" * 1000)
    memory.put("big", np.zeros(BIG))
    memory.put("big", np.ones(BIG))  # the old file goes to the pool
    ns = memory.namespace
    shown = _cli("memory", "ls", "--backend", "local", "--namespace", ns).stdout
    assert memory.session in shown and "small" in shown and "big" in shown
    assert "free pool: 8.4 MB in 1 file" in shown
    listing = json.loads(
        _cli("memory", "ls", "--backend", "local", "--namespace", ns, "--json").stdout)
    assert listing["backend"] == "local"
    assert {(o["session"], o["namespace"], o["key"]) for o in listing["objects"]} == \
        {(memory.session, ns, "small"), (memory.session, ns, "big")}
    assert listing["sessions"][0]["free_pool_bytes"] == memory.pool_usage()[0]
    everywhere = json.loads(
        _cli("memory", "ls", "--backend", "local", "--all-sessions", "--json").stdout)
    assert (memory.session, ns, "small") in \
        {(o["session"], o["namespace"], o["key"]) for o in everywhere["objects"]}
    cleared = _cli("memory", "clear", "--backend", "local", "--namespace", ns).stdout
    assert "cleared 2 object(s)" in cleared and ns in cleared
    assert memory.keys() == [] and memory.pool_usage() == (0, 0)
    assert "no objects" in _cli("memory", "ls", "--backend", "local", "--namespace", ns).stdout
    error = _cli("memory", "clear", "--stale", "--namespace", ns, code=2).stderr
    assert error.startswith("error: ") and len(error.splitlines()) == 1


def test_memory_ls_other_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    from test_memory_selection import DictMemory

    register_backend("dict", DictMemory, replace=True)
    monkeypatch.setenv("CATALOGSTORE_MEMORY_BACKEND", "dict")
    get_cluster_memory().put("k", [1, 2, 3], namespace="ls-ns")
    try:
        listing = json.loads(_cli("memory", "ls", "--namespace", "ls-ns", "--json").stdout)
        assert listing["backend"] == "dict"
        assert [o["key"] for o in listing["objects"]] == ["k"]
        error = _cli("memory", "ls", "--all-sessions", code=2).stderr
        assert "local backend" in error
    finally:
        DictMemory.store.clear()


# -- the example ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_example_runs_stages_in_other_processes() -> None:
    # A process group of its own, as when started from a shell: it owns its session.
    result = subprocess.run([sys.executable, str(REPO / "examples" / "run_local.py")],
                            cwd=REPO, env=_clean_env(), capture_output=True, text=True,
                            timeout=300, start_new_session=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every stage ran in a different process" in result.stdout
    session = next(line.split()[-1] for line in result.stdout.splitlines()
                   if line.startswith("session:"))
    assert not (default_root() / session).exists()  # removed when the driver exited
