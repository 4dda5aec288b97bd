"""The catalog: every read and write of the catalog database goes through here.

Hot paths use SQLAlchemy Core with bulk statements (one statement for any
number of rows), so committing a batch of a thousand artifacts costs a handful
of round trips, not thousands.
"""

from __future__ import annotations

import contextlib
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from catalogstore.catalog.engine import artifact_lock, lock_key, make_engine
from catalogstore.catalog.migrate import ensure_schema
from catalogstore.catalog.models import ArtifactRow, FileRow, JournalRow, MetadataRow, utcnow
from catalogstore.changes import Changeset
from catalogstore.errors import (
    ArtifactExistsError,
    ArtifactNotFoundError,
    CatalogError,
    CatalogStoreError,
)
from catalogstore.record import ArtifactRecord, FileRecord
from catalogstore.settings import redact_url

A = ArtifactRow.__table__
F = FileRow.__table__
M = MetadataRow.__table__
J = JournalRow.__table__
# Bound parameters per statement stay under SQLite's limit (32766) and PostgreSQL's (65535).
_CHUNK = 5000


@dataclass(frozen=True)
class Committed:
    """What a commit did for one changeset, for the storage step that follows it."""

    changeset: Changeset
    artifact_id: int
    metadata: dict[str, str] | None
    """The artifact's full metadata after the commit, when ``.artifact.json`` must change."""
    journal_id: int | None


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class Catalog:
    """The SQL catalog of one database URL.

    Parameters
    ----------
    url
        SQLAlchemy URL of a SQLite or PostgreSQL database.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = make_engine(url)
        self._insert = postgresql.insert if self.engine.dialect.name == "postgresql" \
            else sqlite.insert
        self._applied_journal: list[int] = []
        with self.errors("open"):
            ensure_schema(self.engine)

    def __repr__(self) -> str:
        return f"Catalog({redact_url(self.url)!r})"

    @contextlib.contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        """Translate database failures into :class:`CatalogError` naming the database."""
        try:
            yield
        except CatalogStoreError:
            raise
        except SQLAlchemyError as exc:
            where = self.engine.url.render_as_string(hide_password=True)
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise CatalogError(f"catalog {where}: could not {doing}: {reason}") from exc

    def dispose(self) -> None:
        """Forget applied journal rows, then close the database connections."""
        if self._applied_journal:
            # Rows left behind (database unreachable) are harmless: recovery
            # finds their changes applied already.
            with contextlib.suppress(CatalogError):
                self.forget_journal(self._applied_journal)
            self._applied_journal = []
        self.engine.dispose()

    # -- reads ---------------------------------------------------------------

    def get_artifact(self, namespace: str, name: str) -> ArtifactRecord | None:
        with self.errors("read an artifact"), self.engine.connect() as conn:
            row = conn.execute(
                select(A).where(A.c.namespace == namespace, A.c.name == name)
            ).first()
            if row is None:
                return None
            meta = dict(conn.execute(
                select(M.c.key, M.c.value).where(M.c.artifact_id == row.id)
            ).all())
        return ArtifactRecord(row.id, row.namespace, row.name, row.created_at,
                              row.updated_at, meta)

    def list_artifacts(self, namespace: str | None,
                       where: dict[str, str] | None = None) -> list[ArtifactRecord]:
        """Artifacts of ``namespace`` (all when ``None``) whose metadata has every pair of
        ``where``, ordered by namespace and name, each with its metadata."""
        query = select(A)
        if namespace is not None:
            query = query.where(A.c.namespace == namespace)
        for key, value in (where or {}).items():
            query = query.where(select(M.c.id).where(
                M.c.artifact_id == A.c.id, M.c.key == key, M.c.value == value).exists())
        query = query.order_by(A.c.namespace, A.c.name)
        with self.errors("list artifacts"), self.engine.connect() as conn:
            rows = conn.execute(query).all()
            metas: dict[int, dict[str, str]] = defaultdict(dict)
            meta_query = select(M.c.artifact_id, M.c.key, M.c.value).join(
                A, A.c.id == M.c.artifact_id)
            if len(rows) > _CHUNK:
                # Large listings: one scan of the namespace beats many IN lists.
                if namespace is not None:
                    meta_query = meta_query.where(A.c.namespace == namespace)
                batches: Iterable[Any] = [conn.execute(meta_query)]
            else:
                batches = [conn.execute(meta_query.where(
                    M.c.artifact_id.in_([r.id for r in rows])))] if rows else []
            for result in batches:
                for artifact_id, key, value in result:
                    metas[artifact_id][key] = value
        return [ArtifactRecord(r.id, r.namespace, r.name, r.created_at, r.updated_at,
                               metas.get(r.id, {})) for r in rows]

    def list_namespaces(self) -> list[tuple[str, int]]:
        """Every namespace with its number of artifacts."""
        with self.errors("list namespaces"), self.engine.connect() as conn:
            rows = conn.execute(select(A.c.namespace, func.count()).group_by(A.c.namespace)
                                .order_by(A.c.namespace)).all()
        return [(ns, count) for ns, count in rows]

    def list_files(self, artifact_id: int) -> list[FileRecord]:
        with self.errors("list files"), self.engine.connect() as conn:
            rows = conn.execute(
                select(F.c.name, F.c.size, F.c.checksum, F.c.encoding, F.c.created_at,
                       F.c.updated_at).where(F.c.artifact_id == artifact_id).order_by(F.c.name)
            ).all()
        return [FileRecord(*row) for row in rows]

    def get_file(self, artifact_id: int, name: str) -> FileRecord | None:
        with self.errors("read a file record"), self.engine.connect() as conn:
            row = conn.execute(
                select(F.c.name, F.c.size, F.c.checksum, F.c.encoding, F.c.created_at,
                       F.c.updated_at).where(F.c.artifact_id == artifact_id, F.c.name == name)
            ).first()
        return FileRecord(*row) if row else None

    def get_meta(self, artifact_id: int) -> dict[str, str]:
        with self.errors("read metadata"), self.engine.connect() as conn:
            return dict(conn.execute(
                select(M.c.key, M.c.value).where(M.c.artifact_id == artifact_id)).all())

    def journal(self) -> list[tuple[int, str, str, dict[str, Any]]]:
        """Storage changes committed but not yet marked applied: (id, namespace, name, payload)."""
        with self.errors("read the journal"), self.engine.connect() as conn:
            rows = conn.execute(select(J.c.id, J.c.namespace, J.c.name, J.c.payload)
                                .order_by(J.c.id)).all()
        return [(i, ns, n, json.loads(p)) for i, ns, n, p in rows]

    # -- writes --------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self, changesets: Iterable[Changeset]) -> Iterator[Connection]:
        """A connection holding the locks of the artifacts of ``changesets``.

        Hold it from the commit until storage matches the catalog, so concurrent
        writers of one artifact apply their storage changes in commit order.
        """
        keys = [lock_key(cs.namespace, cs.name) for cs in changesets]
        with self.errors("lock artifacts"), self.engine.connect() as conn:
            conn = conn.execution_options(catalogstore_write=True)
            with artifact_lock(conn, keys):
                yield conn

    def commit(self, conn: Connection, changesets: Sequence[Changeset]) -> list[Committed]:
        """Apply ``changesets`` to the catalog in one database transaction.

        The commit of this transaction is the commit point of the changes: the
        journal rows it writes let a crash after it be rolled forward.
        """
        with self.errors("commit"), conn.begin():
            done = self._applied_journal
            if done:
                for chunk in _chunks(done):
                    conn.execute(delete(J).where(J.c.id.in_(chunk)))
            ids = self._resolve_ids(conn, changesets)
            now = utcnow()
            live = [cs for cs in changesets if not cs.delete]
            self._delete_artifacts(conn, [ids[id(cs)] for cs in changesets if cs.delete])
            self._touch(conn, [ids[id(cs)] for cs in live if not cs.create], now)
            self._write_files(conn, ids, live, now)
            self._write_meta(conn, ids, live)
            metas = self._read_metas(conn, [ids[id(cs)] for cs in live if cs.touches_metadata])
            journal = self._write_journal(conn, ids, changesets)
            committed = [
                Committed(cs, ids[id(cs)], metas.get(ids[id(cs)], {})
                          if cs.touches_metadata and not cs.delete else None,
                          journal.get(id(cs)))
                for cs in changesets
            ]
        self._applied_journal = []
        return committed

    def mark_applied(self, journal_ids: Iterable[int]) -> None:
        """Forget journal rows whose storage changes are done (deleted with the next commit)."""
        self._applied_journal.extend(journal_ids)

    def forget_journal(self, journal_ids: Sequence[int]) -> None:
        with self.errors("clean the journal"), self.engine.begin() as conn:
            for chunk in _chunks(list(journal_ids)):
                conn.execute(delete(J).where(J.c.id.in_(chunk)))

    def _resolve_ids(self, conn: Connection, changesets: Sequence[Changeset]) -> dict[int, int]:
        """Artifact ids by ``id(changeset)``, inserting the artifacts to create."""
        ids: dict[int, int] = {}
        by_ns: dict[str, dict[str, Changeset]] = defaultdict(dict)
        for cs in changesets:
            by_ns[cs.namespace][cs.name] = cs
        found: dict[tuple[str, str], int] = {}
        for ns, named in by_ns.items():
            for chunk in _chunks(list(named)):
                for row in conn.execute(select(A.c.id, A.c.name).where(
                        A.c.namespace == ns, A.c.name.in_(chunk))):
                    found[(ns, row.name)] = row.id
        to_create = [cs for cs in changesets if cs.create]
        for cs in to_create:
            if (cs.namespace, cs.name) in found:
                raise ArtifactExistsError(
                    f"artifact {cs.name!r} already exists in namespace {cs.namespace!r}")
        for cs in changesets:
            if not cs.create and (cs.namespace, cs.name) not in found:
                raise ArtifactNotFoundError(
                    f"artifact {cs.name!r} does not exist in namespace {cs.namespace!r} "
                    "(deleted by someone else?)")
            if not cs.create:
                ids[id(cs)] = found[(cs.namespace, cs.name)]
        if to_create:
            now = utcnow()
            try:
                for chunk in _chunks(to_create):
                    rows = conn.execute(
                        A.insert().returning(A.c.id, A.c.namespace, A.c.name,
                                             sort_by_parameter_order=True),
                        [{"namespace": cs.namespace, "name": cs.name, "created_at": now,
                          "updated_at": now} for cs in chunk],
                    ).all()
                    for cs, row in zip(chunk, rows, strict=True):
                        ids[id(cs)] = row.id
            except IntegrityError:
                # Another process created one of them between our check and insert.
                names = ", ".join(f"{cs.namespace}/{cs.name}" for cs in to_create[:3])
                raise ArtifactExistsError(f"artifact already exists: {names}") from None
        return ids

    def _delete_artifacts(self, conn: Connection, artifact_ids: list[int]) -> None:
        # Children first: SQLite enforces ON DELETE CASCADE only with the pragma on,
        # and explicit deletes keep the order obvious on both databases.
        for chunk in _chunks(artifact_ids):
            conn.execute(delete(M).where(M.c.artifact_id.in_(chunk)))
            conn.execute(delete(F).where(F.c.artifact_id.in_(chunk)))
            conn.execute(delete(A).where(A.c.id.in_(chunk)))

    def _touch(self, conn: Connection, artifact_ids: list[int], now: Any) -> None:
        for chunk in _chunks(artifact_ids):
            conn.execute(update(A).where(A.c.id.in_(chunk)).values(updated_at=now))

    def _write_files(self, conn: Connection, ids: dict[int, int], live: list[Changeset],
                     now: Any) -> None:
        rows = [{"artifact_id": ids[id(cs)], "name": name, "size": f.size,
                 "checksum": f.checksum, "encoding": f.encoding, "created_at": now,
                 "updated_at": now}
                for cs in live for name, f in cs.writes.items()]
        if rows:
            stmt = self._insert(F)
            stmt = stmt.on_conflict_do_update(
                index_elements=[F.c.artifact_id, F.c.name],
                set_={"size": stmt.excluded.size, "checksum": stmt.excluded.checksum,
                      "encoding": stmt.excluded.encoding, "updated_at": stmt.excluded.updated_at},
            )
            conn.execute(stmt, rows)
        removes = [{"a": ids[id(cs)], "n": name} for cs in live for name in cs.removes]
        if removes:
            conn.execute(delete(F).where(and_(F.c.artifact_id == bindparam("a"),
                                              F.c.name == bindparam("n"))), removes)

    def _write_meta(self, conn: Connection, ids: dict[int, int], live: list[Changeset]) -> None:
        rows = [{"artifact_id": ids[id(cs)], "key": k, "value": v}
                for cs in live for k, v in cs.meta_set.items()]
        if rows:
            stmt = self._insert(M)
            stmt = stmt.on_conflict_do_update(index_elements=[M.c.artifact_id, M.c.key],
                                              set_={"value": stmt.excluded.value})
            conn.execute(stmt, rows)
        dels = [{"a": ids[id(cs)], "k": k} for cs in live for k in cs.meta_del]
        if dels:
            conn.execute(delete(M).where(and_(M.c.artifact_id == bindparam("a"),
                                              M.c.key == bindparam("k"))), dels)

    def _read_metas(self, conn: Connection, artifact_ids: list[int]) -> dict[int, dict[str, str]]:
        metas: dict[int, dict[str, str]] = {i: {} for i in artifact_ids}
        for chunk in _chunks(artifact_ids):
            for artifact_id, key, value in conn.execute(
                    select(M.c.artifact_id, M.c.key, M.c.value).where(
                        M.c.artifact_id.in_(chunk))):
                metas[artifact_id][key] = value
        return metas

    def _write_journal(self, conn: Connection, ids: dict[int, int],
                       changesets: Sequence[Changeset]) -> dict[int, int]:
        """Journal the changesets whose storage change is more than a metadata rewrite.

        A lost ``.artifact.json`` rewrite is repaired from the catalog by
        ``verify --repair``; staged files need the journal to be found again.
        """
        needing = [cs for cs in changesets if cs.writes or cs.removes or cs.delete]
        if not needing:
            return {}
        now = utcnow()
        rows = conn.execute(
            J.insert().returning(J.c.id, sort_by_parameter_order=True),
            [{"namespace": cs.namespace, "name": cs.name, "created_at": now,
              "payload": json.dumps(journal_payload(cs))} for cs in needing],
        ).all()
        return {id(cs): row.id for cs, row in zip(needing, rows, strict=True)}


def journal_payload(cs: Changeset) -> dict[str, Any]:
    """The storage half of a changeset, as the journal keeps it."""
    return {
        "moves": [[f.path, name, f.checksum] for name, f in cs.writes.items()],
        "removes": sorted(cs.removes),
        "delete": cs.delete,
    }
