"""The planner: which index a search starts from.

Neither database's planner knows how many artifacts a metadata condition matches
(SQLite keeps no such statistics; PostgreSQL's treat key and value as
independent), so :func:`plan` counts the ids of each term of a search (up to
:data:`PROBE_CAP`) and starts from the smallest sets, intersected, checking the
other terms per candidate; without a small set, PostgreSQL's planner decides.

A term on the metadata of aliased versions (``alias.prod.meta.KEY``) has no index, nor
has a term on the runs that made the current versions (``run.params.lr > 0.01``, but
``run.name = 'train'`` and ``run.id = ...`` have one): their ids are counted only when no
other term has ids, and otherwise checked per candidate.

So a metadata equality (``where={"model": "xgb"}``, ``meta.model = 'xgb'``) starts
from the (key, value) index (``ix_artifact_metadata_key_value`` on SQLite, the
hash index on the value on PostgreSQL) and reads each hit's artifact by its id,
filtered by namespace: it costs the number of hits, not the size of the
namespace (``tests/test_query_sql.py`` checks the plans, ``bench/bench_where.py``
the cost).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, intersect, select

from catalogstore.catalog.direct import run
from catalogstore.catalog.models import ArtifactRow

if TYPE_CHECKING:
    from catalogstore.catalog.query.compile import Search, _Term

A = ArtifactRow.__table__

PROBE_CAP = 20_000
"""Ids counted (PostgreSQL: read) at most per metadata term when a search is planned;
PostgreSQL starts from a set of ids only when it is smaller."""
CHECK_COST = 30
"""A per-artifact check of a term costs about as much as reading this many index
entries (measured on SQLite): a term joins the intersection while its set is at most
this many times the smallest one."""


@dataclass
class Plan:
    """Where a search starts: a SELECT of candidate ids (``None``: the database's own
    choice), and the terms those ids answer exactly (not checked again)."""

    ids: Any
    answered: list[_Term]
    fetched: list[int] | None = None
    """The ids of ``ids``, when planning read them already (PostgreSQL)."""
    small: bool = False
    """``ids`` is known to hold fewer than :data:`PROBE_CAP` ids."""


def plan(search: Search, conn: Connection) -> Plan:
    """Choose the id sets ``search`` starts from, counting each term's (up to a cap)."""
    candidates = [t for t in search.terms if t.ids is not None]
    # Counting the ids of alias.NAME.meta.KEY reads a document per aliased version (of
    # run.params.KEY one per run): those terms are checked per candidate instead, when an
    # index can start the search.
    indexed = [t for t in candidates if not t.unindexed]
    candidates = indexed or candidates
    if not candidates:
        return Plan(None, [])
    by_name = any(t.by_name for t in search.terms)
    ordered_scan = search.scans_in_order()
    if len(candidates) == 1 and not (by_name or ordered_scan):
        only = candidates[0]
        answered = [only] if only.exact else []
        if search.sqlite:
            # Counted only to choose between these ids and the namespace index.
            small = search.namespaces is not None and _count(search, conn, only) < PROBE_CAP
            return Plan(only.ids, answered, small=small)
        # One term: read its ids at once, unless there are too many to pass on.
        ids = list(conn.execute(only.ids.limit(PROBE_CAP + 1)).scalars())
        if len(ids) > PROBE_CAP:
            return Plan(None, [])
        return Plan(only.ids, answered, ids, small=True)
    counts = [_count(search, conn, t) for t in candidates]
    smallest = min(counts)
    # PostgreSQL fetches the ids of the plan: only a bounded set. SQLite keeps them in
    # the statement, and a large set beats reading every artifact, unless the name
    # index finds the matches.
    if smallest >= PROBE_CAP and (by_name or not search.sqlite):
        return Plan(None, [])
    if ordered_scan and search.limit is not None and smallest > 0:
        # Reading artifacts in index order stops after a page of matches: about
        # limit * total / matches rows, each checked per artifact. The largest id
        # stands in for the total; a capped count for half of it.
        total = conn.execute(select(func.max(A.c.id))).scalar() or 0
        matches = smallest if smallest < PROBE_CAP else max(smallest, total // 2)
        if (search.limit + 1) * total / matches * CHECK_COST < matches:
            return Plan(None, [])
    chosen = [t for t, n in sorted(zip(candidates, counts, strict=True),
                                   key=lambda pair: pair[1])
              if n <= max(smallest, 1) * CHECK_COST]
    ids = search.memo(("ids", *map(id, chosen)), lambda: chosen[0].ids if len(chosen) == 1
                     else intersect(*(t.ids for t in chosen)))
    return Plan(ids, [t for t in chosen if t.exact], small=smallest < PROBE_CAP)


def _count(search: Search, conn: Connection, term: _Term) -> int:
    """How many artifacts ``term`` matches, counted up to :data:`PROBE_CAP`."""
    statement = search.memo(("count", id(term)), lambda: select(func.count())
                            .select_from(term.ids.limit(PROBE_CAP).subquery()))
    return int(run(conn, statement, {})[0][0])
