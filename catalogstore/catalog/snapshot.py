"""Whole-namespace reads of the catalog, for ``reindex`` and ``verify``.

They compare the catalog with a listing of the storage, so they read a
namespace (or a set of its artifacts) at once: three queries, whatever the
number of artifacts, instead of a query per artifact. :func:`refresh_file_times`
is reindex's one write that is not a change: it records that a file it hashed
again is unchanged, so that the next run need not hash it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, select, update

from catalogstore.catalog.catalog import Catalog
from catalogstore.catalog.models import ARTIFACTS as A
from catalogstore.catalog.models import FILES as F
from catalogstore.catalog.models import METADATA as M
from catalogstore.record import FileRecord, value_from_columns

# Names per IN list: under SQLite's and PostgreSQL's bound parameter limits.
_CHUNK = 5000

Version = tuple[int, datetime]
"""(id, updated_at) of an artifact: every commit that touches it changes this pair."""


@dataclass
class ArtifactState:
    """An artifact as the catalog holds it: identity, files and metadata."""

    id: int
    updated_at: datetime
    files: dict[str, FileRecord] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    """From the ``artifact_metadata`` rows, keys in their order."""
    document: str = "{}"
    """``artifacts.metadata_json``: what listings show, written from the rows."""

    @property
    def version(self) -> Version:
        return (self.id, self.updated_at)


def _name_filter(query: Any, names: Sequence[str] | None) -> Iterator[Any]:
    if names is None:
        yield query
        return
    for start in range(0, len(names), _CHUNK):
        yield query.where(A.c.name.in_(list(names[start:start + _CHUNK])))


def read_namespace(catalog: Catalog, namespace: str,
                   names: Sequence[str] | None = None) -> dict[str, ArtifactState]:
    """The artifacts of ``namespace`` (only ``names`` when given), by name."""
    artifacts = select(A.c.id, A.c.name, A.c.updated_at, A.c.metadata_json).where(
        A.c.namespace == namespace)
    files = (select(A.c.name.label("artifact"), F.c.name, F.c.size, F.c.checksum,
                    F.c.encoding, F.c.created_at, F.c.updated_at)
             .join(A, A.c.id == F.c.artifact_id).where(A.c.namespace == namespace))
    metadata = (select(A.c.name, M.c.key, M.c.type, M.c.value)
                .join(A, A.c.id == M.c.artifact_id).where(A.c.namespace == namespace)
                .order_by(M.c.id))  # the keys in insertion order
    states: dict[str, ArtifactState] = {}
    with catalog.errors(f"read namespace {namespace!r}"), catalog.engine.connect() as conn:
        for query in _name_filter(artifacts, names):
            for row in conn.execute(query):
                states[row.name] = ArtifactState(row.id, row.updated_at,
                                                 document=row.metadata_json)
        for query in _name_filter(files, names):
            for row in conn.execute(query):
                states[row.artifact].files[row.name] = FileRecord(*row[1:])
        for query in _name_filter(metadata, names):
            for name, key, kind, value in conn.execute(query):
                states[name].metadata[key] = value_from_columns(kind, value)
    return states


def read_versions(conn: Connection, namespace: str, names: Sequence[str]) -> dict[str, Version]:
    """The current version of each of ``names`` that exists, on ``conn``."""
    found: dict[str, Version] = {}
    for query in _name_filter(select(A.c.id, A.c.name, A.c.updated_at)
                              .where(A.c.namespace == namespace), names):
        for row in conn.execute(query):
            found[row.name] = (row.id, row.updated_at)
    return found


_REFRESH = (update(F).where(and_(F.c.artifact_id == bindparam("a"), F.c.name == bindparam("n"),
                                 F.c.checksum == bindparam("c")))
            .values(updated_at=bindparam("t")))


def refresh_file_times(conn: Connection, rows: Sequence[tuple[int, str, str, datetime]]
                       ) -> None:
    """Set the recorded time of files (artifact id, name, checksum, time) whose content
    is unchanged; a file whose checksum changed meanwhile is left alone."""
    if rows:
        conn.execute(_REFRESH, [{"a": a, "n": n, "c": c, "t": t} for a, n, c, t in rows])
