"""Small object store values kept in the catalog (``object_values``, issue 19).

A put of a small value over the key's object artifact whose current value is held
here already is one database transaction and no file: the rows that an artifact
commit would write (the object file's row, changed metadata, the document, the next
version) plus the key's record and the value's bytes. The key's first put is one
transaction too, which the caller's ``create`` writes (the rows of a new artifact).
A get reads the key's record and those bytes in one statement. The file of the
Flowdapt layout and ``.artifact.json`` are written afterwards
(:mod:`catalogstore.txn.mirror`), which ``mirrored`` records.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import and_, bindparam, false, select, true, update

from catalogstore.catalog import objects, versions
from catalogstore.catalog.direct import run, select_one
from catalogstore.catalog.engine import locked_transaction
from catalogstore.catalog.models import ARTIFACTS as A
from catalogstore.catalog.models import FILES as F
from catalogstore.catalog.models import METADATA as M
from catalogstore.catalog.models import OBJECT_VALUES as I
from catalogstore.catalog.models import OBJECTS as O
from catalogstore.catalog.objects import ObjectRecord
from catalogstore.record import metadata_document, metadata_of

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy import Connection

    from catalogstore.catalog.catalog import Catalog, Writes


class Edges(Protocol):
    """The current run's part of a commit (``catalogstore.txn.runs.Recording``)."""

    def write(self, conn: Connection, now: datetime,
              artifact_ids: Sequence[int] = ()) -> None: ...


@dataclass(frozen=True)
class InlineValue:
    """A key's current value as the catalog holds it: its record, the checksum of its
    bytes, the bytes, and the signature its metadata records (``None``: unsigned)."""

    record: ObjectRecord
    checksum: str
    data: bytes
    signature: str | None
    version: int
    """The artifact's version that holds it (a read is an input of the run, issue 16)."""


_GET = (
    select(*objects.COLUMNS, F.c.checksum, I.c.data, M.c.value, A.c.version)
    .select_from(
        O.join(F, F.c.artifact_id == O.c.artifact_id)
        .join(A, A.c.id == O.c.artifact_id)
        .join(I, and_(I.c.artifact_id == F.c.artifact_id, I.c.checksum == F.c.checksum))
        .outerjoin(M, and_(M.c.artifact_id == O.c.artifact_id, M.c.key == bindparam("sig"))))
    .where(O.c.namespace == bindparam("ns"), O.c.key == bindparam("key"),
           O.c.tier == objects.ARTIFACT)
    .limit(1))


def read_value(catalog: Catalog, namespace: str, key: str,
               signature_key: str) -> InlineValue | None:
    """The key's current value if the catalog holds its bytes, in one statement (else
    ``None``: a value in a file or in cluster memory, or no key). ``signature_key``:
    the metadata key of a pickle's signature."""
    with catalog.errors("read an object"), catalog.reader() as conn:
        rows = select_one(conn, _GET, {"ns": namespace, "key": key, "sig": signature_key})
    if not rows:
        return None
    row = rows[0]
    n = len(objects.COLUMNS)
    return InlineValue(ObjectRecord(*row[:n]), row[n], bytes(row[n + 1]), row[n + 2],
                       row[n + 3])


_KEPT = select(I.c.data).where(I.c.artifact_id == bindparam("id"),
                               I.c.checksum == bindparam("checksum"))


def read_kept(catalog: Catalog, artifact_id: int, checksum: str) -> bytes | None:
    """The bytes the catalog keeps for ``checksum`` of the artifact (a version's value),
    if it keeps them."""
    with catalog.errors("read an object"), catalog.engine.connect() as conn:
        found = conn.execute(_KEPT, {"id": artifact_id, "checksum": checksum}).scalar()
    return None if found is None else bytes(found)


# -- the put ----------------------------------------------------------------------

_STATE = (
    select(A.c.id, A.c.metadata_json, F.c.name, F.c.checksum, I.c.checksum,
           *[c.label(f"object_{c.name}") for c in objects.COLUMNS])
    .select_from(A.outerjoin(F, F.c.artifact_id == A.c.id)
                 .outerjoin(I, and_(I.c.artifact_id == F.c.artifact_id,
                                    I.c.checksum == F.c.checksum))
                 .outerjoin(O, and_(O.c.namespace == A.c.namespace, O.c.key == A.c.name)))
    .where(A.c.namespace == bindparam("ns"), A.c.name == bindparam("key")))


@functools.cache
def _keep(dialect: str) -> Any:
    """Insert a value's bytes, or mark the kept ones as not mirrored (the same bytes
    put again: their file is rewritten with the new metadata)."""
    insert: Callable[..., Any]
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(I).inline()
    return statement.on_conflict_do_update(
        index_elements=[I.c.artifact_id, I.c.checksum],
        set_={"mirrored": statement.excluded.mirrored})


def keep(writes: Writes, artifact_id: int, checksum: str, data: bytes, *,
         mirrored: bool) -> None:
    """Keep ``data`` (of ``checksum``) as a value of the artifact, in the transaction of
    ``writes``; ``mirrored``: its file is written in storage by the same commit."""
    run(writes.conn, _keep(writes.conn.dialect.name),
        {"artifact_id": artifact_id, "checksum": checksum, "data": data,
         "mirrored": mirrored, "created_at": writes.now})


def put_value(catalog: Catalog, namespace: str, key: str, file_name: str, data: bytes,
              checksum: str, metadata: Mapping[str, Any],
              record: Callable[[int], ObjectRecord], lineage: Edges | None = None,
              create: Callable[[Writes], None] | None = None
              ) -> tuple[bool, ObjectRecord | None]:
    """Make ``data`` the key's value in one transaction, when the key's object artifact
    holds a value kept here already in ``file_name`` alone: that file's row, the
    artifact's metadata (replaced by ``metadata``), its next version, the key's
    ``record(artifact id)``, the bytes and (``lineage``) the version as an output of
    the current run; or, when no artifact has the key's name, ``create(writes)`` in
    that transaction. Returns whether it did, and the record replaced; ``(False,
    None)`` with nothing written when the artifact path is needed (a user's artifact,
    other files, a value in a file)."""
    with catalog.locked([(namespace, key)]) as conn, catalog.writing(conn) as writes:
        rows = run(conn, _STATE, {"ns": namespace, "key": key})
        if not rows and create is not None:
            previous = objects.read_in(conn, namespace, key)  # one in cluster memory, say
            create(writes)
            return True, previous
        if len(rows) != 1:
            return False, None
        artifact_id, old_document, name, _, kept = rows[0][:5]
        previous = None if rows[0][6] is None else ObjectRecord(*rows[0][5:])
        if name != file_name or kept is None or previous is None \
                or previous.artifact_id != artifact_id:
            return False, None
        objects.update_in_place(conn, record(artifact_id), writes.now)
        document = _replace_metadata(writes, artifact_id, metadata_of(old_document), metadata)
        writes.write_files([(artifact_id, file_name, len(data), checksum, None, None)])
        if kept != checksum or document != old_document:
            keep(writes, artifact_id, checksum, data, mirrored=False)
        # else the same bytes and metadata again: the files in storage stay right (or are
        # pending still), so the row keeps its mirror state and nothing is rewritten.
        run(conn, _NEXT_VERSION, {"a": artifact_id, "now": writes.now, "doc": document})
        versions.snapshot(conn, [artifact_id], writes.now)
        if lineage is not None:
            lineage.write(conn, writes.now, [artifact_id])
    return True, previous


_NEXT_VERSION = update(A).where(A.c.id == bindparam("a")).values(
    version=A.c.version + 1, updated_at=bindparam("now"), metadata_json=bindparam("doc"))
"""What a commit does to the artifact's row (touched, its next version, its metadata
document), in one statement."""


def _replace_metadata(writes: Writes, artifact_id: int, old: dict[str, Any],
                      new: Mapping[str, Any]) -> str:
    """Make ``new`` the artifact's metadata rows (those that change); the metadata
    document, in the order the rows keep (kept keys where they were, new ones after)."""
    writes.set_metadata([(artifact_id, k, v) for k, v in new.items()
                         if k not in old or old[k] != v or type(old[k]) is not type(v)])
    writes.delete_metadata([(artifact_id, k) for k in old if k not in new])
    merged = {k: new[k] for k in old if k in new}
    merged.update(new)
    return metadata_document(merged)


# -- the mirror in the Flowdapt layout --------------------------------------------

_PENDING = (
    select(A.c.namespace, A.c.name)
    .select_from(I.join(F, and_(F.c.artifact_id == I.c.artifact_id,
                                F.c.checksum == I.c.checksum))
                 .join(A, A.c.id == I.c.artifact_id))
    .where(I.c.mirrored == false())
    .distinct().order_by(A.c.namespace, A.c.name))


def pending(catalog: Catalog, namespace: str | None = None) -> list[tuple[str, str]]:
    """The artifacts (namespace, name) whose current value is held here and not yet
    written to its file in storage."""
    query = _PENDING if namespace is None else _PENDING.where(A.c.namespace == namespace)
    with catalog.errors("find values to mirror"), catalog.engine.connect() as conn:
        return [(ns, name) for ns, name in conn.execute(query)]


_TO_MIRROR = (
    select(A.c.id, A.c.metadata_json, F.c.name, I.c.checksum, I.c.data)
    .select_from(A.join(F, F.c.artifact_id == A.c.id)
                 .join(I, and_(I.c.artifact_id == F.c.artifact_id,
                               I.c.checksum == F.c.checksum)))
    .where(A.c.namespace == bindparam("ns"), A.c.name == bindparam("name"),
           I.c.mirrored == false()))
_MIRRORED = update(I).where(I.c.artifact_id == bindparam("a"),
                            I.c.checksum == bindparam("c")).values(mirrored=true())


@dataclass(frozen=True)
class ToMirror:
    """What the storage of one artifact must be given: files (name, bytes) and the
    metadata of ``.artifact.json``."""

    artifact_id: int
    metadata: dict[str, Any]
    files: list[tuple[str, str, bytes]]
    """(file name, checksum, bytes)."""


def to_mirror(catalog: Catalog, namespace: str, name: str) -> ToMirror | None:
    """What is left to write of ``namespace/name`` as the catalog has it now (one
    statement: read again under the artifact's lock, the same answer means that
    nothing was committed to it meanwhile), if anything."""
    with catalog.errors("read values to mirror"), catalog.reader() as conn:
        rows = select_one(conn, _TO_MIRROR, {"ns": namespace, "name": name})
    if not rows:
        return None
    return ToMirror(rows[0][0], metadata_of(rows[0][1]),
                    [(row[2], row[3], bytes(row[4])) for row in rows])


def mark_mirrored(catalog: Catalog, conn: Connection, artifact_id: int,
                  checksums: list[str]) -> None:
    """Record that the files of ``checksums`` hold their bytes in storage, on ``conn``
    (from :meth:`~catalogstore.catalog.catalog.Catalog.locked`, still held: a put
    committed after the lock is released marks its bytes pending again)."""
    with catalog.errors("record a mirrored value"), locked_transaction(conn):
        run(conn, _MIRRORED, [{"a": artifact_id, "c": c} for c in checksums])
