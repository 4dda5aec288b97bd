"""The catalog: every read and write of the catalog database goes through here.

Hot paths use SQLAlchemy Core with bulk statements (one statement for any
number of rows), so committing a batch of a thousand artifacts costs a handful
of round trips, not thousands.
"""

from __future__ import annotations

import contextlib
import json
import threading
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    and_,
    any_,
    bindparam,
    column,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError

from catalogstore.batching import chunks
from catalogstore.catalog.collisions import check_case_collisions, check_new_namespaces
from catalogstore.catalog.direct import MAX_LIST, run
from catalogstore.catalog.engine import DatabaseLock, artifact_lock, lock_key, make_engine
from catalogstore.catalog.migrate import ensure_schema
from catalogstore.catalog.models import ArtifactRow, FileRow, JournalRow, MetadataRow, utcnow
from catalogstore.catalog.query.compile import Search
from catalogstore.errors import (
    ArtifactExistsError,
    ArtifactNotFoundError,
    CatalogError,
    CatalogStoreError,
    CommitOutcomeUnknownError,
)
from catalogstore.record import ArtifactRecord, FileRecord, value_number
from catalogstore.retry import attempts_made
from catalogstore.settings import redact_url
from catalogstore.txn.changeset import Changeset
from catalogstore.txn.journal import JournalEntry, journal_payload, read_entry

A = ArtifactRow.__table__
F = FileRow.__table__
M = MetadataRow.__table__
J = JournalRow.__table__
# Bound parameters per statement stay under SQLite's limit (32766) and PostgreSQL's (65535).
_CHUNK = 5000


def _ids(name: str = "ids") -> Any:
    return bindparam(name, expanding=True)


class _Statements:
    """Every statement of the hot paths, built once per dialect.

    Building SQLAlchemy constructs costs more than executing them on SQLite;
    prebuilt statements with bound parameters hit the compiled cache directly.
    """

    def __init__(self, dialect: str) -> None:
        # Import only the dialect in use: PostgreSQL's costs a worker 50 ms to load.
        many_ids: Any
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import ARRAY, insert

            many_ids = M.c.artifact_id == any_(bindparam("ids", type_=ARRAY(BigInteger)))
            self.id_array: Callable[[list[int]], Any] = list
        else:
            from sqlalchemy.dialects.sqlite import insert

            many_ids = M.c.artifact_id.in_(select(column("value")).select_from(
                func.json_each(bindparam("ids"))))
            self.id_array = json.dumps
        self.get_artifact = (
            select(A.c.id, A.c.namespace, A.c.name, A.c.created_at, A.c.updated_at,
                   M.c.key, M.c.value)
            .outerjoin(M, M.c.artifact_id == A.c.id)
            .where(A.c.namespace == bindparam("ns"), A.c.name == bindparam("name"))
        )
        file_columns = (F.c.name, F.c.size, F.c.checksum, F.c.encoding, F.c.created_at,
                        F.c.updated_at)
        self.list_files = select(*file_columns).where(
            F.c.artifact_id == bindparam("id")).order_by(F.c.name)
        self.get_file = select(*file_columns).where(
            F.c.artifact_id == bindparam("id"), F.c.name == bindparam("name"))
        self.find_ids = select(A.c.id, A.c.name).where(
            A.c.namespace == bindparam("ns"), A.c.name.in_(_ids("names")))
        self.insert_artifacts = A.insert().returning(A.c.id, sort_by_parameter_order=True)
        self.touch = update(A).where(A.c.id.in_(_ids())).values(updated_at=bindparam("now"))
        self.delete_artifacts = [delete(M).where(M.c.artifact_id.in_(_ids())),
                                 delete(F).where(F.c.artifact_id.in_(_ids())),
                                 delete(A).where(A.c.id.in_(_ids()))]
        upsert_file = insert(F)
        self.upsert_files = upsert_file.on_conflict_do_update(
            index_elements=[F.c.artifact_id, F.c.name],
            set_={"size": upsert_file.excluded.size, "checksum": upsert_file.excluded.checksum,
                  "encoding": upsert_file.excluded.encoding,
                  "updated_at": upsert_file.excluded.updated_at},
        )
        self.remove_files = delete(F).where(and_(F.c.artifact_id == bindparam("a"),
                                                 F.c.name == bindparam("n")))
        upsert_meta = insert(M)
        self.upsert_meta = upsert_meta.on_conflict_do_update(
            index_elements=[M.c.artifact_id, M.c.key],
            set_={"value": upsert_meta.excluded.value, "number": upsert_meta.excluded.number})
        self.delete_meta = delete(M).where(and_(M.c.artifact_id == bindparam("a"),
                                                M.c.key == bindparam("k")))
        metadata = select(M.c.artifact_id, M.c.key, M.c.value)
        self.read_metas = metadata.where(M.c.artifact_id.in_(_ids()))
        # Any number of ids as one parameter (an array; JSON text on SQLite).
        self.read_metas_many = metadata.where(many_ids)
        self.insert_journal = J.insert().returning(J.c.id, sort_by_parameter_order=True)
        self.delete_journal = delete(J).where(J.c.id.in_(_ids()))


@dataclass(frozen=True)
class Committed:
    """What a commit did for one changeset, for the storage step that follows it."""

    changeset: Changeset
    artifact_id: int
    metadata: dict[str, str] | None
    """The artifact's full metadata after the commit, when ``.artifact.json`` must change."""
    journal_id: int | None
    created: ArtifactRecord | None = None
    """The new catalog entry, for a changeset that created its artifact."""


class _CommitPoint:
    """Whether a transaction's body is done, so that a failure is its COMMIT's."""

    reached = False


def _connection_lost(exc: SQLAlchemyError) -> bool:
    return isinstance(exc, DBAPIError) and (exc.connection_invalidated
                                            or isinstance(exc, OperationalError))


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
        self.where = self.engine.url.render_as_string(hide_password=True)
        """The database as error messages name it (without its password)."""
        self._sql = _Statements(self.engine.dialect.name)
        self._is_pg = self.engine.dialect.name == "postgresql"
        # Writers: connections whose transactions take SQLite's write lock at BEGIN,
        # and the lock they queue on before it.
        self._writer = self.engine.execution_options(catalogstore_write=True)
        self._database_lock = None if self._is_pg else DatabaseLock(self.engine.url)
        # On a SQLite file each thread keeps its writer connection between commits:
        # checking one out of the pool and back cost ~30 us, a sixth of a small commit.
        self._kept = threading.local() if self._database_lock and self._database_lock.path \
            else None
        self._all_kept: weakref.WeakSet[Connection] = weakref.WeakSet()
        self._all_kept_lock = threading.Lock()
        self._applied_journal: list[int] = []
        try:
            with self.errors("open"):
                ensure_schema(self.engine)
        except BaseException:
            self.engine.dispose()
            raise

    def __repr__(self) -> str:
        return f"Catalog({redact_url(self.url)!r})"

    @contextlib.contextmanager
    def errors(self, doing: str, point: _CommitPoint | None = None) -> Iterator[None]:
        """Translate database failures into :class:`CatalogError` naming the database.

        With ``point``: once ``point.reached`` (the failure is the COMMIT's), a lost
        connection leaves the outcome unknown and raises :class:`CommitOutcomeUnknownError`.
        """
        try:
            yield
        except CatalogStoreError:
            raise
        except SQLAlchemyError as exc:
            orig = getattr(exc, "orig", None)
            reason = (str(orig or exc).strip().splitlines() or [type(exc).__name__])[0]
            if point is not None and point.reached and self._is_pg and _connection_lost(exc):
                raise CommitOutcomeUnknownError(
                    f"catalog {self.where}: the connection was lost while committing ({reason}): "
                    "the change is either wholly committed or absent; its staged files were "
                    "kept, and `catalogstore verify --repair` completes it if it "
                    "committed") from exc
            attempts = attempts_made(orig)
            tries = f" ({attempts} attempts)" if attempts > 1 else ""
            raise CatalogError(f"catalog {self.where}: could not {doing}{tries}: "
                               f"{reason}") from exc

    def dispose(self) -> None:
        """Forget applied journal rows, then close the database connections."""
        if self._applied_journal:
            # Rows left behind (database unreachable) are harmless: recovery
            # finds their changes applied already.
            with contextlib.suppress(CatalogError):
                self.forget_journal(self._applied_journal)
            self._applied_journal = []
        with self._all_kept_lock:
            kept = list(self._all_kept)  # a dead thread's went back to the pool with it
        for conn in kept:
            with contextlib.suppress(SQLAlchemyError):
                conn.close()
        self.engine.dispose()

    # -- reads ---------------------------------------------------------------

    def get_artifact(self, namespace: str, name: str) -> ArtifactRecord | None:
        with self.errors("read an artifact"), self.engine.connect() as conn:
            rows = conn.execute(self._sql.get_artifact, {"ns": namespace, "name": name}).all()
        if not rows:
            return None
        first = rows[0]
        meta = {row.key: row.value for row in rows if row.key is not None}
        return ArtifactRecord(first.id, first.namespace, first.name, first.created_at,
                              first.updated_at, meta)

    def search(self, search: Search) -> tuple[list[ArtifactRecord], str | None]:
        """Run a compiled search: one page of artifacts with their metadata, and the
        cursor of the next page (``None`` after the last one).

        Every listing runs here (``list_artifacts``, ``query_artifacts``, the CLI):
        the page comes from the one statement :meth:`Search.statement` compiles, and
        :meth:`_read_metas` attaches the metadata.
        """
        # One read transaction: the plan's counts, the page and its metadata see one
        # snapshot, and its statements may take the direct path.
        with self.errors("search artifacts"), self.engine.connect() as conn, conn.begin():
            page = conn.execute(search.statement(conn)).all()
            more = search.limit is not None and len(page) > search.limit
            page = page[:search.limit] if more else page
            metas = self._read_metas(conn, [row[0] for row in page])
        records = [ArtifactRecord(r[0], r[1], r[2], r[3], r[4], metas[r[0]]) for r in page]
        return records, search.cursor(page[-1]) if more else None

    def list_namespaces(self) -> list[tuple[str, int]]:
        """Every namespace with its number of artifacts."""
        with self.errors("list namespaces"), self.engine.connect() as conn:
            rows = conn.execute(select(A.c.namespace, func.count()).group_by(A.c.namespace)
                                .order_by(A.c.namespace)).all()
        return [(ns, count) for ns, count in rows]

    def list_files(self, artifact_id: int) -> list[FileRecord]:
        with self.errors("list files"), self.engine.connect() as conn:
            rows = conn.execute(self._sql.list_files, {"id": artifact_id}).all()
        return [FileRecord(*row) for row in rows]

    def file_totals(self, artifact_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
        """(number of files, total bytes) by artifact id; artifacts without files are absent."""
        totals: dict[int, tuple[int, int]] = {}
        with self.errors("count files"), self.engine.connect() as conn:
            for chunk in chunks(list(artifact_ids), _CHUNK):
                for artifact_id, count, size in conn.execute(
                        select(F.c.artifact_id, func.count(), func.sum(F.c.size))
                        .where(F.c.artifact_id.in_(chunk)).group_by(F.c.artifact_id)):
                    totals[artifact_id] = (count, int(size))
        return totals

    def get_file(self, artifact_id: int, name: str) -> FileRecord | None:
        with self.errors("read a file record"), self.engine.connect() as conn:
            row = conn.execute(self._sql.get_file, {"id": artifact_id, "name": name}).first()
        return FileRecord(*row) if row else None

    def journal(self) -> list[JournalEntry]:
        """Storage changes committed but not yet marked applied, each checked
        (:func:`~catalogstore.journal.read_entry`: a row edited by hand is refused)."""
        with self.errors("read the journal"), self.engine.connect() as conn:
            rows = conn.execute(select(J.c.id, J.c.namespace, J.c.name, J.c.payload)
                                .order_by(J.c.id)).all()
        return [read_entry(i, ns, n, p) for i, ns, n, p in rows]

    # -- writes --------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self, changesets: Iterable[Changeset]) -> Iterator[Connection]:
        """A connection holding the locks of the artifacts of ``changesets``.

        Hold it from the commit until storage matches the catalog, so concurrent
        writers of one artifact apply their storage changes in commit order.
        """
        keys = [lock_key(cs.namespace, cs.name) for cs in changesets]
        with self.errors("lock artifacts"), self._write_connection() as conn, \
                artifact_lock(conn, keys, self._database_lock):
            yield conn

    def _write_connection(self) -> contextlib.AbstractContextManager[Connection]:
        """A writer connection: from the pool, or on a SQLite file this thread's own
        (made again once closed or invalidated)."""
        if self._kept is None:
            return self._writer.connect()
        conn = getattr(self._kept, "conn", None)
        if conn is None or conn.closed or conn.invalidated:
            conn = self._kept.conn = self._writer.connect()
            with self._all_kept_lock:
                self._all_kept.add(conn)
        return contextlib.nullcontext(conn)

    def commit(self, conn: Connection, changesets: Sequence[Changeset], *,
               journal: bool = True) -> list[Committed]:
        """Apply ``changesets`` to the catalog in one database transaction.

        The commit of this transaction is the commit point of the changes: the
        journal rows it writes let a crash after it be rolled forward. With
        ``journal=False`` no storage step follows (``reindex`` records what storage
        already holds), so there is nothing to roll forward and no row is written.
        """
        sql = self._sql
        point = _CommitPoint()
        with self.errors("commit", point), conn.begin():
            for chunk in chunks(self._applied_journal, _CHUNK):
                run(conn, sql.delete_journal, {"ids": list(chunk)})
            now = utcnow()
            ids = self._resolve_ids(conn, changesets, now)
            if journal:  # reindex records the folders storage has, even case variants
                check_case_collisions(conn, changesets, ids)
            live = [cs for cs in changesets if not cs.delete]
            for chunk in chunks([ids[id(cs)] for cs in changesets if cs.delete], _CHUNK):
                for stmt in sql.delete_artifacts:
                    run(conn, stmt, {"ids": list(chunk)})
            for chunk in chunks([ids[id(cs)] for cs in live if not cs.create], _CHUNK):
                run(conn, sql.touch, {"ids": list(chunk), "now": now})
            self._write_rows(conn, ids, live, now)
            # A new artifact's metadata is exactly what the changeset sets: no read needed.
            metas = self._read_metas(
                conn, [ids[id(cs)] for cs in live if cs.touches_metadata and not cs.create])
            journal_ids = self._write_journal(conn, ids, changesets, now) \
                if journal else {}
            if journal:  # last: on PostgreSQL it locks the namespaces until the commit
                check_new_namespaces(conn, changesets)
            point.reached = True  # what fails from here on is the COMMIT itself
        self._applied_journal = []
        committed = []
        for cs in changesets:
            artifact_id = ids[id(cs)]
            meta = dict(cs.meta_set) if cs.create else metas.get(artifact_id)
            created = ArtifactRecord(artifact_id, cs.namespace, cs.name, now, now,
                                     dict(cs.meta_set)) if cs.create else None
            committed.append(Committed(cs, artifact_id, None if cs.delete else meta,
                                       journal_ids.get(id(cs)), created))
        return committed

    def mark_applied(self, journal_ids: Iterable[int]) -> None:
        """Forget journal rows whose storage changes are done (deleted with the next commit)."""
        self._applied_journal.extend(journal_ids)

    def forget_journal(self, journal_ids: Sequence[int]) -> None:
        with self.errors("clean the journal"), self.engine.begin() as conn:
            for chunk in chunks(list(journal_ids), _CHUNK):
                conn.execute(self._sql.delete_journal, {"ids": list(chunk)})

    def _resolve_ids(self, conn: Connection, changesets: Sequence[Changeset],
                     now: Any) -> dict[int, int]:
        """Artifact ids by ``id(changeset)``, inserting the artifacts to create."""
        ids: dict[int, int] = {}
        existing = [cs for cs in changesets if not cs.create]
        by_ns: dict[str, list[str]] = defaultdict(list)
        for cs in existing:
            by_ns[cs.namespace].append(cs.name)
        found = self._find_ids(conn, by_ns)
        for cs in existing:
            if (cs.namespace, cs.name) not in found:
                raise ArtifactNotFoundError(
                    f"artifact {cs.name!r} does not exist in namespace {cs.namespace!r} "
                    "(deleted by someone else?)")
            ids[id(cs)] = found[(cs.namespace, cs.name)]
        to_create = [cs for cs in changesets if cs.create]
        try:
            # A savepoint keeps the transaction usable on PostgreSQL after a conflict.
            with conn.begin_nested() if to_create and self._is_pg else contextlib.nullcontext():
                for chunk in chunks(to_create, _CHUNK):
                    rows = run(conn, self._sql.insert_artifacts, [
                        {"namespace": cs.namespace, "name": cs.name, "created_at": now,
                         "updated_at": now} for cs in chunk])
                    for cs, row in zip(chunk, rows, strict=True):
                        ids[id(cs)] = row[0]
        except IntegrityError:
            # The unique (namespace, name) constraint decided: name who is there.
            taken = defaultdict(list)
            for cs in to_create:
                taken[cs.namespace].append(cs.name)
            clash = sorted(self._find_ids(conn, taken)) or [("?", "?")]
            ns, name = clash[0]
            raise ArtifactExistsError(
                f"artifact {name!r} already exists in namespace {ns!r}") from None
        return ids

    def _find_ids(self, conn: Connection, names_by_ns: dict[str, list[str]]
                  ) -> dict[tuple[str, str], int]:
        found: dict[tuple[str, str], int] = {}
        for ns, names in names_by_ns.items():
            for chunk in chunks(names, _CHUNK):
                for artifact_id, name in run(conn, self._sql.find_ids,
                                             {"ns": ns, "names": list(chunk)}):
                    found[(ns, name)] = artifact_id
        return found

    def _write_rows(self, conn: Connection, ids: dict[int, int], live: list[Changeset],
                    now: Any) -> None:
        sql = self._sql
        files = [{"artifact_id": ids[id(cs)], "name": name, "size": f.size,
                  "checksum": f.checksum, "encoding": f.encoding, "created_at": now,
                  "updated_at": f.modified or now}
                 for cs in live for name, f in cs.writes.items()]
        if files:
            run(conn, sql.upsert_files, files)
        removes = [{"a": ids[id(cs)], "n": name} for cs in live for name in cs.removes]
        if removes:
            run(conn, sql.remove_files, removes)
        meta = [{"artifact_id": ids[id(cs)], "key": k, "value": v, "number": value_number(v)}
                for cs in live for k, v in cs.meta_set.items()]
        if meta:
            run(conn, sql.upsert_meta, meta)
        meta_dels = [{"a": ids[id(cs)], "k": k} for cs in live for k in cs.meta_del]
        if meta_dels:
            run(conn, sql.delete_meta, meta_dels)

    def _read_metas(self, conn: Connection, artifact_ids: list[int]) -> dict[int, dict[str, str]]:
        """The metadata of ``artifact_ids``: the one loader of listings and commits."""
        metas: dict[int, dict[str, str]] = {i: {} for i in artifact_ids}
        if not artifact_ids:
            return metas
        # A few ids as an IN list, which the direct path runs prepared; more as one
        # parameter: no compiled form per list length, no limit on bound parameters.
        rows = run(conn, self._sql.read_metas, {"ids": artifact_ids}) \
            if len(artifact_ids) <= MAX_LIST else \
            run(conn, self._sql.read_metas_many, {"ids": self._sql.id_array(artifact_ids)})
        for artifact_id, key, value in rows:
            metas[artifact_id][key] = value
        return metas

    def _write_journal(self, conn: Connection, ids: dict[int, int],
                       changesets: Sequence[Changeset], now: Any) -> dict[int, int]:
        """Journal the changesets whose storage change is more than a metadata rewrite.

        A lost ``.artifact.json`` rewrite is repaired from the catalog by
        ``verify --repair``; staged files need the journal to be found again.
        """
        needing = [cs for cs in changesets
                   if cs.writes or cs.removes or cs.delete or cs.staged_folder]
        if not needing:
            return {}
        rows = run(conn, self._sql.insert_journal, [
            {"namespace": cs.namespace, "name": cs.name, "created_at": now,
             "payload": json.dumps(journal_payload(cs))} for cs in needing])
        return {id(cs): row[0] for cs, row in zip(needing, rows, strict=True)}

