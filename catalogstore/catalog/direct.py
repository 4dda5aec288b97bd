"""Prebuilt catalog statements run straight on SQLite's driver connection.

SQLAlchemy spends tens of microseconds per execute on bookkeeping (compiled cache
lookup, parameter processing, events, result wrapping) while SQLite answers a
one-row insert in about ten; a commit that creates one artifact runs six
statements, so that bookkeeping was half the cost of creating an artifact.
:func:`run` keeps what SQLAlchemy compiled for the statement — its SQL and its
bind processors, so values are stored exactly as the Core path stores them (a
test holds the two equal) — and hands them to the ``sqlite3`` cursor of the
connection's open transaction. Other databases, and the statements this path
does not cover (several rows with ``RETURNING``), go through Core unchanged.

Statement events (``before_cursor_execute``, ``echo``) are not fired for the
statements run here; the transaction's own events are.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

Params = dict[str, Any]
# A statement compiled once, for one set of parameter names and expanding-list lengths:
# its SQL and, per positional parameter, how to take its value from the call's parameters.
_Prepared = tuple[str, list[Callable[[Params], Any]]]
_cache: dict[tuple[Any, ...], tuple[Any, _Prepared]] = {}
_CACHE_SIZE = 512
# Longer IN lists go through Core: one compiled form per list length would not pay.
_MAX_LIST = 16


def run(conn: Connection, statement: Any, params: Params | Sequence[Params]) -> list[Any]:
    """Execute ``statement`` with one parameter set or many; the rows it returns.

    Rows are tuples on SQLite and :class:`~sqlalchemy.Row` elsewhere: index or
    unpack them, don't use attribute names.
    """
    many = not isinstance(params, dict)
    rows: Sequence[Params] = params if many else [params]  # type: ignore[list-item]
    lengths = tuple((k, len(v)) for k, v in rows[0].items()
                    if isinstance(v, (list, tuple))) if rows else ()
    if not _direct(conn, statement, rows, lengths):
        result = conn.execute(statement, rows[0] if len(rows) == 1 else list(rows))
        return result.all() if result.returns_rows else []
    sql, getters = _prepare(conn, statement, rows[0], lengths)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    args: Any = None
    try:
        if len(rows) == 1:
            args = [get(rows[0]) for get in getters]
            cursor.execute(sql, args)
        else:
            args = [[get(row) for get in getters] for row in rows]
            cursor.executemany(sql, args)
        return cursor.fetchall()
    except sqlite3.Error as exc:
        # The exception SQLAlchemy would raise (IntegrityError, OperationalError, ...).
        raise DBAPIError.instance(sql, args, exc, sqlite3.Error) from exc
    finally:
        cursor.close()


def _direct(conn: Connection, statement: Any, rows: Sequence[Params],
            lengths: tuple[tuple[str, int], ...]) -> bool:
    """Whether this path covers the call (else it goes through Core); ``lengths`` are
    those of the call's list parameters."""
    if conn.dialect.name != "sqlite" or not rows or not conn.in_transaction():
        return False  # outside a transaction Core's autobegin must run
    if len(rows) > 1 and (getattr(statement, "_returning", ()) or
                          getattr(statement, "is_select", False)):
        return False
    return all(n <= _MAX_LIST for _, n in lengths)


def _prepare(conn: Connection, statement: Any, params: Params,
             lengths: tuple[tuple[str, int], ...]) -> _Prepared:
    key = (id(statement), tuple(params), lengths)
    cached = _cache.get(key)
    if cached is not None and cached[0] is statement:
        return cached[1]
    dialect = conn.dialect
    compiled = statement.compile(dialect=dialect, column_keys=list(params))
    state = compiled.construct_expanded_state(params)
    # Expanded names ("names_2") back to their list and position.
    position = {expanded: (name, i) for name, names in state.parameter_expansion.items()
                for i, expanded in enumerate(names)}
    getters: list[Callable[[Params], Any]] = []
    for name in state.positiontup or ():
        source, index = position.get(name, (name, None))
        bind = compiled.binds[source]
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if source not in params:  # a constant of the statement (LIMIT 1)
            constant = state.parameters[name]
            getters.append(lambda _p, v=constant: v)
        elif index is not None:
            getters.append(_item(source, index, process))
        else:
            getters.append(_value(source, process))
    prepared = (state.statement, getters)
    if len(_cache) >= _CACHE_SIZE:
        _cache.clear()
    _cache[key] = (statement, prepared)  # the statement itself keeps its id from being reused
    return prepared


def _value(name: str, process: Callable[[Any], Any] | None) -> Callable[[Params], Any]:
    if process is None:
        return lambda p: p[name]
    return lambda p: process(p[name])


def _item(name: str, index: int, process: Callable[[Any], Any] | None
          ) -> Callable[[Params], Any]:
    if process is None:
        return lambda p: p[name][index]
    return lambda p: process(p[name][index])
