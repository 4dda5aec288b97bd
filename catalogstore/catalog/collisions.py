"""Names that differ only by letter case are refused, so no two folders collide.

The naming rules (:mod:`catalogstore.names`) allow ASCII only, which rules out
Unicode look-alikes and normalisation twins, but ``Model`` and ``model`` are
still two names. On a case-sensitive filesystem they are two folders; on a
case-insensitive one (macOS, Windows, some object store gateways, or a tree
copied there) they are one, and two artifacts would share their files and
their ``.artifact.json``. So a commit that creates an artifact, a namespace or a
file whose name differs only by case from one that exists in the same place is
refused with :class:`~catalogstore.errors.NameCollisionError`.

The check runs inside the commit's transaction, after the new artifacts are
inserted, so it sees both the catalog as committed and the rest of the same
batch. Two processes creating case variants at once cannot both pass it:

- SQLite writers are serialised (one lock file, then ``BEGIN IMMEDIATE``), so
  :func:`check_case_collisions` checks everything at once.
- On PostgreSQL, writers of artifact names equal up to case share an advisory
  lock (:func:`~catalogstore.catalog.engine.lock_key`), held from before their
  transaction. Namespaces are checked last in the transaction
  (:func:`check_new_namespaces`), under a transaction-level advisory lock on the
  lower-cased namespace taken by every commit that creates artifacts in it: the
  check of the second of two racing creators (``Team/a``, ``team/b``) starts
  after the first one committed, and sees its artifact. The lock is held only
  from that check to the commit, so creators in one namespace still apply their
  storage changes in parallel.

Cost: the queries look rows up through the index on (``lower(namespace)``,
``lower(name)``) (migration ``f919e649af58``), the unique (``namespace``,
``name``) index and, for files, the unique (``artifact_id``, ``name``) index: one
query per namespace a commit creates artifacts in (on PostgreSQL two more, the
lock and whether the namespace existed), one more for a namespace that did not
exist before (its first artifact), and one per commit that writes files into
existing artifacts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Set
from typing import NamedTuple, TypeVar

from sqlalchemy import (
    Connection,
    Integer,
    bindparam,
    func,
    literal_column,
    select,
    text,
    union_all,
)

from catalogstore.batching import chunks
from catalogstore.catalog.direct import run
from catalogstore.catalog.engine import PG_LOCK_CLASS, PIPELINED, case_blind_key
from catalogstore.catalog.models import ARTIFACTS as A
from catalogstore.catalog.models import FILES as F
from catalogstore.errors import NameCollisionError

T = TypeVar("T")
# Names checked per statement: two bound parameters each, far below SQLite's limit.
_CHUNK = 2000

_OTHER = select(A.c.namespace, A.c.name).where(
    A.c.namespace == bindparam("ns"),
    A.c.name.not_in(bindparam("names", expanding=True))).limit(1).subquery()
# In one round trip: the artifacts whose namespace and name equal the namespace and
# the new names up to case (the new ones included), through the index on
# (lower(namespace), lower(name)), and one other artifact of the namespace if there
# is one, which tells that the namespace existed before this commit. Artifacts of
# other spellings of the namespace are left out in Python: with a condition on the
# namespace itself SQLite would read the namespace's part of the unique index instead.
_SAME_NAMES = union_all(
    select(A.c.namespace, A.c.name, literal_column("1").label("variant")).where(
        func.lower(A.c.namespace) == bindparam("lower"),
        func.lower(A.c.name).in_(bindparam("lowers", expanding=True))),
    select(_OTHER.c.namespace, _OTHER.c.name, literal_column("0")))
# The first names of a namespace, in the order of the unique index: of n + 1 of them,
# one at least was not created by a commit that created n.
_FIRST_NAMES = select(A.c.name).where(A.c.namespace == bindparam("ns")).order_by(
    A.c.name).limit(bindparam("n", type_=Integer))
_NAMESPACE_VARIANT = select(A.c.namespace).where(
    func.lower(A.c.namespace) == bindparam("lower"),
    A.c.namespace != bindparam("ns")).limit(1)
# Namespace locks: a lock class of their own, so no key can equal an artifact lock's.
PG_NAMESPACE_LOCK_CLASS = PG_LOCK_CLASS + 1
_PG_NAMESPACE_LOCK = text(
    "SELECT pg_advisory_xact_lock(:c, k) FROM "
    "(SELECT unnest(CAST(:keys AS integer[])) AS k ORDER BY 1) AS keys").execution_options(
    **{PIPELINED: True})  # the next statement waits for the lock anyway
_SAME_FILES = select(F.c.artifact_id, F.c.name).where(
    F.c.artifact_id.in_(bindparam("ids", expanding=True)),
    func.lower(F.c.name).in_(bindparam("lowers", expanding=True)))



class WrittenFiles(NamedTuple):
    """The files a commit writes into one artifact (and the ones it removes)."""

    artifact_id: int
    namespace: str
    name: str
    created: bool
    """Whether the commit creates the artifact (it has no files yet)."""
    names: Collection[str]
    removes: Set[str]


_WHY = "on a case-insensitive filesystem the two would be one folder"
_WHY_FILE = "on a case-insensitive filesystem the two would be one file"


def check_case_collisions(conn: Connection, created: dict[str, list[str]],
                          written: list[WrittenFiles]) -> None:
    """Raise :class:`NameCollisionError` if the commit in progress adds a case variant
    (of a namespace on SQLite; on PostgreSQL :func:`check_new_namespaces` checks those).

    Parameters
    ----------
    conn
        The connection of the commit, after it inserted the artifacts it creates
        and before it writes file rows.
    created
        The names of the artifacts the commit creates, by namespace.
    written
        The artifacts the commit writes files into (and does not delete).
    """
    serialised = conn.dialect.name != "postgresql"  # SQLite: one writer at a time
    for namespace, names in created.items():
        if not _check_artifacts(conn, namespace, names) and serialised:
            _check_namespace(conn, namespace)
    _check_files(conn, written)


def check_new_namespaces(conn: Connection, created: dict[str, list[str]],
                         deleted: set[str]) -> None:
    """On PostgreSQL, raise :class:`NameCollisionError` if the commit in progress
    creates the first artifact of a namespace that differs only by case from an
    existing namespace (SQLite: :func:`check_case_collisions` did).

    ``created``: the names of the artifacts the commit creates, by namespace;
    ``deleted``: the namespaces it deletes artifacts in.

    Call it last in the commit's transaction: it takes a lock on each lower-cased
    namespace the commit creates artifacts in, held until the transaction ends, and
    trusts only what was committed before the lock was granted (whether the
    namespace existed is looked up again under it).
    """
    if not created or conn.dialect.name != "postgresql":
        return
    conn.execute(_PG_NAMESPACE_LOCK, {"c": PG_NAMESPACE_LOCK_CLASS, "keys": sorted(
        {namespace_lock_key(ns) for ns in created})})
    for namespace, names in created.items():
        if _existed(conn, namespace, names):
            continue
        # Artifacts this commit deletes count as there, as they do for the artifact check.
        for other in sorted(deleted):
            if other != namespace and other.lower() == namespace.lower():
                raise _namespace_collision(namespace, other)
        _check_namespace(conn, namespace)


def namespace_lock_key(namespace: str) -> int:
    """A stable signed 32-bit key for the spellings of ``namespace`` (case ignored)."""
    return case_blind_key(namespace)


def _check_artifacts(conn: Connection, namespace: str, names: list[str]) -> bool:
    """Refuse case variants among new artifact names; whether the namespace existed."""
    new_names = set(names)
    existed = False
    for chunk in chunks(sorted(new_names), _CHUNK):
        spellings: dict[str, set[str]] = defaultdict(set)
        for found_ns, found, variant in run(conn, _SAME_NAMES, {
                "lower": namespace.lower(), "lowers": sorted({n.lower() for n in chunk}),
                "ns": namespace, "names": list(chunk)}):
            if not variant:
                existed = existed or found not in new_names
            elif found_ns == namespace:
                spellings[found.lower()].add(found)
        for variants in spellings.values():
            if len(variants) > 1:
                new = sorted(variants & new_names) or sorted(variants)
                old = sorted(variants - new_names)
                other = (f"the existing artifact {old[0]!r}; use that spelling" if old
                         else f"{new[1]!r}, created in the same transaction")
                raise NameCollisionError(
                    f"artifact {new[0]!r} in namespace {namespace!r} differs only by case "
                    f"from {other} ({_WHY})")
    return existed


def _existed(conn: Connection, namespace: str, names: list[str]) -> bool:
    """Whether ``namespace`` has an artifact other than ``names`` (the new ones)."""
    new_names = set(names)
    first = run(conn, _FIRST_NAMES, {"ns": namespace, "n": len(new_names) + 1})
    return any(name not in new_names for (name,) in first)


def _check_namespace(conn: Connection, namespace: str) -> None:
    """Refuse a new namespace that is a case variant of an existing one."""
    found = run(conn, _NAMESPACE_VARIANT, {"lower": namespace.lower(), "ns": namespace})
    if found:
        raise _namespace_collision(namespace, found[0][0])


def _namespace_collision(namespace: str, other: str) -> NameCollisionError:
    return NameCollisionError(
        f"namespace {namespace!r} differs only by case from the existing namespace "
        f"{other!r} ({_WHY}); use {other!r}")


def _check_files(conn: Connection, written: list[WrittenFiles]) -> None:
    """Refuse new file names that are case variants of a file kept or written beside them.

    Runs before the commit writes its file rows, so that a rewrite of a file
    that exists already is told apart from a new spelling.
    """
    for w in written:
        spellings: dict[str, set[str]] = defaultdict(set)
        for name in w.names:
            spellings[name.lower()].add(name)
        for variants in spellings.values():
            if len(variants) > 1:
                first, second = sorted(variants)[:2]
                raise _file_collision(w, first, f"{second!r}, written in the same transaction")
    # A new artifact has no files yet: nothing to look up.
    pairs = [(w.artifact_id, name, w) for w in written if not w.created for name in w.names]
    for chunk in chunks(pairs, _CHUNK):
        existing: dict[tuple[int, str], set[str]] = defaultdict(set)
        for artifact_id, found in run(conn, _SAME_FILES, {
                "ids": sorted({p[0] for p in chunk}),
                "lowers": sorted({p[1].lower() for p in chunk})}):
            existing[(artifact_id, found.lower())].add(found)
        for artifact_id, name, w in chunk:
            present = existing.get((artifact_id, name.lower()), set())
            others = present - w.removes - {name}
            if others and name not in present:
                raise _file_collision(w, name, f"its file {min(others)!r}")


def _file_collision(w: WrittenFiles, name: str, other: str) -> NameCollisionError:
    return NameCollisionError(
        f"file {name!r} of artifact {w.namespace}/{w.name} differs only by case from "
        f"{other} ({_WHY_FILE}); use one spelling (remove the other file first to rename it)")
