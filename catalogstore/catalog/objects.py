"""The ``objects`` table: the current generation of each object store key (issues 12, 13).

One row per key says which tier holds the key's current value, which artifact (if
any), the serializer that wrote it and the digest of pickled bytes, and whether the
object store wrote it (``put``) or a user adopted it (``catalogstore adopt``). The
object store writes it in the same database transaction as the object's file rows
(a row callback of the changeset) or, for cluster memory, on its own; ``reindex``
never does. What ``get`` reads and whether it may decode it follows from this row,
never from metadata read from the storage.

Writers of cluster memory values also take :func:`object_lock`, so that the order
of the values in cluster memory is the order of their rows.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, bindparam, delete, or_, select, update

from catalogstore.catalog.direct import run
from catalogstore.catalog.engine import artifact_lock, case_blind_key, sqlite_path
from catalogstore.catalog.models import ARTIFACTS as A
from catalogstore.catalog.models import METADATA as M
from catalogstore.catalog.models import OBJECTS as O
from catalogstore.catalog.models import utcnow
from catalogstore.record import ArtifactRecord

if TYPE_CHECKING:
    from catalogstore.catalog.catalog import Catalog

ARTIFACT = "artifact"
CLUSTER_MEMORY = "cluster_memory"
PUT = "put"
ADOPTED = "adopted"


@dataclass(frozen=True)
class ObjectRecord:
    """One row of ``objects``."""

    namespace: str
    key: str
    generation: str
    tier: str
    location: str | None = None
    artifact_id: int | None = None
    serializer: str | None = None
    digest: str | None = None
    origin: str = PUT


COLUMNS = (O.c.namespace, O.c.key, O.c.generation, O.c.tier, O.c.location, O.c.artifact_id,
            O.c.serializer, O.c.digest, O.c.origin)
_READ = select(*COLUMNS).where(O.c.namespace == bindparam("ns"), O.c.key == bindparam("key"))
_DELETE = delete(O).where(O.c.namespace == bindparam("ns"), O.c.key == bindparam("key"))
_TAKE = _DELETE.returning(*COLUMNS)
# Without the implicit ``RETURNING id`` (nothing reads it): in PostgreSQL's pipeline a
# statement with RETURNING is waited for, one more round trip per commit.
_INSERT = O.insert().inline()
# The artifact of the key's name with its metadata and the key's record, in one
# statement (a row per metadata pair; the record's columns repeat on each).
_WITH_ARTIFACT = (
    select(A.c.id, A.c.namespace, A.c.name, A.c.created_at, A.c.updated_at,
           M.c.key.label("meta_key"), M.c.value,
           *[c.label(f"object_{c.name}") for c in COLUMNS])
    .select_from(A.outerjoin(M, M.c.artifact_id == A.c.id)
                 .outerjoin(O, and_(O.c.namespace == A.c.namespace, O.c.key == A.c.name)))
    .where(A.c.namespace == bindparam("ns"), A.c.name == bindparam("key")))


def read(catalog: Catalog, namespace: str, key: str) -> ObjectRecord | None:
    """The current record of ``namespace/key``, if any."""
    with catalog.errors("read an object record"), catalog.engine.connect() as conn:
        return read_in(conn, namespace, key)


def read_in(conn: Connection, namespace: str, key: str) -> ObjectRecord | None:
    """:func:`read` inside the transaction of ``conn``."""
    rows = run(conn, _READ, {"ns": namespace, "key": key})
    return ObjectRecord(*rows[0]) if rows else None


def read_with_artifact(catalog: Catalog, namespace: str,
                       key: str) -> tuple[ObjectRecord | None, ArtifactRecord | None]:
    """The key's record and the catalog entry of the artifact of its name, read on one
    connection (a get's first step: one pool checkout, not two)."""
    # The direct path: tuples on SQLite, rows elsewhere, read by position.
    with catalog.errors("read an object record"), catalog.engine.connect() as conn, \
            conn.begin():
        rows = run(conn, _WITH_ARTIFACT, {"ns": namespace, "key": key})
        if not rows:  # no artifact: the record alone (a value in cluster memory, or none)
            return read_in(conn, namespace, key), None
    first = rows[0]
    artifact = ArtifactRecord(first[0], first[1], first[2], first[3], first[4],
                              {row[5]: row[6] for row in rows if row[5] is not None})
    if first[9] is None:  # the record's generation
        return None, artifact
    return ObjectRecord(*first[7:]), artifact


_STALE = (
    select(A.c.namespace, A.c.name, A.c.id, O.c.generation)
    .select_from(A.join(O, and_(O.c.namespace == A.c.namespace, O.c.key == A.c.name))
                 .join(M, and_(M.c.artifact_id == A.c.id, M.c.key == "value_type",
                               M.c.value == "object")))
    .where(O.c.tier == CLUSTER_MEMORY,
           or_(O.c.artifact_id.is_(None), O.c.artifact_id != A.c.id))
    .order_by(A.c.namespace, A.c.name))


def stale_artifacts(catalog: Catalog) -> list[tuple[str, str, int, str]]:
    """Object artifacts an older generation left: the key's current record is a value in
    cluster memory that is not a copy of this artifact (a put to memory whose removal of
    the older artifact did not happen: the process died, the storage failed). As
    (namespace, name, artifact id, the current generation)."""
    with catalog.errors("find stale object artifacts"), catalog.engine.connect() as conn:
        return [(ns, name, int(id_), generation)
                for ns, name, id_, generation in conn.execute(_STALE)]


def replace(conn: Connection, record: ObjectRecord, now: datetime | None = None) -> \
        ObjectRecord | None:
    """Make ``record`` the key's current one (in the caller's transaction); returns the
    record it replaces.

    Delete (returning the old row), then insert: the caller holds the lock that orders
    writers of the key (the artifact's), and a plain INSERT needs no dialect's upsert.
    """
    taken = conn.execute(_TAKE, {"ns": record.namespace, "key": record.key}).first()
    previous = None if taken is None else ObjectRecord(*taken)
    run(conn, _INSERT, _values(record, now))
    return previous


def upsert(conn: Connection, record: ObjectRecord, now: datetime | None = None) -> None:
    """Make ``record`` the key's current one (in the caller's transaction), in one
    statement: a put's, whose commit holds the artifact's lock."""
    # Inside the commit, under the writers' lock: built once, run on the direct path.
    run(conn, _upsert(conn.dialect.name), _values(record, now))


def update_in_place(conn: Connection, record: ObjectRecord,
                    now: datetime | None = None) -> None:
    """Make ``record`` the key's current one when the key's row names its artifact
    already (in the caller's transaction, under the artifact's lock): the row is
    updated without assigning ``artifact_id``, so SQLite leaves that column's index
    alone (an assigned column's index entry is rewritten even when its value is the
    same: one page more in every small put's commit)."""
    values = _values(record, now)
    values["ns"], values["k"] = values.pop("namespace"), values.pop("key")
    del values["artifact_id"]
    run(conn, _UPDATE, values)


_UPDATE = (update(O)
           .where(O.c.namespace == bindparam("ns"), O.c.key == bindparam("k"))
           .values({c.name: bindparam(c.name) for c in O.c
                    if c.name not in ("id", "namespace", "key", "artifact_id")}))


@functools.cache
def _upsert(dialect: str) -> Any:
    insert: Callable[..., Any]  # the dialect's, with ON CONFLICT
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(O).inline()  # no implicit RETURNING: see _INSERT
    return statement.on_conflict_do_update(
        index_elements=[O.c.namespace, O.c.key],
        set_={c.name: statement.excluded[c.name] for c in O.c
              if c.name not in ("id", "namespace", "key")})


def _values(record: ObjectRecord, now: datetime | None) -> dict[str, object]:
    return {"namespace": record.namespace, "key": record.key,
            "generation": record.generation, "tier": record.tier,
            "location": record.location, "artifact_id": record.artifact_id,
            "serializer": record.serializer, "digest": record.digest,
            "origin": record.origin, "updated_at": now or utcnow()}


def remove(conn: Connection, namespace: str, key: str) -> None:
    """Forget the key (in the caller's transaction)."""
    run(conn, _DELETE, {"ns": namespace, "key": key})


def write(catalog: Catalog, record: ObjectRecord, *, only_if: str | None = None,
          drop: bool = False,
          also: Callable[[Connection, datetime], None] | None = None) -> ObjectRecord | None:
    """Commit ``record`` (or, with ``drop``, the key's removal) on its own; returns the
    record it replaced. With ``only_if``, nothing changes unless the current record's
    generation is that one; ``also(connection, now)`` adds rows to the same transaction
    when it changes (the lineage's). Call it under :func:`object_lock`."""
    # The catalog's writer path: SQLite's write lock taken at BEGIN, in the queue of
    # every other writer (the artifact's lock: the key's commits are ordered by it).
    with catalog.locked([(record.namespace, record.key)]) as locked, \
            catalog.writing(locked) as writes:
        conn = writes.conn
        previous = read_in(conn, record.namespace, record.key)
        if only_if is not None and (previous is None or previous.generation != only_if):
            return previous
        if drop:
            remove(conn, record.namespace, record.key)
        else:
            replace(conn, record)
        if also is not None:
            also(conn, writes.now)
    return previous


# -- the lock of cluster memory writers ---------------------------------------------------

_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_lock = threading.Lock()


@contextlib.contextmanager
def object_lock(catalog: Catalog, namespace: str, key: str) -> Iterator[None]:
    """Hold the lock of the object ``namespace/key``: writers of its cluster memory
    value hold it from their write until their row is committed.

    PostgreSQL: a session advisory lock on a key of its own (never an artifact's, so
    a holder may commit the artifact meanwhile). SQLite: a lock file beside the
    database (``<file>.objects.lock``), apart from the database's writer lock for the
    same reason; a thread lock for an in-memory database.
    """
    if catalog.engine.dialect.name == "postgresql":
        lock = case_blind_key(f"\0object\0{namespace}/{key}")
        with catalog.errors("lock an object"), catalog.engine.connect() as conn, \
                artifact_lock(conn, [lock], None):
            yield
        return
    path = sqlite_path(catalog.engine.url)
    if path is None:
        with _thread_locks_lock:
            thread_lock = _thread_locks.setdefault(str(catalog.engine.url), threading.Lock())
        with thread_lock:
            yield
        return
    fd = os.open(f"{path}.objects.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
