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
batch. Two
processes creating case variants at once cannot both pass it: SQLite writers
are serialised, and PostgreSQL writers of names equal up to case share an
advisory lock (:func:`~catalogstore.catalog.engine.lock_key`).

Cost: one query per namespace a commit creates artifacts in, and one per
commit that writes files into existing artifacts; they look rows up by
namespace and by artifact id (the prefixes of the unique indexes) and filter
``lower(name)`` on the rows found. A namespace is compared across the whole
table only when a commit creates its first artifact. An index on
``lower(name)`` would make a namespace with very many artifacts cheaper still;
it needs a migration.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import TypeVar

from sqlalchemy import Connection, bindparam, func, literal_column, select, union_all

from catalogstore.catalog.models import ArtifactRow, FileRow
from catalogstore.changes import Changeset
from catalogstore.errors import NameCollisionError

T = TypeVar("T")
A = ArtifactRow.__table__
F = FileRow.__table__
# Names checked per statement: two bound parameters each, far below SQLite's limit.
_CHUNK = 2000

_OTHER = select(A.c.name).where(
    A.c.namespace == bindparam("ns"),
    A.c.name.not_in(bindparam("names", expanding=True))).limit(1).subquery()
# In one round trip: the artifacts of the namespace whose names equal the new
# ones up to case (the new ones included), and one other artifact if there is
# one, which tells that the namespace existed before this commit.
_SAME_NAMES = union_all(
    select(A.c.name, literal_column("1").label("variant")).where(
        A.c.namespace == bindparam("ns"),
        func.lower(A.c.name).in_(bindparam("lowers", expanding=True))),
    select(_OTHER.c.name, literal_column("0")))
_NAMESPACE_VARIANT = select(A.c.namespace).where(
    func.lower(A.c.namespace) == bindparam("lower"),
    A.c.namespace != bindparam("ns")).limit(1)
_SAME_FILES = select(F.c.artifact_id, F.c.name).where(
    F.c.artifact_id.in_(bindparam("ids", expanding=True)),
    func.lower(F.c.name).in_(bindparam("lowers", expanding=True)))

_WHY = "on a case-insensitive filesystem the two would be one folder"
_WHY_FILE = "on a case-insensitive filesystem the two would be one file"


def check_case_collisions(conn: Connection, changesets: Sequence[Changeset],
                          ids: dict[int, int]) -> None:
    """Raise :class:`NameCollisionError` if the commit in progress adds a case variant.

    Parameters
    ----------
    conn
        The connection of the commit, after it inserted the artifacts it creates
        and before it writes file rows.
    changesets
        The changesets being committed.
    ids
        Artifact ids by ``id(changeset)``.
    """
    created: dict[str, list[str]] = defaultdict(list)
    for cs in changesets:
        if cs.create:
            created[cs.namespace].append(cs.name)
    for namespace, names in created.items():
        if not _check_artifacts(conn, namespace, names):
            _check_namespace(conn, namespace)
    _check_files(conn, [(ids[id(cs)], cs) for cs in changesets if cs.writes and not cs.delete])


def _check_artifacts(conn: Connection, namespace: str, names: list[str]) -> bool:
    """Refuse case variants among new artifact names; whether the namespace existed."""
    new_names = set(names)
    existed = False
    for chunk in _chunks(sorted(new_names)):
        spellings: dict[str, set[str]] = defaultdict(set)
        for found, variant in conn.execute(_SAME_NAMES, {
                "ns": namespace, "names": list(chunk),
                "lowers": sorted({n.lower() for n in chunk})}):
            if variant:
                spellings[found.lower()].add(found)
            elif found not in new_names:
                existed = True
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


def _check_namespace(conn: Connection, namespace: str) -> None:
    """Refuse a new namespace that is a case variant of an existing one (a table scan)."""
    other = conn.execute(_NAMESPACE_VARIANT, {"lower": namespace.lower(),
                                              "ns": namespace}).scalar()
    if other is not None:
        raise NameCollisionError(
            f"namespace {namespace!r} differs only by case from the existing namespace "
            f"{other!r} ({_WHY}); use {other!r}")


def _check_files(conn: Connection, written: list[tuple[int, Changeset]]) -> None:
    """Refuse new file names that are case variants of a file kept or written beside them.

    Runs before the commit writes its file rows, so that a rewrite of a file
    that exists already is told apart from a new spelling.
    """
    for _, cs in written:
        spellings: dict[str, set[str]] = defaultdict(set)
        for name in cs.writes:
            spellings[name.lower()].add(name)
        for variants in spellings.values():
            if len(variants) > 1:
                first, second = sorted(variants)[:2]
                raise _file_collision(cs, first, f"{second!r}, written in the same transaction")
    # A new artifact has no files yet: nothing to look up.
    pairs = [(artifact_id, name, cs) for artifact_id, cs in written if not cs.create
             for name in cs.writes]
    for chunk in _chunks(pairs):
        existing: dict[tuple[int, str], set[str]] = defaultdict(set)
        for artifact_id, found in conn.execute(_SAME_FILES, {
                "ids": sorted({p[0] for p in chunk}),
                "lowers": sorted({p[1].lower() for p in chunk})}):
            existing[(artifact_id, found.lower())].add(found)
        for artifact_id, name, cs in chunk:
            present = existing.get((artifact_id, name.lower()), set())
            others = present - cs.removes - {name}
            if others and name not in present:
                raise _file_collision(cs, name, f"its file {min(others)!r}")


def _file_collision(cs: Changeset, name: str, other: str) -> NameCollisionError:
    return NameCollisionError(
        f"file {name!r} of artifact {cs.namespace}/{cs.name} differs only by case from "
        f"{other} ({_WHY_FILE}); use one spelling (remove the other file first to rename it)")


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start:start + _CHUNK]
