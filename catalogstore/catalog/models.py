"""The catalog's tables: a public interface that users query with plain SQL.

All tables live in this module so that alembic's autogenerate (and ``alembic
check``) sees every one of them. Changing them needs a migration in
``migrations/versions``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    column,
    false,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Stable constraint names keep migrations reproducible on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
Id = BigInteger().with_variant(Integer(), "sqlite")


def only_on(dialect: str, index: Index) -> Index:
    """``index``, on the database ``dialect`` only.

    The migrations create it there alone, and ``migrations/env.py`` compares it
    only there, so ``alembic check`` stays clean on both databases.
    """
    index.info["only_on"] = dialect
    return index.ddl_if(dialect=dialect)


def utcnow() -> datetime:
    """Timestamps are timezone-aware UTC, set from Python so both databases agree."""
    return datetime.now(timezone.utc)


def as_utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime; a naive one is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment if moment.tzinfo is timezone.utc else moment.astimezone(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp column that stores UTC and hands back aware UTC datetimes.

    SQLite keeps ``DateTime(timezone=True)`` as text without an offset (SQLAlchemy
    drops the zone when it writes and returns naive values); PostgreSQL returns
    values in the session's time zone. Converting at the column, both ways, lets
    every reader compare and print timestamps without patching them. The DDL is
    the plain ``DateTime(timezone=True)``'s, so the schema is unchanged.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type[datetime]:
        """``datetime`` (the base class says ``object``): the direct statements
        (:mod:`catalogstore.catalog.direct`) format a commit's one timestamp once, not
        once per row and statement."""
        return datetime

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        # A listing parses two timestamps per artifact: one C call for the text SQLite
        # holds (naive UTC) instead of parsing, then datetime.replace (several times slower).
        parse, utc = datetime.fromisoformat, timezone.utc

        def process(value: str | None) -> datetime | None:
            if value is None:
                return None
            try:
                moment = parse(value + "+00:00")
            except ValueError:  # not as SQLAlchemy writes it: an offset already
                moment = parse(value)
            return moment if moment.tzinfo is utc else as_utc(moment)  # a date alone, ...
        return process


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class ArtifactRow(Base):
    """One artifact: a named container in a namespace."""

    __tablename__ = "artifacts"
    __table_args__ = (
        UniqueConstraint("namespace", "name"),
        # Names across namespaces: equality and prefixes (LIKE 'run-%'); the pattern
        # operator class lets PostgreSQL use it for prefixes whatever the collation.
        Index("ix_artifacts_name", "name", postgresql_ops={"name": "text_pattern_ops"}),
        # ...which cannot order by name in the database's collation: ORDER BY name, id
        # across namespaces reads this one in order, a page at a time (SQLite's
        # ix_artifacts_name does already: it ends with the rowid, the id).
        only_on("postgresql", Index("ix_artifacts_name_id", "name", "id")),
        # Newest or oldest first, a page at a time: the id breaks ties (keyset pages).
        Index("ix_artifacts_created_at", "created_at", "id"),
        Index("ix_artifacts_updated_at", "updated_at", "id"),
        # The check that refuses names differing only by case (catalog/collisions.py):
        # spellings of a namespace, and of a name in it, are equal entries here.
        Index("ix_artifacts_lower_namespace_name", func.lower(column("namespace")),
              func.lower(column("name"))),
        # Ids are never handed out twice (SQLite reuses the largest otherwise): a handle
        # carries its artifact's id and checks it, so a handle on a deleted artifact
        # never reaches the next one's rows (issue 13). PostgreSQL's sequences never reuse.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    """The number of the current version (issue 15): 1 at creation, one more for each
    committed change of files or metadata; ``artifact_versions`` keeps each."""
    metadata_json: Mapped[str] = mapped_column(Text, server_default="{}")
    """The whole metadata as one JSON object, the content of ``.artifact.json``: written
    by each commit from the ``artifact_metadata`` rows (which searches use), so a
    listing reads an artifact and its metadata in one row (issue 11's bar) with its
    keys in order. Change metadata through the API, not by editing rows by hand."""

    files: Mapped[list[FileRow]] = relationship(
        back_populates="artifact", cascade="all, delete-orphan", passive_deletes=True
    )
    metadata_entries: Mapped[list[MetadataRow]] = relationship(
        back_populates="artifact", cascade="all, delete-orphan", passive_deletes=True
    )


class FileRow(Base):
    """One file of an artifact, with the size and checksum recorded when it was written."""

    __tablename__ = "artifact_files"
    __table_args__ = (UniqueConstraint("artifact_id", "name"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    checksum: Mapped[str] = mapped_column(String(80))
    """``<algorithm>:<hex>`` of the bytes in storage (``xxh128:`` when written)."""
    encoding: Mapped[str | None] = mapped_column(String(32))
    """Set (``utf-8``) when the file was written as ``str``, so ``read()`` returns ``str``."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    artifact: Mapped[ArtifactRow] = relationship(back_populates="files")


class MetadataRow(Base):
    """One metadata pair of an artifact: the value's JSON type, its text form and, for
    numbers, its number (:func:`catalogstore.record.value_columns`).

    Rows of an artifact in ``id`` order are its keys in insertion order.
    """

    __tablename__ = "artifact_metadata"
    __table_args__ = (
        UniqueConstraint("artifact_id", "key"),
        # SQLite: one B-tree answers equality, IN, text ranges and prefixes (GLOB); with
        # artifact_id in it, a search reads the index only. SQLite has no entry size limit.
        only_on("sqlite", Index("ix_artifact_metadata_key_value", "key", "value", "artifact_id")),
        # PostgreSQL refuses a B-tree entry over ~2700 bytes, so a (key, value) B-tree would
        # refuse long values; a hash index stores 4-byte hashes and answers = and IN.
        only_on("postgresql",
                Index("ix_artifact_metadata_value", "value", postgresql_using="hash")),
        # Numeric ranges, and every lookup by key alone (IS NULL, LIKE on PostgreSQL).
        Index("ix_artifact_metadata_key_number", "key", "number", "artifact_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(Text)
    """The text form: a string itself, any other value its compact JSON text."""
    number: Mapped[float | None] = mapped_column(Double)
    """The value as a number when it is one, or a string spelling one
    (:func:`catalogstore.record.value_number`), else NULL; written with the value, so
    numeric comparisons never cast text in SQL."""
    type: Mapped[str] = mapped_column(String(7), server_default="string")
    """The JSON type: string, number, boolean, null, array or object (``jsonb_typeof``'s
    names); a row inserted by plain SQL without it is a string."""

    artifact: Mapped[ArtifactRow] = relationship(back_populates="metadata_entries")


class JournalRow(Base):
    """Storage changes committed in the catalog but possibly not yet applied.

    A row is written in the same database transaction as the change it
    describes, and deleted once its file moves, removals and ``.artifact.json``
    rewrite are done; a row left by a crash is rolled forward on the next start.
    """

    __tablename__ = "catalog_journal"
    # A process forgets the rows it applied lazily, by id: an id handed out again
    # would make it forget another process's unapplied change (issue 13).
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(128))
    payload: Mapped[str] = mapped_column(Text)
    """Text the unit of work writes and checks on reading (JSON: ``{"moves": [[staged
    path, file name, checksum], ...], "removes": [file name, ...], "delete": bool,
    "create": bool}``);
    the catalog stores it as it is."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ObjectRow(Base):
    """The current generation of one object store key (issues 12 and 13).

    Written by the object store's ``put`` (in the same database transaction as the
    object's file rows when it is an artifact), by ``delete`` (the row goes) and by
    ``catalogstore adopt``; never by ``reindex``. It is what decides where ``get``
    reads a key and whether the bytes found there may be decoded: metadata read from
    the storage grants nothing.
    """

    __tablename__ = "objects"
    __table_args__ = (UniqueConstraint("namespace", "key"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(String(128))
    key: Mapped[str] = mapped_column(String(128))
    generation: Mapped[str] = mapped_column(String(32))
    """A random id per put: what tells a reader that the key changed under it."""
    tier: Mapped[str] = mapped_column(String(16))
    """``artifact`` or ``cluster_memory``: the one tier holding the current value."""
    location: Mapped[str | None] = mapped_column(String(255))
    """The cluster memory that holds it (backend and session), for messages."""
    artifact_id: Mapped[int | None] = mapped_column(
        ForeignKey("artifacts.id", ondelete="CASCADE"), index=True)
    """The artifact holding it (tier ``artifact``); deleting the artifact deletes the row."""
    serializer: Mapped[str | None] = mapped_column(String(64))
    digest: Mapped[str | None] = mapped_column(String(80))
    """``sha256:<hex>`` of the file's bytes for serializers that run code (pickle)."""
    origin: Mapped[str] = mapped_column(String(16))
    """``put`` (this store wrote it) or ``adopted`` (``catalogstore adopt``)."""
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class VersionRow(Base):
    """One immutable version of an artifact (issue 15): its metadata as committed, and
    (``artifact_version_files``) its files. The current one is ``artifacts.version``;
    the files of the others are kept under ``.catalogstore/versions/{artifact id}/``,
    one per checksum, so a file unchanged between versions is stored once."""

    __tablename__ = "artifact_versions"

    artifact_id: Mapped[int] = mapped_column(
        Id, ForeignKey("artifacts.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    metadata_json: Mapped[str] = mapped_column(Text, server_default="{}")
    pinned: Mapped[bool] = mapped_column(Boolean, server_default=false())
    """Set by ``artifact.pin(version)``: retention never removes it."""
    object_serializer: Mapped[str | None] = mapped_column(String(64))
    object_digest: Mapped[str | None] = mapped_column(String(80))
    """For a version an object store ``put`` made: the ``objects`` row's serializer and
    digest then, so ``get(key, version=...)`` decides trust as for the current value."""


class ObjectValueRow(Base):
    """The bytes of a small object store value, kept in the catalog itself (issue 19).

    A ``put`` of a value whose serialized form is at most
    ``catalogstore.object_store.INLINE_LIMIT`` bytes writes them here, in the commit
    that records the key's generation: no file on the hot path. The artifact's rows
    are as for any object (its ``object`` file row with size and checksum), and the
    file in the Flowdapt layout is written after the commit (``mirrored``). One row
    per checksum of an artifact, kept while its current file or a version holds that
    checksum; the artifact's deletion deletes them."""

    __tablename__ = "object_values"
    # The values whose files wait (a new process's recovery looks for them).
    __table_args__ = (Index("ix_object_values_mirrored", "mirrored"),)

    artifact_id: Mapped[int] = mapped_column(
        Id, ForeignKey("artifacts.id", ondelete="CASCADE"), primary_key=True)
    checksum: Mapped[str] = mapped_column(String(80), primary_key=True)
    """The checksum of ``data``, as ``artifact_files.checksum`` records it."""
    data: Mapped[bytes] = mapped_column(LargeBinary)
    mirrored: Mapped[bool] = mapped_column(Boolean, server_default=false())
    """Whether the file of the Flowdapt layout holds these bytes (written after the
    commit by the mirror flusher); a current value not mirrored is reported by
    ``catalogstore verify`` and written by ``verify --repair`` and ``gc``."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def _of_a_version() -> ForeignKeyConstraint:
    """Rows of one version: deleted with it."""
    return ForeignKeyConstraint(["artifact_id", "version"],
                                ["artifact_versions.artifact_id", "artifact_versions.version"],
                                ondelete="CASCADE")


class VersionFileRow(Base):
    """One file of one version, as ``artifact_files`` held it then."""

    __tablename__ = "artifact_version_files"
    __table_args__ = (
        _of_a_version(),
        # gc: is a checksum still used by a version of the artifact?
        Index("ix_artifact_version_files_checksum", "artifact_id", "checksum"),
    )

    artifact_id: Mapped[int] = mapped_column(Id, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    checksum: Mapped[str] = mapped_column(String(80))
    encoding: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AliasRow(Base):
    """A name for one version of an artifact (``prod``, ``staging``); moving it is one
    update. ``latest`` is never a row: it always names the current version."""

    __tablename__ = "artifact_aliases"
    __table_args__ = (
        _of_a_version(),
        Index("ix_artifact_aliases_alias", "alias", "artifact_id"),
    )

    artifact_id: Mapped[int] = mapped_column(Id, primary_key=True)
    alias: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class RetentionRow(Base):
    """The retention policy of a namespace, applied by ``catalogstore gc``: versions
    beyond the last ``keep_last`` and older than ``keep_days`` go (NULL: no limit of
    that kind). The current, aliased and pinned versions always stay."""

    __tablename__ = "retention_policies"

    namespace: Mapped[str] = mapped_column(String(128), primary_key=True)
    keep_last: Mapped[int | None] = mapped_column(Integer)
    keep_days: Mapped[float | None] = mapped_column(Double)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)



class RunRow(Base):
    """One execution of one stage (issue 16): opened by ``catalogstore.run(...)`` or,
    without one, implicitly per process (or Ray/Dask task). ``status`` is ``running``,
    ``succeeded`` or ``failed``; a ``running`` run whose process is gone is marked
    ``failed`` when it is read (``host`` and ``pid`` tell)."""

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_name_started_at", "name", "started_at"),
        # A run's children, the first by start time, and their number (issue 16).
        Index("ix_runs_parent_id_started_at", "parent_id", "started_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    """Random (32 hex), made by the process, so a run's row can be written lazily in
    the first commit that records an edge of it."""
    name: Mapped[str] = mapped_column(String(255))
    params_json: Mapped[str] = mapped_column(Text, server_default="{}")
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column()
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    task_id: Mapped[str | None] = mapped_column(String(255))
    """The Ray or Dask task of an implicit run opened in one."""
    parent_id: Mapped[str | None] = mapped_column(String(32))
    """The enclosing explicit run of a nested one."""
    metadata_json: Mapped[str] = mapped_column(Text, server_default="{}")


class RunEdgeRow(Base):
    """What a run read (``input``) or made (``output``): an artifact version
    (``artifact_id``, ``version``) or an object store generation kept in cluster memory
    (``generation``), named by ``namespace`` and ``name`` (the artifact's name or the
    key) as they were. No foreign key to the versions: an edge outlives a version that
    gc's retention (or ``delete()``) removed, and the lineage shows it as removed.
    ``node`` names it: ``artifact:ID:vN`` or ``object:GENERATION``."""

    __tablename__ = "run_edges"
    __table_args__ = (
        Index("ix_run_edges_run_id", "run_id", "direction"),
        Index("ix_run_edges_node", "node", "direction"),
        Index("ix_run_edges_producer_id", "producer_id", "run_id",
              sqlite_where=text("direction = 'input'"),
              postgresql_where=text("direction = 'input'")),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(8))
    node: Mapped[str] = mapped_column(String(80))
    namespace: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(255))
    artifact_id: Mapped[int | None] = mapped_column(Id)
    version: Mapped[int | None] = mapped_column(Integer)
    generation: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    producer_id: Mapped[str | None] = mapped_column(String(32))
    """On an input: the run whose output edge names the same node, looked up when the
    input is written (NULL: none, e.g. a version made with lineage off), so that the
    lineage walk takes one index lookup per step. No foreign key: removing that run by
    hand leaves a name that leads nowhere, as its edges are gone with it."""


# The tables as SQLAlchemy Core sees them, for the prebuilt statements of the hot paths
# (the declarative attribute is typed as any FromClause).
ARTIFACTS = cast(Table, ArtifactRow.__table__)
FILES = cast(Table, FileRow.__table__)
METADATA = cast(Table, MetadataRow.__table__)
JOURNAL = cast(Table, JournalRow.__table__)
OBJECTS = cast(Table, ObjectRow.__table__)
VERSIONS = cast(Table, VersionRow.__table__)
VERSION_FILES = cast(Table, VersionFileRow.__table__)
ALIASES = cast(Table, AliasRow.__table__)
RETENTION = cast(Table, RetentionRow.__table__)
RUNS = cast(Table, RunRow.__table__)
RUN_EDGES = cast(Table, RunEdgeRow.__table__)
OBJECT_VALUES = cast(Table, ObjectValueRow.__table__)
