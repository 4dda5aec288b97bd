"""Searches of :mod:`catalogstore.catalog.query.language` as SQL on the catalog's tables.

A filter's top-level ``AND`` terms become conditions on ``artifacts``; each
metadata (alias, run) term can also name the set of artifact ids it matches, read
from one index (or, for the documents of aliased versions and runs, by reading them).
A term on a run is an ``EXISTS`` over the output edges on the artifact's current
version (``run_edges.node``, indexed) and their runs.
:mod:`~catalogstore.catalog.query.planner` chooses which sets a search starts from;
:meth:`Search.statement` builds the one statement of a page from that choice, and
every listing runs it (``list_artifacts``, ``query_artifacts``, the CLI).

Every value is a bound parameter: the filter's text never becomes SQL.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import operator
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Double,
    Select,
    Text,
    and_,
    any_,
    case,
    cast,
    exists,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    true,
    tuple_,
    union,
)

from catalogstore.bounded_json import parse_document
from catalogstore.catalog.engine import SQL_DOCUMENT_COLUMN
from catalogstore.catalog.lineage import OUTPUT, current_node, direction_is
from catalogstore.catalog.models import ALIASES as L
from catalogstore.catalog.models import ARTIFACTS as A
from catalogstore.catalog.models import FILES as F
from catalogstore.catalog.models import METADATA as M
from catalogstore.catalog.models import RUN_EDGES as E
from catalogstore.catalog.models import RUNS as R
from catalogstore.catalog.models import VERSIONS as V
from catalogstore.catalog.query.language import (
    TIME_FIELDS,
    TIMESTAMP_FIELDS,
    BoolOp,
    Field,
    Literal,
    Node,
    Not,
    Ordering,
    Predicate,
    check,
    equalities,
    like_parts,
    like_prefix,
    namespace_patterns,
    parse,
    parse_ordering,
    parse_time,
    utc_or_none,
)
from catalogstore.catalog.query.planner import Plan, plan
from catalogstore.errors import QueryError
from catalogstore.record import NUMBER, json_text, value_columns

FILES = select(func.count()).where(F.c.artifact_id == A.c.id).scalar_subquery()
SIZE = select(cast(func.coalesce(func.sum(F.c.size), 0), BigInteger)).where(
    F.c.artifact_id == A.c.id).scalar_subquery()
_BUILTIN = {"name": A.c.name, "namespace": A.c.namespace, "created_at": A.c.created_at,
            "updated_at": A.c.updated_at, "files": FILES, "size": SIZE,
            "version": A.c.version}
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge}
_GLOB_LITERAL = {"*": "[*]", "?": "[?]", "[": "[[]"}

_LIKE_LITERAL = {"%": "\\%", "_": "\\_", "\\": "\\\\"}


@dataclass
class _Term:
    """One compiled term: a condition on ``artifacts``, and the ids it matches if known."""

    condition: ColumnElement[bool]
    ids: Any = None
    """A SELECT of artifact ids: exactly the matches when ``exact``, else a superset."""
    exact: bool = True
    by_name: bool = False
    """The index on names finds its matches (an alternative to starting from ids)."""
    unindexed: bool = False
    """Its ids come from reading rows one by one (versions' metadata documents, runs),
    not from an index."""


class _Compiler:
    def __init__(self, dialect: str, text: str) -> None:
        self.sqlite = dialect == "sqlite"
        self.text = text

    def term(self, node: Node) -> _Term:
        if isinstance(node, Not):
            return _Term(not_(self.term(node.item).condition))
        if isinstance(node, BoolOp):
            terms = [self.term(item) for item in node.items]
            if node.op == "and":
                # Any part's set holds every match of the whole.
                narrowing = next((t for t in terms if t.ids is not None), None)
                return _Term(and_(*(t.condition for t in terms)),
                             narrowing.ids if narrowing else None, exact=False,
                             by_name=any(t.by_name for t in terms),
                             unindexed=bool(narrowing and narrowing.unindexed))
            ids = None
            if all(t.ids is not None for t in terms):
                # A plain SELECT around the UNION: SQLite takes no compound SELECT in
                # parentheses as a member of another one (the INTERSECT of a plan).
                either = union(*(t.ids for t in terms)).subquery()
                ids = select(either.c.artifact_id)
            return _Term(or_(*(t.condition for t in terms)), ids,
                         exact=all(t.exact for t in terms),
                         unindexed=any(t.unindexed for t in terms))
        if node.field.key is not None:
            return self.metadata(node)
        if node.field.of_run:
            return self.run_column(node)
        return self.builtin(node)

    def like(self, column: Any, pattern: Literal) -> ColumnElement[bool]:
        parts = like_parts(str(pattern.value), self.text, pattern.pos)
        if self.sqlite:
            # SQLite's LIKE ignores case; GLOB does not, and uses indexes for prefixes.
            glob = "".join("*" if kind == "any" else "?" if kind == "one"
                           else _GLOB_LITERAL.get(char, char) for kind, char in parts)
            matched = column.op("GLOB", is_comparison=True)(glob)
        else:  # PostgreSQL's LIKE escapes with a backslash by default.
            matched = column.like("".join("%" if kind == "any" else "_" if kind == "one"
                                          else _LIKE_LITERAL.get(char, char)
                                          for kind, char in parts))
        return typing.cast(ColumnElement[bool], matched)

    def value_condition(self, p: Predicate, c: Any) -> ColumnElement[bool]:
        """The condition on one metadata row of the key (its columns ``c``: ``value``,
        ``number``, ``type``, as in ``artifact_metadata``)."""
        if p.op == "like":
            condition = self.like(c.value, p.values[0])
        elif p.op == "contains":
            condition = self.contains(p.values[0], c)
        elif p.op in ("=", "!=", "in"):
            texts = [v.value for v in p.values if v.kind == "string"]
            numbers = [float(v.value) for v in p.values if v.kind == "number"]
            # "number IS NOT NULL" keeps the logic two-valued under NOT.
            alternatives = ([c.value.in_(texts) if len(texts) > 1 else c.value == texts[0]]
                            if texts else []) + \
                ([and_(c.number.is_not(None), c.number.in_(numbers) if len(numbers) > 1
                       else c.number == numbers[0])] if numbers else [])
            # Booleans, null, lists and dicts: of their type, with their JSON text.
            for v in p.values:
                if v.kind in ("boolean", "null", "json"):
                    kind, text, _ = value_columns(v.value)
                    alternatives.append(and_(c.value == text, c.type == kind))
            condition = or_(*alternatives) if len(alternatives) > 1 else alternatives[0]
        else:
            value = p.values[0]
            condition = _COMPARE[p.op](c.number if value.is_number else c.value, value.value)
        return not_(condition) if p.negated or p.op == "!=" else condition

    def contains(self, needle: Literal, c: Any) -> ColumnElement[bool]:
        """The row's value is an array with an element equal to ``needle`` (of its type)."""
        value = needle.value
        if self.sqlite:
            items = func.json_each(c.value).table_valued("value", "type").alias("j")
            kind = needle.kind
            if kind == "json":
                raise QueryError("CONTAINS takes a string, number, true, false or null",
                                 self.text, needle.pos)
            if kind == "string":
                match = and_(items.c.type == "text", items.c.value == value)
            elif kind == "number":
                match = and_(items.c.type.in_(("integer", "real")), items.c.value == value)
            else:  # json_each's types of true, false and null are their names
                match = items.c.type == json_text(value)
            found = exists(select(literal(1)).select_from(items).where(match))
            return and_(c.type == "array", found)
        from sqlalchemy.dialects.postgresql import JSONB

        # CASE: the cast runs on arrays only (a string's text is not JSON).
        needle_json = literal([value], type_=JSONB)  # JSONB serialises it
        return typing.cast(ColumnElement[bool], case(
            (c.type == "array", cast(c.value, JSONB).op("@>", is_comparison=True)(
                needle_json)), else_=False))

    def metadata(self, p: Predicate) -> _Term:
        if p.field.name == "meta" and p.field.alias is None:
            check = scan = (M.c, [M.c.key == p.field.key])
        else:
            check = self.document_rows(p.field, scan=False)
            scan = self.document_rows(p.field, scan=True)
        (c, where), (s, scanned) = check, scan
        unindexed = check is not scan
        if p.op == "null":
            # A key holding null is null too: present means present with a value.
            has = exists().where(c.artifact_id == A.c.id, *where, c.type != "null")
            if p.negated:
                return _Term(has, select(s.artifact_id).where(*scanned, s.type != "null"),
                             unindexed=unindexed)
            return _Term(not_(has))
        return _Term(exists().where(c.artifact_id == A.c.id, *where,
                                    self.value_condition(p, c)),
                     select(s.artifact_id).where(*scanned, self.value_condition(p, s)),
                     unindexed=unindexed)

    def document_rows(self, field: Field, *, scan: bool) -> tuple[Any, list[Any]]:
        """The values under the keys of ``field`` (its key, or its path of keys into
        nested objects: ``run.params.optimizer.lr``) of the documents it reads: the
        metadata of the versions its alias names (``artifact_versions.metadata_json``),
        or the parameters or metadata of the runs that made the current versions
        (``runs.params_json``, ``runs.metadata_json``). A path that meets anything but
        an object before its last key (a string, a list, null, a missing key) finds no
        value, as a missing key. Columns as
        ``artifact_metadata``'s (``artifact_id``, ``type``, ``value``, ``number``),
        computed as :func:`~catalogstore.record.value_columns` computed them for the
        current version, and the conditions that select them (a row per document
        holding the key). ``scan``: for reading them all at once (the ids of a term),
        rather than one artifact's (a check correlated with ``artifacts``).

        A document edited by hand into something that is not JSON reads as no metadata
        on SQLite; PostgreSQL 15 cannot test text for JSON without raising, so there
        the search fails as a :class:`~catalogstore.errors.CatalogError` (as it does
        for a JSON number beyond a double's range, which no commit writes).
        """
        doc: Any
        artifact_id: Any
        if field.alias is not None:
            doc, artifact_id = V.c.metadata_json, L.c.artifact_id
            rows = [V.c.artifact_id == L.c.artifact_id, V.c.version == L.c.version,
                    L.c.alias == field.alias]
        else:
            doc = R.c.params_json if field.name == "run.params" else R.c.metadata_json
            artifact_id, rows = E.c.artifact_id, made_by_runs(scan=scan)
        if self.sqlite:
            # record.document_column: the same Python as the current version's rows, in
            # flat SQL (SQLite's parser stack is shallow: 32 NOTs deep, a filter leaves
            # it little room), each document parsed once for its row's three columns.
            def column(name: str) -> Any:
                return getattr(func, SQL_DOCUMENT_COLUMN)(doc, name, *field.keys)

            return (SimpleNamespace(artifact_id=artifact_id, type=column("type"),
                                    value=column("value"), number=column("number")),
                    [*rows, column("type").is_not(None)])
        from sqlalchemy.dialects.postgresql import JSON

        # json, not jsonb: json keeps each value's text as written, so a value's text is
        # what record.json_text wrote for it (jsonb would print 1e-7 as 0.0000001). Each
        # key is a bound text parameter of its own ->, never a path; -> on anything but
        # an object (a list too: text never indexes one) is NULL, as a missing key.
        value: Any = cast(doc, JSON)
        for key in field.keys:
            value = value[key]
        where = rows
        if scan:
            # Each document parsed once: OFFSET 0 keeps PostgreSQL from copying the
            # extraction into each expression below.
            found = select(artifact_id.label("artifact_id"), value.label("value")).where(
                *rows).offset(0).subquery()
            artifact_id, value, where = found.c.artifact_id, found.c.value, []
        kind = func.json_typeof(value)
        text = case((kind == "string", value.op("#>>", return_type=Text)(
            literal_column("'{}'::text[]"))), else_=cast(value, Text))
        # A JSON number a commit wrote is a finite double or a 64-bit integer: a cast. A
        # string that spells a number may spell one beyond a double's range ('1e999'):
        # jsonpath's .double() in silent mode makes it no number (NULL), where a cast
        # would raise (and costs more: strings only).
        number = case((kind == "number", cast(text, Double)),
                      (and_(kind == "string", text.op("~")(f"^(?:{NUMBER.pattern})$")),
                       cast(func.jsonb_path_query_first(
                           func.to_jsonb(text), literal_column("'strict $.double()'::jsonpath"),
                           literal_column("'{}'::jsonb"), true()), Double)))
        return (SimpleNamespace(artifact_id=artifact_id, type=kind, value=text, number=number),
                [*where, value.is_not(None)])

    def alias(self, p: Predicate) -> _Term:
        """``alias``: whether one of the artifact's aliases matches (``!=``, ``NOT IN``,
        ``NOT LIKE``: none does; ``IS NULL``: it has none)."""
        if p.op == "null":
            has = exists().where(L.c.artifact_id == A.c.id)
            return _Term(has) if p.negated else _Term(not_(has))
        names = [v.value for v in p.values]
        if p.op == "like":
            condition = self.like(L.c.alias, p.values[0])
        else:
            condition = L.c.alias.in_(names) if len(names) > 1 else L.c.alias == names[0]
        found = exists().where(L.c.artifact_id == A.c.id, condition)
        if p.negated or p.op == "!=":
            return _Term(not_(found))
        return _Term(found, select(L.c.artifact_id).where(condition))

    def run_column(self, p: Predicate) -> _Term:
        """``run.name``, ``run.status``, ...: whether a run that made the artifact's
        current version has such a value (``IS NULL``: none has a value, as when no
        run made it)."""
        column = R.c[p.field.name.removeprefix("run.")]
        condition = column.is_not(None) if p.op == "null" else self.compare(column, p)
        has = exists().where(*made_by_runs(scan=False), condition)
        if p.op == "null" and not p.negated:
            return _Term(not_(has))
        # run.id and run.name have an index (the key, ix_runs_name_started_at).
        indexed = p.field.name in ("run.id", "run.name") and p.op in ("=", "in") \
            and not p.negated
        return _Term(has, select(E.c.artifact_id).where(*made_by_runs(scan=True), condition),
                     unindexed=not indexed)

    def compare(self, column: Any, p: Predicate) -> ColumnElement[bool]:
        """The built-in ``column`` against the values of ``p`` (timestamps parsed)."""
        if p.field.name in TIMESTAMP_FIELDS:
            values: list[Any] = [parse_time(v, self.text) for v in p.values]
        else:
            values = [v.value for v in p.values]
        if p.op == "like":
            condition = self.like(column, p.values[0])
        elif p.op == "in":
            condition = column.in_(values)
        else:
            condition = _COMPARE[p.op](column, values[0])
        return not_(condition) if p.negated else condition

    def builtin(self, p: Predicate) -> _Term:
        name = p.field.name
        if name == "alias":
            return self.alias(p)
        by_name = name == "name" and not p.negated and (
            p.op in ("=", "in") or (p.op == "like" and bool(like_prefix(
                like_parts(str(p.values[0].value), self.text, p.values[0].pos)))))
        return _Term(self.compare(_BUILTIN[name], p), by_name=by_name)


_MADE = A.alias("made")


def made_by_runs(*, scan: bool) -> list[ColumnElement[bool]]:
    """The conditions that join ``runs`` to the output edges on the current versions they
    made: of the ``artifacts`` row at hand (by ``ix_run_edges_node``), or with ``scan``
    of every artifact (from the runs, by ``ix_run_edges_run_id``; an alias of
    ``artifacts``, so that the ids a term reads are not correlated with a page's)."""
    if scan:
        return [E.c.run_id == R.c.id, direction_is(OUTPUT),
                _MADE.c.id == E.c.artifact_id, _MADE.c.version == E.c.version]
    return [E.c.node == current_node(A), direction_is(OUTPUT), R.c.id == E.c.run_id]


def _namespace_condition(patterns: list[str], sqlite: bool, *, indexed: bool = True
                         ) -> ColumnElement[bool]:
    """The namespaces of ``patterns``; with ``indexed=False`` SQLite cannot answer it
    from an index (``namespace || ''``), so it reads another index in order instead."""
    exact = [p for p in patterns if "*" not in p and "?" not in p]
    globs = [p for p in patterns if p not in exact]
    column: Any = A.c.namespace if indexed else A.c.namespace.concat("")
    conditions: list[ColumnElement[bool]] = []
    if exact:
        conditions.append(column.in_(exact) if len(exact) > 1 else column == exact[0])
    for glob in globs:
        if sqlite:
            conditions.append(column.op("GLOB", is_comparison=True)(glob))
        else:
            like = "".join("%" if c == "*" else "_" if c == "?" else _LIKE_LITERAL.get(c, c)
                           for c in glob)
            conditions.append(column.like(like))
    return or_(*conditions) if len(conditions) > 1 else conditions[0]


def _sort_keys(ordering: Ordering) -> tuple[list[Any], Any]:
    """The sort key columns (unique together) and the FROM clause they need."""
    field = ordering.field
    if field is None or field.name == "namespace":
        return [A.c.namespace, A.c.name], A  # unique together
    if field.name != "meta":
        return [_BUILTIN[field.name], A.c.id], A
    o = M.alias("o")
    joined = A.outerjoin(o, and_(o.c.artifact_id == A.c.id, o.c.key == field.key))
    # Numbers, then text, then artifacts without the key: in both directions.
    first, last = (2, 0) if ordering.descending else (0, 2)
    rank = case((o.c.number.is_not(None), first), (o.c.value.is_not(None), 1), else_=last)
    return [rank, func.coalesce(o.c.number, 0.0), func.coalesce(o.c.value, ""), A.c.id], joined


# -- cursors ---------------------------------------------------------------------------


MAX_CURSOR_CHARS = 1 << 23
"""Longest page cursor accepted (it carries a metadata value when ordering by one)."""
_INT64 = (-(1 << 63), (1 << 63) - 1)
_BAD_CURSOR = "invalid page cursor: pass the 'next' cursor of a previous page unchanged"


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    return value


def _decode(value: Any) -> Any:
    """A sort key value of a cursor, checked as fully as any user input (issue 12): a
    cursor is the user's text, edited or not."""
    if isinstance(value, dict) and set(value) == {"t"} and isinstance(value["t"], str):
        moment = utc_or_none(datetime.fromisoformat(value["t"]))
        if moment is None:
            raise ValueError("timestamp out of range")
        return moment
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int) and not _INT64[0] <= value <= _INT64[1]:
        raise ValueError("beyond a 64-bit integer")
    if isinstance(value, (str, int, float)):
        return value  # strings and floats: checked by parse_document
    raise ValueError(value)


def encode_cursor(signature: str, keys: Iterable[Any]) -> str:
    data = json.dumps({"o": signature, "k": [_encode(k) for k in keys]}, separators=(",", ":"))
    return base64.urlsafe_b64encode(data.encode()).decode().rstrip("=")


def decode_cursor(token: str, signature: str, count: int) -> list[Any]:
    """The sort key values of a cursor made for the ordering ``signature``.

    The token is parsed as any untrusted document (:func:`~catalogstore.bounded_json.
    parse_document`: bounded, no NUL or lone surrogate, no huge number), and each value
    must fit its sort key (:func:`_check_types`): an edited cursor is a
    :class:`QueryError`, never a database error.
    """
    try:
        if len(token) > MAX_CURSOR_CHARS or not token.isascii():
            raise ValueError("too long, or not base64")
        data = parse_document(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        keys = [_decode(k) for k in data["k"]]
        made_for = data["o"]
        if not isinstance(made_for, str):
            raise TypeError(made_for)
    except (ValueError, TypeError, KeyError, binascii.Error):  # InvalidDocumentError too
        raise QueryError(_BAD_CURSOR) from None
    if made_for != signature or len(keys) != count:
        raise QueryError(f"this page cursor belongs to order_by {made_for[:200]!r}, not "
                         f"{signature!r}: keep the ordering while paging")
    return keys


def _check_types(keys: list[Any], values: list[Any]) -> None:
    """Refuse a cursor whose values do not fit its sort keys (an edited token)."""
    for key, value in zip(keys, values, strict=True):
        wanted = key.type.python_type
        if not (isinstance(value, wanted) or (wanted is float and isinstance(value, int))):
            raise QueryError(_BAD_CURSOR)


# -- the search --------------------------------------------------------------------------


class Search:
    """A compiled search: what :meth:`Catalog.search` runs.

    Parameters
    ----------
    node, text
        The parsed filter (``None``: every artifact) and its text, for messages.
    dialect
        ``sqlite`` or ``postgresql``.
    namespaces
        Glob patterns of namespaces, or ``None`` for all.
    """

    def __init__(self, node: Node | None, text: str, *, dialect: str,
                 namespaces: list[str] | None, ordering: Ordering, limit: int | None,
                 after: str | None) -> None:
        self.sqlite = dialect == "sqlite"
        compiler = _Compiler(dialect, text)
        top = node.items if isinstance(node, BoolOp) and node.op == "and" else \
            [node] if node is not None else []
        self.terms = [compiler.term(item) for item in top]
        self.namespaces = namespaces
        self._built: dict[tuple[Any, ...], Any] = {}
        self.ordering = ordering
        self.limit = limit
        self.keys, self.from_clause = _sort_keys(ordering)
        self.after = None if after is None else \
            decode_cursor(after, ordering.signature, len(self.keys))
        if self.after is not None:
            _check_types(self.keys, self.after)

    def plan(self, conn: Connection) -> Plan:
        """Where this search starts (:func:`~catalogstore.catalog.query.planner.plan`)."""
        return plan(self, conn)

    def statement(self, conn: Connection, plan: Plan | None = None) -> Select[Any]:
        """The SELECT of one page: the artifact columns and its metadata document, then
        the sort keys.

        On PostgreSQL the ids of the plan are read first: its estimates treat a key
        and a value as independent (``key = 'accuracy' AND number > 0.99`` looks like
        a fifth of all numbers), which leads it to hash whole tables.
        """
        plan = plan or self.plan(conn)
        if self.sqlite:  # the same plan, the same statement: built and cache-keyed once
            key = ("page", id(plan.ids), plan.small, *map(id, plan.answered))
            return typing.cast(Select[Any], self.memo(key, lambda: self._page(conn, plan)))
        return self._page(conn, plan)

    def _page(self, conn: Connection, plan: Plan) -> Select[Any]:
        conditions: list[ColumnElement[bool]] = []
        if plan.ids is not None and self.sqlite:
            conditions.append(A.c.id.in_(plan.ids))
        elif plan.ids is not None:
            from sqlalchemy.dialects.postgresql import ARRAY

            ids = plan.fetched if plan.fetched is not None else \
                list(conn.execute(plan.ids).scalars())
            conditions.append(A.c.id == any_(literal(ids, ARRAY(BigInteger))))
        if self.namespaces is not None:
            # SQLite would rather read a namespace's artifacts by the namespace index than
            # start from a few ids; and reading a page in the order of the name or time
            # index beats reading the namespaces' artifacts and sorting them all, unless
            # one namespace's own index (namespace, name) is in that order already.
            field = self.ordering.field
            one = len(self.namespaces) == 1 and not set("*?") & set(self.namespaces[0])
            in_order = (plan.ids is None and self.scans_in_order()
                        and field is not None and field.name in ("name", *TIME_FIELDS)
                        and not (one and field.name == "name"))
            conditions.append(_namespace_condition(
                self.namespaces, self.sqlite, indexed=not (self.sqlite and (
                    plan.small or in_order))))
        for term in self.terms:
            if any(term is done for done in plan.answered):
                continue
            if self.sqlite or term.ids is None or plan.ids is not None:
                conditions.append(term.condition)  # checked per artifact
            else:
                # A semi-join PostgreSQL's planner can order by its statistics.
                inside = A.c.id.in_(term.ids)
                conditions.append(inside if term.exact else and_(inside, term.condition))
        if self.after is not None:
            bounds = tuple_(*(literal(v, type_=k.type) for k, v in zip(self.keys, self.after,
                                                                      strict=True)))
            keys = tuple_(*self.keys)
            conditions.append(keys < bounds if self.ordering.descending else keys > bounds)
        order = [k.desc() if self.ordering.descending else k.asc() for k in self.keys]
        statement = (select(A.c.id, A.c.namespace, A.c.name, A.c.created_at, A.c.updated_at,
                            A.c.metadata_json,
                            *(k.label(f"k{i}") for i, k in enumerate(self.keys)))
                     .select_from(self.from_clause).where(*conditions).order_by(*order))
        return statement if self.limit is None else statement.limit(self.limit + 1)

    def cursor(self, row: Any) -> str:
        """The cursor of the page that follows ``row`` (a row of :meth:`statement`)."""
        return encode_cursor(self.ordering.signature, tuple(row)[6:6 + len(self.keys)])

    def memo(self, key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        """Statements built once per search (SQLAlchemy then caches their compiled form)."""
        found = self._built.get(key)
        if found is None:
            found = self._built[key] = build()
        return found

    def scans_in_order(self) -> bool:
        """Whether a page of this ordering can be read in the order of an index."""
        return self.limit is not None and self.ordering.indexed \
            and not any(t.by_name for t in self.terms)


def compile_search(filter: str | None, *, dialect: str, where: dict[str, Any] | None = None,
                   namespaces: str | Iterable[str] = "*", order_by: str | None = None,
                   limit: int | None = None, after: str | None = None) -> Search:
    """Parse and check a search; see :mod:`catalogstore.catalog.query.language` for the language.

    Raises
    ------
    QueryError
        for a malformed filter, ordering, namespace pattern, limit or cursor.
    """
    if filter is not None and not isinstance(filter, str):
        raise QueryError(f"the filter must be a string, not {type(filter).__name__}")
    if order_by is not None and not isinstance(order_by, str):
        raise QueryError(f"order_by must be a string such as 'created_at desc', not "
                         f"{type(order_by).__name__}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or limit < 1):
        raise QueryError(f"limit must be a positive integer, not {limit!r}")
    if after is not None and not isinstance(after, str):
        raise QueryError(_BAD_CURSOR)
    patterns = namespace_patterns(namespaces)
    # The cache key holds each value's JSON text: 1, 1.0 and True are equal in Python.
    return _compile(filter or "", dialect,
                    tuple([(k, json_text(v)) for k, v in (where or {}).items()]),
                    None if patterns is None else tuple(patterns), order_by, limit, after)


@functools.lru_cache(maxsize=256)
def _compile(text: str, dialect: str, where: tuple[tuple[str, str], ...],
             namespaces: tuple[str, ...] | None, order_by: str | None, limit: int | None,
             after: str | None) -> Search:
    # Cached: a Search never changes once built, and programs repeat their searches.
    nodes: list[Node] = equalities({k: json.loads(v) for k, v in where})
    if text.strip():
        node = parse(text, terms=len(where), values=len(where))
        check(node, text)
        nodes.append(node)
    top: Node | None = None
    if nodes:
        flat: list[Node] = []
        for node in nodes:
            flat.extend(node.items if isinstance(node, BoolOp) and node.op == "and"
                        else [node])
        top = flat[0] if len(flat) == 1 else BoolOp("and", tuple(flat))
    return Search(top, text, dialect=dialect,
                  namespaces=None if namespaces is None else list(namespaces),
                  ordering=parse_ordering(order_by), limit=limit, after=after)
