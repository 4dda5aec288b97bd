"""Untrusted data and hostile input (issue 12): no input crashes a command.

Replayed on both stacks (SQLite + local disk, PostgreSQL + S3):

- **storage documents**: hostile ``.artifact.json`` files (2,000-deep arrays, 5,000-digit
  integers, ``"\\ud800"`` as key or value, NUL, NaN, non-UTF-8, a BOM, wrong types, and
  their neighbours just inside and just outside each limit) beside good artifacts, on
  new and on already-catalogued artifacts: ``reindex``, ``verify`` and
  ``verify --repair`` report each bad one as broken with its reason, index or check the
  rest, exit with their documented status and print no traceback;
- **filters and cursors**: the filter language's limits on both databases (501 and
  20,000 OR'ed equalities, 1,000 parentheses, 1,500 NOTs, a 60k-character LIKE pattern,
  70,000 IN values, timestamps beyond year 9999 in UTC, NUL and lone surrogates, edited
  cursors), each either answered (within the documented limits) or a ``QueryError``,
  through the API and as one ``error:`` line of ``catalogstore query``;
- **metadata** with a lone surrogate or NUL through ``set_meta`` and transactions:
  ``InvalidMetadataError``, nothing written;
- **configuration**: a SQLite URL in a missing folder is refused (the embedded
  default is created); ``db current`` exits 1 when the schema is behind.

Every hostile input is counted by class and outcome (:data:`TRIED`); the counts are
printed at the end of the module (``pytest -s``) and written to the file named by
``$CATALOGSTORE_HOSTILE_COUNTS`` when it is set.
"""

from __future__ import annotations

import base64
import collections
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import catalogstore
from catalogstore import maintenance
from catalogstore.artifacts import get_artifact, list_artifacts, new_artifact, query_artifacts
from catalogstore.bounded_json import MAX_DEPTH, MAX_INTEGER_DIGITS, parse_document
from catalogstore.catalog.query.language import (
    MAX_DEPTH as FILTER_DEPTH,
)
from catalogstore.catalog.query.language import (
    MAX_PATH_KEYS,
    MAX_PATTERN_CHARS,
    MAX_TERMS,
    MAX_VALUES,
)
from catalogstore.cli import app
from catalogstore.errors import (
    CatalogStoreError,
    ConfigurationError,
    InvalidDocumentError,
    InvalidMetadataError,
    QueryError,
    SerializationError,
)

TRIED: collections.Counter[tuple[str, str]] = collections.Counter()
"""(class of hostile input, what it returned) -> how many were tried."""
runner = CliRunner()


@pytest.fixture(scope="module", autouse=True)
def _counts() -> Iterator[None]:
    yield
    by_class: dict[str, dict[str, int]] = {}
    for (kind, outcome), n in sorted(TRIED.items()):
        by_class.setdefault(kind, {})[outcome] = n
    print("\nhostile inputs tried:", sum(TRIED.values()))
    for kind, outcomes in by_class.items():
        print(f"  {kind}: {sum(outcomes.values())} -> {outcomes}")
    if os.environ.get("CATALOGSTORE_HOSTILE_COUNTS"):
        Path(os.environ["CATALOGSTORE_HOSTILE_COUNTS"]).write_text(json.dumps(by_class))


def _cli(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    assert "Traceback" not in result.stdout + result.stderr
    return result


# -- documents read from the storage ---------------------------------------------------

def _nested(depth: int) -> bytes:
    return b'{"k": ' + b"[" * (depth - 1) + b"1" + b"]" * (depth - 1) + b"}"


BAD_DOCUMENTS: dict[str, bytes] = {
    "array-2000-deep": b"[" * 2000 + b"]" * 2000,
    "value-2000-deep": _nested(2000),
    "value-65-deep": _nested(MAX_DEPTH + 1),
    "object-1000-deep": b'{"a":' * 1000 + b"1" + b"}" * 1000,
    "unclosed-3000-deep": b'{"k": ' + b"[" * 3000,
    "int-5000-digits": b'{"k": ' + b"7" * 5000 + b"}",
    "int-4301-digits": b'{"k": -' + b"7" * 4301 + b"}",
    "int-101-digits": b'{"k": ' + b"7" * (MAX_INTEGER_DIGITS + 1) + b"}",
    # Within the parser's digits, beyond the 64-bit integers metadata holds (issue 14).
    "int-100-digits": b'{"k": ' + b"7" * MAX_INTEGER_DIGITS + b"}",
    "int-65-bit": b'{"k": 18446744073709551616}',
    "float-5000-digits": b'{"k": 0.' + b"1" * 5000 + b"}",
    "exponent-overflow": b'{"k": 1e400}',
    "exponent-overflow-neg": b'{"k": -2E+999}',
    "surrogate-value": b'{"k": "\\ud800"}',
    "surrogate-low-value": b'{"k": "x\\udfff"}',
    "surrogate-key": b'{"\\ud800": "v"}',
    "surrogate-upper-case": b'{"k": "\\uDBFF"}',
    "surrogate-reversed-pair": b'{"k": "\\ude00\\ud83d"}',
    "nul-value": b'{"k": "a\\u0000b"}',
    "nul-key": b'{"a\\u0000": "v"}',
    "raw-utf8-surrogate": b'{"k": "\xed\xa0\x80"}',
    "latin-1": b'{"k": "caf\xe9"}',
    "utf-16": '{"k": "v"}'.encode("utf-16"),
    "bom": b'\xef\xbb\xbf{"k": "v"}',
    "top-level-array": b'["k", "v"]',
    "top-level-string": b'"k"',
    "top-level-number": b"42",
    "top-level-null": b"null",
    "truncated": b'{"k": "v"',
    "trailing-garbage": b'{"k": "v"} x',
    "not-json": b"k=v",
    "key-too-long": json.dumps({"k" * 256: "v"}).encode(),
    # Strings of escaped quotes, never closed: a regex over strings took quadratic time
    # (400 KB hung reindex for minutes).
    "unterminated-escaped-quotes": b'{"k": "' + b'\\"' * 200_000 + b"[" * 70,
    "unterminated-escaped-backslashes": b'{"k": "' + b"\\\\" * 200_000 + b'\\"' + b"[" * 70,
    # 4.5 MiB read, over 16 MiB as the catalog writes it again (1e15 -> 1000000000000000.0).
    "grows-past-the-limit-when-written": b'{"k": [' + b"1e15," * 940_000 + b"1]}",
}
"""Documents no artifact may be indexed from: each is reported as broken."""
GOOD_DOCUMENTS: dict[str, tuple[bytes, dict[str, Any]]] = {
    "int-64-bit": (b'{"k": 18446744073709551615}', {"k": 2**64 - 1}),
    "surrogate-pair": (b'{"k": "\\ud83d\\ude00"}', {"k": "\U0001f600"}),
    "escaped-backslash-u": (b'{"k": "\\\\ud800"}', {"k": "\\ud800"}),
    "brackets-in-strings": (b'{"k": "' + b"[" * 3000 + b'"}', {"k": "[" * 3000}),
    "big-exponent-in-range": (b'{"k": 1e300}', {"k": 1e300}),
    "nan": (b'{"k": NaN}', {"k": None}),  # as Flowdapt (orjson) writes it
    "infinity": (b'{"k": Infinity}', {"k": None}),
    "minus-infinity": (b'{"k": -Infinity}', {"k": None}),
    "empty": (b"", {}),
    "plain": (b'{"model": "xgb", "epochs": 10}', {"model": "xgb", "epochs": 10}),
    "escaped-quotes-and-brackets": (b'{"k": "\\"[' + b'\\"[' * 100 + b'", "j": [1]}',
                                    {"k": '"[' * 101, "j": [1]}),
    "value-64-deep": (_nested(MAX_DEPTH), {"k": json.loads(_nested(MAX_DEPTH))["k"]}),
}
"""Documents just inside the limits: indexed as written."""


def test_parser_limits_on_any_json_value():
    """The parser accepts any JSON value within its limits, at the limit itself."""
    inside = [b"[" * MAX_DEPTH + b"]" * MAX_DEPTH, b'{"a": {"b": [1, 2.5, true, null]}}',
              b"-" + b"9" * MAX_INTEGER_DIGITS, b'"\\ud83d\\ude00"', b"1.5e308"]
    for doc in inside:
        parse_document(doc)
        TRIED["storage document (parser)", "accepted"] += 1
    # JSON values, refused as metadata only (by type, by the key rule):
    typed = ("top-level-array", "top-level-string", "top-level-number", "top-level-null",
             "key-too-long", "int-100-digits", "int-65-bit", "grows-past-the-limit-when-written")
    for doc in [b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), b"x" * 11,
                *(d for n, d in BAD_DOCUMENTS.items() if n not in typed)]:
        with pytest.raises(InvalidDocumentError):
            parse_document(doc, limit=10 if doc == b"x" * 11 else 16 << 20)
        TRIED["storage document (parser)", "InvalidDocumentError"] += 1


def _write_raw(stack: Any, ns: str, name: str, document: bytes | None,
               data: bytes = b"data") -> None:
    fs = stack.filesystem()
    folder = f"{stack.root}/artifacts/{ns}/{name}"
    fs.makedirs(folder, exist_ok=True)
    fs.pipe_file(f"{folder}/data.bin", data)
    if document is not None:
        fs.pipe_file(f"{folder}/.artifact.json", document)


def _broken_lines(output: str) -> dict[str, str]:
    lines = {}
    for line in output.splitlines():
        if line.startswith("broken "):
            path, _, reason = line.removeprefix("broken").strip().partition(": ")
            lines[path] = reason
    return lines


@pytest.mark.timeout(300)
def test_reindex_reports_hostile_documents_and_indexes_the_rest(stack):
    """New artifacts: each hostile document is one broken entry, its artifact indexed with
    its files and no metadata (issue 14: never dropped for its metadata); every good
    one is indexed with its metadata."""
    for name, doc in BAD_DOCUMENTS.items():
        _write_raw(stack, "team", f"bad-{name}", doc)
    for name, (doc, _) in GOOD_DOCUMENTS.items():
        _write_raw(stack, "team", f"good-{name}", doc)
    result = _cli("reindex")
    assert result.exit_code == 0, result.output  # broken entries are reported, not fatal
    broken = _broken_lines(result.stdout)
    for name in BAD_DOCUMENTS:
        path = f"artifacts/team/bad-{name}/.artifact.json"
        assert path in broken, (name, result.stdout[-3000:])
        assert "the metadata is not imported" in broken[path]
        TRIED["storage document (reindex, new artifact)", "broken entry"] += 1
    indexed = {a.name: a.metadata for a in list_artifacts("team")}
    for name, (_, metadata) in GOOD_DOCUMENTS.items():
        assert indexed[f"good-{name}"] == metadata, name
        TRIED["storage document (reindex, new artifact)", "indexed (inside limits)"] += 1
    assert {n: m for n, m in indexed.items() if n.startswith("bad-")} == {
        f"bad-{name}": {} for name in BAD_DOCUMENTS}
    assert f"{len(BAD_DOCUMENTS)} broken" in result.stdout
    # Again, the same: nothing changes, the same entries are broken.
    again = _cli("reindex")
    assert again.exit_code == 0 and _broken_lines(again.stdout) == broken


@pytest.mark.timeout(300)
def test_verify_and_reindex_on_catalogued_artifacts(stack):
    """Already-catalogued artifacts whose .artifact.json is replaced by a hostile one:
    verify reports each, --repair rewrites it from the catalog, reindex leaves it be."""
    cases = dict(list(BAD_DOCUMENTS.items()))
    for name in cases:
        new_artifact(f"a-{name}", namespace="team").set_meta("kept", "yes")
    good = new_artifact("good", namespace="team")
    good.set_meta("kept", "yes")
    fs = stack.filesystem()
    for name, doc in cases.items():
        fs.pipe_file(f"{stack.root}/artifacts/team/a-{name}/.artifact.json", doc)
    catalogstore.configure()  # a new process would list the storage afresh
    for _ in range(2):
        report = maintenance.reindex("team")  # the API reports the same entries
        assert {b.path for b in report.broken} == {
            f"artifacts/team/a-{name}/.artifact.json" for name in cases}
        TRIED["storage document (reindex, catalogued)", "broken entry"] += len(cases)
    assert all(a.metadata == {"kept": "yes"} for a in list_artifacts("team"))
    result = _cli("verify", "team")
    assert result.exit_code == 1, result.output
    unreadable = [line for line in result.stdout.splitlines()
                  if line.startswith("metadata-unreadable")]
    assert len(unreadable) == len(cases), result.stdout
    TRIED["storage document (verify, catalogued)", "metadata-unreadable"] += len(cases)
    repaired = _cli("verify", "--repair", "team")
    assert repaired.exit_code == 0, repaired.output  # all repaired: nothing left
    assert repaired.stdout.count("(repaired)") == len(cases)
    TRIED["storage document (verify --repair, catalogued)", "repaired"] += len(cases)
    assert _cli("verify", "team").exit_code == 0
    assert get_artifact("a-latin-1", namespace="team").metadata == {"kept": "yes"}


@pytest.mark.timeout(300)
def test_oversized_document(local_stack):
    _write_raw(local_stack, "default", "huge", b'{"k": "' + b"x" * (16 << 20) + b'"}')
    _write_raw(local_stack, "default", "fine", b'{"k": "v"}')
    result = _cli("reindex")
    assert result.exit_code == 0
    assert "artifacts/default/huge/.artifact.json" in _broken_lines(result.stdout)
    # Issue 14: indexed with its files, its metadata not imported.
    assert {a.name: a.metadata for a in list_artifacts()} == {"fine": {"k": "v"}, "huge": {}}
    TRIED["storage document (reindex, new artifact)", "broken entry"] += 1


# -- filters and cursors -----------------------------------------------------------------

def _or_chain(n: int) -> str:
    return " OR ".join(f"meta.k = 'v{i}'" for i in range(n))


def _path(keys: int, last: str = "") -> str:
    """``run.params.k1.k2...`` with ``keys`` keys (the last one ``last`` if given)."""
    return "run.params." + ".".join([f"k{i}" for i in range(1, keys)] + [last or f"k{keys}"])


def _in_list(n: int, number: bool = False) -> str:
    return "meta.k IN (" + ",".join(str(i) if number else f"'v{i}'" for i in range(n)) + ")"


FILTERS: dict[str, tuple[str, list[str] | None]] = {
    # name: (filter, the names it matches; None: refused with a QueryError)
    "or-501": (_or_chain(501), None),
    "or-20000": (_or_chain(20_000), None),
    f"or-{MAX_TERMS}": (_or_chain(MAX_TERMS), ["a", "b"]),
    f"or-{MAX_TERMS + 1}": (_or_chain(MAX_TERMS + 1), None),
    f"and-or-{MAX_TERMS}": (" AND ".join(f"(meta.k = 'v1' OR name = 'x{i}')"
                                         for i in range(MAX_TERMS // 2)), ["a"]),
    "parens-1000": ("(" * 1000 + "meta.k = 'v1'" + ")" * 1000, None),
    "parens-400": ("(" * 400 + "meta.k = 'v1'" + ")" * 400, None),
    f"parens-{FILTER_DEPTH}": ("(" * FILTER_DEPTH + "meta.k = 'v1'" + ")" * FILTER_DEPTH,
                               ["a"]),
    f"parens-{FILTER_DEPTH + 1}": ("(" * (FILTER_DEPTH + 1) + "meta.k = 'v1'"
                                   + ")" * (FILTER_DEPTH + 1), None),
    "parens-unclosed-5000": ("(" * 5000, None),
    "not-1500": ("NOT " * 1500 + "meta.k = 'v1'", None),
    f"not-{FILTER_DEPTH}": ("NOT " * FILTER_DEPTH + "meta.k = 'v1'", ["a"]),
    f"not-{FILTER_DEPTH + 1}": ("NOT " * (FILTER_DEPTH + 1) + "meta.k = 'v1'", None),
    "not-parens-mixed": ("NOT (" * 20 + "meta.k = 'v1'" + ")" * 20, None),
    "time-9999-offset": ("created_at > '9999-12-31T23:59:59-23:59'", None),
    "time-0001-offset": ("updated_at < '0001-01-01T00:00:00+23:59'", None),
    "time-9999-utc": ("created_at < '9999-12-31T23:59:59Z'", ["a", "b"]),
    "time-0001-utc": ("created_at > '0001-01-01T00:00:00+00:00'", ["a", "b"]),
    "time-year-10000": ("created_at > '10000-01-01'", None),
    "like-60k": ("name LIKE '" + "a%" * 30_000 + "'", None),
    f"like-{MAX_PATTERN_CHARS}": ("name LIKE '" + "[%" * (MAX_PATTERN_CHARS // 2) + "'", []),
    f"like-{MAX_PATTERN_CHARS}-meta": ("meta.k LIKE '" + "\u00e9_" * (MAX_PATTERN_CHARS // 2)
                                       + "'", []),
    f"like-{MAX_PATTERN_CHARS + 1}": ("name LIKE '" + "a" * (MAX_PATTERN_CHARS + 1) + "'", None),
    "filter-over-1-MiB": ("name = '" + "x" * (1 << 20) + "'", None),
    "filter-just-under-1-MiB": ("name = '" + "x" * ((1 << 20) - 9) + "'", []),
    "in-70000": (_in_list(70_000), None),
    f"in-{MAX_VALUES}": (_in_list(MAX_VALUES), ["a", "b"]),
    f"in-{MAX_VALUES}-numbers": (_in_list(MAX_VALUES, number=True), []),
    f"in-{MAX_VALUES + 1}": (_in_list(MAX_VALUES + 1), None),
    f"not-in-{MAX_VALUES}": ("name NOT IN (" + ",".join(f"'x{i}'" for i in range(MAX_VALUES))
                             + ")", ["a", "b"]),
    f"path-{MAX_PATH_KEYS}": (_path(MAX_PATH_KEYS) + " IS NULL", ["a", "b"]),
    f"path-{MAX_PATH_KEYS + 1}": (_path(MAX_PATH_KEYS + 1) + " IS NULL", None),
    f"or-{MAX_TERMS}-paths-{MAX_PATH_KEYS}": (" OR ".join(
        f"{_path(MAX_PATH_KEYS, f'x{i}')} = {i}" for i in range(MAX_TERMS)), []),
    f"and-{MAX_TERMS}-paths-{MAX_PATH_KEYS}": (" AND ".join(
        f"{_path(MAX_PATH_KEYS, f'x{i}')} IS NULL" for i in range(MAX_TERMS)), ["a", "b"]),
    "nul-in-string": ("meta.k = 'v1\x00'", None),
    "nul-alone": ("\x00", None),
    "nul-in-key": ('meta."k\x00" = \'v1\'', None),
    "surrogate-value": ("meta.k = '\ud800'", None),
    "surrogate-key": ("meta.\"\udfff\" = 'v1'", None),
    "surrogate-like": ("name LIKE '\ud800%'", None),
    "number-1e999": ("size > 1e999", None),
    "number-5000-digits": ("size > " + "9" * 5000, None),
    "number-1e300": ("size < 1e300", ["a", "b"]),
    "number-neg-1e300": ("meta.k > -1e300", []),
    "files-beyond-int64": ("files < 99999999999999999999", ["a", "b"]),
}


@pytest.mark.timeout(300)
def test_filter_limits(stack):
    new_artifact("a").set_meta("k", "v1")
    new_artifact("b").set_meta("k", "v2")
    for name, (text, expected) in FILTERS.items():
        if expected is None:
            with pytest.raises(QueryError) as caught:
                query_artifacts(text)
            assert caught.value.summary.count("\n") == 0
            str(caught.value).encode("utf-8")  # printable, surrogates and all
            TRIED["filter", "QueryError"] += 1
        else:
            assert sorted(a.name for a in query_artifacts(text)) == expected, name
            TRIED["filter", "answered (inside limits)"] += 1


@pytest.mark.timeout(300)
def test_filter_limits_in_the_command_line(stack):
    new_artifact("a").set_meta("k", "v1")
    for name, (text, expected) in FILTERS.items():
        if "\x00" in text:
            continue  # a command line argument cannot hold a NUL
        result = _cli("query", text)
        if expected is None:
            assert result.exit_code == 1, (name, result.output[-500:])
            lines = result.stderr.splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: invalid query: "), lines
            assert len(lines[0]) < 1000  # the filter around the problem, not all of it
            TRIED["filter (CLI)", "one error line, exit 1"] += 1
        else:
            assert result.exit_code == 0, (name, result.output[-500:])
            TRIED["filter (CLI)", "answered (inside limits)"] += 1


def _token(data: Any) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


CURSORS: dict[str, str] = {
    "huge-id": _token({"o": "created_at", "k": [{"t": "2020-01-01T00:00:00+00:00"}, 10**30]}),
    "id-2**63": _token({"o": "created_at", "k": [{"t": "2020-01-01T00:00:00+00:00"}, 2**63]}),
    "id-5000-digits": _token(b'{"o":"created_at","k":[{"t":"2020-01-01"},' + b"9" * 5000
                             + b"]}"),
    "id-float": _token({"o": "created_at", "k": [{"t": "2020-01-01T00:00:00+00:00"}, 1.5]}),
    "id-bool": _token({"o": "created_at", "k": [{"t": "2020-01-01T00:00:00+00:00"}, True]}),
    "time-beyond-9999": _token({"o": "created_at", "k": [{"t": "9999-12-31T23:59:59-23:59"},
                                                          1]}),
    "time-not-text": _token({"o": "created_at", "k": [{"t": 5}, 1]}),
    "time-garbage": _token({"o": "created_at", "k": [{"t": "yesterday"}, 1]}),
    "time-extra-key": _token({"o": "created_at", "k": [{"t": "2020-01-01", "x": 1}, 1]}),
    "surrogate-escaped": _token(b'{"o":"created_at","k":["\\ud800",1]}'),
    "surrogate-in-order": _token(b'{"o":"\\ud800","k":[1,1]}'),
    "nul": _token(b'{"o":"created_at","k":["\\u0000",1]}'),
    "deep": _token(b'{"o":"created_at","k":' + b"[" * 2000 + b"]" * 2000 + b"}"),
    "nan": _token(b'{"o":"created_at","k":[NaN,1]}'),
    "not-an-object": _token([1, 2]),
    "order-not-text": _token({"o": 5, "k": [1, 1]}),
    "garbage": "!!!!",
    "truncated": "eyJ",
    "not-ascii": "\u00e9" * 10,
    "lone-surrogate": "\ud800",
    "nul-char": "ab\x00",
    "long": "A" * (9 << 20),
    "other-order": _token({"o": "name", "k": ["a", 1]}),
    "wrong-count": _token({"o": "created_at", "k": [{"t": "2020-01-01T00:00:00+00:00"}]}),
}


@pytest.mark.timeout(300)
def test_tampered_cursors(stack):
    for name in "abc":
        new_artifact(name)
    page = query_artifacts("", order_by="created_at", limit=1)
    assert page.next is not None
    assert [a.name for a in query_artifacts("", order_by="created_at", limit=1,
                                            after=page.next)] == ["b"]
    for name, cursor in CURSORS.items():
        with pytest.raises(QueryError):
            query_artifacts("", order_by="created_at", limit=1, after=cursor)
        TRIED["page cursor", "QueryError"] += 1
        if "\x00" in cursor or len(cursor) > 100_000:
            continue
        result = _cli("query", "--order-by", "created_at", "--limit", "1", "--after", cursor)
        assert result.exit_code == 1 and result.stderr.startswith("error: "), name
        TRIED["page cursor (CLI)", "one error line, exit 1"] += 1


@pytest.mark.timeout(120)
def test_where_pairs_are_checked(stack):
    new_artifact("a").set_meta("k", "v")
    for where in ({"k": "\ud800"}, {"\udfff": "v"}, {"k": "v\x00"}, {"k\x00": "v"},
                  {"k": 10**5000},
                  {f"k{i}": "v" for i in range(MAX_TERMS + 1)}):
        with pytest.raises((QueryError, InvalidMetadataError)) as caught:
            list_artifacts(where=where)
        TRIED["where pairs", type(caught.value).__name__] += 1


# -- metadata and other strings at the boundary ------------------------------------------

BAD_TEXT = ["\ud800", "a\udfffb", "\udbff\udc00"[::-1], "\x00", "a\x00b"]


@pytest.mark.timeout(120)
def test_metadata_with_lone_surrogates_or_nul(stack):
    artifact = new_artifact("m")
    artifact.set_meta("ok", "yes")
    deep: list[Any] = []
    for _ in range(3000):
        deep = [deep]
    cycle: list[Any] = []
    cycle.append(cycle)
    attempts: list[Callable[[], Any]] = [
        lambda: artifact.set_meta("k", 10**5000), lambda: artifact.set_meta("k", -(10**100)),
        lambda: artifact.set_meta("k", 2**64), lambda: artifact.set_meta("k", [1, "\ud800"]),
        lambda: artifact.set_meta("k", {"\x00": 1}),
        # Deeper than .artifact.json may be read back (the value sits one level down).
        lambda: artifact.set_meta("k", json.loads(_nested(MAX_DEPTH + 1))["k"]),
        lambda: artifact.set_meta("k", deep), lambda: artifact.update_meta({"k": deep}),
        lambda: artifact.set_meta("k", cycle), lambda: list_artifacts(where={"k": deep}),
        # Larger than the store reads back: refused before anything is written.
        lambda: artifact.update_meta({f"k{i}": "x" * (1 << 20) for i in range(17)})]
    for bad in BAD_TEXT:
        attempts += [lambda b=bad: artifact.set_meta("k", b),
                     lambda b=bad: artifact.set_meta(b, "v")]

        def in_transaction(b: str = bad) -> None:
            with artifact.transaction():
                artifact.set_meta("k", "v")
                artifact.set_meta("k2", b)

        def item(b: str = bad) -> None:
            artifact[b] = "v"

        attempts += [in_transaction, item]
    for attempt in attempts:
        with pytest.raises(InvalidMetadataError):
            attempt()
        TRIED["metadata value or key (set_meta, transaction)", "InvalidMetadataError"] += 1
    assert get_artifact("m").metadata == {"ok": "yes"}  # nothing written
    for bad in BAD_TEXT[:3]:  # text file content: a lone surrogate is not text
        with pytest.raises(SerializationError):
            artifact.new_file("notes.txt", bad)
        TRIED["text file content", "SerializationError"] += 1
    assert not artifact.has_file("notes.txt")


@pytest.mark.timeout(120)
def test_names_and_urls_with_lone_surrogates_or_nul(stack, tmp_path):
    target = new_artifact("y")
    for bad in BAD_TEXT:
        for attempt in (lambda b=bad: new_artifact(b), lambda b=bad: new_artifact("x", b),
                        lambda b=bad: get_artifact(b),
                        lambda b=bad: target.new_file(f"f{b}", b"x")):
            with pytest.raises(CatalogStoreError) as caught:
                attempt()
            TRIED["name (artifact, namespace, file)", type(caught.value).__name__] += 1
        for field in ("catalog_url", "storage_url"):
            url = f"sqlite:///{tmp_path}/c{bad}.db" if field == "catalog_url" \
                else f"{tmp_path}/s{bad}"
            with pytest.raises(ConfigurationError):
                catalogstore.configure(**{field: url})
            TRIED["URL (catalog, storage)", "ConfigurationError"] += 1
        for options in ({"key": bad}, {"client_kwargs": {"region_name": bad}}, {bad: "v"}):
            with pytest.raises(ConfigurationError):
                catalogstore.configure(storage_options=options)
            TRIED["storage options", "ConfigurationError"] += 1


def test_deepest_metadata_round_trips(stack):
    """A value as deep as allowed is written, verified and reindexed as it was."""
    deepest = json.loads(_nested(MAX_DEPTH))["k"]
    new_artifact("deep").set_meta("k", deepest)
    catalogstore.object_store.flush()
    assert _cli("verify").exit_code == 0
    assert _cli("reindex").exit_code == 0
    assert get_artifact("deep").metadata == {"k": deepest}


NON_UTF8_ARGUMENTS = [
    [b"query", b"meta.k = '\xff'"], [b"ls", b"--where", b"k=\xff"], [b"ls", b"--where", b"\xff=v"],
    [b"ls", b"--filter", b"name = '\xed\xa0\x80'"], [b"show", b"default/\xff"],
    [b"cp", b"/nonexistent\xff", b"cs://default/x"], [b"cp", b"/etc/hostname", b"cs://default/x\xff"],
    [b"reindex", b"\xff"], [b"verify", b"\xff"], [b"query", b"", b"--after", b"\xff"],
    [b"query", b"", b"--order-by", b"meta.\xff"], [b"query", b"", b"-n", b"\xff*"],
]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_non_utf8_command_line_arguments(local_stack, tmp_path):
    """Bytes that are not UTF-8 reach Python as lone surrogates (``\\udcff``): each command
    refuses them in one printable error line."""
    import subprocess
    import sys

    env = {**os.environ, **local_stack.environ()}
    running = [subprocess.Popen([sys.executable.encode(), b"-m", b"catalogstore", *args],
                                env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE) for args in NON_UTF8_ARGUMENTS]
    for proc in running:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 1 and not out, (proc.args, out, err)
        assert err.startswith(b"error: ") and err.count(b"\n") == 1, (proc.args, err)
        err.decode("utf-8")  # printable
        TRIED["command line argument (not UTF-8)", "one error line, exit 1"] += 1


# -- configuration mistakes ----------------------------------------------------------------

@pytest.mark.timeout(120)
def test_sqlite_url_in_a_missing_folder_is_refused(tmp_path, monkeypatch):
    missing = tmp_path / "nonexistent" / "dir"
    monkeypatch.setenv("CATALOGSTORE_CATALOG_URL", f"sqlite:///{missing / 'c.db'}")
    monkeypatch.setenv("CATALOGSTORE_STORAGE_URL", str(tmp_path / "storage"))
    for args in (["ls"], ["verify"], ["reindex"], ["db", "current"], ["db", "upgrade"]):
        result = _cli(*args)
        assert result.exit_code == 1
        assert "does not exist" in result.stderr and str(missing) in result.stderr
        TRIED["catalog URL in a missing folder", "one error line, exit 1"] += 1
    with pytest.raises(ConfigurationError, match="does not exist"):
        list_artifacts()
    assert not missing.exists() and not missing.parent.exists()


@pytest.mark.timeout(120)
def test_embedded_default_is_created(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _cli("ls")
    assert result.exit_code == 0, result.output
    assert (tmp_path / ".catalogstore" / "catalog.db").exists()
