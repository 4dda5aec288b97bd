"""Versions, aliases and pins in the catalog (issue 15).

Each commit that changes an artifact's files or metadata makes its next version: the
commit raises ``artifacts.version`` and copies the artifact's rows as they now are
into ``artifact_versions`` and ``artifact_version_files`` (:func:`snapshot`), in the
same database transaction, two ``INSERT ... SELECT`` statements whose rows never
cross the wire. A version is never changed afterwards, except for its pin; retention
(``catalogstore gc``, :mod:`catalogstore.catalog.retention`) deletes whole versions,
never the current, an aliased or a pinned one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, delete, exists, select, update

from catalogstore.catalog.direct import run
from catalogstore.catalog.models import ALIASES as L
from catalogstore.catalog.models import ARTIFACTS as A
from catalogstore.catalog.models import FILES as F
from catalogstore.catalog.models import OBJECT_VALUES as I
from catalogstore.catalog.models import OBJECTS as O
from catalogstore.catalog.models import VERSION_FILES as VF
from catalogstore.catalog.models import VERSIONS as V
from catalogstore.catalog.models import UTCDateTime, utcnow
from catalogstore.errors import ArtifactNotFoundError, VersionNotFoundError
from catalogstore.names import LATEST
from catalogstore.record import FileRecord, metadata_of

if TYPE_CHECKING:
    from catalogstore.catalog.catalog import Catalog



@dataclass(frozen=True)
class VersionRecord:
    """One version of an artifact as the catalog keeps it."""

    artifact_id: int
    version: int
    created_at: datetime
    metadata: dict[str, Any]
    files: dict[str, FileRecord]
    current: bool
    pinned: bool = False
    aliases: tuple[str, ...] = ()
    object_serializer: str | None = None
    object_digest: str | None = None

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files.values())


# -- the commit's statements ------------------------------------------------------

_ids: Any = bindparam("ids", expanding=True)
BUMP = update(A).where(A.c.id.in_(_ids)).values(version=A.c.version + 1)
"""Make the next version current (before :data:`SNAPSHOT` copies it)."""
SNAPSHOT = [
    V.insert().from_select(
        ["artifact_id", "version", "created_at", "metadata_json", "object_serializer",
         "object_digest"],
        select(A.c.id, A.c.version, bindparam("now", type_=UTCDateTime()), A.c.metadata_json,
               O.c.serializer,
               O.c.digest)
        .select_from(A.outerjoin(O, O.c.artifact_id == A.c.id))
        .where(A.c.id.in_(_ids))),
    VF.insert().from_select(
        ["artifact_id", "version", "name", "size", "checksum", "encoding", "updated_at"],
        select(F.c.artifact_id, A.c.version, F.c.name, F.c.size, F.c.checksum, F.c.encoding,
               F.c.updated_at)
        .select_from(F.join(A, A.c.id == F.c.artifact_id))
        .where(F.c.artifact_id.in_(_ids))),
]
"""Copy the current rows of artifacts (``ids``) into their version tables, as of ``now``."""
REPLACED = select(F.c.artifact_id, F.c.name, F.c.checksum).where(
    F.c.artifact_id.in_(_ids), F.c.name.in_(bindparam("names", expanding=True)),
    ~exists().where(I.c.artifact_id == F.c.artifact_id, I.c.checksum == F.c.checksum))
"""The checksums of files a commit replaces or removes: their bytes are kept for the
versions that hold them (:mod:`catalogstore.txn.apply`), unless the catalog keeps them
(a small object store value, :mod:`catalogstore.catalog.inline`: its file may not hold
them yet)."""


def snapshot(conn: Connection, artifact_ids: list[int], now: datetime) -> None:
    """Record the current rows of ``artifact_ids`` as their current versions."""
    for stmt in SNAPSHOT:
        run(conn, stmt, {"ids": artifact_ids, "now": now})


# -- reads --------------------------------------------------------------------------

_VERSION_COLUMNS = (V.c.artifact_id, V.c.version, V.c.created_at, V.c.metadata_json,
                    V.c.pinned, V.c.object_serializer, V.c.object_digest, A.c.version)


def list_versions(catalog: Catalog, artifact_id: int,
                  version: int | None = None) -> list[VersionRecord]:
    """The kept versions of an artifact, oldest first (only ``version`` when given),
    with their files and aliases, read in one snapshot."""
    where = [V.c.artifact_id == artifact_id]
    file_where = [VF.c.artifact_id == artifact_id]
    if version is not None:
        where.append(V.c.version == version)
        file_where.append(VF.c.version == version)
    with catalog.errors("read versions"), catalog.engine.connect() as conn, conn.begin():
        rows = conn.execute(select(*_VERSION_COLUMNS).select_from(
            V.join(A, A.c.id == V.c.artifact_id)).where(*where).order_by(V.c.version)).all()
        files: dict[int, dict[str, FileRecord]] = defaultdict(dict)
        for row in conn.execute(select(VF.c.version, VF.c.name, VF.c.size, VF.c.checksum,
                                       VF.c.encoding, VF.c.updated_at)
                                .where(*file_where).order_by(VF.c.version, VF.c.name)):
            files[row[0]][row[1]] = FileRecord(row[1], row[2], row[3], row[4], row[5], row[5])
        aliases: dict[int, list[str]] = defaultdict(list)
        for number, alias in conn.execute(select(L.c.version, L.c.alias).where(
                L.c.artifact_id == artifact_id).order_by(L.c.alias)):
            aliases[number].append(alias)
    return [VersionRecord(row[0], row[1], row[2], metadata_of(row[3]), files[row[1]],
                          row[1] == row[7], bool(row[4]),
                          tuple(([LATEST] if row[1] == row[7] else []) + aliases[row[1]]),
                          row[5], row[6])
            for row in rows]


def get_version(catalog: Catalog, artifact_id: int, version: int) -> VersionRecord:
    """One kept version; :class:`VersionNotFoundError` if it is not kept (never made,
    or removed by retention)."""
    found = list_versions(catalog, artifact_id, version)
    if not found:
        raise VersionNotFoundError(f"no version {version} is kept")
    return found[0]


def resolve_alias(catalog: Catalog, artifact_id: int, alias: str) -> int:
    """The version number ``alias`` names (``latest``: the current one)."""
    with catalog.errors("read an alias"), catalog.engine.connect() as conn:
        if alias == LATEST:
            number = conn.execute(select(A.c.version).where(A.c.id == artifact_id)).scalar()
        else:
            number = conn.execute(select(L.c.version).where(
                L.c.artifact_id == artifact_id, L.c.alias == alias)).scalar()
    if number is None:
        raise VersionNotFoundError(f"no alias {alias!r}")
    return int(number)


# -- writes -------------------------------------------------------------------------


def _version_exists(conn: Connection, artifact_id: int, version: int, what: str) -> None:
    if conn.execute(select(A.c.id).where(A.c.id == artifact_id)).first() is None:
        raise ArtifactNotFoundError(f"artifact {what} does not exist (deleted?)")
    if conn.execute(select(V.c.version).where(
            V.c.artifact_id == artifact_id, V.c.version == version)).first() is None:
        raise VersionNotFoundError(f"artifact {what} keeps no version {version} (never "
                                   "made, or removed by gc's retention)")


def set_alias(catalog: Catalog, artifact_id: int, alias: str, version: int | None,
              what: str) -> int:
    """Point ``alias`` at ``version`` (``None``: the current one), moving it in one
    statement if it names another; returns the version."""
    with catalog.errors("set an alias"), catalog.engine.begin() as conn:
        if version is None:
            version = conn.execute(select(A.c.version).where(A.c.id == artifact_id)).scalar()
            if version is None:
                raise ArtifactNotFoundError(f"artifact {what} does not exist (deleted?)")
        _version_exists(conn, artifact_id, version, what)
        now = utcnow()
        moved = conn.execute(update(L).where(L.c.artifact_id == artifact_id,
                                             L.c.alias == alias)
                             .values(version=version, updated_at=now)).rowcount
        if not moved:
            conn.execute(L.insert().values(artifact_id=artifact_id, alias=alias,
                                           version=version, updated_at=now))
    return version


def remove_alias(catalog: Catalog, artifact_id: int, alias: str) -> bool:
    """Remove ``alias``; whether it was set."""
    with catalog.errors("remove an alias"), catalog.engine.begin() as conn:
        return bool(conn.execute(delete(L).where(L.c.artifact_id == artifact_id,
                                                 L.c.alias == alias)).rowcount)


def set_pinned(catalog: Catalog, artifact_id: int, version: int, pinned: bool,
               what: str) -> None:
    """Pin a version (retention never removes it) or unpin it."""
    with catalog.errors("pin a version"), catalog.engine.begin() as conn:
        _version_exists(conn, artifact_id, version, what)
        conn.execute(update(V).where(V.c.artifact_id == artifact_id, V.c.version == version)
                     .values(pinned=pinned))
