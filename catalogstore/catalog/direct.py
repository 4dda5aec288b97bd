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
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

Params = dict[str, Any]
# A statement compiled once, for one set of parameter names and expanding-list lengths:
# its SQL, and a function from the call's parameters to the driver's positional ones.
_Prepared = tuple[str, Callable[[Params], tuple[Any, ...]]]
_cache: dict[tuple[Any, ...], tuple[Any, _Prepared]] = {}
_CACHE_SIZE = 512
_row_processors: dict[int, tuple[Any, Callable[[Any], Any] | None]] = {}
_remembered: dict[Any, Callable[[Any], Any]] = {}
# Longer IN lists go through Core: one compiled form per list length would not pay.
MAX_LIST = 16


def run(conn: Connection, statement: Any, params: Params | Sequence[Params]) -> list[Any]:
    """Execute ``statement`` with one parameter set or many; the rows it returns.

    Rows are tuples on SQLite and :class:`~sqlalchemy.Row` elsewhere: index or
    unpack them, don't use attribute names.
    """
    rows: Sequence[Params] = (params,) if type(params) is dict else params  # type: ignore[assignment]
    first = rows[0]
    lengths = _list_lengths(first)
    if not _direct(conn, statement, rows, lengths):
        result = conn.execute(statement, first if len(rows) == 1 else list(rows))
        return list(result.all()) if result.returns_rows else []
    sql, args_of = _prepare(conn, statement, first, lengths)
    driver = conn.connection.driver_connection
    args: Any = None
    try:
        if len(rows) == 1:
            args = args_of(first)
            return list(driver.execute(sql, args).fetchall())  # type: ignore[union-attr]
        args = [args_of(row) for row in rows]
        return list(driver.executemany(sql, args).fetchall())  # type: ignore[union-attr]
    except sqlite3.Error as exc:
        # The exception SQLAlchemy would raise (IntegrityError, OperationalError, ...).
        raise DBAPIError.instance(sql, args, exc, sqlite3.Error) from exc


def select_one(conn: Connection, statement: Any, params: Params) -> list[Any]:
    """The rows of one SELECT run on its own, outside any transaction (one statement
    reads one snapshot): on SQLite straight on the driver, with no BEGIN and COMMIT
    around it; elsewhere through Core. Rows as :func:`run` returns them."""
    lengths = _list_lengths(params)
    if not _direct(conn, statement, (params,), lengths, in_transaction=False):
        if conn.in_transaction():
            return run(conn, statement, params)
        with conn.begin():  # ended here: a kept connection keeps no snapshot
            return run(conn, statement, params)
    sql, args_of = _prepare(conn, statement, params, lengths)
    args = args_of(params)
    try:
        return list(conn.connection.driver_connection.execute(  # type: ignore[union-attr]
            sql, args).fetchall())
    except sqlite3.Error as exc:
        raise DBAPIError.instance(sql, args, exc, sqlite3.Error) from exc


def run_select(conn: Connection, statement: Any, params: Params) -> list[Any]:
    """The rows of a SELECT as Core returns them (each column through its type's result
    processor: timestamps as aware datetimes), as tuples on SQLite.

    A listing's page (issue 11): Core's result handling cost a third of its time.
    """
    lengths = _list_lengths(params)
    if not _direct(conn, statement, (params,), lengths):
        return list(conn.execute(statement, params).all())
    rows = run(conn, statement, params)
    process = _row_processor(conn, statement)
    return rows if process is None else [process(row) for row in rows]


def _row_processor(conn: Connection, statement: Any) -> Callable[[Any], Any] | None:
    """A function applying the result processors of ``statement``'s columns to a row,
    built once per statement; ``None`` when no column has one."""
    cached = _row_processors.get(id(statement))
    if cached is not None and cached[0] is statement:
        return cached[1]
    dialect = conn.dialect
    env: dict[str, Any] = {}
    items = []
    for i, column in enumerate(statement.selected_columns):
        process = column.type.dialect_impl(dialect).result_processor(dialect, None)
        if process is None:
            items.append(f"r[{i}]")
        else:
            env[f"f{i}"] = process
            items.append(f"f{i}(r[{i}])")
    function = eval(f"lambda r: ({', '.join(items)},)", env) if env else None
    if len(_row_processors) >= _CACHE_SIZE:
        _row_processors.clear()
    _row_processors[id(statement)] = (statement, function)  # kept: its id stays its own
    return function


def _list_lengths(params: Params) -> tuple[tuple[str, int], ...]:
    """(name, length) of each list parameter: a compiled form is kept per list length."""
    return tuple([(k, len(v)) for k, v in params.items() if type(v) is list or
                  type(v) is tuple])


def _direct(conn: Connection, statement: Any, rows: Sequence[Params],
            lengths: tuple[tuple[str, int], ...], *, in_transaction: bool = True) -> bool:
    """Whether this path covers the call (else it goes through Core); ``lengths`` are
    those of the call's list parameters. ``in_transaction``: the call runs in one
    (:func:`run`: outside, Core's autobegin must run), or on its own
    (:func:`select_one`: inside one, :func:`run` serves)."""
    if conn.dialect.name != "sqlite" or conn.in_transaction() is not in_transaction:
        return False
    if len(rows) > 1 and (bool(getattr(statement, "_returning", ())) or
                          getattr(statement, "is_select", False)):
        return False
    return all(n <= MAX_LIST for _, n in lengths)


def _prepare(conn: Connection, statement: Any, params: Params,
             lengths: tuple[tuple[str, int], ...]) -> _Prepared:
    key = (id(statement), lengths, *params)
    cached = _cache.get(key)
    if cached is not None and cached[0] is statement:
        return cached[1]
    dialect = conn.dialect
    compiled = statement.compile(dialect=dialect, column_keys=list(params))
    state = compiled.construct_expanded_state(params)
    # Expanded names ("names_2") back to their list and position.
    position = {expanded: (name, i) for name, names in state.parameter_expansion.items()
                for i, expanded in enumerate(names)}
    sources: list[str] = []
    env: dict[str, Any] = {}
    for i, name in enumerate(state.positiontup or ()):
        source, index = position.get(name, (name, None))
        bind = compiled.binds[source]
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if source not in params:  # a constant of the statement (LIMIT 1, a filter's value)
            constant = state.parameters[name]
            env[f"c{i}"] = constant if process is None else process(constant)
            sources.append(f"c{i}")
            continue
        value = f"p[{source!r}]" + ("" if index is None else f"[{index}]")
        if process is not None:
            if bind.type.python_type is datetime:
                process = _last_remembered(process, (bind.type._static_cache_key,
                                                     dialect.name))
            env[f"f{i}"] = process
            value = f"f{i}({value})"
        sources.append(value)
    # One expression building the whole tuple: a call per parameter would cost more
    # than SQLite takes to run the statement (the names are the statement's own).
    args_of = eval(f"lambda p: ({', '.join(sources)}{',' if sources else ''})", env)
    prepared = (state.statement, args_of)
    if len(_cache) >= _CACHE_SIZE:
        _cache.clear()
    _cache[key] = (statement, prepared)  # the statement itself keeps its id from being reused
    return prepared


def _last_remembered(process: Callable[[Any], Any], kind: Any) -> Callable[[Any], Any]:
    """``process`` answering a repeat of the same (immutable) value from memory: a
    commit stamps every row of its statements with one datetime, which would be
    formatted per row and statement. One per ``kind`` of column type (the statements of
    a commit share it)."""
    found = _remembered.get(kind)
    if found is not None:
        return found
    last: list[tuple[Any, Any]] = [(object(), None)]

    def remembered(value: Any) -> Any:
        seen, result = last[0]  # one tuple, replaced whole: safe across threads
        if value is seen:
            return result
        result = process(value)
        last[0] = (value, result)
        return result
    return _remembered.setdefault(kind, remembered)
