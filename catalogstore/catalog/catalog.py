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
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
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
from catalogstore.catalog import versions
from catalogstore.catalog.collisions import (
    WrittenFiles,
    check_case_collisions,
    check_new_namespaces,
)
from catalogstore.catalog.direct import MAX_LIST, run, run_select, select_one
from catalogstore.catalog.engine import (
    DatabaseLock,
    artifact_lock,
    lock_key,
    locked_transaction,
    make_engine,
    pipeline,
    unpinged,
)
from catalogstore.catalog.migrate import ensure_schema
from catalogstore.catalog.models import ARTIFACTS as A
from catalogstore.catalog.models import FILES as F
from catalogstore.catalog.models import JOURNAL as J
from catalogstore.catalog.models import METADATA as M
from catalogstore.catalog.models import utcnow
from catalogstore.catalog.query.compile import Search
from catalogstore.errors import (
    ArtifactExistsError,
    CatalogError,
    CatalogStoreError,
    CommitOutcomeUnknownError,
)
from catalogstore.record import (
    ArtifactRecord,
    FileRecord,
    metadata_of,
    value_columns,
    value_from_columns,
)
from catalogstore.retry import attempts_made
from catalogstore.settings import redact_text, redact_url

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
        insert: Callable[..., Any]  # the dialect's, with ON CONFLICT
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
                   A.c.metadata_json)
            .where(A.c.namespace == bindparam("ns"), A.c.name == bindparam("name"))
        )
        file_columns = (F.c.name, F.c.size, F.c.checksum, F.c.encoding, F.c.created_at,
                        F.c.updated_at)
        self.list_files = select(*file_columns).where(
            F.c.artifact_id == bindparam("id")).order_by(F.c.name)
        # With the artifact's version: a read is an input of it (issue 16).
        self.get_file = select(*file_columns, A.c.version).select_from(
            F.join(A, A.c.id == F.c.artifact_id)).where(
            F.c.artifact_id == bindparam("id"), F.c.name == bindparam("name"))
        # An artifact's files, and whether it exists at all, in one statement.
        self.live_files = select(A.c.id, *file_columns).select_from(
            A.outerjoin(F, F.c.artifact_id == A.c.id)).where(
            A.c.id == bindparam("id")).order_by(F.c.name)
        self.artifact_exists = select(A.c.id).where(A.c.id == bindparam("id"))
        self.find_ids = select(A.c.id, A.c.name).where(
            A.c.namespace == bindparam("ns"), A.c.name.in_(_ids("names")))
        self.insert_artifacts = A.insert().returning(A.c.id, sort_by_parameter_order=True)
        # PostgreSQL: a taken name is a row not returned, not an error that would need a
        # savepoint (a round trip before and after) to keep the transaction usable.
        self.insert_new_artifacts = insert(A).on_conflict_do_nothing(
            index_elements=[A.c.namespace, A.c.name]).returning(A.c.id, A.c.namespace,
                                                                 A.c.name)
        self.touch = update(A).where(A.c.id.in_(_ids())).values(updated_at=bindparam("now"))
        self.write_documents = update(A).where(A.c.id == bindparam("a")).values(
            metadata_json=bindparam("doc"))
        self.delete_artifacts = [delete(M).where(M.c.artifact_id.in_(_ids())),
                                 delete(F).where(F.c.artifact_id.in_(_ids())),
                                 delete(A).where(A.c.id.in_(_ids()))]
        # inline(): no implicit RETURNING of the new row's id, which nothing reads (and
        # which PostgreSQL's pipeline would have to wait for).
        upsert_file = insert(F).inline()
        self.upsert_files = upsert_file.on_conflict_do_update(
            index_elements=[F.c.artifact_id, F.c.name],
            set_={"size": upsert_file.excluded.size, "checksum": upsert_file.excluded.checksum,
                  "encoding": upsert_file.excluded.encoding,
                  "updated_at": upsert_file.excluded.updated_at},
        )
        self.remove_files = delete(F).where(and_(F.c.artifact_id == bindparam("a"),
                                                 F.c.name == bindparam("n")))
        upsert_meta = insert(M).inline()
        self.upsert_meta = upsert_meta.on_conflict_do_update(
            index_elements=[M.c.artifact_id, M.c.key],
            set_={"value": upsert_meta.excluded.value, "number": upsert_meta.excluded.number,
                  "type": upsert_meta.excluded.type})
        self.delete_meta = delete(M).where(and_(M.c.artifact_id == bindparam("a"),
                                                M.c.key == bindparam("k")))
        metadata = select(M.c.artifact_id, M.c.key, M.c.type, M.c.value)
        self.read_metas = metadata.where(M.c.artifact_id.in_(_ids())).order_by(M.c.id)
        # Any number of ids as one parameter (an array; JSON text on SQLite).
        self.read_metas_many = metadata.where(many_ids).order_by(M.c.id)
        self.insert_journal = J.insert().returning(J.c.id, sort_by_parameter_order=True)
        self.delete_journal = delete(J).where(J.c.id.in_(_ids()))


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
        self.where = redact_url(self.engine.url)
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
            reason = redact_text((str(orig or exc).strip().splitlines()
                                  or [type(exc).__name__])[0])
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
            row = conn.execute(self._sql.get_artifact, {"ns": namespace, "name": name}).first()
        if row is None:
            return None
        return ArtifactRecord(row[0], row[1], row[2], row[3], row[4], metadata_of(row[5]))

    def search(self, search: Search) -> tuple[list[ArtifactRecord], str | None]:
        """Run a compiled search: one page of artifacts with their metadata, and the
        cursor of the next page (``None`` after the last one).

        Every listing runs here (``list_artifacts``, ``query_artifacts``, the CLI):
        the page comes from the one statement :meth:`Search.statement` compiles, each
        artifact with its metadata document (``artifacts.metadata_json``).
        """
        # One read transaction: the plan's counts and the page see one snapshot, and
        # its statements may take the direct path.
        with self.errors("search artifacts"), self.engine.connect() as conn, conn.begin():
            page = run_select(conn, search.statement(conn), {})
        more = search.limit is not None and len(page) > search.limit
        page = page[:search.limit] if more else page
        records = [ArtifactRecord(r[0], r[1], r[2], r[3], r[4], metadata_of(r[5]))
                   for r in page]
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

    def live_files(self, artifact_id: int) -> list[FileRecord] | None:
        """The files of the artifact ``artifact_id``, or ``None`` when it no longer exists
        (ids are never reused: a handle checks its artifact with it)."""
        with self.errors("list files"), self.reader() as conn:
            rows = select_one(conn, self._sql.live_files, {"id": artifact_id})
        if not rows:
            return None
        return [FileRecord(*row[1:]) for row in rows if row[1] is not None]

    def artifact_exists(self, artifact_id: int) -> bool:
        with self.errors("read an artifact"), self.reader() as conn:
            return bool(select_one(conn, self._sql.artifact_exists, {"id": artifact_id}))

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

    def journal(self) -> list[tuple[int, str, str, str]]:
        """The journal rows (id, namespace, name, payload) not yet forgotten, oldest
        first, as the database holds them: their reader checks them."""
        with self.errors("read the journal"), self.engine.connect() as conn:
            rows = conn.execute(select(J.c.id, J.c.namespace, J.c.name, J.c.payload)
                                .order_by(J.c.id)).all()
        return [tuple(row) for row in rows]

    # -- writes --------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self, artifacts: Iterable[tuple[str, str]]) -> Iterator[Connection]:
        """A connection holding the locks of ``artifacts`` (namespace, name pairs).

        Hold it from the commit until storage matches the catalog, so concurrent
        writers of one artifact apply their storage changes in commit order.
        """
        keys = [lock_key(namespace, name) for namespace, name in artifacts]
        with self.errors("lock artifacts"), self._write_connection() as conn, \
                artifact_lock(conn, keys, self._database_lock):
            yield conn

    def _write_connection(self) -> contextlib.AbstractContextManager[Connection]:
        """A writer connection: from the pool, or on a SQLite file this thread's own
        (made again once closed or invalidated)."""
        if self._kept is None:
            with unpinged():
                return self._writer.connect()
        return self._thread_connection("conn", self._writer)

    def reader(self) -> contextlib.AbstractContextManager[Connection]:
        """A connection for reads of one statement each (:func:`direct.select_one`): on a
        SQLite file this thread's own, kept between reads (a checkout from the pool
        costs more than a one-row SELECT, issue 19), never left in a transaction."""
        if self._kept is None:
            return self.engine.connect()
        return self._thread_connection("reader", self.engine)

    def _thread_connection(self, kind: str, engine: Engine) -> \
            contextlib.AbstractContextManager[Connection]:
        """This thread's kept connection ``kind`` of ``engine``, made again once closed or
        invalidated."""
        conn = getattr(self._kept, kind, None)
        if conn is None or conn.closed or conn.invalidated:
            conn = engine.connect()
            setattr(self._kept, kind, conn)
            with self._all_kept_lock:
                self._all_kept.add(conn)
        return contextlib.nullcontext(conn)

    @contextlib.contextmanager
    def writing(self, conn: Connection) -> Iterator[Writes]:
        """One database transaction on ``conn`` (from :meth:`locked`), committed when
        the block ends: the row-level statements of a commit.

        Journal rows marked applied are deleted first, in the same transaction. A
        connection lost while the COMMIT itself runs raises
        :class:`CommitOutcomeUnknownError` (see :meth:`errors`).
        """
        point = _CommitPoint()
        with self.errors("commit", point), locked_transaction(conn):
            pipeline(conn)
            for chunk in chunks(self._applied_journal, _CHUNK):
                run(conn, self._sql.delete_journal, {"ids": list(chunk)})
            yield Writes(self, conn)
            point.reached = True  # what fails from here on is the COMMIT itself
        self._applied_journal = []

    def mark_applied(self, journal_ids: Iterable[int]) -> None:
        """Forget journal rows whose storage changes are done (deleted with the next commit)."""
        self._applied_journal.extend(journal_ids)

    def forget_journal(self, journal_ids: Sequence[int]) -> None:
        with self.errors("clean the journal"), self.engine.begin() as conn:
            for chunk in chunks(list(journal_ids), _CHUNK):
                conn.execute(self._sql.delete_journal, {"ids": list(chunk)})

    def _read_metas(self, conn: Connection, artifact_ids: list[int]) -> dict[int, dict[str, Any]]:
        """The metadata of ``artifact_ids`` from their rows, keys in insertion order: what
        a commit rewrites ``.artifact.json`` and the metadata document from."""
        metas: dict[int, dict[str, Any]] = {i: {} for i in artifact_ids}
        if not artifact_ids:
            return metas
        # A few ids as an IN list, which the direct path runs prepared; more as one
        # parameter: no compiled form per list length, no limit on bound parameters.
        rows = run(conn, self._sql.read_metas, {"ids": artifact_ids}) \
            if len(artifact_ids) <= MAX_LIST else \
            run(conn, self._sql.read_metas_many, {"ids": self._sql.id_array(artifact_ids)})
        for artifact_id, key, kind, value in rows:
            metas[artifact_id][key] = value if kind == "string" else \
                value_from_columns(kind, value)
        return metas


class Writes:
    """The row-level statements of one write transaction (:meth:`Catalog.writing`).

    They take plain values (names, ids, file and metadata values, the journal's
    payload as text) and run in bulk, chunked under the databases' limits on bound
    parameters. ``now`` is the transaction's timestamp.
    """

    def __init__(self, catalog: Catalog, conn: Connection) -> None:
        self._catalog = catalog
        self._sql = catalog._sql
        self.conn = conn
        self.now = utcnow()

    def find_ids(self, names_by_ns: dict[str, list[str]]) -> dict[tuple[str, str], int]:
        """Artifact ids by (namespace, name), of those that exist."""
        found: dict[tuple[str, str], int] = {}
        for ns, names in names_by_ns.items():
            for chunk in chunks(names, _CHUNK):
                for artifact_id, name in run(self.conn, self._sql.find_ids,
                                             {"ns": ns, "names": list(chunk)}):
                    found[(ns, name)] = artifact_id
        return found

    def insert_artifacts(self, artifacts: Sequence[tuple[str, str, str]]) -> list[int]:
        """Insert the artifacts (namespace, name, metadata document) and return their ids
        in that order.

        Raises
        ------
        ArtifactExistsError
            naming one of them that exists already (the unique constraint decides,
            so concurrent creators cannot both win).
        """
        if self._catalog._is_pg:
            return self._insert_new_artifacts(artifacts)
        ids: list[int] = []
        try:
            for chunk in chunks(list(artifacts), _CHUNK):
                ids += [row[0] for row in run(self.conn, self._sql.insert_artifacts, [
                    {"namespace": ns, "name": name, "created_at": self.now,
                     "updated_at": self.now, "metadata_json": doc}
                    for ns, name, doc in chunk])]
        except IntegrityError:
            taken = defaultdict(list)
            for ns, name, _ in artifacts:
                taken[ns].append(name)
            ns, name = (sorted(self.find_ids(taken)) or [("?", "?")])[0]
            raise _exists(ns, name) from None
        return ids

    def _insert_new_artifacts(self, artifacts: Sequence[tuple[str, str, str]]) -> list[int]:
        """:meth:`insert_artifacts` on PostgreSQL: ``ON CONFLICT DO NOTHING``, and the
        names whose rows came back are the ones created (the unique constraint decides,
        waiting for a concurrent creator's transaction as an INSERT would)."""
        new: dict[tuple[str, str], int] = {}
        for chunk in chunks(list(artifacts), _CHUNK):
            for artifact_id, ns, name in run(self.conn, self._sql.insert_new_artifacts, [
                    {"namespace": ns, "name": name, "created_at": self.now,
                     "updated_at": self.now, "metadata_json": doc}
                    for ns, name, doc in chunk]):
                new[(ns, name)] = artifact_id
        names = [(ns, name) for ns, name, _ in artifacts]
        if len(new) != len(names):
            ns, name = sorted({a for a in names if a not in new} or set(names))[0]
            raise _exists(ns, name)
        return [new[a] for a in names]

    def delete_artifacts(self, artifact_ids: list[int]) -> None:
        """Delete artifacts with their files and metadata."""
        for chunk in chunks(artifact_ids, _CHUNK):
            for stmt in self._sql.delete_artifacts:
                run(self.conn, stmt, {"ids": list(chunk)})

    def touch(self, artifact_ids: list[int]) -> None:
        """Set the artifacts' ``updated_at`` to :attr:`now`."""
        for chunk in chunks(artifact_ids, _CHUNK):
            run(self.conn, self._sql.touch, {"ids": list(chunk), "now": self.now})

    def replaced_files(self, names: dict[int, Collection[str]]
                       ) -> dict[int, list[tuple[str, str]]]:
        """Of the files ``names`` (by artifact id), those committed: (name, checksum) by
        artifact id. Read before a commit replaces or removes them (issue 15)."""
        found: dict[int, list[tuple[str, str]]] = defaultdict(list)
        if not names:
            return found
        every = sorted({name for group in names.values() for name in group})
        for artifact_id, name, checksum in run(self.conn, versions.REPLACED, {
                "ids": list(names), "names": every}):
            if name in names[artifact_id]:
                found[artifact_id].append((name, checksum))
        return found

    def new_versions(self, bumped: list[int], versioned: list[int]) -> None:
        """Make the next version of the artifacts ``bumped`` current, then record the
        current rows of ``versioned`` (those and the new ones) as their versions."""
        for chunk in chunks(bumped, _CHUNK):
            run(self.conn, versions.BUMP, {"ids": list(chunk)})
        for chunk in chunks(versioned, _CHUNK):
            versions.snapshot(self.conn, list(chunk), self.now)

    def write_files(self, files: list[tuple[int, str, int, str, str | None, Any]]) -> None:
        """Insert or replace file rows: (artifact id, name, size, checksum, encoding,
        modified: ``updated_at`` when given, else :attr:`now`)."""
        if files:
            now = self.now
            run(self.conn, self._sql.upsert_files, [
                {"artifact_id": a, "name": n, "size": size, "checksum": checksum,
                 "encoding": encoding, "created_at": now, "updated_at": modified or now}
                for a, n, size, checksum, encoding, modified in files])

    def remove_files(self, files: list[tuple[int, str]]) -> None:
        """Delete file rows: (artifact id, name)."""
        if files:
            run(self.conn, self._sql.remove_files, [{"a": a, "n": n} for a, n in files])

    def set_metadata(self, pairs: list[tuple[int, str, Any]]) -> None:
        """Insert or replace metadata: (artifact id, key, checked JSON value)."""
        if pairs:
            rows = []
            for a, k, v in pairs:
                kind, text, number = value_columns(v)
                rows.append({"artifact_id": a, "key": k, "value": text, "number": number,
                             "type": kind})
            run(self.conn, self._sql.upsert_meta, rows)

    def write_documents(self, documents: list[tuple[int, str]]) -> None:
        """Set the metadata document of artifacts: (artifact id, JSON text)."""
        if documents:
            run(self.conn, self._sql.write_documents, [{"a": a, "doc": d} for a, d in documents])

    def delete_metadata(self, keys: list[tuple[int, str]]) -> None:
        """Delete metadata: (artifact id, key)."""
        if keys:
            run(self.conn, self._sql.delete_meta, [{"a": a, "k": k} for a, k in keys])

    def read_metadata(self, artifact_ids: list[int]) -> dict[int, dict[str, Any]]:
        """The metadata of each artifact, as this transaction sees it."""
        return self._catalog._read_metas(self.conn, artifact_ids)

    def add_journal(self, entries: list[tuple[str, str, str]]) -> list[int]:
        """Insert journal rows (namespace, name, payload text); their ids in that order."""
        if not entries:
            return []
        rows = run(self.conn, self._sql.insert_journal, [
            {"namespace": ns, "name": name, "created_at": self.now, "payload": payload}
            for ns, name, payload in entries])
        return [row[0] for row in rows]

    def check_case_collisions(self, created: dict[str, list[str]],
                              written: list[WrittenFiles]) -> None:
        """See :func:`~catalogstore.catalog.collisions.check_case_collisions`."""
        check_case_collisions(self.conn, created, written)

    def check_new_namespaces(self, created: dict[str, list[str]], deleted: set[str]) -> None:
        """See :func:`~catalogstore.catalog.collisions.check_new_namespaces`; call it last."""
        check_new_namespaces(self.conn, created, deleted)


def _exists(namespace: str, name: str) -> ArtifactExistsError:
    return ArtifactExistsError(f"artifact {name!r} already exists in namespace {namespace!r}")
