"""Engines for the catalog database: SQLite pragmas, PostgreSQL driver, locks.

SQLite runs in WAL mode with a busy timeout, and write transactions start with
``BEGIN IMMEDIATE`` so that a writer waits for the lock (bounded by the busy
timeout) instead of failing when it upgrades a read lock. catalogstore's own
writers queue on a lock file first, so the busy timeout only comes into play
against other programs writing the database (an open ``sqlite3`` shell, a
script): a writer that still finds the database locked waits
:data:`SQLITE_LOCK_ATTEMPTS` busy timeouts, logging a warning before each wait after
the first (:func:`catalogstore.retry.call`), then raises
:class:`~catalogstore.errors.CatalogError`. The busy timeout is the SQLite URL's
``timeout`` query parameter in seconds (SQLAlchemy's own option for the driver,
e.g. ``sqlite:///catalog.db?timeout=5``), 30 s when absent.

Writers that must also change storage hold a lock per artifact from their
commit until the storage matches it; :func:`artifact_lock` provides it on both
databases.

PostgreSQL connections get bounded waits unless the URL's query sets its own
(libpq parameters, e.g. ``?connect_timeout=30``): a connection attempt gives up
after :data:`PG_CONNECT_TIMEOUT` seconds, and TCP keepalives (plus libpq's
``tcp_user_timeout``) notice a server that vanished mid-query within about a
minute instead of the operating system's two hours. A connection that cannot be
opened is tried again (:data:`catalogstore.retry.CATALOG_CONNECT`), which rides
out a server restart.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from catalogstore import retry
from catalogstore.errors import CatalogError, ConfigurationError
from catalogstore.record import document_column
from catalogstore.settings import (
    DEFAULT_CATALOG_FILE,
    DEFAULT_HOME,
    hide_in_logs,
    redact_url,
    url_secrets,
)

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite writer waits for the write lock when the URL sets no ``timeout``."""
SQLITE_WAL_CHECKPOINT_PAGES = 4000
"""Pages (4 KiB) the write-ahead log grows by before the commit that crosses it copies
them into the database file (SQLite's default is 1000). A checkpoint syncs both files
and the committing writer waits for it, holding the write lock: a small object store
put writes about 14 pages (its version, its run's output, the value), so the default
made every 70th put stall for milliseconds, a quarter of their time (issue 19). The
log stays at most 16 MiB; durability is unchanged (a commit is in the log)."""
SQLITE_LOCK_ATTEMPTS = 3
"""Waits of one busy timeout each before a locked SQLite database is reported."""
# SQLite itself waits the busy timeout inside each attempt: no delay between them.
_SQLITE_LOCK = retry.Backoff(attempts=SQLITE_LOCK_ATTEMPTS, first_delay=0)
# Two-int form of pg_advisory_lock: this class id keeps our keys apart from other users'.
PG_LOCK_CLASS = 0x43534C  # "CSL"
PG_CONNECT_TIMEOUT = 10
"""Seconds one PostgreSQL connection attempt may take (libpq ``connect_timeout``; psycopg's
own default is 130 s)."""
PG_CONNECT_ARGS: dict[str, int] = {
    "connect_timeout": PG_CONNECT_TIMEOUT,
    # A server that vanishes (host down, network cut) without closing the connection
    # is noticed after 30 s of silence plus 3 unanswered probes 10 s apart...
    "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3,
    # ...or after 60 s with data sent and not acknowledged (libpq 12 and later).
    "tcp_user_timeout": 60_000,
}
"""libpq parameters every PostgreSQL connection gets, unless its URL's query sets them."""
# Connection failures worth another attempt: the server did not answer (refused,
# reset, timed out), or answered that it is starting, stopping or full; not that the
# password, the role or the database is wrong. libpq reports the server's answer as
# text ("FATAL:  ..."), without a SQLSTATE.
_PG_TRANSIENT_CLASSES = ("08", "53", "57")
_PG_TRANSIENT_REFUSALS = ("the database system is", "too many clients",
                          "connection slots are reserved", "administrator command")


def normalize_url(url: str) -> URL:
    """The URL with PostgreSQL pointed at psycopg 3, the driver catalogstore installs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def sqlite_path(url: URL) -> Path | None:
    """The database file of a SQLite URL (``None`` for an in-memory database)."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def sqlite_busy_timeout(url: URL) -> float:
    """Seconds a SQLite writer waits for the write lock: the URL's ``timeout``, else 30."""
    raw = url.query.get("timeout")
    if raw is None:
        return SQLITE_BUSY_TIMEOUT_MS / 1000
    text_value = raw if isinstance(raw, str) else raw[-1]
    try:
        seconds = float(text_value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < 1e6:
        raise ConfigurationError(
            f"CATALOGSTORE_CATALOG_URL: timeout={text_value!r} is not a number of seconds "
            "(the SQLite busy timeout, e.g. ?timeout=5)")
    return seconds


def make_engine(url: str) -> Engine:
    """An engine configured for catalog work on SQLite or PostgreSQL."""
    parsed = normalize_url(url)
    hide_in_logs(*url_secrets(url))
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(parsed)
        if path is not None and not path.parent.is_dir():
            _make_default_home(path)
        busy = sqlite_busy_timeout(parsed)
        if path is not None:
            _ensure_wal(path, parsed, busy)
        # A file database is cheap to open; NullPool keeps forked children from
        # sharing a parent's connection.
        engine = create_engine(parsed, poolclass=NullPool if path is None else None,
                               connect_args={"timeout": busy})
        _setup_sqlite(engine, busy)
        return engine
    engine = create_engine(parsed, pool_size=5, max_overflow=10,
                           connect_args=pg_connect_args(parsed))
    _retry_connections(engine, redact_url(parsed))
    _ping_idle_connections(engine)
    _read_in_pipelines(engine)
    return engine


PG_PING_IDLE = 0.1
"""Seconds a pooled PostgreSQL connection may have been idle and still be handed to a
writer without a ping (a round trip): one the pool just had back is alive."""
_unpinged = threading.local()


@contextlib.contextmanager
def unpinged() -> Iterator[None]:
    """Connections checked out in the block (by this thread) skip the ping when the pool
    had them back within :data:`PG_PING_IDLE`: for writers, whose commit is tried again
    when the connection turns out lost before its COMMIT
    (:func:`catalogstore.txn.workspace._lost_before_commit`). Readers always ping."""
    _unpinged.on = True
    try:
        yield
    finally:
        _unpinged.on = False


def _ping_idle_connections(engine: Engine) -> None:
    """SQLAlchemy's ``pool_pre_ping``, less the ping of :func:`unpinged` checkouts.

    A dead connection is replaced (the pool tries again on :class:`DisconnectionError`).
    """
    from sqlalchemy.exc import DisconnectionError

    def fresh(_dbapi_connection, record) -> None:  # type: ignore[no-untyped-def]
        record.info["cs_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection, record, _proxy) -> None:  # type: ignore[no-untyped-def]
        idle_since = record.info.get("cs_idle_since", 0.0)
        if getattr(_unpinged, "on", False) and time.monotonic() - idle_since <= PG_PING_IDLE:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError(str(exc)) from exc
        if not alive:
            raise DisconnectionError("the connection did not answer its ping")

    event.listen(engine, "connect", fresh)
    event.listen(engine, "checkin", fresh)


PIPELINED = "catalogstore_pipelined"
"""Execution option of a statement whose answer is not needed before the next one: in a
pipeline (:func:`pipeline`) it is sent without waiting (errors surface at the next
wait). Statements that change rows without ``RETURNING`` are sent so anyway."""
_PIPELINE = "catalogstore_pipeline"


def pipeline(conn: Connection) -> None:
    """Put a connection from :func:`artifact_lock` in psycopg's pipeline mode until its
    locks are released: a statement whose rows are not read (an upsert, a delete) is
    sent without waiting for its answer, which comes back with the next statement
    whose rows are read, with the COMMIT (one round trip for all), or, for statements
    after the COMMIT, with the unlock. Nothing on SQLite.

    So in such a transaction a change without ``RETURNING`` has no ``rowcount`` yet
    when ``execute`` returns, and its error is raised by the next statement read (or
    the COMMIT): a change whose outcome decides what comes next needs ``RETURNING``."""
    if conn.dialect.name != "postgresql" or _PIPELINE in conn.info:
        return
    # psycopg's pipeline() is a generator's context manager: kept, or it ends when collected.
    entered = conn.connection.driver_connection.pipeline()  # type: ignore[union-attr]
    conn.info[_PIPELINE] = (entered, entered.__enter__())


def _read_in_pipelines(engine: Engine) -> None:
    """Let SQLAlchemy read a statement's rows in pipeline mode: they arrive only once the
    pipeline is synced, and SQLAlchemy looks for them right after sending it."""

    @event.listens_for(engine, "after_cursor_execute")
    def _sync(conn, _cursor, _statement, _parameters, context, _many):  # type: ignore[no-untyped-def]
        pipelined = conn.info.get(_PIPELINE)
        if pipelined is None or context.execution_options.get(PIPELINED):
            return
        changes = context.isinsert or context.isupdate or context.isdelete
        if changes and not getattr(context.compiled, "effective_returning", None):
            return
        pipelined[1].sync()


def _make_default_home(path: Path) -> None:
    """Create the folder of the embedded default catalog (``.catalogstore/catalog.db``);
    refuse any other missing folder: a mistyped URL must not silently make an empty
    catalog somewhere else (issue 12)."""
    if path.name == DEFAULT_CATALOG_FILE and path.parent.name == DEFAULT_HOME:
        path.parent.mkdir(parents=True, exist_ok=True)
        return
    raise ConfigurationError(
        f"CATALOGSTORE_CATALOG_URL: the folder {path.parent} of the SQLite catalog does not "
        "exist; create it first, or fix the URL (only the embedded default "
        f"./{DEFAULT_HOME}/{DEFAULT_CATALOG_FILE} is created on first use)")


def pg_connect_args(url: URL) -> dict[str, int]:
    """:data:`PG_CONNECT_ARGS` less what the URL's query (or ``PGCONNECT_TIMEOUT``) sets."""
    args = {k: v for k, v in PG_CONNECT_ARGS.items() if k not in url.query}
    if "PGCONNECT_TIMEOUT" in os.environ:
        args.pop("connect_timeout", None)
    if "tcp_user_timeout" in args:
        try:
            from psycopg import pq

            if pq.version() < 120000:  # older libpq refuses the parameter
                del args["tcp_user_timeout"]
        except Exception:  # another driver, or none: let it say so when connecting
            del args["tcp_user_timeout"]
    return args


def _retry_connections(engine: Engine, where: str) -> None:
    """Open every PostgreSQL connection of ``engine`` with retries on transient failures."""

    @event.listens_for(engine, "do_connect")
    def _connect(dialect, _record, cargs, cparams):  # type: ignore[no-untyped-def]
        failed = dialect.loaded_dbapi.OperationalError  # not a bad parameter, not a bug

        def transient(exc: Exception) -> bool:
            if not isinstance(exc, failed):
                return False
            sqlstate = getattr(exc, "sqlstate", None)
            if sqlstate is not None:
                return bool(sqlstate[:2] in _PG_TRANSIENT_CLASSES)
            message = str(exc)
            return "FATAL:" not in message or any(m in message for m in _PG_TRANSIENT_REFUSALS)
        return retry.call(lambda: dialect.connect(*cargs, **cparams),
                          policy=retry.CATALOG_CONNECT, transient=transient,
                          what=f"catalog {where}: connect")


def _ensure_wal(path: Path, url: URL, busy: float) -> None:
    """Switch a new database file to WAL mode, once, under the lock file.

    Processes opening a fresh file at once would each ask for the switch, which
    needs the file to itself: SQLite answers all but one with an immediate
    "database is locked", without waiting for the busy timeout. Once the file is
    in WAL mode, asking again (every connection does) changes nothing.
    """
    if _is_wal(path):
        return
    try:
        with DatabaseLock(url).held():
            if _is_wal(path):
                return
            conn = sqlite3.connect(path, timeout=busy, isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
            finally:
                conn.close()
    except (sqlite3.Error, OSError) as exc:
        raise CatalogError(f"catalog {redact_url(url)}: could not "
                           f"open: {exc}") from exc


def _is_wal(path: Path) -> bool:
    """Whether the database file's header says WAL mode (format versions 2 at bytes 18-19)."""
    try:
        with open(path, "rb") as f:
            header = f.read(20)
    except FileNotFoundError:
        return False
    return header[18:20] == b"\x02\x02"


SQL_DOCUMENT_COLUMN = "catalogstore_document_column"
"""A SQLite function on every connection: :func:`~catalogstore.record.document_column`
(document, column, key, ...: a key, or the keys of a path into nested objects, each an
argument). Searches of the metadata a version keeps as its document
(``alias.prod.meta.KEY``) and of runs' parameters (``run.params.a.b``) need it: SQLite
has no regular expressions to tell which strings read as numbers, nor ``json_each`` a
number's text as written."""


def _setup_sqlite(engine: Engine, busy: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Take transaction control from the driver so BEGIN IMMEDIATE is possible.
        dbapi_connection.isolation_level = None
        dbapi_connection.create_function(SQL_DOCUMENT_COLUMN, -1, document_column,
                                         deterministic=True)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_CHECKPOINT_PAGES}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={round(busy * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Straight on the driver: a statement through SQLAlchemy costs more than BEGIN.
        if conn.get_execution_options().get("catalogstore_write", False):
            _begin_immediate(conn, busy)
        else:
            conn.connection.driver_connection.execute("BEGIN")  # type: ignore[union-attr]


def _begin_immediate(conn: Connection, busy: float) -> None:
    """Take SQLite's write lock, waiting at most :data:`SQLITE_LOCK_ATTEMPTS` busy timeouts.

    Only the write lock is retried: with it taken, nothing later in the
    transaction (WAL mode) waits for another writer.
    """
    driver = conn.connection.driver_connection

    def where() -> str:  # for messages only: redacting costs more than the BEGIN
        return redact_url(conn.engine.url)

    def begin() -> None:
        try:
            driver.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise DBAPIError.instance("BEGIN IMMEDIATE", (), exc, sqlite3.Error) from exc
            raise

    try:
        retry.call(begin, policy=_SQLITE_LOCK,
                   transient=lambda exc: isinstance(exc, sqlite3.OperationalError),
                   what=lambda: f"catalog {where()}: waiting {busy:g} s for the write lock "
                   "another program holds")
    except sqlite3.OperationalError as exc:
        raise CatalogError(
            f"catalog {where()}: the database is locked: another program held its "
            f"write lock through {SQLITE_LOCK_ATTEMPTS} waits of {busy:g} s; end that "
            "program's transaction (an open sqlite3 shell, a long script), or wait longer "
            "with ?timeout=SECONDS in the catalog URL") from exc


def lock_key(namespace: str, name: str) -> int:
    """A stable signed 32-bit key for the artifact ``namespace/name``.

    Spellings that differ only by case share a key, so that the check refusing
    such a second spelling (:mod:`catalogstore.catalog.collisions`) cannot race.
    """
    return case_blind_key(f"{namespace}/{name}")


def case_blind_key(text: str) -> int:
    """A stable signed 32-bit lock key for ``text``, the same for every spelling of its case."""
    digest = hashlib.blake2b(text.lower().encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


_thread_locks: dict[str, threading.Lock] = {}
@contextlib.contextmanager
def artifact_lock(conn: Connection, keys: Iterable[int],
                  database_lock: DatabaseLock | None) -> Iterator[None]:
    """Hold the locks of ``keys`` (from :func:`lock_key`) for the block.

    PostgreSQL: session advisory locks on ``conn``, taken in sorted order so two
    batches cannot deadlock. They are taken in the round trip that begins the
    block's transaction (``BEGIN; SELECT pg_advisory_lock(...)``, one simple query:
    the caller's statements run in that transaction, see :func:`pg_transaction`),
    outlive its COMMIT (the storage step runs under them) and are released in one
    more round trip. SQLite: ``database_lock``, the database's :class:`DatabaseLock`
    (SQLite serialises writers anyway).
    """
    if conn.dialect.name == "postgresql":
        ordered = sorted(set(keys))
        driver = conn.connection.driver_connection
        # psycopg sends no BEGIN of its own: the lock's round trip carries it.
        driver.autocommit = True  # type: ignore[union-attr]
        try:
            conn.exec_driver_sql(f"BEGIN; SELECT pg_advisory_lock({PG_LOCK_CLASS}, k) FROM "
                                 f"(SELECT unnest(ARRAY{_int_list(ordered)}::integer[]) AS k "
                                 "ORDER BY 1) AS keys")
            yield
        finally:
            _pg_unlock(conn, ordered)
        return
    assert database_lock is not None
    with database_lock.held():
        yield


def _int_list(keys: list[int]) -> str:
    """``keys`` as a SQL array literal's list (integers only: nothing to quote)."""
    return "[" + ",".join(str(int(k)) for k in keys) + "]"


def locked_transaction(conn: Connection) -> contextlib.AbstractContextManager[Any]:
    """The transaction of a connection from :func:`artifact_lock`, committed (or rolled
    back) when the block ends: on PostgreSQL the one the lock began (a second one on
    the same connection, e.g. after a storage failure, begins with its own ``BEGIN``);
    on SQLite a new one."""
    if conn.in_transaction():
        transaction = conn.get_transaction()
        assert transaction is not None
        return transaction
    if conn.dialect.name == "postgresql" and \
            conn.connection.driver_connection.autocommit:  # type: ignore[union-attr]
        begun = conn.begin()
        conn.exec_driver_sql("BEGIN")
        return begun
    return conn.begin()


def _pg_unlock(conn: Connection, keys: list[int]) -> None:
    """Release the session locks of ``keys``; never raises.

    It runs after the caller's work, which committed or failed already: a failure
    here (the server is gone) must neither hide that failure nor report a commit
    as failed. A connection that could not release its locks is invalidated: its
    session ends, and the server releases them with it.
    """
    if conn.invalidated:  # the connection was lost: its session, and locks, with it
        return
    pipelined = conn.info.pop(_PIPELINE, None)
    try:
        unlock = (f"SELECT pg_advisory_unlock({PG_LOCK_CLASS}, k) FROM "
                  f"unnest(ARRAY{_int_list(keys)}::integer[]) AS k")
        # One round trip, outside a transaction (autocommit): the one the lock began
        # is committed already, or was never used (the locks guarded storage work
        # alone) or failed, and is rolled back first (in the same round trip, or in
        # pipeline mode in one of its own).
        if pipelined is not None:
            if conn.in_transaction():
                conn.rollback()
            conn.exec_driver_sql(unlock, execution_options={PIPELINED: True})
            pipelined[0].__exit__(None, None, None)  # sends the unlock, waits for it
        else:
            end = "ROLLBACK; " if conn.in_transaction() else ""
            conn.exec_driver_sql(end + unlock)
        conn.commit()  # SQLAlchemy's side: the server has no transaction open
        conn.connection.driver_connection.autocommit = False  # type: ignore[union-attr]
    except Exception as exc:
        logger.warning("catalog %s: could not release artifact locks (%s); closing the "
                       "connection releases them", redact_url(conn.engine.url),
                       retry.describe(exc))
        with contextlib.suppress(Exception):
            conn.invalidate()


class DatabaseLock:
    """An exclusive lock for one SQLite database, across threads and processes: a
    lock file beside it (a thread lock for an in-memory database).

    Built once per catalog: working out the lock's path costs more than taking it.
    """

    def __init__(self, url: URL) -> None:
        path = sqlite_path(url)
        self.path = None if path is None else f"{path}.lock"
        self._thread_lock = None if path is not None else \
            _thread_locks.setdefault(str(url), threading.Lock())

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        if self._thread_lock is not None:
            with self._thread_lock:
                yield
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)  # type: ignore[arg-type]
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock
