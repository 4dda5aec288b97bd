"""Search the catalog: a small filter language, compiled to SQL, with ordering and pages.

A filter is a boolean expression over an artifact's metadata and its built-in fields::

    meta.model = 'xgb' AND meta.accuracy > 0.9 AND meta.final = true
        AND (name LIKE 'run-%' OR namespace IN ('a', 'b')) AND meta.note IS NULL
        AND meta.layers CONTAINS 64 AND version > 3
        AND alias = 'prod' AND alias.prod.meta.accuracy > 0.9
        AND run.name = 'train' AND run.params.lr > 0.01
        AND run.params.optimizer.lr < 0.1 AND run.meta."data-set".name = 'v2'

Grammar (keywords are case-insensitive; ``NOT`` binds tighter than ``AND``, ``AND``
tighter than ``OR``)::

    filter     := or_expr
    or_expr    := and_expr ("OR" and_expr)*
    and_expr   := not_expr ("AND" not_expr)*
    not_expr   := "NOT" not_expr | "(" or_expr ")" | predicate
    predicate  := field compare literal
                | field ["NOT"] "IN" "(" literal ("," literal)* ")"
                | field ["NOT"] "LIKE" string
                | field "IS" ["NOT"] "NULL"
                | field ["NOT"] "CONTAINS" literal
    compare    := "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">="
    field      := meta | "alias" "." (identifier | quoted) "." meta
                | "name" | "namespace" | "created_at" | "updated_at" | "files" | "size"
                | "version" | "alias"
                | "run" "." ("id" | "name" | "status" | "host" | "started_at" | "ended_at")
                | "run" "." ("params" | "meta") key key*     at most 16 keys: a path
    meta       := "meta" key
    key        := "." identifier | "." quoted | "[" (string|quoted) "]"
    literal    := string | number | "true" | "false" | "null"
    string     := "'" characters "'"        a quote inside is doubled: 'it''s'
    quoted     := '"' characters '"'        a metadata key: meta."my key", meta."a.b"
    number     := [+-] digits [. digits] [(e|E) [+-] digits]      (42, -0.5, 1e-05, .5)

Meaning:

- ``meta.KEY`` is the artifact's metadata value under KEY, a JSON value (string,
  number, boolean, null, array or object). Compared with a quoted string it
  compares its text form: a string itself, any other value its compact JSON text
  (``'xgb'``; ``meta.flag = 'true'`` also holds for the string ``"true"``).
  Compared with a number it compares numerically, and is true for numbers and for
  strings that spell one (:func:`catalogstore.record.value_number`), so
  ``meta.epochs > 9`` holds for ``10`` and ``'10'`` and not for ``'ten'`` or ``9``,
  while ``meta.epochs > '9'`` compares text (``'10' < '9'``).
- ``true`` and ``false`` match booleans only (``=``, ``!=``, ``IN``); ``meta.KEY = null``
  matches a key whose value is JSON ``null``.
- ``meta.KEY IS NULL`` holds when the artifact has no such key or its value is
  ``null`` (SQL's and MongoDB's reading: absent is null); ``IS NOT NULL`` when it
  has the key with another value.
- ``meta.KEY CONTAINS literal`` holds when the value is an array with an element
  equal to the literal (of its type: ``CONTAINS 3`` matches ``[1, 3]`` and ``[3.0]``,
  not ``["3"]``; ``CONTAINS 'gpu'`` matches ``["gpu", "fp16"]``); elements of nested
  arrays and strings that are not arrays never match. (PostgreSQL's ``@>`` on a
  one-element array, SQLite's ``json_each``.)
- A predicate on a key the artifact does not have is false, except ``IS NULL``.
  ``!=``, ``NOT IN``, ``NOT LIKE`` and ``NOT CONTAINS`` hold for artifacts that have
  the key with another value; ``NOT`` before a predicate also matches those
  without the key (``NOT meta.a = 'x'``).
- ``LIKE``: ``%`` matches any run of characters, ``_`` one character, ``\\`` makes the
  next one literal; case-sensitive on SQLite and PostgreSQL alike.
- ``name`` and ``namespace`` are text; ``created_at`` and ``updated_at`` take ISO
  8601 strings (``'2024-05-01'``, ``'2024-05-01T12:00:00+02:00'``; no offset means
  UTC); ``files`` (number of files) and ``size`` (total bytes) take numbers.
- ``version`` is the number of the artifact's current version (issue 15), and takes
  numbers.
- ``alias`` stands for the artifact's aliases (those set with ``set_alias``; ``latest``
  is every artifact's and is not one of them): ``alias = 'prod'``, ``alias IN (...)``
  and ``alias LIKE`` hold when one of its aliases matches; ``alias != 'prod'`` and
  ``NOT IN``, ``NOT LIKE`` when none does; ``alias IS NULL`` when it has no alias.
- ``alias.NAME.meta.KEY`` (``alias."prod-2".meta.KEY`` for a name that is not an
  identifier) is the metadata value under KEY of the version the alias NAME names,
  compared as ``meta.KEY`` is (the same types, the same operators); an artifact
  without that alias is as one without the key. ``alias.latest.meta.KEY`` is
  ``meta.KEY``. The value is read from ``artifact_versions.metadata_json``
  (:mod:`~catalogstore.catalog.query.compile`). ``alias.NAME`` never collides with a
  field: ``alias`` is a built-in field of the language, and metadata keys are always
  reached through ``meta``.
- ``run.FIELD`` is a field of the run that made the artifact's current version
  (issue 16: the run whose output edge names that version; a version made with
  lineage off has none, and an earlier version's run does not count): a term on it
  holds when such a run matches, as an ``EXISTS`` over ``run_edges`` and ``runs``.
  ``run.id``, ``run.name``, ``run.status`` (``running``, ``succeeded``, ``failed``, as
  recorded: a killed process's run reads ``running`` until a lineage read notices;
  ``=``, ``!=`` and ``IN`` take those three only)
  and ``run.host`` are text; ``run.started_at`` and ``run.ended_at`` timestamps, as
  ``created_at``. ``run.params.KEY`` and ``run.meta.KEY`` (``run.params."learning-rate"``,
  ``run.params['a.b']``) are the values under KEY of the run's parameters and
  metadata, compared as ``meta.KEY`` is (the same types, the same operators).
  More keys make a path into nested objects: ``run.params.optimizer.lr`` is the value
  under ``lr`` of the object under ``optimizer`` (a run opened with
  ``params={"optimizer": {"lr": 0.02}}``), each key spelled as the first one may be
  (``run.params."opt-1"."learning rate"``, ``run.params['opt-1'].lr``), at most
  :data:`MAX_PATH_KEYS` of them. A path that meets anything but an object before its
  last key (a missing key, a string, a number, null, or a list: a path never indexes
  a list, not even with ``"0"``) finds no value, as a missing key: no match, no error,
  and ``IS NULL`` holds. A top-level key holding a dot is quoted whole
  (``run.params."optimizer.lr"``). ``meta.KEY`` and ``alias.NAME.meta.KEY`` take one
  key, never a path: an artifact's metadata keys may hold dots (Flowdapt's trees
  have them), so ``meta.a.b`` is refused (quote it: ``meta."a.b"``).
  ``IS NULL`` holds when no run that made the version has a value (none has the key,
  ``run.ended_at`` of a run still running, or no run made it: ``run.id IS NULL``);
  ``!=``, ``NOT IN``, ``NOT LIKE`` when such a run has another value, and ``NOT``
  before a term also matches artifacts no run made. ``run.`` fields are not orderings.
- Text compares by the database's collation: by code point on SQLite and on a
  PostgreSQL database with a C collation.

Every value reaches the database as a bound parameter, so a filter cannot change
the SQL that runs; so does every key of a path (one bound text operand of ``->`` per
key on PostgreSQL, one argument per key of a Python function on SQLite), so a key is
never read as a JSON path (``run.params."$.a"`` is the key ``$.a``). A malformed filter
raises :class:`~catalogstore.errors.QueryError` pointing at the problem.

Limits (checked while parsing, before any SQL is built, so they hold alike on
SQLite and PostgreSQL; issue 12): a filter of at most :data:`MAX_FILTER_CHARS`
characters, holding no NUL and no lone surrogate; at most :data:`MAX_TERMS`
predicates (``OR`` them as ``IN`` for more values); parentheses and ``NOT`` nested at
most :data:`MAX_DEPTH` deep; at most :data:`MAX_VALUES` values in all (``IN`` lists
included); paths of at most :data:`MAX_PATH_KEYS` keys; LIKE patterns of at most
:data:`MAX_PATTERN_CHARS` characters; numbers within the range of a double;
timestamps between years 1 and 9999 once converted to UTC. The parser's recursion is
bounded by :data:`MAX_DEPTH`.

Ordering and pages: ``order_by`` names one field, a built-in one or ``meta.KEY``,
optionally with ``-`` before it or ``desc``/``asc`` after it (default: by
namespace, then name). Ties are broken by the artifact's id (by the name for
``namespace``). By ``meta.KEY``,
numbers come first in numeric order, then text values, then artifacts without
the key, in both directions. Pages are keyset pages: a page's ``next`` cursor is
the sort key of its last artifact and the next page starts strictly after it, so
an artifact created between two pages neither shifts the pages nor is returned
twice; it is on a later page if it sorts after the cursor. (An artifact whose
sort key changes between pages, e.g. ``updated_at``, moves with it.)
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from catalogstore.bounded_json import text_problem
from catalogstore.catalog.lineage import STATUSES
from catalogstore.catalog.models import as_utc
from catalogstore.errors import InvalidNameError, QueryError
from catalogstore.names import LATEST, validate_alias
from catalogstore.record import value_type

MAX_FILTER_CHARS = 1 << 20
"""Longest filter, in characters (1 Mi)."""
MAX_TERMS = 256
"""Most predicates in a filter, ``where`` pairs included (SQLite takes at most 500
members in a compound SELECT, and deep OR chains exhaust either database's stack)."""
MAX_DEPTH = 32
"""Deepest nesting of parentheses and ``NOT``."""
MAX_VALUES = 10_000
"""Most values in a filter, ``IN`` lists included (PostgreSQL takes 65,535 parameters
per statement, SQLite 32,766)."""
MAX_PATTERN_CHARS = 4096
"""Longest LIKE pattern (SQLite refuses GLOB patterns over 50,000 bytes)."""
MAX_PATH_KEYS = 16
"""Most keys in a path of ``run.params`` or ``run.meta`` (``run.params.a.b.c``: 3)."""

BUILTIN_FIELDS = ("name", "namespace", "created_at", "updated_at", "files", "size",
                  "version", "alias")
"""Fields of every artifact, next to ``meta.KEY``, ``alias.NAME.meta.KEY`` and ``run.FIELD``."""
TEXT_FIELDS = ("name", "namespace")
TIME_FIELDS = ("created_at", "updated_at")
NUMBER_FIELDS = ("files", "size", "version")
RUN_FIELDS = ("id", "name", "status", "host", "started_at", "ended_at", "params", "meta")
"""What ``run.FIELD`` names: a column of ``runs``, or a key of its ``params`` or ``meta``
(``run.params.KEY``: the run's ``params_json``, ``run.meta.KEY``: its ``metadata_json``)."""
RUN_TEXT_FIELDS = ("run.id", "run.name", "run.status", "run.host")
RUN_TIME_FIELDS = ("run.started_at", "run.ended_at")
_TEXT = (*TEXT_FIELDS, *RUN_TEXT_FIELDS)
TIMESTAMP_FIELDS = (*TIME_FIELDS, *RUN_TIME_FIELDS)

_KEYWORDS = {"and", "or", "not", "in", "like", "is", "null", "true", "false", "contains"}
_CONSTANTS = {"true": True, "false": False, "null": None}
_COMPARE = {"=": "=", "==": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">",
            ">=": ">="}
_TOKEN = re.compile(r"""
      (?P<space>\s+)
    | (?P<number>[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op><=|>=|!=|<>|==|[=<>(),.\[\]])
    | (?P<string>')
    | (?P<quoted>")
""", re.VERBOSE)


# -- tokens ------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """One token: ``kind`` is number, word, op, string, quoted or end."""

    kind: str
    text: str
    pos: int
    value: Any = None

    def describe(self) -> str:
        if self.kind == "end":
            return "the end of the filter"
        if self.kind in ("string", "quoted"):
            return f"the {'string' if self.kind == 'string' else 'quoted name'} {self.text}"
        return repr(self.text)


def _quoted(text: str, start: int, quote: str) -> tuple[str, int]:
    """The content of the quoted run at ``start`` (doubled quotes undone) and its end."""
    pos = start + 1
    parts = []
    while True:
        end = text.find(quote, pos)
        if end < 0:
            what = "string" if quote == "'" else "quoted name"
            raise QueryError(f"unterminated {what}: add the closing {quote}", text, start)
        parts.append(text[pos:end])
        if text.startswith(quote, end + 1):  # a doubled quote stands for one
            parts.append(quote)
            pos = end + 2
            continue
        return "".join(parts), end + 1


def tokenize(text: str) -> Iterator[Token]:
    """The tokens of ``text``, ending with an ``end`` token."""
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise QueryError(f"unexpected character {text[pos]!r}", text, pos)
        kind = match.lastgroup
        assert kind is not None
        if kind in ("string", "quoted"):
            value, end = _quoted(text, pos, match.group())
            yield Token(kind, text[pos:end], pos, value)
            pos = end
            continue
        if kind != "space":
            yield Token(kind, match.group(), pos)
        pos = match.end()
    yield Token("end", "", len(text))


# -- syntax tree -------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """``meta.KEY`` (``name`` is ``"meta"``, ``key`` the key), ``alias.NAME.meta.KEY``
    (the same, with ``alias`` the alias NAME), a built-in field, or a field of the run
    that made the current version (``name`` is ``run.name``, ...; ``run.params.KEY``
    and ``run.meta.KEY`` have a ``key``)."""

    name: str
    key: str | None
    pos: int
    alias: str | None = None
    path: tuple[str, ...] = ()
    """The keys after ``key`` of a path into nested objects (``run.params.optimizer.lr``:
    ``key`` ``optimizer``, ``path`` ``("lr",)``); ``run.params`` and ``run.meta`` only."""

    @property
    def keys(self) -> tuple[str, ...]:
        """``key`` and the keys of ``path``, outermost first."""
        return () if self.key is None else (self.key, *self.path)

    def __str__(self) -> str:
        if self.key is None:
            return self.name
        return ("" if self.alias is None else f"alias[{self.alias!r}].") + \
            self.name + "".join(f"[{key!r}]" for key in self.keys)

    @property
    def of_run(self) -> bool:
        """A field of the run that made the artifact's current version."""
        return self.name.startswith("run.")


@dataclass(frozen=True)
class Literal:
    """A value of a filter: a string, a number (``float``), ``True``/``False``, ``None``;
    from ``where`` also an ``int``, a list or a dict."""

    value: Any
    pos: int

    @property
    def kind(self) -> str:
        """string, number, boolean, null or json (a list or dict, compared as JSON text)."""
        kind = value_type(self.value)
        return "json" if kind in ("array", "object") else kind

    @property
    def is_number(self) -> bool:
        return self.kind == "number"


@dataclass(frozen=True)
class Predicate:
    """``field op values``; ``op`` is a comparison, ``in``, ``like``, ``null`` or ``contains``.

    ``negated`` is set for ``NOT IN``, ``NOT LIKE``, ``NOT CONTAINS`` and ``IS NOT NULL``.
    """

    field: Field
    op: str
    values: tuple[Literal, ...]
    negated: bool = False


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" or "or"
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node = Predicate | BoolOp | Not


class _Parser:
    """Recursive descent over the grammar of the module docstring."""

    def __init__(self, text: str, *, terms: int = 0, values: int = 0,
                 what: str = "filter") -> None:
        check_text(text, what)
        if len(text) > MAX_FILTER_CHARS:
            raise QueryError(f"the filter is {len(text)} characters long, more than the "
                             f"{MAX_FILTER_CHARS} accepted")
        self.text = text
        self.tokens = list(tokenize(text))
        self.at = 0
        self.depth = 0
        self.terms = terms
        self.values = values

    @property
    def token(self) -> Token:
        return self.tokens[self.at]

    def fail(self, reason: str, token: Token | None = None) -> QueryError:
        token = token or self.token
        return QueryError(f"{reason}, found {token.describe()}", self.text, token.pos)

    def next(self) -> Token:
        token = self.token
        self.at += 1
        return token

    def keyword(self, *words: str) -> bool:
        """Consume the next token if it is one of the keywords ``words``."""
        token = self.token
        if token.kind == "word" and token.text.lower() in words:
            self.at += 1
            return True
        return False

    def op(self, *ops: str) -> bool:
        if self.token.kind == "op" and self.token.text in ops:
            self.at += 1
            return True
        return False

    def expect_op(self, op: str, after: str) -> None:
        if not self.op(op):
            raise self.fail(f"expected {op!r} {after}")

    def parse(self) -> Node:
        if self.token.kind == "end":
            raise self.fail("the filter is empty: expected a condition such as meta.KEY = 'value'")
        node = self.or_expr()
        if self.token.kind != "end":
            raise self.fail("expected AND, OR or the end of the filter")
        return node

    def or_expr(self) -> Node:
        items = [self.and_expr()]
        while self.keyword("or"):
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else BoolOp("or", tuple(items))

    def and_expr(self) -> Node:
        items = [self.not_expr()]
        while self.keyword("and"):
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else BoolOp("and", tuple(items))

    def not_expr(self) -> Node:
        token = self.token
        if self.keyword("not"):
            with self.deeper(token):
                return Not(self.not_expr())
        if self.op("("):
            with self.deeper(token):
                node = self.or_expr()
            self.expect_op(")", "to close the parenthesis")
            return node
        return self.predicate()

    @contextlib.contextmanager
    def deeper(self, token: Token) -> Iterator[None]:
        """One more level of nesting, refused beyond :data:`MAX_DEPTH` (before recursing)."""
        if self.depth >= MAX_DEPTH:
            raise QueryError(f"parentheses and NOT nested more than {MAX_DEPTH} deep",
                             self.text, token.pos)
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1

    def count(self, token: Token, values: int = 0) -> None:
        """Count a predicate and its values against :data:`MAX_TERMS` and :data:`MAX_VALUES`."""
        self.terms += values == 0
        self.values += values
        if self.terms > MAX_TERMS:
            raise QueryError(f"more than {MAX_TERMS} conditions (use IN for many values)",
                             self.text, token.pos)
        if self.values > MAX_VALUES:
            raise QueryError(f"more than {MAX_VALUES} values", self.text, token.pos)

    def field(self) -> Field:
        token = self.token
        if token.kind != "word" or token.text.lower() in _KEYWORDS:
            raise self.fail("expected a field (meta.KEY, " + ", ".join(BUILTIN_FIELDS) +
                            ", run.FIELD)")
        self.at += 1
        name = token.text.lower()
        if name == "alias" and self.op("."):
            return self.alias_meta(token)
        if name == "run":
            return self.run_field(token)
        if name != "meta":
            if name not in BUILTIN_FIELDS:
                raise QueryError(f"unknown field {token.text!r}: use meta.{token.text} for a "
                                 f"metadata key, or one of {', '.join(BUILTIN_FIELDS)}, "
                                 "run.FIELD", self.text, token.pos)
            return Field(name, None, token.pos)
        return Field("meta", self.meta_key(), token.pos)

    def meta_key(self, after: str = "meta", what: str = "metadata key") -> str:
        """The key after ``meta`` (or ``after``, e.g. ``alias.prod.meta``): ``.KEY``,
        ``."KEY"`` or ``['KEY']``; one key, never a path (artifact metadata keys may
        hold dots, as Flowdapt writes them: those are quoted)."""
        key = self.key(after, what)
        if self.token.kind == "op" and self.token.text == ".":
            raise self.fail(f"a key with a dot must be quoted, as in {after}['{key}.b']")
        return key

    def key_path(self, start: int, after: str, what: str) -> tuple[str, ...]:
        """The keys after ``run.params`` or ``run.meta`` (``after``, spelled from
        ``start``): one, then any more, each ``.KEY``, ``."KEY"`` or ``['KEY']``, a level
        deeper into nested objects; at most :data:`MAX_PATH_KEYS`."""
        keys = [self.key(after, what)]
        while True:
            token = self.token
            spelled = self.text[start:token.pos].rstrip()
            if len(spelled) > 60:
                spelled = "…" + spelled[-59:]
            if token.kind == "number" and token.text.startswith("."):
                # The tokenizer reads ".1" as a number: a key that is no name is quoted.
                raise QueryError(f'quote a key that is not a name: {spelled}."'
                                 f'{token.text[1:][:40]}"', self.text, token.pos)
            if not (token.kind == "op" and token.text in (".", "[")):
                return tuple(keys)
            if len(keys) == MAX_PATH_KEYS:
                raise QueryError(f"a path of more than {MAX_PATH_KEYS} keys", self.text,
                                 self.tokens[self.at + 1].pos)
            keys.append(self.key(spelled, what))

    def key(self, after: str, what: str) -> str:
        """One key after ``after``: ``.KEY``, ``."KEY"`` or ``['KEY']``."""
        if self.op("["):
            key_token = self.next()
            if key_token.kind not in ("string", "quoted"):
                raise self.fail(f"expected a quoted key in {after}['...']", key_token)
            self.expect_op("]", "after the key")
        elif self.op("."):
            key_token = self.next()
            if key_token.kind not in ("word", "quoted"):
                raise self.fail(f'expected a {what} after "{after}." (quote other keys: '
                                f'{after}."my key" or {after}[\'a.b\'])', key_token)
        else:
            raise self.fail(f"expected '.' or '[' after {after}")
        key = key_token.value if key_token.kind != "word" else key_token.text
        if not key:
            raise QueryError(f"a {what} cannot be empty", self.text, key_token.pos)
        return str(key)

    def run_field(self, token: Token) -> Field:
        """``run.FIELD``, after ``run``: a field of the run that made the artifact's
        current version (``run.params.KEY`` and ``run.meta.KEY`` take a key as
        ``meta.KEY`` does, or a path of keys: :meth:`key_path`)."""
        if not self.op("."):
            raise self.fail("expected '.' and a run field after run (run.name, "
                            "run.params.KEY, ...)")
        part_token = self.next()
        fields = ", ".join(f"run.{f}{'.KEY' if f in ('params', 'meta') else ''}"
                           for f in RUN_FIELDS)
        if part_token.kind != "word":
            raise self.fail(f"expected a run field ({fields})", part_token)
        part = part_token.text.lower()
        if part not in RUN_FIELDS:
            raise QueryError(f"unknown run field {part_token.text!r}: one of {fields}",
                             self.text, part_token.pos)
        name = f"run.{part}"
        if part in ("params", "meta"):
            keys = self.key_path(token.pos, name, "parameter name" if part == "params"
                                 else "metadata key")
            return Field(name, keys[0], token.pos, path=keys[1:])
        return Field(name, None, token.pos)

    def alias_meta(self, token: Token) -> Field:
        """``alias.NAME.meta.KEY``, after ``alias.``: the metadata of the version the
        alias names (``alias.latest.meta.KEY`` is the current one's, ``meta.KEY``)."""
        name_token = self.next()
        if name_token.kind not in ("word", "quoted"):
            raise self.fail('expected an alias name after "alias." (quote other names: '
                            'alias."prod-2".meta.KEY)', name_token)
        alias = name_token.value if name_token.kind == "quoted" else name_token.text
        if alias != LATEST:
            alias_name(alias, self.text, name_token.pos)
        meta = self.token
        if not (self.op(".") and self.token.kind == "word"
                and self.token.text.lower() == "meta"):
            raise self.fail(f"expected .meta.KEY after alias.{alias}", meta)
        self.at += 1
        key = self.meta_key()
        return Field("meta", key, token.pos, None if alias == LATEST else alias)

    def literal(self, after: str) -> Literal:
        token = self.token
        self.count(token, 1)
        if token.kind == "string":
            self.at += 1
            return Literal(token.value, token.pos)
        if token.kind == "number":
            self.at += 1
            number = float(token.text)
            if number in (float("inf"), float("-inf")):
                raise QueryError("number out of range", self.text, token.pos)
            return Literal(number, token.pos)
        if token.kind == "word" and token.text.lower() in _CONSTANTS:
            self.at += 1
            return Literal(_CONSTANTS[token.text.lower()], token.pos)
        hint = " (quote text: 'value')" if token.kind == "word" \
            and token.text.lower() not in _KEYWORDS else ""
        raise self.fail(f"expected a value after {after}{hint}")

    def predicate(self) -> Predicate:
        self.count(self.token)
        field = self.field()
        token = self.token
        if token.kind == "op" and token.text in _COMPARE:
            self.at += 1
            return Predicate(field, _COMPARE[token.text], (self.literal(repr(token.text)),))
        if self.keyword("is"):
            negated = self.keyword("not")
            if not self.keyword("null"):
                raise self.fail("expected NULL after IS" + (" NOT" if negated else ""))
            return Predicate(field, "null", (), negated)
        negated = self.keyword("not")
        if self.keyword("in"):
            self.expect_op("(", "after IN")
            values = [self.literal("'('" if not negated else "NOT IN (")]
            while self.op(","):
                values.append(self.literal("','"))
            self.expect_op(")", "to close the IN list")
            return Predicate(field, "in", tuple(values), negated)
        if self.keyword("like"):
            pattern = self.token
            if pattern.kind != "string":
                raise self.fail("expected a quoted pattern after LIKE")
            if len(pattern.value) > MAX_PATTERN_CHARS:
                raise QueryError(f"a LIKE pattern of {len(pattern.value)} characters, more "
                                 f"than the {MAX_PATTERN_CHARS} accepted", self.text,
                                 pattern.pos)
            self.count(pattern, 1)
            self.at += 1
            return Predicate(field, "like", (Literal(pattern.value, pattern.pos),), negated)
        if self.keyword("contains"):
            return Predicate(field, "contains", (self.literal("CONTAINS"),), negated)
        expected = "IN, LIKE or CONTAINS after NOT" if negated else \
            "an operator (=, !=, <, <=, >, >=, IN, LIKE, CONTAINS, IS NULL)"
        raise self.fail(f"expected {expected} after {field}")


def parse(text: str, *, terms: int = 0, values: int = 0) -> Node:
    """The syntax tree of the filter ``text`` (``terms`` predicates holding ``values``
    values come with it, as ``where`` pairs: they count against the limits).

    Raises
    ------
    QueryError
        naming the problem and its position in ``text``.
    """
    return _Parser(text, terms=terms, values=values).parse()


def check_text(text: str, what: str) -> str:
    """``text``, unless it holds a NUL or a lone surrogate (the database drivers cannot
    send them: PostgreSQL refuses NUL where SQLite would cut the string)."""
    problem = text_problem(text)
    if problem is not None:
        raise QueryError(f"the {what} holds {problem[0]}", text, problem[1])
    return text


def parse_field(text: str) -> Field:
    """A field alone (``name``, ``meta.accuracy``), as ``order_by`` names it."""
    parser = _Parser(text, what="ordering")
    field = parser.field()
    if parser.token.kind != "end":
        raise parser.fail("expected only a field")
    return field


def equalities(where: dict[str, Any]) -> list[Node]:
    """``list_artifacts``' ``where`` pairs as equalities (a string compares as text, a
    number as a number, a list or dict as its JSON text and type)."""
    if len(where) > MAX_TERMS:
        raise QueryError(f"more than {MAX_TERMS} where pairs")
    for key, value in where.items():
        check_text(key, "metadata key")
        if isinstance(value, str):
            check_text(value, "metadata value")
    return [Predicate(Field("meta", key, 0), "=", (Literal(value, 0),))
            for key, value in where.items()]


# -- checks done before SQL is built --------------------------------------------------


def check(node: Node, text: str) -> None:
    """Refuse values that do not fit their field (a number for ``name``, ...)."""
    if isinstance(node, BoolOp):
        for item in node.items:
            check(item, text)
        return
    if isinstance(node, Not):
        check(node.item, text)
        return
    field, op = node.field, node.op
    if field.key is not None:  # meta.KEY, alias.NAME.meta.KEY, run.params.KEY, run.meta.KEY
        if op == "like" and node.values[0].kind != "string":
            raise QueryError("LIKE takes a quoted pattern", text, node.values[0].pos)
        if op in ("<", "<=", ">", ">=") and node.values[0].kind not in ("string", "number"):
            raise QueryError(f"{op} compares numbers or text: use = or != with true, false "
                             "or null", text, node.values[0].pos)
        return
    if op == "contains":
        raise QueryError(f"{field.name} is not a list: CONTAINS applies to meta.KEY (and "
                         "run.params.KEY, run.meta.KEY)",
                         text, field.pos)
    for literal in node.values:
        if literal.kind in ("boolean", "null"):
            raise QueryError(f"{field.name} is never true, false or null: compare it with "
                             f"{'a number' if field.name in NUMBER_FIELDS else 'a quoted value'}",
                             text, literal.pos)
    if field.name == "alias":
        _check_alias(node, text)
        return
    if op == "null" and not field.of_run:
        raise QueryError(f"{field.name} is never null: IS NULL applies to meta.KEY, alias "
                         "and run fields", text, field.pos)
    if op == "like" and field.name not in _TEXT:
        raise QueryError(f"LIKE applies to text fields, not {field.name}", text, field.pos)
    for literal in node.values:
        if field.name in NUMBER_FIELDS and not literal.is_number:
            raise QueryError(f"{field.name} is a number: compare it with a number",
                             text, literal.pos)
        if field.name in _TEXT and literal.is_number:
            raise QueryError(f"{field.name} is text: quote the value", text, literal.pos)
        if field.name in TIMESTAMP_FIELDS:
            parse_time(literal, text)
        if field.name == "run.status" and op in ("=", "!=", "in") \
                and literal.value not in STATUSES:
            # A status no run can have is a mistake, not a search ('Failed', 'done').
            raise QueryError(f"a run's status is {', '.join(STATUSES)}, not "
                             f"{str(literal.value)[:80]!r}", text, literal.pos)


def _check_alias(node: Predicate, text: str) -> None:
    """``alias`` takes names (``=``, ``!=``, ``IN``), patterns (``LIKE``) and ``IS NULL``."""
    if node.op in ("<", "<=", ">", ">="):
        raise QueryError("alias takes =, !=, IN, LIKE or IS NULL: aliases are names, not "
                         "ordered", text, node.field.pos)
    for literal in node.values:
        if literal.kind != "string":
            raise QueryError("alias is text: quote the value", text, literal.pos)
        if node.op == "like":
            continue
        if literal.value == LATEST:
            raise QueryError(f"every artifact has the alias {LATEST!r} (its current version): "
                             "leave the condition out", text, literal.pos)
        alias_name(literal.value, text, literal.pos)


def alias_name(alias: str, text: str, pos: int) -> str:
    """``alias`` if an alias can be set under that name, else a :class:`QueryError` (a
    condition on a name no alias can have is a mistake, not a search)."""
    try:
        return validate_alias(alias)
    except InvalidNameError as exc:
        raise QueryError(str(exc), text, pos) from None


def parse_time(literal: Literal, text: str) -> datetime:
    """An ISO 8601 literal as a datetime; without an offset it is naive, which the
    timestamp columns (:class:`~catalogstore.catalog.models.UTCDateTime`) take as UTC."""
    if literal.is_number or not isinstance(literal.value, str):
        raise QueryError("timestamps are quoted ISO 8601 strings, e.g. '2024-05-01T12:00:00Z'",
                         text, literal.pos)
    value = literal.value.strip()
    try:
        moment = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z")
                                        else value)
    except ValueError:
        raise QueryError(f"not an ISO 8601 timestamp: {literal.value[:80]!r}", text,
                         literal.pos) from None
    utc = utc_or_none(moment)
    if utc is None:
        raise QueryError(f"timestamp out of range: {value[:80]!r} is before year 1 or after "
                         "9999 in UTC", text, literal.pos)
    return utc


def utc_or_none(moment: datetime) -> datetime | None:
    """:func:`~catalogstore.catalog.models.as_utc` of ``moment``, or ``None`` when that
    falls outside years 1 to 9999 (``'9999-12-31T23:59:59-23:59'``)."""
    try:
        return as_utc(moment)
    except OverflowError:
        return None


def like_parts(pattern: str, text: str, pos: int) -> list[tuple[str, str]]:
    """A LIKE pattern as ``("lit", char)``, ``("any", "")`` and ``("one", "")`` parts."""
    parts: list[tuple[str, str]] = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            escaped = next(chars, None)
            if escaped is None:
                raise QueryError("the LIKE pattern ends with an escape '\\'", text, pos)
            parts.append(("lit", escaped))
        elif char == "%":
            parts.append(("any", ""))
        elif char == "_":
            parts.append(("one", ""))
        else:
            parts.append(("lit", char))
    return parts


def like_prefix(parts: list[tuple[str, str]]) -> str:
    """The literal characters a LIKE pattern starts with."""
    prefix = []
    for kind, char in parts:
        if kind != "lit":
            break
        prefix.append(char)
    return "".join(prefix)


# -- namespaces ------------------------------------------------------------------------

_NAMESPACE_PATTERN = re.compile(r"[A-Za-z0-9._*?-]+")


def namespace_patterns(namespaces: str | Iterable[str]) -> list[str] | None:
    """Glob patterns of namespaces (``*`` any run, ``?`` one character); ``None`` for all."""
    patterns = [namespaces] if isinstance(namespaces, str) else list(namespaces)
    if not patterns:
        raise QueryError("namespaces is empty: give '*' for every namespace")
    if len(patterns) > MAX_TERMS:
        raise QueryError(f"more than {MAX_TERMS} namespace patterns")
    for pattern in patterns:
        if not isinstance(pattern, str) or not _NAMESPACE_PATTERN.fullmatch(pattern):
            raise QueryError(f"invalid namespace pattern {pattern!r}: namespace characters "
                             "(letters, digits, '.', '_', '-') and the wildcards * and ?")
    return None if "*" in patterns else patterns


# -- ordering --------------------------------------------------------------------------


@dataclass(frozen=True)
class Ordering:
    """What to sort by: a built-in field or a metadata key, and the direction."""

    field: Field | None  # None: namespace, then name
    descending: bool = False

    @property
    def signature(self) -> str:
        """A stable spelling, kept in cursors so a cursor is not used with another order."""
        name = "default" if self.field is None else str(self.field)
        return ("-" if self.descending else "") + name

    @property
    def indexed(self) -> bool:
        """Whether an index on ``artifacts`` yields rows in this order."""
        return self.field is None or self.field.name in ("namespace", "name", *TIME_FIELDS)


_DIRECTION = re.compile(r"\s+(asc|desc)\s*$", re.IGNORECASE)


def parse_ordering(order_by: str | None) -> Ordering:
    """``"name"``, ``"-created_at"``, ``"meta.accuracy desc"``, ... (``None``: the default)."""
    if order_by is None:
        return Ordering(None)
    if not isinstance(order_by, str):
        raise QueryError(f"order_by must be a string such as 'created_at desc', not "
                         f"{type(order_by).__name__}")
    spec = order_by.strip()
    descending = False
    if spec.startswith("-"):
        descending, spec = True, spec[1:].lstrip()
    elif match := _DIRECTION.search(spec):
        descending, spec = match.group(1).lower() == "desc", spec[:match.start()]
    if not spec:
        raise QueryError("order_by names no field", order_by, 0)
    field = parse_field(spec)
    if field.name == "alias" or field.alias is not None or field.of_run:
        raise QueryError("order_by takes a built-in field or meta.KEY, not an alias or a "
                         "run's field", order_by, 0)
    return Ordering(field, descending)
