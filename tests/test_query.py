"""Metadata search (issue 5): the filter language, ordering, pages and the CLI, on both stacks.

Every test that touches a catalog runs on SQLite + local disk and PostgreSQL + S3,
through the public API (``query_artifacts``, ``list_artifacts``, ``catalogstore
query``). The plans and the README's plain SQL are in ``test_query_sql.py``.
"""

from __future__ import annotations

import json
import os
from datetime import timezone
from typing import Any

import pytest
from typer.testing import CliRunner

import catalogstore
from catalogstore.artifacts import get_artifact, list_artifacts, new_artifact, query_artifacts
from catalogstore.catalog.query.compile import compile_search, encode_cursor
from catalogstore.catalog.query.language import parse, tokenize
from catalogstore.cli import app
from catalogstore.errors import QueryError
from catalogstore.record import value_number
from catalogstore.txn.workspace import get_workspace

INJECTION = "'; DROP TABLE artifacts; --"
# namespace -> name -> metadata (files are added to run-001 below).
DATA: dict[str, dict[str, dict[str, str]]] = {
    "team-a": {
        "run-001": {"model": "xgb", "accuracy": "0.95", "epochs": "10"},
        "run-002": {"model": "xgb", "accuracy": "0.85", "epochs": "9"},
        "run-010": {"model": "lgbm", "accuracy": "0.99", "epochs": "100", "note": "fine"},
    },
    "team-b": {
        "run-003": {"model": "lgbm", "accuracy": "n/a", "epochs": "ten", "note": ""},
        "exp-1": {"model": "XGB", "my key": "spaced", "a.b": "dotted", "tag": INJECTION},
    },
    "other": {
        "run-004": {"model": "xgb", "accuracy": "0.5", "epochs": "1e1"},
        "pct": {"pattern": "50%_off", "path": "a*b?[c]\\d"},
    },
}
ALL = {name for names in DATA.values() for name in names}


@pytest.fixture
def data(stack: Any) -> Any:
    with catalogstore.transaction():
        for namespace, artifacts in DATA.items():
            for name, meta in artifacts.items():
                artifact = new_artifact(name, namespace)
                artifact.update_meta(meta)
                if name == "run-001":
                    artifact.new_file("weights.bin", content=b"\0" * 1500)
                    artifact.new_file("log.txt", content="x" * 100)
    return stack


def names(filter: str | None = None, **options: Any) -> set[str]:
    return {a.name for a in query_artifacts(filter, **options)}


def ordered(filter: str | None = None, **options: Any) -> list[str]:
    return [a.name for a in query_artifacts(filter, **options)]


# -- operators -------------------------------------------------------------------------


def test_equality_inequality_and_not(data):
    assert names("meta.model = 'xgb'") == {"run-001", "run-002", "run-004"}
    assert names("meta.model == 'xgb'") == names("meta.model = 'xgb'")
    # != holds for artifacts that have the key with another value; NOT also for those
    # without it.
    assert names("meta.model != 'xgb'") == {"run-010", "run-003", "exp-1"}
    assert names("meta.model <> 'xgb'") == names("meta.model != 'xgb'")
    assert names("NOT meta.model = 'xgb'") == {"run-010", "run-003", "exp-1", "pct"}


def test_numbers_compare_numerically_and_text_as_text(data):
    # '10' > 9 as numbers; 'ten' is no number; '1e1' is ten.
    assert names("meta.epochs > 9") == {"run-001", "run-010", "run-004"}
    assert names("meta.epochs = 10") == {"run-001", "run-004"}
    # Quoted: text, where '10' < '9' and 'ten' > '9'.
    assert names("meta.epochs > '9'") == {"run-003"}
    assert names("meta.epochs = '10'") == {"run-001"}
    assert names("meta.accuracy >= 0.9") == {"run-001", "run-010"}
    assert names("meta.accuracy < 0.9") == {"run-002", "run-004"}
    assert names("meta.accuracy <= 0.85") == {"run-002", "run-004"}
    assert names("meta.accuracy > -1e3 AND meta.accuracy < +.9") == {"run-002", "run-004"}
    # != and NOT IN with a number also hold for values that are not numbers.
    assert names("meta.epochs != 10") == {"run-002", "run-010", "run-003"}
    assert names("meta.epochs NOT IN (10, 9)") == {"run-010", "run-003"}


def test_in_and_not_in(data):
    assert names("meta.model IN ('xgb', 'lgbm')") == \
        {"run-001", "run-002", "run-004", "run-010", "run-003"}
    assert names("meta.model NOT IN ('xgb', 'lgbm')") == {"exp-1"}
    assert names("meta.epochs IN (9, 'ten')") == {"run-002", "run-003"}
    assert names("namespace IN ('team-b', 'other')") == set(DATA["team-b"]) | set(DATA["other"])
    assert names("name NOT IN ('run-001', 'pct')") == ALL - {"run-001", "pct"}


def test_like_is_case_sensitive_with_escapes(data):
    assert names("name LIKE 'run-00%'") == {"run-001", "run-002", "run-003", "run-004"}
    assert names("name LIKE 'run-0_0'") == {"run-010"}
    assert names("name NOT LIKE 'run-%'") == {"exp-1", "pct"}
    assert names("meta.model LIKE 'x%'") == {"run-001", "run-002", "run-004"}  # not 'XGB'
    assert names("meta.model LIKE 'X%'") == {"exp-1"}
    assert names("meta.model NOT LIKE 'x%'") == {"run-010", "run-003", "exp-1"}
    # % and _ escaped; the GLOB characters * ? [ ] stay literal on SQLite.
    assert names(r"meta.pattern LIKE '50\%\_off'") == {"pct"}
    assert names(r"meta.pattern LIKE '50\%\_of'") == set()
    assert names(r"meta.path LIKE 'a*b?[c]\\d'") == {"pct"}
    assert names("meta.path LIKE 'a*%'") == {"pct"}
    assert names("meta.path LIKE 'ab%'") == set()
    assert names("namespace LIKE 'team-_'") == set(DATA["team-a"]) | set(DATA["team-b"])


def test_missing_keys(data):
    assert names("meta.note IS NULL") == ALL - {"run-010", "run-003"}
    assert names("meta.note IS NOT NULL") == {"run-010", "run-003"}  # '' is a value
    assert names("meta.note = ''") == {"run-003"}
    assert names("meta.nothing = 'x' OR meta.nothing != 'x'") == set()
    assert names("NOT meta.nothing = 'x'") == ALL


def test_and_or_not_precedence(data):
    # AND binds tighter than OR, NOT tighter than AND.
    assert names("meta.model = 'xgb' OR meta.model = 'lgbm' AND meta.epochs > 50") == \
        {"run-001", "run-002", "run-004", "run-010"}
    assert names("(meta.model = 'xgb' OR meta.model = 'lgbm') AND meta.epochs > 50") == \
        {"run-010"}
    assert names("NOT meta.model = 'xgb' AND meta.epochs > 5") == {"run-010"}
    assert names("NOT (meta.model = 'xgb' AND meta.epochs > 5)") == \
        ALL - {"run-001", "run-002", "run-004"}
    assert names("not meta.note is null and (name like 'run-01%' or namespace = 'x')") == \
        {"run-010"}


def test_builtin_fields(data):
    assert names("name = 'exp-1'") == {"exp-1"}
    assert names("namespace = 'other'") == {"run-004", "pct"}
    assert names("name > 'run-003'") == {"run-004", "run-010"}
    assert names("files = 2") == {"run-001"}
    assert names("files = 0") == ALL - {"run-001"}
    assert names("size > 1000") == {"run-001"}
    assert names("size = 1600 AND files >= 2") == {"run-001"}
    created = get_artifact("run-001", "team-a").record.created_at
    if created.tzinfo is not None:  # PostgreSQL: aware, in the session's zone
        created = created.astimezone(timezone.utc)
    stamp = created.replace(tzinfo=None).isoformat()
    assert names(f"created_at >= '{stamp}Z'") == ALL  # one transaction: one timestamp
    assert names(f"created_at < '{stamp}+00:00'") == set()
    assert names("created_at > '2000-01-01' AND updated_at > '2000-01-01T00:00:00+02:00'") == ALL
    assert names("updated_at < '2000-01-01'") == set()


def test_quoted_keys(data):
    assert names("meta.\"my key\" = 'spaced'") == {"exp-1"}
    assert names("meta['a.b'] = 'dotted'") == {"exp-1"}
    assert names('meta["a.b"] = \'dotted\'') == {"exp-1"}
    assert names('meta."a.b" = \'dotted\'') == {"exp-1"}


# -- values stay data --------------------------------------------------------------------


def test_injection_attempts_stay_data(data):
    quoted = INJECTION.replace("'", "''")
    assert names(f"meta.tag = '{quoted}'") == {"exp-1"}
    assert names(f"name = '{quoted}' OR meta.\"{INJECTION}\" = 'x'") == set()
    assert names("meta.\"x\"\" OR 1=1 --\" IS NOT NULL") == set()
    assert names(f"meta.tag LIKE '%{quoted}%'") == {"exp-1"}
    assert len(list_artifacts(all_namespaces=True)) == len(ALL)  # the table is still there
    # The SQL has placeholders only: no value of the filter is in its text.
    engine = get_workspace().catalog.engine
    search = compile_search(f"meta.tag = '{quoted}' AND name LIKE 'x%'",
                            dialect=engine.dialect.name)
    with engine.connect() as conn:
        sql = str(search.statement(conn).compile(engine))
    assert "DROP" not in sql and "x%" not in sql and "tag" not in sql


def test_where_pairs_and_list_artifacts(data):
    got = list_artifacts("team-a", where={"model": "xgb"}, filter="meta.epochs > 9")
    assert [a.name for a in got] == ["run-001"]
    assert [a.name for a in list_artifacts("team-a", where={"model": "xgb"})] == \
        ["run-001", "run-002"]
    got = list_artifacts(all_namespaces=True, filter="meta.model = 'xgb'", order_by="-name",
                         limit=2)
    assert [a.name for a in got] == ["run-004", "run-002"]
    assert got[0].metadata == DATA["other"]["run-004"]
    assert [a.name for a in list_artifacts("team-b", order_by="name")] == ["exp-1", "run-003"]


def test_where_compares_values_as_stored_on_both_listing_paths(stack):
    artifact = new_artifact("flagged")
    artifact.update_meta({"flag": True, "rate": 0.5, "n": 3})
    new_artifact("other").update_meta({"flag": False})
    where = {"flag": True, "rate": 0.5, "n": 3}
    assert [a.name for a in list_artifacts(where=where)] == ["flagged"]
    assert [a.name for a in list_artifacts(where=where, limit=10)] == ["flagged"]
    assert [a.name for a in list_artifacts(where={"flag": False}, order_by="name")] == \
        ["other"]


def test_results_carry_their_metadata(data):
    (artifact,) = query_artifacts("name = 'run-010'")
    assert artifact.namespace == "team-a"
    assert artifact.metadata == DATA["team-a"]["run-010"]
    assert artifact["note"] == "fine"


def test_values_change_from_number_to_text(data):
    artifact = get_artifact("run-002", "team-a")
    assert "run-002" in names("meta.epochs < 10")
    artifact["epochs"] = "nine"
    assert "run-002" not in names("meta.epochs < 10")
    artifact["epochs"] = "8.5"
    assert "run-002" in names("meta.epochs < 10")
    artifact.del_meta("epochs")
    assert "run-002" in names("meta.epochs IS NULL")


def test_a_10_kb_value_is_stored_and_found(data):
    """A B-tree on (key, value) would refuse it on PostgreSQL (~2700 bytes per entry)."""
    value = os.urandom(5 * 1024).hex()  # 10 KB that does not compress
    artifact = get_artifact("pct", "other")
    artifact["blob"] = value
    assert names(f"meta.blob = '{value}'") == {"pct"}
    assert names(f"meta.blob IN ('x', '{value}')") == {"pct"}
    assert names(f"meta.blob LIKE '{value[:100]}%'") == {"pct"}
    assert names(f"meta.blob > '{value[:-1]}'") == {"pct"}
    assert get_artifact("pct", "other")["blob"] == value


def test_queries_never_touch_the_storage(data):
    """With every artifact folder gone behind the API's back, the catalog still answers."""
    fs = data.filesystem()
    fs.rm(f"{data.root}/artifacts", recursive=True)
    fs.invalidate_cache()
    assert names("meta.model = 'xgb' AND files >= 0") == {"run-001", "run-002", "run-004"}
    assert ordered(order_by="-size", limit=1) == ["run-001"]


# -- ordering and pages ------------------------------------------------------------------


def test_ordering(data):
    assert ordered() == sorted(ALL, key=lambda n: next(
        (ns, n) for ns in DATA if n in DATA[ns]))  # namespace, then name
    assert ordered(order_by="name") == sorted(ALL)
    assert ordered(order_by="-name") == sorted(ALL, reverse=True)
    assert ordered(order_by="name DESC") == sorted(ALL, reverse=True)
    assert ordered(order_by="namespace desc")[:2] == ["run-003", "exp-1"]
    assert ordered(order_by="-size")[0] == "run-001"
    assert ordered(order_by="files")[-1] == "run-001"
    # Numbers in numeric order, then text, then artifacts without the key.
    assert ordered("namespace != 'other'", order_by="meta.epochs") == \
        ["run-002", "run-001", "run-010", "run-003", "exp-1"]
    assert ordered("namespace != 'other'", order_by="meta.epochs desc") == \
        ["run-010", "run-001", "run-002", "run-003", "exp-1"]
    assert ordered("meta.accuracy IS NOT NULL", order_by="-meta.accuracy") == \
        ["run-010", "run-001", "run-002", "run-004", "run-003"]
    assert ordered(order_by="created_at") == ordered(order_by="-created_at")[::-1]


def pages(filter: str | None, *, between: Any = None, **options: Any) -> list[list[str]]:
    """Every page of a search, calling ``between(page_number)`` after each page."""
    result, after = [], None
    while True:
        page = query_artifacts(filter, after=after, **options)
        result.append([a.name for a in page])
        if page.next is None:
            return result
        after = page.next
        if between is not None:
            between(len(result))


def test_pages_are_stable_while_artifacts_are_created(stack):
    with catalogstore.transaction():
        for i in range(1, 10):
            new_artifact(f"p0{i}", "pages")["n"] = str(i)

    def insert(page_number: int) -> None:
        if page_number == 1:  # after p01 p02 p03: one before the cursor, two after it
            new_artifact("p00", "pages")["n"] = "0"
            new_artifact("p05a", "pages")["n"] = "5.5"
            new_artifact("p99", "pages")["n"] = "99"

    got = pages("meta.n IS NOT NULL", between=insert, order_by="name", limit=3)
    assert got == [["p01", "p02", "p03"], ["p04", "p05", "p05a"], ["p06", "p07", "p08"],
                   ["p09", "p99"]]
    # Newest first: what is created while paging is newer than the cursor, never shown.
    seen = pages(None, namespaces="pages", order_by="-created_at", limit=4,
                 between=lambda n: new_artifact(f"late-{n}", "pages"))
    flat = [name for page in seen for name in page]
    assert len(flat) == len(set(flat)) == 12
    assert not any(name.startswith("late-") for name in flat)
    # By a metadata number, numbers before text: a page boundary inside the numbers.
    got = pages(None, namespaces="pages", order_by="-meta.n", limit=5)
    assert got[0] == ["p99", "p09", "p08", "p07", "p06"]
    assert [name for page in got for name in page][5:8] == ["p05a", "p05", "p04"]


def test_a_page_cursor_keeps_its_ordering(data):
    page = query_artifacts(order_by="name", limit=2)
    assert len(page) == 2 and page.next
    with pytest.raises(QueryError, match="belongs to order_by 'name'"):
        query_artifacts(order_by="-name", limit=2, after=page.next)
    with pytest.raises(QueryError, match="invalid page cursor"):
        query_artifacts(order_by="name", limit=2, after="not-a-cursor")
    with pytest.raises(QueryError, match="invalid page cursor"):  # edited: a number for a name
        query_artifacts(order_by="name", limit=2, after=encode_cursor("name", [5, 1]))
    with pytest.raises(QueryError, match="positive integer"):
        query_artifacts(limit=0)
    with pytest.raises(QueryError, match="unknown field 'colour'"):
        query_artifacts(order_by="colour")
    assert query_artifacts(limit=100).next is None


def test_namespace_patterns(data):
    assert names(namespaces="team-*") == set(DATA["team-a"]) | set(DATA["team-b"])
    assert names(namespaces="team-?") == names(namespaces="team-*")
    assert names(namespaces=["team-a", "oth*"]) == set(DATA["team-a"]) | set(DATA["other"])
    assert names(namespaces="other") == set(DATA["other"])
    assert names(namespaces="*") == ALL
    assert names(namespaces="team_*") == set()  # '_' is no wildcard
    assert names("meta.model = 'xgb'", namespaces="t*") == {"run-001", "run-002"}
    for bad in ("team/a", "", "a b", []):
        with pytest.raises(QueryError, match="namespace"):
            query_artifacts(namespaces=bad)


# -- malformed filters -------------------------------------------------------------------

MALFORMED = [
    ("meta.model =", "expected a value after '='", 12),
    ("meta.model = 'xgb", "unterminated string", 13),
    ("meta.model = xgb", "quote text", 13),
    ("meta. = 1", "expected a metadata key", 6),
    ("meta.a.b = 1", "must be quoted", 6),
    ("meta = 1", "expected '.' or '['", 5),
    ("meta['a] = 1", "unterminated string", 5),
    ("colour = 'red'", "unknown field 'colour'", 0),
    ("name = 5", "name is text", 7),
    ("files = 'x'", "files is a number", 8),
    ("size LIKE '1%'", "LIKE applies to text fields", 0),
    ("created_at > 'yesterday'", "not an ISO 8601 timestamp", 13),
    ("created_at > 5", "quoted ISO 8601", 13),
    ("name IS NULL", "never null", 0),
    ("meta.a = 1 AND", "expected a field", 14),
    ("meta.a = 1 AND AND", "expected a field", 15),
    ("(meta.a = 1", "expected ')'", 11),
    ("meta.a = 1)", "expected AND, OR or the end", 10),
    ("meta.a = 1 meta.b = 2", "expected AND, OR or the end", 11),
    ("meta.a IN ()", "expected a value", 11),
    ("meta.a IN (1, )", "expected a value", 14),
    ("meta.a IN 1", "expected '('", 10),
    ("meta.a IS 5", "expected NULL after IS", 10),
    ("meta.a IS NOT", "expected NULL after IS NOT", 13),
    ("meta.a NOT = 1", "expected IN, LIKE or CONTAINS after NOT", 11),
    ("meta.a LIKE 5", "expected a quoted pattern", 12),
    ("meta.a LIKE 'x\\'", "ends with an escape", 12),
    ("meta.a ~ 1", "unexpected character '~'", 7),
    ("meta.a", "expected an operator", 6),
    ("meta.\"\" = 1", "cannot be empty", 5),
    ("meta.a = 1e999", "out of range", 9),
    ("NOT", "expected a field", 3),
    # versions and aliases (issue 15)
    ("alias.", "expected an alias name", 6),
    ("alias. = 1", "expected an alias name", 7),
    ("alias.prod = 1", "expected .meta.KEY after alias.prod", 11),
    ("alias.prod.accuracy = 1", "expected .meta.KEY", 10),
    ("alias.prod.meta = 1", "expected '.' or '[' after meta", 16),
    ("alias.prod.meta.a.b = 1", "must be quoted", 17),
    ("alias.prod.meta.\"\" = 1", "cannot be empty", 16),
    ("alias.'prod'.meta.a = 1", "expected an alias name", 6),
    ("alias.\"\".meta.a = 1", "invalid alias", 6),
    ("alias.\"bad name\".meta.a = 1", "invalid alias", 6),
    ("alias.\"../x\".meta.a = 1", "invalid alias", 6),
    ("alias.v3.meta.a = 1", "version numbers", 6),
    ("alias.prod.meta.a > true", "compares numbers or text", 20),
    ("alias.prod.meta.a LIKE 5", "expected a quoted pattern", 23),
    ("alias = 5", "alias is text", 8),
    ("alias = 'bad name'", "invalid alias", 8),
    ("alias IN ('prod', 'a/b')", "invalid alias", 18),
    ("alias = 'latest'", "every artifact has the alias 'latest'", 8),
    ("alias > 'a'", "alias takes =, !=, IN, LIKE or IS NULL", 0),
    ("alias CONTAINS 'a'", "not a list", 0),
    ("alias = true", "never true, false or null", 8),
    ("alias = null", "never true, false or null", 8),
    ("version = '3'", "version is a number", 10),
    ("version LIKE '3%'", "LIKE applies to text fields", 0),
    ("version IS NULL", "never null", 0),
    ("version = true", "compare it with a number", 10),
    ("versions = 1", "unknown field 'versions'", 0),
    ("aliases = 'prod'", "unknown field 'aliases'", 0),
    # the runs that made artifacts (issue 16)
    ("run = 'train'", "expected '.' and a run field after run", 4),
    ("run.", "expected a run field", 4),
    ("run.bogus = 1", "unknown run field 'bogus'", 4),
    ("run.\"name\" = 'x'", "expected a run field", 4),
    ("run.params = 1", "expected '.' or '[' after run.params", 11),
    ("run.meta = 1", "expected '.' or '[' after run.meta", 9),
    ("run.params. = 1", "expected a parameter name after \"run.params.\"", 12),
    ("run.params.\"\" = 1", "cannot be empty", 11),
    ("run.params.a.b. = 1", "expected a parameter name after \"run.params.a.b.\"", 16),
    ("run.name.x = 1", "expected an operator", 8),
    ("run.params.lr > true", "compares numbers or text", 16),
    ("run.meta.a LIKE 5", "expected a quoted pattern", 16),
    ("run.name = 5", "run.name is text", 11),
    ("run.status > true", "never true, false or null", 13),
    ("run.host CONTAINS 'x'", "not a list", 0),
    ("run.status = 'done'", "a run's status is running, succeeded, failed, not 'done'", 13),
    ("run.status IN ('failed', 'Failed')", "a run's status is", 25),
    ("run.started_at > 5", "quoted ISO 8601", 17),
    ("run.ended_at < 'yesterday'", "not an ISO 8601 timestamp", 15),
    ("run.started_at LIKE '2024%'", "LIKE applies to text fields", 0),
    ("runs.name = 'x'", "unknown field 'runs'", 0),
]


@pytest.mark.parametrize(("text", "reason", "position"), MALFORMED)
def test_malformed_filters_point_at_the_problem(text, reason, position):
    with pytest.raises(QueryError) as caught:
        compile_search(text, dialect="sqlite")
    error = caught.value
    assert isinstance(error, ValueError)
    assert reason in error.reason
    assert error.position == position, str(error)
    # The message shows the filter with a caret under the problem.
    _, shown, caret = str(error).splitlines()
    assert shown == "    " + text
    assert caret == "    " + " " * position + "^"
    assert f"column {position + 1} of" in error.summary and "\n" not in error.summary


def test_tokens_and_tree():
    kinds = [(t.kind, t.text) for t in tokenize("meta['it''s'] >= -1.5e3 AND name<>'x'")]
    assert kinds == [("word", "meta"), ("op", "["), ("string", "'it''s'"), ("op", "]"),
                     ("op", ">="), ("number", "-1.5e3"), ("word", "AND"), ("word", "name"),
                     ("op", "<>"), ("string", "'x'"), ("end", "")]
    tree = parse("meta.x = 1 or meta.y = 2 and not meta.z is null")
    assert type(tree).__name__ == "BoolOp" and tree.op == "or"
    assert tree.items[1].op == "and"
    assert type(tree.items[1].items[1]).__name__ == "Not"


def test_what_counts_as_a_number():
    numbers = {"42": 42.0, "-0.5": -0.5, "1e-05": 1e-05, ".5": 0.5, "007": 7.0, "+3": 3.0,
               "5.": 5.0, "1E3": 1000.0}
    for text, number in numbers.items():
        assert value_number(text) == number
    for text in ("", "-", ".", "e5", "1e", "nan", "inf", "1e999", "1_000", " 1", "1 ", "0x10",
                 "١٢", "1.2.3", "ten"):
        assert value_number(text) is None, text


# -- the command line --------------------------------------------------------------------

runner = CliRunner()


def cli(*args: str, code: int = 0) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    return result


def test_cli_query(data):
    out = cli("query", "meta.model = 'xgb' AND meta.accuracy > 0.9").stdout
    assert "run-001" in out and "run-002" not in out and "1.6 kB" in out
    listing = json.loads(cli("query", "meta.model = 'xgb'", "--json", "--order-by=-name",
                             "--limit", "2").stdout)
    assert [a["name"] for a in listing["artifacts"]] == ["run-004", "run-002"]
    assert listing["artifacts"][0]["metadata"] == DATA["other"]["run-004"]
    rest = json.loads(cli("query", "meta.model = 'xgb'", "--json", "--order-by=-name",
                          "--limit", "2", "--after", listing["next"]).stdout)
    assert [a["name"] for a in rest["artifacts"]] == ["run-001"] and rest["next"] is None
    out = cli("query", "", "-n", "team-*", "--order-by", "name desc", "--limit", "1").stdout
    assert "run-010" in out and "more exist: add --after " in out
    assert "no artifacts in namespace 'other' match" in \
        cli("query", "meta.model = 'lgbm'", "-n", "other").stdout
    # ls takes the same filters.
    out = json.loads(cli("ls", "team-a", "--filter", "meta.epochs >= 10", "--json").stdout)
    assert [a["name"] for a in out] == ["run-001", "run-010"]
    out = json.loads(cli("ls", "-A", "--limit", "1", "--json").stdout)
    assert len(out) == 1


def test_cli_query_errors_are_one_line(data):
    result = cli("query", "meta.model = 'xgb' AND (meta.epochs > 9", code=1)
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: invalid query: expected ')' to close the parenthesis")
    assert "column 40" in line and "Traceback" not in result.stderr
    (line,) = cli("ls", "--filter", "name = 5", code=1).stderr.splitlines()
    assert line.startswith("error: invalid --filter: name is text")
    (line,) = cli("query", "--order-by", "size sideways", code=1).stderr.splitlines()
    assert line.startswith("error: invalid query: ")
    cli("query", "--limit", "0", code=2)
