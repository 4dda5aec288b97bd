"""Engines for the catalog database: SQLite pragmas, PostgreSQL driver, locks.

SQLite runs in WAL mode with a busy timeout, and write transactions start with
``BEGIN IMMEDIATE`` so that a writer waits for the lock (bounded by the busy
timeout) instead of failing when it upgrades a read lock. catalogstore's own
writers queue on a lock file first, so the busy timeout only comes into play
against other programs writing the database (an open ``sqlite3`` shell, a
script): a writer that still finds the database locked tries again
:data:`SQLITE_LOCK_ATTEMPTS` times, logging a warning each time, then raises
:class:`~catalogstore.errors.CatalogError`. The busy timeout is the SQLite URL's
``timeout`` query parameter in seconds (SQLAlchemy's own option for the driver,
e.g. ``sqlite:///catalog.db?timeout=5``), 30 s when absent.

Writers that must also change storage hold a lock per artifact from their
commit until the storage matches it; :func:`artifact_lock` provides it on both
databases.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from catalogstore.errors import CatalogError, ConfigurationError
from catalogstore.settings import hide_in_logs

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite writer waits for the write lock when the URL sets no ``timeout``."""
SQLITE_LOCK_ATTEMPTS = 3
"""Waits of one busy timeout each before a locked SQLite database is reported."""
# Two-int form of pg_advisory_lock: this class id keeps our keys apart from other users'.
PG_LOCK_CLASS = 0x43534C  # "CSL"


def normalize_url(url: str) -> URL:
    """The URL with PostgreSQL pointed at psycopg 3, the driver catalogstore installs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


@functools.lru_cache(maxsize=64)  # asked on every commit, for its lock file
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
    hide_in_logs(parsed.password if isinstance(parsed.password, str) else None)
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(parsed)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        busy = sqlite_busy_timeout(parsed)
        if path is not None:
            _ensure_wal(path, parsed, busy)
        # A file database is cheap to open; NullPool keeps forked children from
        # sharing a parent's connection.
        engine = create_engine(parsed, poolclass=NullPool if path is None else None,
                               connect_args={"timeout": busy})
        _setup_sqlite(engine, busy)
        return engine
    return create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=10)


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
        with database_file_lock(url):
            if _is_wal(path):
                return
            conn = sqlite3.connect(path, timeout=busy, isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
            finally:
                conn.close()
    except (sqlite3.Error, OSError) as exc:
        raise CatalogError(f"catalog {url.render_as_string(hide_password=True)}: could not "
                           f"open: {exc}") from exc


def _is_wal(path: Path) -> bool:
    """Whether the database file's header says WAL mode (format versions 2 at bytes 18-19)."""
    try:
        with open(path, "rb") as f:
            header = f.read(20)
    except FileNotFoundError:
        return False
    return header[18:20] == b"\x02\x02"


def _setup_sqlite(engine: Engine, busy: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Take transaction control from the driver so BEGIN IMMEDIATE is possible.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
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
    for attempt in range(1, SQLITE_LOCK_ATTEMPTS + 1):
        try:
            driver.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise DBAPIError.instance("BEGIN IMMEDIATE", (), exc, sqlite3.Error) from exc
            where = conn.engine.url.render_as_string(hide_password=True)
            if attempt == SQLITE_LOCK_ATTEMPTS:
                raise CatalogError(
                    f"catalog {where}: the database is locked: another program held its "
                    f"write lock through {attempt} waits of {busy:g} s; end that program's "
                    "transaction (an open sqlite3 shell, a long script), or wait longer "
                    "with ?timeout=SECONDS in the catalog URL") from exc
            logger.warning("catalog %s: the database is locked by another program; "
                           "waiting again (attempt %d of %d, %g s each)",
                           where, attempt + 1, SQLITE_LOCK_ATTEMPTS, busy)


def lock_key(namespace: str, name: str) -> int:
    """A stable signed 32-bit key for the artifact ``namespace/name``.

    Spellings that differ only by case share a key, so that the check refusing
    such a second spelling (:mod:`catalogstore.catalog.collisions`) cannot race.
    """
    digest = hashlib.blake2b(f"{namespace}/{name}".lower().encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


_thread_locks: dict[str, threading.Lock] = {}
_PG_LOCK = text("SELECT pg_advisory_lock(:c, k) FROM "
                "(SELECT unnest(CAST(:keys AS integer[])) AS k ORDER BY 1) AS keys")
_PG_UNLOCK = text("SELECT pg_advisory_unlock(:c, k) FROM unnest(CAST(:keys AS integer[])) AS k")


@contextlib.contextmanager
def artifact_lock(conn: Connection, keys: Iterable[int]) -> Iterator[None]:
    """Hold the locks of ``keys`` (from :func:`lock_key`) for the block.

    PostgreSQL: session advisory locks on ``conn``, taken in sorted order so two
    batches cannot deadlock. SQLite: one lock file beside the database, since
    SQLite serialises writers anyway.
    """
    ordered = sorted(set(keys))
    if conn.dialect.name == "postgresql":
        # One round trip for any number of keys, taken in ascending order.
        conn.execute(_PG_LOCK, {"c": PG_LOCK_CLASS, "keys": ordered})
        conn.commit()  # session locks outlive this; the caller begins its own transaction
        try:
            yield
        finally:
            if conn.in_transaction():
                conn.rollback()
            conn.execute(_PG_UNLOCK, {"c": PG_LOCK_CLASS, "keys": ordered})
            conn.commit()
        return
    with database_file_lock(conn.engine.url):
        yield


@contextlib.contextmanager
def database_file_lock(url: URL) -> Iterator[None]:
    """An exclusive lock for one SQLite database, across threads and processes."""
    path = sqlite_path(url)
    if path is None:
        lock = _thread_locks.setdefault(str(url), threading.Lock())
        with lock:
            yield
        return
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
