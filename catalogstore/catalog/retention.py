"""Retention policies, and the catalog's half of ``gc``'s retention (issue 15).

A namespace's policy says which of its artifacts' versions ``gc`` may remove: a
version expires when it is *both* beyond the last ``keep_last`` versions of its
artifact (by number, the current one counted) *and* older than ``keep_days`` (by
its creation time); ``None`` is no limit of that kind. The current version, an
aliased one and a pinned one never expire. A namespace without a row of its own has
the row of :data:`EVERY_NAMESPACE` (``"*"``, never a namespace's name), else
:data:`DEFAULT_POLICY`.

Expired versions are found a page at a time (keyset pages) and deleted in small
transactions, each checking again, with the rows locked, that the version is
neither pinned nor aliased by now: an alias set while ``gc`` runs wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, delete, exists, not_, or_, select, tuple_

from catalogstore.catalog.models import ALIASES as L
from catalogstore.catalog.models import ARTIFACTS as A
from catalogstore.catalog.models import FILES as F
from catalogstore.catalog.models import OBJECT_VALUES as I
from catalogstore.catalog.models import RETENTION as R
from catalogstore.catalog.models import VERSION_FILES as VF
from catalogstore.catalog.models import VERSIONS as V
from catalogstore.catalog.models import utcnow
from catalogstore.errors import ConfigurationError, InvalidNameError
from catalogstore.names import validate_name

if TYPE_CHECKING:
    from catalogstore.catalog.catalog import Catalog

EVERY_NAMESPACE = "*"
"""The namespace of the policy that every namespace without one of its own has."""


@dataclass(frozen=True)
class RetentionPolicy:
    """What ``gc`` keeps of a namespace's versions beside the current, aliased and pinned
    ones: the last ``keep_last``, and those younger than ``keep_days`` (``None``: no
    limit of that kind; both ``None``: every version)."""

    keep_last: int | None = None
    keep_days: float | None = None
    namespace: str | None = field(default=None, compare=False)
    """The namespace whose row it is (``"*"``: the one for every namespace); ``None``
    for the built-in default."""

    @property
    def keeps_all(self) -> bool:
        return self.keep_last is None and self.keep_days is None


DEFAULT_POLICY = RetentionPolicy(keep_last=10, keep_days=30.0)
"""The policy of a namespace without one, when no ``"*"`` row is set either: a version
goes once it is beyond the last 10 and older than 30 days."""


MAX_KEEP_LAST = 2**31 - 1
"""The most versions a policy can name (the column is a 32-bit integer)."""
MAX_KEEP_DAYS = 36_500.0
"""A century: the longest age a policy can name (``None`` keeps versions of any age)."""


def checked_policy(keep_last: object, keep_days: object,
                   namespace: str | None = None) -> RetentionPolicy:
    """The policy, or :class:`ConfigurationError` saying what is wrong with a value."""
    if keep_last is not None and (type(keep_last) is not int
                                  or not 1 <= keep_last <= MAX_KEEP_LAST):
        raise ConfigurationError(f"invalid keep_last {keep_last!r}: a whole number of "
                                 f"versions from 1 (the current one) to {MAX_KEEP_LAST}, or "
                                 "None for no limit")
    if keep_days is None:
        return RetentionPolicy(keep_last, None, namespace)
    if isinstance(keep_days, bool) or not isinstance(keep_days, (int, float)) or \
            not 0 <= keep_days <= MAX_KEEP_DAYS:  # NaN too
        raise ConfigurationError(f"invalid keep_days {keep_days!r}: a number of days from "
                                 f"0 to {MAX_KEEP_DAYS:g}, or None for no limit")
    return RetentionPolicy(keep_last, float(keep_days), namespace)


def checked_namespace(namespace: object) -> str:
    """A namespace a policy may be set for: a valid namespace name, or ``"*"``."""
    if namespace == EVERY_NAMESPACE:
        return EVERY_NAMESPACE
    return validate_name(namespace, "namespace")


def set_retention(catalog: Catalog, namespace: str, policy: RetentionPolicy | None) -> None:
    """Set the namespace's policy (``None``: back to the default)."""
    with catalog.errors("set a retention policy"), catalog.engine.begin() as conn:
        conn.execute(delete(R).where(R.c.namespace == namespace))
        if policy is not None:
            conn.execute(R.insert().values(namespace=namespace, keep_last=policy.keep_last,
                                           keep_days=policy.keep_days, updated_at=utcnow()))


def retention_policies(catalog: Catalog) -> tuple[dict[str, RetentionPolicy], dict[str, str]]:
    """Every policy set (``"*"`` included), and the rows refused, with why: a row
    edited by hand that breaks the rules is never applied (its namespace keeps
    every version)."""
    policies, refused = {}, {}
    with catalog.errors("read retention policies"), catalog.engine.connect() as conn:
        rows = conn.execute(select(R.c.namespace, R.c.keep_last, R.c.keep_days)
                            .order_by(R.c.namespace)).all()
    for namespace, keep_last, keep_days in rows:
        try:
            policies[checked_namespace(namespace)] = checked_policy(keep_last, keep_days,
                                                                    namespace)
        except (ConfigurationError, InvalidNameError) as exc:
            refused[str(namespace)] = f"a retention_policies row that breaks the rules " \
                f"({exc}); the namespace keeps every version"
    return policies, refused


def effective_policy(policies: dict[str, RetentionPolicy], refused: dict[str, str],
                     namespace: str) -> RetentionPolicy:
    """The policy ``namespace`` has, of those :func:`retention_policies` read (a refused
    row keeps every version)."""
    for source in (namespace, EVERY_NAMESPACE):
        if source in policies:
            return policies[source]
        if source in refused:
            return RetentionPolicy(None, None, source)
    return DEFAULT_POLICY


# -- gc ---------------------------------------------------------------------------

Pair = tuple[int, int]
"""An artifact id and a version number."""


def _unprotected(current: Any) -> list[Any]:
    """Not current (``current``: the artifact's version number), pinned, nor aliased."""
    return [V.c.version < current, not_(V.c.pinned),
            ~exists().where(L.c.artifact_id == V.c.artifact_id, L.c.version == V.c.version)]


def expired_page(catalog: Catalog, namespace: str, policy: RetentionPolicy, now: datetime,
                 after: Pair | None, limit: int) -> list[Pair]:
    """The next ``limit`` versions of ``namespace`` that ``policy`` lets go as of ``now``,
    after ``after`` in (artifact id, version) order. None when the policy keeps all."""
    if policy.keeps_all:
        return []
    where = [A.c.namespace == namespace, *_unprotected(A.c.version)]
    if policy.keep_last is not None:
        where.append(V.c.version <= A.c.version - policy.keep_last)
    if policy.keep_days is not None:
        where.append(V.c.created_at < now - timedelta(days=policy.keep_days))
    if after is not None:
        where.append(or_(V.c.artifact_id > after[0],
                         and_(V.c.artifact_id == after[0], V.c.version > after[1])))
    stmt = (select(V.c.artifact_id, V.c.version).select_from(V.join(A, A.c.id == V.c.artifact_id))
            .where(*where).order_by(V.c.artifact_id, V.c.version).limit(limit))
    with catalog.errors("find expired versions"), catalog.engine.connect() as conn:
        return [(int(a), int(v)) for a, v in conn.execute(stmt)]


def delete_versions(catalog: Catalog, pairs: Sequence[Pair]) -> int:
    """Delete the versions ``pairs`` (their files' and aliases' rows go with them), in
    one transaction, except those pinned, aliased or current by now; how many went.

    On PostgreSQL the rows are locked first, so that an alias or pin being set commits
    before the check (which then sees it) or waits and finds the version gone.
    """
    chosen = tuple_(V.c.artifact_id, V.c.version).in_(list(pairs))
    with catalog.errors("delete expired versions"), catalog.engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # SQLite: the DELETE takes the write lock
            conn.execute(select(V.c.artifact_id).where(chosen).with_for_update())
        current = select(A.c.version).where(A.c.id == V.c.artifact_id).scalar_subquery()
        gone = int(conn.execute(delete(V).where(chosen, *_unprotected(current))).rowcount)
        # The bytes the catalog keeps of small object values (issue 19) that no version
        # of their artifact holds any more go with them.
        conn.execute(delete(I).where(
            I.c.artifact_id.in_({artifact_id for artifact_id, _ in pairs}),
            ~exists().where(VF.c.artifact_id == I.c.artifact_id,
                            VF.c.checksum == I.c.checksum)))
        return gone


@dataclass(frozen=True)
class KeptOf:
    """What ``gc`` needs of an artifact whose bytes are kept: its name (for its lock)
    and the checksums its version rows reference, by version."""

    namespace: str
    name: str
    checksums: dict[int, set[str]]

    def referenced(self, leaving: Iterable[int] = ()) -> set[str]:
        """The checksums of its versions but ``leaving``."""
        gone = set(leaving)
        return {c for version, sums in self.checksums.items() if version not in gone
                for c in sums}


def kept_of(catalog: Catalog, artifact_ids: Sequence[int]) -> dict[int, KeptOf]:
    """:class:`KeptOf` of each of ``artifact_ids`` the catalog has."""
    found: dict[int, KeptOf] = {}
    ids = list(artifact_ids)
    with catalog.errors("read the versions' files"), catalog.engine.connect() as conn:
        _read_kept(conn, ids, found)
    return found


def _read_kept(conn: Connection, ids: list[int], found: dict[int, KeptOf]) -> None:
    for artifact_id, namespace, name in conn.execute(
            select(A.c.id, A.c.namespace, A.c.name).where(A.c.id.in_(ids))):
        found[int(artifact_id)] = KeptOf(namespace, name, {})
    for artifact_id, version, checksum in conn.execute(
            select(VF.c.artifact_id, VF.c.version, VF.c.checksum).where(
                VF.c.artifact_id.in_(ids))):
        kept = found.get(int(artifact_id))
        if kept is not None:
            kept.checksums.setdefault(int(version), set()).add(str(checksum))


@dataclass(frozen=True)
class NeededKept:
    """A file of an earlier version whose bytes only its kept copy holds: the current
    version has no file of that checksum."""

    namespace: str
    name: str
    artifact_id: int
    version: int
    file: str
    checksum: str


def needed_kept(catalog: Catalog, namespace: str | None = None,
                artifact_ids: Sequence[int] | None = None) -> list[NeededKept]:
    """The files of non-current versions (of ``namespace``, or of ``artifact_ids``) whose
    checksum neither the current version of their artifact holds nor the catalog keeps
    (a small object store value's bytes, issue 19)."""
    where = [VF.c.version < A.c.version,
             ~exists().where(F.c.artifact_id == VF.c.artifact_id, F.c.checksum == VF.c.checksum),
             ~exists().where(I.c.artifact_id == VF.c.artifact_id, I.c.checksum == VF.c.checksum)]
    if namespace is not None:
        where.append(A.c.namespace == namespace)
    if artifact_ids is not None:
        where.append(A.c.id.in_(list(artifact_ids)))
    stmt = (select(A.c.namespace, A.c.name, VF.c.artifact_id, VF.c.version, VF.c.name,
                   VF.c.checksum)
            .select_from(VF.join(A, A.c.id == VF.c.artifact_id)).where(*where)
            .order_by(A.c.namespace, A.c.name, VF.c.version, VF.c.name))
    with catalog.errors("read the versions' files"), catalog.engine.connect() as conn:
        return [NeededKept(ns, name, int(i), int(v), file, checksum)
                for ns, name, i, v, file, checksum in conn.execute(stmt)]
