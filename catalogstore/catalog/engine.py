"""Engines for the catalog database: SQLite pragmas, PostgreSQL driver, locks.

SQLite runs in WAL mode with a busy timeout, and write transactions start with
``BEGIN IMMEDIATE`` so that a writer waits for the lock (bounded by the busy
timeout) instead of failing when it upgrades a read lock. Writers that must also
change storage hold a lock per artifact from their commit until the storage
matches it; :func:`artifact_lock` provides it on both databases.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Two-int form of pg_advisory_lock: this class id keeps our keys apart from other users'.
PG_LOCK_CLASS = 0x43534C  # "CSL"


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


def make_engine(url: str) -> Engine:
    """An engine configured for catalog work on SQLite or PostgreSQL."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(parsed)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        # A file database is cheap to open; NullPool keeps forked children from
        # sharing a parent's connection.
        engine = create_engine(parsed, poolclass=NullPool if path is None else None,
                               connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        _setup_sqlite(engine)
        return engine
    return create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=10)


def _setup_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Take transaction control from the driver so BEGIN IMMEDIATE is possible.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("catalogstore_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def lock_key(namespace: str, name: str) -> int:
    """A stable signed 32-bit key for the artifact ``namespace/name``."""
    digest = hashlib.blake2b(f"{namespace}/{name}".encode(), digest_size=4).digest()
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
