"""Faults of the services: S3, PostgreSQL or the filesystem fails in the middle of a call.

Every fault is real: a moto S3 server of this module's own is stopped (and started
again on the same port, keeping its in-process state), a PostgreSQL server of this
module's own is stopped with ``pg_ctl stop -m immediate`` (the shared one on 5432 is
never touched), and a fault-injecting fsspec filesystem (a subclass of the local one)
raises from chosen calls. Each test checks the error (its type, what it names, that
it came within :data:`BOUND` seconds: a bound on hanging, not a speed claim), then
that nothing half-applied is visible once the service is back, and that the store
works again.
"""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest
from fsspec.implementations.local import LocalFileSystem
from sqlalchemy import create_engine, event, text

import catalogstore
from catalogstore import object_store
from catalogstore.artifacts import get_artifact, list_artifacts, new_artifact
from catalogstore.errors import (
    CatalogError,
    CommitOutcomeUnknownError,
    StorageError,
    UnappliedCommitError,
)
from catalogstore.maintenance import gc, verify
from catalogstore.storage.checksum import checksum_bytes
from catalogstore.txn.workspace import close_workspaces, get_workspace

BOUND = 30.0
"""Seconds within which a call against a stopped service must have failed."""
CLI = [sys.executable, "-m", "catalogstore"]  # wherever the virtual environment lives


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def bounded() -> Iterator[None]:
    started = time.monotonic()
    yield
    elapsed = time.monotonic() - started
    assert elapsed < BOUND, f"took {elapsed:.1f} s"


def retry_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "catalogstore.retry" and r.levelno == logging.WARNING]


def staged_names(storage_root: str, fs: Any) -> list[str]:
    folder = f"{storage_root}/.catalogstore/staging"
    fs.invalidate_cache()
    return sorted(p.rsplit("/", 1)[-1] for p in fs.find(folder)) if fs.exists(folder) else []


def artifact_json(fs: Any, root: str, name: str, namespace: str = "default") -> dict[str, str]:
    fs.invalidate_cache()
    return json.loads(fs.cat_file(f"{root}/artifacts/{namespace}/{name}/.artifact.json"))


def differences(**kwargs: Any) -> list[tuple[str, str | None, str | None]]:
    report = verify(**kwargs)
    return [(d.kind, d.name, d.file) for d in report.differences]


# -- a fault-injecting filesystem ----------------------------------------------------------


class Faults:
    """Which calls of :class:`FaultyFileSystem` fail: ``plan[op] = (after, times, error)``
    lets ``after`` calls of ``op`` through, then fails ``times`` of them (``None``:
    every one) with ``error``. ``calls`` counts the calls of each operation."""

    plan: dict[str, tuple[int, int | None, type[Exception]]] = {}
    calls: Counter[str] = Counter()
    failed: Counter[str] = Counter()

    @classmethod
    def reset(cls) -> None:
        cls.plan, cls.calls, cls.failed = {}, Counter(), Counter()

    @classmethod
    def fail(cls, op: str, *, after: int = 0, times: int | None = None,
             error: type[Exception] = ConnectionResetError) -> None:
        cls.plan[op] = (cls.calls[op] + after, times, error)

    @classmethod
    def hit(cls, op: str) -> None:
        cls.calls[op] += 1
        if op not in cls.plan:
            return
        after, times, error = cls.plan[op]
        if cls.calls[op] > after and (times is None or cls.failed[op] < times):
            cls.failed[op] += 1
            raise error(f"injected fault in {op} (call {cls.calls[op]})")


class FaultyFileSystem(LocalFileSystem):
    """The local filesystem under the ``faulty://`` protocol, failing as :class:`Faults` says."""

    protocol = ("faulty",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(auto_mkdir=True)


def _faulty(op: str) -> Any:
    real = getattr(LocalFileSystem, op)

    def method(self: FaultyFileSystem, *args: Any, **kwargs: Any) -> Any:
        Faults.hit(op)
        return real(self, *args, **kwargs)
    method.__name__ = op
    return method


for _op in ("_open", "mv", "cp_file", "rm_file", "rm", "cat_file", "pipe_file", "exists", "find"):
    setattr(FaultyFileSystem, _op, _faulty(_op))
fsspec.register_implementation("faulty", FaultyFileSystem, clobber=True)


@pytest.fixture
def faulty(tmp_path: Path) -> Iterator[Any]:
    """A SQLite catalog and a storage on ``faulty://``; yields the local path of the storage."""
    Faults.reset()
    root = tmp_path / "storage"
    catalogstore.configure(catalog_url=f"sqlite:///{tmp_path / 'catalog.db'}",
                           storage_url=f"faulty://{root}")
    yield root
    Faults.reset()


def test_transient_faults_are_retried_with_backoff(faulty, caplog):
    caplog.set_level(logging.WARNING, logger="catalogstore.retry")
    artifact = new_artifact("model")
    Faults.fail("_open", times=2)  # the staged file: two refusals, then it works
    artifact.new_file("weights", content=b"w" * 1000)
    assert Faults.failed["_open"] == 2
    Faults.fail("cp_file", times=1)  # the move into place, after the commit
    Faults.fail("cat_file", times=2, error=TimeoutError)
    artifact.new_file("config", content="{}")
    assert get_artifact("model").get_file("weights").read() == b"w" * 1000
    assert get_artifact("model").get_file("config").read() == "{}"
    warnings = retry_warnings(caplog)
    assert len(warnings) == 5, warnings
    assert sum("attempt 1 of 3" in w for w in warnings) == 3
    assert sum("attempt 2 of 3" in w for w in warnings) == 2
    assert all("faulty://" in w and "injected fault" in w for w in warnings)
    assert differences() == []


def test_a_lasting_fault_gives_up_after_the_bounded_attempts(faulty, caplog):
    caplog.set_level(logging.WARNING, logger="catalogstore.retry")
    artifact = new_artifact("model")
    artifact["stage"] = "trained"
    Faults.fail("_open", error=TimeoutError)
    with bounded(), pytest.raises(StorageError, match="could not write default/model/weights") \
            as caught:
        artifact.new_file("weights", content=b"w" * 1000)
    assert f"faulty://{faulty}" in str(caught.value) and "TimeoutError" in str(caught.value)
    assert Faults.failed["_open"] == 3  # retry.STORAGE: three attempts in all
    assert len(retry_warnings(caplog)) == 2
    # Nothing of it anywhere: catalog, storage, .artifact.json.
    assert get_artifact("model").list_files() == []
    assert not (faulty / "artifacts/default/model/weights").exists()
    assert json.loads((faulty / "artifacts/default/model/.artifact.json").read_text()) == \
        {"stage": "trained"}
    Faults.reset()  # the service is back
    artifact.new_file("weights", content=b"w" * 1000)
    assert get_artifact("model").get_file("weights").read() == b"w" * 1000
    assert differences() == []


def test_a_fault_after_the_commit_is_rolled_forward_in_process(faulty):
    artifact = new_artifact("model")
    artifact.new_file("weights", content=b"old")
    Faults.fail("cp_file")  # every move into place fails: the storage is "down" after the commit
    with bounded(), pytest.raises(UnappliedCommitError, match="the change is committed"), \
            artifact.transaction():
        artifact.get_file("weights").write(b"new")
        artifact.new_file("extra", content=b"extra")
        artifact["stage"] = "evaluated"
    # The first step fails: keeping the replaced weights for version 2 (a server-side
    # copy), three attempts; nothing is moved into place.
    assert Faults.failed["cp_file"] == 3
    # Committed: the catalog has it, the journal keeps the storage step...
    assert sorted(f.name for f in get_artifact("model").list_files()) == ["extra", "weights"]
    assert get_artifact("model").metadata == {"stage": "evaluated"}
    assert ("journal", "model", None) in differences()
    # ...whose staged files are kept for it.
    assert len(staged_names(str(faulty), LocalFileSystem())) == 2
    Faults.reset()
    new_artifact("another")  # this process's next commit rolls the journal forward first
    artifact = get_artifact("model")
    assert artifact.get_file("weights").read() == b"new"
    assert artifact.get_file("extra").read() == b"extra"
    assert json.loads((faulty / "artifacts/default/model/.artifact.json").read_text()) == \
        {"stage": "evaluated"}
    assert staged_names(str(faulty), LocalFileSystem()) == []
    assert differences() == []
    # The roll-forward kept the replaced bytes for the version that holds them first.
    assert get_artifact("model", version=2).get_file("weights").read() == b"old"


def test_a_fault_after_the_commit_is_rolled_forward_by_verify_repair(faulty):
    artifact = new_artifact("model")
    Faults.fail("cp_file")
    with pytest.raises(UnappliedCommitError):
        artifact.new_file("weights", content=b"w")
    Faults.fail("pipe_file")  # and .artifact.json cannot be written either
    with pytest.raises(UnappliedCommitError):
        artifact["stage"] = "trained"
    close_workspaces()  # the process ends; the service comes back
    Faults.reset()
    assert differences() == [("journal", "model", None)]  # the rest of it waits for that
    report = verify(repair=True)
    assert report.ok and report.differences and all(d.repaired for d in report.differences)
    assert differences() == []
    assert get_artifact("model").get_file("weights").read() == b"w"
    assert json.loads((faulty / "artifacts/default/model/.artifact.json").read_text()) == \
        {"stage": "trained"}


def test_a_metadata_rewrite_that_failed_is_redone_in_process(faulty):
    artifact = new_artifact("model")
    artifact["stage"] = "trained"
    Faults.fail("pipe_file", times=3)  # the three attempts of one rewrite
    with pytest.raises(UnappliedCommitError, match="committed change of default/model"):
        artifact["stage"] = "evaluated"
    assert json.loads((faulty / "artifacts/default/model/.artifact.json").read_text()) == \
        {"stage": "trained"}
    new_artifact("another")  # the next commit rewrites it from the catalog first
    assert json.loads((faulty / "artifacts/default/model/.artifact.json").read_text()) == \
        {"stage": "evaluated"}
    assert differences() == []


def test_a_fault_in_the_middle_of_a_batch_leaves_nothing(faulty):
    Faults.fail("_open", after=10, error=BrokenPipeError)  # the 11th staged file on
    with bounded(), pytest.raises(StorageError, match="BrokenPipeError"), \
            catalogstore.transaction():
        for i in range(20):
            new_artifact(f"sample-{i}").new_file("data", content=f"row {i}")
    assert list_artifacts() == []
    assert not (faulty / "artifacts").exists() or list((faulty / "artifacts").rglob("*")) == []
    assert staged_names(str(faulty), LocalFileSystem()) == []  # the ten staged are removed
    Faults.reset()
    with catalogstore.transaction():
        for i in range(20):
            new_artifact(f"sample-{i}").new_file("data", content=f"row {i}")
    assert len(list_artifacts()) == 20
    assert differences() == []


def test_a_fault_while_a_batch_is_applied_is_rolled_forward(faulty):
    Faults.fail("cp_file", after=7)  # the commit went through; the storage fails on the 8th move
    with pytest.raises(UnappliedCommitError), catalogstore.transaction():
        for i in range(20):
            new_artifact(f"sample-{i}").new_file("data", content=f"row {i}")
    assert len(list_artifacts()) == 20  # committed, all of it
    moved = sum((faulty / f"artifacts/default/sample-{i}/data").exists() for i in range(20))
    assert 7 <= moved < 20
    Faults.reset()
    assert get_workspace().recover() >= 20 - moved
    assert [a.get_file("data").read() for a in list_artifacts()] == \
        [f"row {i}" for i in sorted(range(20), key=lambda i: f"sample-{i}")]
    assert differences() == []


# -- S3: a moto server of this module's own ---------------------------------------------


class MotoS3:
    """A moto S3 server on a fixed loopback port, stopped and started again at will.

    moto keeps its state in the process, not in the server thread, so a server
    started again on the same port serves the same buckets and objects: S3 "comes
    back" with what it held.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server: Any = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        if self._server is None:
            self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port,
                                              verbose=False)
            self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoS3]:
    server = MotoS3()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3(moto: MotoS3, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A SQLite catalog and storage in a new bucket of the module's moto server."""
    import boto3

    moto.start()
    # Two attempts per request instead of the default three keep the tests short; the
    # command line tests below run with the defaults.
    options = {"endpoint_url": moto.endpoint, "key": "fault-test-access-key",
               "secret": "fault-test-secret-key", "client_kwargs": {"region_name": "us-east-1"},
               "config_kwargs": {"retries": {"max_attempts": 2, "mode": "standard"}}}
    bucket = f"faults-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1",
                 aws_access_key_id=options["key"],
                 aws_secret_access_key=options["secret"]).create_bucket(Bucket=bucket)
    url = f"s3://{bucket}/root"
    catalogstore.configure(catalog_url=f"sqlite:///{tmp_path / 'catalog.db'}",
                           storage_url=url, storage_options=options)
    fs, root = fsspec.core.url_to_fs(url, **options)
    yield {"server": moto, "options": options, "fs": fs, "root": root, "url": url}
    moto.start()


def assert_names_s3(exc: BaseException, s3: dict[str, Any]) -> None:
    message = str(exc)
    assert s3["url"] in message and s3["server"].endpoint in message, message
    assert s3["options"]["secret"] not in message and s3["options"]["key"] not in message


def test_s3_gets_bounded_timeouts_and_retries_unless_set():
    from catalogstore.storage.filestore import filesystem_options

    assert filesystem_options("s3://b/r", {"key": "k"})["config_kwargs"] == {
        "connect_timeout": 5, "read_timeout": 15,
        "retries": {"max_attempts": 3, "mode": "standard"}}
    mine = {"config_kwargs": {"read_timeout": 120, "retries": {"max_attempts": 10}}}
    assert filesystem_options("s3://b/r", mine)["config_kwargs"] == {
        "connect_timeout": 5, "read_timeout": 120, "retries": {"max_attempts": 10}}
    assert mine == {"config_kwargs": {"read_timeout": 120, "retries": {"max_attempts": 10}}}
    assert filesystem_options("/local/path", {}) == {}


@pytest.mark.slow
def test_s3_stopped_between_calls(s3):
    artifact = new_artifact("model")
    artifact.new_file("weights", content=b"v1")
    artifact["stage"] = "trained"
    s3["server"].stop()
    with bounded(), pytest.raises(StorageError, match="could not write default/model/extra") \
            as caught:
        artifact.new_file("extra", content=b"x" * 1000)
    assert_names_s3(caught.value, s3)
    assert "EndpointConnectionError" in str(caught.value)
    with bounded(), pytest.raises(StorageError, match="could not read default/model/weights"):
        get_artifact("model").get_file("weights").read()
    # The catalog answers without the storage.
    assert [f.name for f in get_artifact("model").list_files()] == ["weights"]
    assert [a.name for a in list_artifacts()] == ["model"]
    # A metadata change commits; its .artifact.json waits for the storage.
    with bounded(), pytest.raises(UnappliedCommitError):
        artifact["stage"] = "evaluated"
    s3["server"].start()
    assert get_artifact("model").get_file("weights").read() == b"v1"
    assert artifact_json(s3["fs"], s3["root"], "model") == {"stage": "trained"}
    artifact.new_file("extra", content=b"x" * 1000)  # works again, and catches up first
    assert artifact_json(s3["fs"], s3["root"], "model") == {"stage": "evaluated"}
    assert sorted(f.name for f in get_artifact("model").list_files()) == ["extra", "weights"]
    assert differences() == []


def test_s3_stopped_after_the_commit_is_rolled_forward(s3):
    artifact = new_artifact("model")
    artifact.new_file("weights", content=b"v1")
    engine = get_workspace().catalog.engine

    def stop_s3(conn: Any) -> None:  # the catalog commits; then the storage is gone
        s3["server"].stop()
    event.listen(engine, "commit", stop_s3, once=True)
    with bounded(), pytest.raises(UnappliedCommitError) as caught:
        artifact.get_file("weights").write(b"v2")
    assert_names_s3(caught.value, s3)
    s3["server"].start()
    # Committed: the catalog records the new content; the storage still holds the old.
    assert get_artifact("model").get_file("weights").checksum == checksum_bytes(b"v2")
    s3["fs"].invalidate_cache()
    assert s3["fs"].cat_file(f"{s3['root']}/artifacts/default/model/weights") == b"v1"
    assert ("journal", "model", None) in differences()
    assert get_workspace().recover() == 1
    assert get_artifact("model").get_file("weights").read(verify=True) == b"v2"
    assert differences() == []


class _StopsS3:
    """Pickled in the middle of a value: stops the S3 server at that moment."""

    server: MotoS3 | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        if _StopsS3.server is not None:
            _StopsS3.server.stop()
        return (_StopsS3, ())


def test_s3_stopped_during_an_object_store_put(s3):
    object_store.put("features", {"version": 1}, artifact_only=True)
    _StopsS3.server = s3["server"]
    # Nine MiB reach S3 (a first multipart part), then the server stops mid-stream.
    value = [os.urandom(9 << 20), _StopsS3(), os.urandom(9 << 20)]
    try:
        with bounded(), pytest.raises(StorageError, match="could not write") as caught:
            object_store.put("features", value, artifact_only=True)
    finally:
        _StopsS3.server = None
    assert_names_s3(caught.value, s3)
    s3["server"].start()
    assert object_store.get("features", artifact_only=True) == {"version": 1}  # the old one
    assert [f.name for f in get_artifact("features").list_files()] == ["object"]
    # The multipart upload could not be aborted while S3 was down: it is left for gc
    # (moto dates every upload in 2010, so it counts as old).
    assert [kind for kind, _, _ in differences()] == ["orphan-staged"]
    gc()
    assert differences() == []
    object_store.put("features", {"version": 2}, artifact_only=True)
    assert object_store.get("features", artifact_only=True) == {"version": 2}


@pytest.mark.slow
@pytest.mark.parametrize("by", ["new-process", "verify-repair", "gc"])
def test_s3_stopped_after_creations_and_deletions_are_rolled_forward(s3, by):
    """Issue 13: an artifact created without files, a deletion and a metadata change,
    committed while S3 is down, are each rolled forward once it is back: by a new
    process, ``verify --repair`` or ``gc`` (no phantom left in the catalog)."""
    new_artifact("y").new_file("data", content=b"y's")
    new_artifact("m")["stage"] = "trained"
    s3["server"].stop()
    for change in (lambda: new_artifact("z"), lambda: get_artifact("y").delete(),
                   lambda: get_artifact("m").set_meta("stage", "evaluated")):
        with bounded(), pytest.raises(UnappliedCommitError):
            change()
    close_workspaces()  # the process ends; the service comes back
    s3["server"].start()
    if by == "new-process":
        get_workspace()  # a new process rolls the journal forward when it opens it
    elif by == "verify-repair":
        assert verify(repair=True).ok
    else:
        gc()
    assert differences() == []
    assert get_workspace().journal() == []
    s3["fs"].invalidate_cache()
    folder = f"{s3['root']}/artifacts/default"
    assert s3["fs"].cat_file(f"{folder}/z/.artifact.json") == b"{}"
    assert not s3["fs"].exists(f"{folder}/y/data")
    assert s3["fs"].cat_file(f"{folder}/m/.artifact.json") == b'{"stage":"evaluated"}'


def test_s3_stopped_while_a_stream_is_read(s3):
    artifact = new_artifact("big")
    data = os.urandom(20 << 20)
    artifact.new_file("blob", content=data)
    with get_artifact("big").get_file("blob").open("rb") as stream:
        assert stream.read(1 << 20) == data[:1 << 20]
        s3["server"].stop()
        with bounded(), pytest.raises(StorageError, match="could not read default/big/blob"):
            stream.read()  # the next blocks are not there to be fetched
    s3["server"].start()
    assert get_artifact("big").get_file("blob").read() == data


def test_s3_object_replaced_while_streamed_is_a_clear_error(s3):
    artifact = new_artifact("big")
    artifact.new_file("blob", content=os.urandom(20 << 20))
    with get_artifact("big").get_file("blob").open("rb") as stream:
        stream.read(1 << 20)
        artifact.get_file("blob").write(b"a new version")
        with pytest.raises(StorageError, match="replaced while being read"):
            stream.read()


def test_s3_object_replaced_before_its_stream_is_read_reads_the_new_one(s3):
    """Issue 13: nothing of the old version was handed out, so the new one is read."""
    artifact = new_artifact("big")
    artifact.new_file("blob", content=os.urandom(20 << 20))
    with get_artifact("big").get_file("blob").open("rb") as stream:
        artifact.get_file("blob").write(b"a new version")
        assert stream.read() == b"a new version"


# -- PostgreSQL: a private server ----------------------------------------------------------


class PrivatePostgres:
    """A PostgreSQL server of its own, in a temporary folder, on a free loopback port."""

    def __init__(self) -> None:
        # The suite needs PostgreSQL's server (its tests use the one on 5432): its
        # binaries are there, on PATH or where Debian puts them.
        found = [shutil.which("initdb"), *sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))]
        initdb = next((path for path in found if path), None)
        if initdb is None:
            pytest.fail("PostgreSQL's initdb was not found (on PATH or in "
                        "/usr/lib/postgresql/*/bin): install the PostgreSQL server")
        bindir = Path(os.path.realpath(initdb)).parent
        self.pg_ctl = str(bindir / "pg_ctl")
        self.base = Path(tempfile.mkdtemp(prefix="catalogstore-faults-pg-"))
        self.data = self.base / "data"
        self.port = free_port()
        # Run as root, the server must run as another user: postgres owns the folder.
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres", "postgres")
            self.prefix = ["runuser", "-u", "postgres", "--"]
        self._run(str(bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8")

    def _run(self, *args: str) -> None:
        proc = subprocess.run([*self.prefix, *args], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr

    def start(self) -> None:
        self._run(self.pg_ctl, "-D", str(self.data), "-l", str(self.base / "log"), "-w",
                  "-t", "60", "-o", f"-p {self.port} -k {self.base} "
                  "-c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def stop(self) -> None:
        self._run(self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def is_running(self) -> bool:
        return subprocess.run([*self.prefix, self.pg_ctl, "-D", str(self.data), "status"],
                              capture_output=True).returncode == 0

    def url(self, database: str = "postgres", password: str = "pg-s3cret-pw") -> str:
        # Trust authentication ignores the password; errors must not show it anyway.
        return f"postgresql+psycopg://postgres:{password}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        name = f"faults_{uuid.uuid4().hex[:10]}"
        engine = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return name

    def remove(self) -> None:
        with contextlib.suppress(Exception):
            if self.is_running():
                self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture
def pg(postgres: PrivatePostgres, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A catalog in a new database of the private server, and local storage."""
    from catalogstore.catalog.engine import make_engine
    from catalogstore.catalog.migrate import upgrade

    if not postgres.is_running():
        postgres.start()
    url = postgres.url(postgres.new_database())
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    storage = tmp_path / "storage"
    catalogstore.configure(catalog_url=url, storage_url=str(storage))
    yield {"server": postgres, "url": url, "storage": storage}
    close_workspaces()
    if not postgres.is_running():
        postgres.start()


def assert_names_pg(exc: BaseException, pg: dict[str, Any]) -> None:
    message = str(exc)
    assert f"127.0.0.1:{pg['server'].port}" in message, message
    assert "postgres:***@" in message and "pg-s3cret-pw" not in message, message


def stop_at(engine: Any, pg: dict[str, Any], *, statement: str, then: str = "execute",
            restart: bool = False) -> dict[str, int]:
    """Stop the server (and start it again, if ``restart``) once ``statement`` is seen,
    just before it runs (``then="execute"``) or before the COMMIT that follows it."""
    seen = {"stopped": 0}

    def stop() -> None:
        if not seen["stopped"]:
            seen["stopped"] = 1
            pg["server"].stop()
            if restart:
                pg["server"].start()

    def before_execute(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        if statement in sql:
            seen["armed"] = 1
            if then == "execute":
                stop()

    def before_commit(conn: Any) -> None:
        if then == "commit" and seen.get("armed"):
            stop()
    event.listen(engine, "before_cursor_execute", before_execute)
    event.listen(engine, "commit", before_commit)
    return seen


def test_pg_connections_get_bounded_timeouts_unless_the_url_sets_them(postgres):
    from catalogstore.catalog.engine import make_engine

    for query, expected in (("", {"connect_timeout": "10", "keepalives_idle": "30"}),
                            ("?connect_timeout=3&keepalives_idle=120",
                             {"connect_timeout": "3", "keepalives_idle": "120"})):
        engine = make_engine(postgres.url() + query)
        try:
            with engine.connect() as conn:
                params = conn.connection.dbapi_connection.info.get_parameters()
        finally:
            engine.dispose()
        assert {k: params.get(k) for k in expected} == expected
        assert params.get("keepalives") == "1" and params.get("tcp_user_timeout") == "60000"


def test_pg_errors_that_cannot_go_away_are_not_retried(postgres, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="catalogstore.retry")
    catalogstore.configure(catalog_url=postgres.url("no_such_database"),
                           storage_url=str(tmp_path / "storage"))
    with pytest.raises(CatalogError, match="does not exist") as caught:
        list_artifacts()
    assert "attempts" not in str(caught.value) and retry_warnings(caplog) == []


@pytest.mark.slow
def test_pg_stopped_between_calls(pg):
    artifact = new_artifact("model")
    artifact.new_file("weights", content=b"v1")
    artifact["stage"] = "trained"
    pg["server"].stop()
    with bounded(), pytest.raises(CatalogError, match="could not read an artifact") as caught:
        get_artifact("model")
    assert_names_pg(caught.value, pg)
    assert "(4 attempts)" in str(caught.value)  # retry.CATALOG_CONNECT
    with bounded(), pytest.raises(CatalogError):
        artifact.new_file("extra", content=b"x")
    with bounded(), pytest.raises(CatalogError):
        artifact["stage"] = "evaluated"
    assert staged_names(str(pg["storage"]), LocalFileSystem()) == []  # discarded
    pg["server"].start()
    # Back: the pool notices its connections died and opens new ones.
    again = get_artifact("model")
    assert [f.name for f in again.list_files()] == ["weights"]
    assert again.metadata == {"stage": "trained"}
    again.new_file("extra", content=b"x")
    assert differences() == []


def test_pg_restarting_is_ridden_out(pg, caplog):
    caplog.set_level(logging.WARNING, logger="catalogstore.retry")
    new_artifact("model").new_file("weights", content=b"v1")
    pg["server"].stop()
    restart = threading.Timer(0.3, pg["server"].start)
    restart.start()
    try:
        with bounded():
            assert get_artifact("model").get_file("weights").read() == b"v1"
    finally:
        restart.join()
    assert any("connect failed (attempt 1 of 4)" in w for w in retry_warnings(caplog))


def test_pg_stopped_in_the_middle_of_a_batch_leaves_nothing(pg):
    engine = get_workspace().catalog.engine
    seen = stop_at(engine, pg, statement="INSERT INTO catalog_journal")
    with bounded(), pytest.raises(CatalogError, match="could not") as caught, \
            catalogstore.transaction():
        for i in range(20):
            new_artifact(f"sample-{i}").new_file("data", content=f"row {i}")
    assert seen["stopped"]
    assert not isinstance(caught.value, CommitOutcomeUnknownError)
    assert_names_pg(caught.value, pg)
    assert staged_names(str(pg["storage"]), LocalFileSystem()) == []
    pg["server"].start()
    assert list_artifacts() == []
    assert not (pg["storage"] / "artifacts").exists() or \
        list((pg["storage"] / "artifacts").rglob("*")) == []
    assert differences() == []


def test_pg_restarted_in_the_middle_of_a_batch_commits_it_once(pg, caplog):
    caplog.set_level(logging.WARNING, logger="catalogstore.retry")
    engine = get_workspace().catalog.engine
    seen = stop_at(engine, pg, statement="INSERT INTO catalog_journal", restart=True)
    with bounded(), catalogstore.transaction():
        for i in range(20):
            new_artifact(f"sample-{i}").new_file("data", content=f"row {i}")
    assert seen["stopped"]
    assert any("commit failed (attempt 1 of 2)" in w for w in retry_warnings(caplog))
    assert [a.name for a in list_artifacts()] == sorted(f"sample-{i}" for i in range(20))
    assert all(a.get_file("data").read() == f"row {a.name.split('-')[1]}"
               for a in list_artifacts())
    assert differences() == []


def test_pg_stopped_during_the_commit_keeps_what_the_journal_may_need(pg):
    engine = get_workspace().catalog.engine
    artifact = new_artifact("model")
    seen = stop_at(engine, pg, statement="INSERT INTO catalog_journal", then="commit")
    with bounded(), pytest.raises(CommitOutcomeUnknownError, match="lost while committing") \
            as caught:
        artifact.new_file("weights", content=b"v1")
    assert seen["stopped"]
    assert_names_pg(caught.value, pg)
    assert len(staged_names(str(pg["storage"]), LocalFileSystem())) == 1  # kept
    pg["server"].start()
    # The server never saw the COMMIT: nothing of it is visible, and gc clears the rest.
    assert get_artifact("model").list_files() == []
    assert gc(grace=0).removed
    assert staged_names(str(pg["storage"]), LocalFileSystem()) == []
    assert differences() == []
    artifact.new_file("weights", content=b"v1")
    assert get_artifact("model").get_file("weights").read() == b"v1"


# -- the command line --------------------------------------------------------------------


def _script(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CATALOGSTORE_")}
    return subprocess.run([*CLI, *args], cwd=cwd, env={**clean, **env},
                          capture_output=True, text=True, timeout=120)


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_cli_with_postgres_unreachable(tmp_path):
    port = free_port()  # nothing listens there
    url = f"postgresql+psycopg://someone:pg-s3cret-pw@127.0.0.1:{port}/catalog"
    with bounded():
        line = _one_error_line(_script("ls", env={"CATALOGSTORE_CATALOG_URL": url},
                                       cwd=tmp_path))
    assert f"someone:***@127.0.0.1:{port}" in line and "pg-s3cret-pw" not in line
    assert "Connection refused" in line and "(4 attempts)" in line


@pytest.mark.slow
def test_cli_with_s3_unreachable(tmp_path):
    port = free_port()
    options = {"endpoint_url": f"http://127.0.0.1:{port}", "key": "cli-access-key",
               "secret": "cli-secret-key", "client_kwargs": {"region_name": "us-east-1"}}
    env = {"CATALOGSTORE_STORAGE_URL": "s3://nowhere/root",
           "CATALOGSTORE_STORAGE_OPTIONS": json.dumps(options)}
    (tmp_path / "data.bin").write_bytes(b"123")
    for args in (["cp", "data.bin", "cs://default/model/data.bin"], ["verify"]):
        with bounded():
            line = _one_error_line(_script(*args, env=env, cwd=tmp_path))
        assert f"s3://nowhere/root (endpoint http://127.0.0.1:{port})" in line, line
        assert "cli-secret-key" not in line and "cli-access-key" not in line
    # Listing reads the catalog only: it works without the storage.
    result = _script("ls", env=env, cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == "", result.stderr
