"""Many processes at once on one catalog: no update lost, no half transaction seen, one migration.

- 8 processes setting 50 keys each on one artifact: all 400 are in the catalog
  and in ``.artifact.json`` (SQLite + local disk, PostgreSQL + S3).
- 8 processes creating one name: one wins, the others are told it exists.
- A reader polling an artifact while a writer commits transactions of 2 files
  and 2 keys sees every one of them whole: in the catalog (one statement), through
  the API (metadata, then files read with ``verify=True``, never going back in
  time) and in ``.artifact.json``.
- 16 processes starting at once on an empty catalog database all succeed, and
  each migration step runs exactly once (SQLite file lock, PostgreSQL advisory lock).
- A SQLite database locked by another program is waited for a bounded number
  of times, each reported, then refused with an error naming it.

Worker processes come from one spawn pool for the whole module (starting
interpreters is the slow part); a task points its worker at the test's stack
through the environment and closes its connections when done.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa

import catalogstore
from catalogstore.artifacts import get_artifact, list_artifacts, new_artifact
from catalogstore.catalog.engine import SQLITE_LOCK_ATTEMPTS, make_engine
from catalogstore.catalog.migrate import head_revision, known_revisions, upgrade
from catalogstore.errors import ArtifactExistsError, CatalogError
from catalogstore.storage.checksum import checksum_bytes

PROCESSES = 8
STARTERS = 16
KEYS = 50
GENERATIONS = 30
# A reader that never sees the last generation (the writer died) stops after this many.
MAX_POLLS = 20_000

_start: Any = None  # Barrier of STARTERS parties, given to each worker when it starts
_pair: Any = None  # Barrier of 2: a reader and a writer begin together


def _init_worker(start: Any, pair: Any) -> None:
    global _start, _pair
    _start, _pair = start, pair


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    """Worker processes for the whole module, sharing two barriers."""
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(STARTERS, mp_context=ctx, initializer=_init_worker,
                             initargs=(ctx.Barrier(STARTERS), ctx.Barrier(2))) as executor:
        yield executor


def _task(fn: Callable[..., Any], env: dict[str, str], *args: Any) -> Any:
    """Run ``fn`` in a worker configured by ``env``, then close its connections.

    Pooled workers outlive the test's database; an open pool of connections to a
    dropped PostgreSQL schema would only pile up.
    """
    from catalogstore.settings import reset_configuration
    from catalogstore.txn.workspace import close_workspaces

    for key in [k for k in os.environ if k.startswith("CATALOGSTORE_")]:
        del os.environ[key]
    os.environ.update(env)
    reset_configuration()
    try:
        return fn(*args)
    finally:
        close_workspaces()


def _run_all(pool: ProcessPoolExecutor, fn: Callable[..., Any], env: dict[str, str],
             count: int = PROCESSES) -> list[Any]:
    futures = [pool.submit(_task, fn, env, worker) for worker in range(count)]
    return [f.result(timeout=300) for f in futures]


# -- lost updates and racing creators ----------------------------------------------


def _set_keys(worker: int) -> None:
    artifact = get_artifact("shared")
    for i in range(KEYS):
        artifact[f"w{worker}-k{i}"] = str(i)


def _create(worker: int) -> str:
    try:
        new_artifact("race")["winner"] = str(worker)
    except ArtifactExistsError as exc:
        return f"exists: {exc}"
    return "created"


@pytest.mark.slow
def test_concurrent_metadata_writers_lose_nothing(stack, pool):
    new_artifact("shared")
    _run_all(pool, _set_keys, stack.environ())
    expected = {f"w{w}-k{i}": str(i) for w in range(PROCESSES) for i in range(KEYS)}
    artifact = get_artifact("shared")
    assert artifact.metadata == expected
    engine = make_engine(stack.catalog_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT key, value FROM artifact_metadata "
                                    "WHERE artifact_id = :id"), {"id": artifact.record.id}).all()
    engine.dispose()
    assert dict(rows) == expected and len(rows) == PROCESSES * KEYS
    fs = stack.filesystem()
    fs.invalidate_cache()
    assert json.loads(fs.cat_file(f"{artifact.path}/.artifact.json")) == expected
    print(f"\n[{stack.name}] {len(rows)} metadata rows and {len(expected)} .artifact.json keys "
          f"checked after {PROCESSES} x {KEYS} concurrent commits")


@pytest.mark.slow
def test_racing_creators_one_wins(stack, pool):
    results = _run_all(pool, _create, stack.environ())
    assert results.count("created") == 1
    assert all("already exists" in r for r in results if r != "created")
    assert len(get_artifact("race").metadata) == 1


# -- readers never see half a transaction ---------------------------------------------

# One statement is one snapshot on both databases (a transaction of several
# statements would not be on PostgreSQL's default isolation).
_SNAPSHOT = sa.text(
    "SELECT key, value FROM artifact_metadata WHERE artifact_id = :id "
    "UNION ALL SELECT name, checksum FROM artifact_files WHERE artifact_id = :id")


def _generation(generation: int) -> dict[str, str]:
    """What the transaction of ``generation`` writes: files a and b, keys ka and kb."""
    return {"a": f"a{generation}", "b": f"b{generation}", "ka": str(generation),
            "kb": str(generation)}


def _write_generations(worker: int) -> int:
    artifact = get_artifact("tx")
    _pair.wait(timeout=120)
    for generation in range(1, GENERATIONS + 1):
        state = _generation(generation)
        with artifact.transaction():
            artifact.new_file("a", state["a"])
            artifact.new_file("b", state["b"])
            artifact.update_meta({"ka": state["ka"], "kb": state["kb"]})
    return GENERATIONS


def _observe(worker: int) -> dict[str, Any]:
    """Poll the artifact until the last generation shows; report what was seen."""
    from catalogstore.txn.workspace import get_workspace

    workspace = get_workspace()
    by_checksum = {checksum_bytes(_generation(g)[f].encode()): g
                   for g in range(GENERATIONS + 1) for f in ("a", "b")}
    artifact = get_artifact("tx")
    json_path = f"{artifact.path}/.artifact.json"
    report: dict[str, Any] = {"polls": 0, "catalog_generations": set(), "json_reads": 0,
                              "file_reads": 0, "problems": []}
    _pair.wait(timeout=120)
    catalog_generation = -1
    while catalog_generation < GENERATIONS and report["polls"] < MAX_POLLS:
        report["polls"] += 1
        # 1. The catalog: both keys and both files' checksums of one generation.
        with workspace.catalog.engine.connect() as conn:
            rows = dict(conn.execute(_SNAPSHOT, {"id": artifact.record.id}).all())
        seen = {int(rows["ka"]), int(rows["kb"]), by_checksum[rows["a"]],
                by_checksum[rows["b"]]}
        if len(seen) != 1:
            report["problems"].append(f"catalog shows generations {sorted(seen)}")
        catalog_generation = min(seen)
        report["catalog_generations"].add(catalog_generation)
        # 2. The API: a metadata snapshot, then each file as committed, in time order.
        meta = artifact.refresh().metadata
        files = [int(artifact.get_file(f).read(verify=True)[1:]) for f in ("a", "b")]
        report["file_reads"] += 2
        if meta["ka"] != meta["kb"]:
            report["problems"].append(f"API metadata {meta}")
        if not catalog_generation <= int(meta["ka"]) <= files[0] <= files[1]:
            report["problems"].append(
                f"went back in time: catalog {catalog_generation}, metadata {meta['ka']}, "
                f"files {files}")
        # 3. .artifact.json, which Flowdapt reads as the metadata: whole, never empty.
        raw = workspace.files.fs.cat_file(json_path)
        report["json_reads"] += 1
        mirror = json.loads(raw) if raw else {}
        if mirror.get("ka") is None or mirror.get("ka") != mirror.get("kb"):
            report["problems"].append(f".artifact.json {raw!r}")
    report["last"] = catalog_generation
    return report


def _read_beside_writer(pool: ProcessPoolExecutor, stack: Any, read: Callable[[int], Any],
                        write: Callable[[int], int], rounds: int) -> dict[str, Any]:
    """Run ``read`` and ``write`` in two workers started together; the reader's report,
    which must list no problem."""
    env = stack.environ()
    reader = pool.submit(_task, read, env, 0)
    writer = pool.submit(_task, write, env, 1)
    assert writer.result(timeout=300) == rounds
    report = reader.result(timeout=300)
    assert report["problems"] == []
    return report  # type: ignore[no-any-return]


def test_readers_never_see_half_a_transaction(stack, pool):
    with catalogstore.transaction():
        artifact = new_artifact("tx")
        state = _generation(0)
        artifact.new_file("a", state["a"])
        artifact.new_file("b", state["b"])
        artifact.update_meta({"ka": state["ka"], "kb": state["kb"]})
    report = _read_beside_writer(pool, stack, _observe, _write_generations, GENERATIONS)
    assert report["last"] == GENERATIONS
    assert get_artifact("tx").metadata == {"ka": str(GENERATIONS), "kb": str(GENERATIONS)}
    print(f"\n[{stack.name}] reader: {report['polls']} polls, "
          f"{len(report['catalog_generations'])} of {GENERATIONS + 1} generations seen, "
          f"{report['file_reads']} verified file reads, {report['json_reads']} "
          ".artifact.json reads, none of them torn")


# -- object store reads racing replacements of another type, and deletes --------------

FLIPS = 40


def _flip_object(worker: int) -> int:
    """Put the key as a dict (pickle: file ``object``), as an array (``object.npy``),
    then delete it, again and again."""
    import numpy as np

    from catalogstore.object_store import delete, put

    _pair.wait(timeout=120)
    for i in range(FLIPS):
        put("flip", {"i": i}, artifact_only=True)
        put("flip", np.full(4, float(i)), artifact_only=True)
        delete("flip", artifact_only=True)
    put("flip", "done", artifact_only=True)
    return FLIPS


def _get_while_flipping(worker: int) -> dict[str, Any]:
    from catalogstore.object_store import get

    report: dict[str, Any] = {"gets": 0, "problems": []}
    _pair.wait(timeout=120)
    value = None
    while report["gets"] < 20_000 and not (isinstance(value, str) and value == "done"):
        report["gets"] += 1
        try:
            value = get("flip", artifact_only=True, default=None)
        except Exception as exc:  # any error is a failure of the test
            report["problems"].append(f"{type(exc).__name__}: {exc}")
            continue
        if not (value is None or isinstance(value, (str, dict))
                or (value.shape == (4,) and len(set(value.tolist())) == 1)):
            report["problems"].append(f"torn value {value!r}")
    return report


def test_object_store_get_meets_replacements_and_deletes(stack, pool):
    report = _read_beside_writer(pool, stack, _get_while_flipping, _flip_object, FLIPS)
    print(f"\n[{stack.name}] {report['gets']} gets during {FLIPS * 3} changes, none failed")


# -- parallel start-up on an empty database --------------------------------------------


def _count_migrations(fn: Callable[[], Any]) -> int:
    """Run ``fn``; the number of migration steps alembic ran in this process meanwhile."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("alembic.runtime.migration")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        fn()
    finally:
        logger.removeHandler(handler)
    return sum(r.getMessage().startswith("Running upgrade") for r in records)


def _start_on_sqlite(worker: int) -> int:
    _start.wait(timeout=120)
    return _count_migrations(lambda: new_artifact(f"proc-{worker}"))


def _start_on_postgres(worker: int) -> int:
    from catalogstore.settings import get_settings

    engine = make_engine(get_settings().catalog_url)
    _start.wait(timeout=120)
    try:
        steps = _count_migrations(lambda: upgrade(engine))
    finally:
        engine.dispose()
    new_artifact(f"proc-{worker}")
    return steps


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres",
                                                             marks=pytest.mark.postgres)])
@pytest.mark.slow
def test_processes_starting_at_once_migrate_once(database, request, tmp_path, pool):
    if database == "sqlite":
        url, start = f"sqlite:///{tmp_path / 'catalog.db'}", _start_on_sqlite
    else:
        url, start = request.getfixturevalue("pg_url"), _start_on_postgres
    env = {"CATALOGSTORE_CATALOG_URL": url, "CATALOGSTORE_STORAGE_URL": str(tmp_path / "s")}
    steps = _run_all(pool, start, env, STARTERS)
    # Every step from an empty database to head ran once, in one of the processes.
    assert sum(steps) == len(known_revisions())
    engine = make_engine(url)
    with engine.connect() as conn:
        versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    engine.dispose()
    assert [tuple(v) for v in versions] == [(head_revision(),)]
    catalogstore.configure(catalog_url=url, storage_url=env["CATALOGSTORE_STORAGE_URL"])
    assert sorted(a.name for a in list_artifacts()) == sorted(
        f"proc-{i}" for i in range(STARTERS))


# -- SQLite locked by another program --------------------------------------------------

_HOLD = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("holding", flush=True)
sys.stdin.read()
"""


@pytest.mark.slow
def test_sqlite_lock_is_retried_and_reported(tmp_path, caplog):
    db = tmp_path / "catalog.db"
    catalogstore.configure(catalog_url=f"sqlite:///{db}?timeout=0.2",
                           storage_url=str(tmp_path / "storage"))
    artifact = new_artifact("a")
    caplog.set_level(logging.WARNING, logger="catalogstore.retry")

    def reported() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "catalogstore.retry"]

    # Another connection holds the write lock and lets go once a retry is reported.
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    release = logging.Handler()
    release.emit = lambda record: holder.in_transaction and holder.execute(  # type: ignore[method-assign]
        "COMMIT")
    logging.getLogger("catalogstore.retry").addHandler(release)
    try:
        artifact["k"] = "v"
    finally:
        logging.getLogger("catalogstore.retry").removeHandler(release)
        holder.close()
    assert [r.levelno for r in reported()] == [logging.WARNING]
    assert "locked" in reported()[0].getMessage()
    assert get_artifact("a").metadata == {"k": "v"}

    # Another program holds it for good: a bounded number of waits, then a clear error.
    caplog.clear()
    with subprocess.Popen([sys.executable, "-c", _HOLD, str(db)], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True) as holding:
        assert holding.stdout is not None and holding.stdout.readline() == "holding\n"
        with pytest.raises(CatalogError) as caught:
            artifact["k2"] = "v2"
        holding.communicate("")
    message = str(caught.value)
    assert str(db) in message and "locked" in message and "timeout" in message
    assert len(reported()) == SQLITE_LOCK_ATTEMPTS - 1
    assert get_artifact("a").metadata == {"k": "v"}
    artifact["k2"] = "v2"  # works again once the other program is gone
    assert get_artifact("a").metadata == {"k": "v", "k2": "v2"}
