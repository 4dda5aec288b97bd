"""The filter language on the runs that made artifacts (issue 16, item 3), on the two stacks.

"The filter language can select artifacts by the run that produced them
(``run.name = 'train' AND run.params.lr > 0.01``)": a ``run.`` term holds for an
artifact when a run that has its *current* version as an output matches it. Fields:
``run.id``, ``run.name``, ``run.status``, ``run.host`` (text), ``run.started_at`` and
``run.ended_at`` (timestamps), ``run.params.KEY`` and ``run.meta.KEY`` (compared as
``meta.KEY`` is: numbers as numbers, strings that spell one too, text as text,
booleans and null by type, a missing key as a missing metadata key). Malformed run
terms are in ``test_query.py``'s table of malformed filters.
"""

from __future__ import annotations

import json
import socket
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

import catalogstore
from catalogstore.artifacts import get_artifact, list_artifacts, new_artifact, query_artifacts
from catalogstore.catalog.query.compile import compile_search
from catalogstore.catalog.query.language import MAX_TERMS
from catalogstore.cli import app
from catalogstore.errors import QueryError
from catalogstore.txn.workspace import get_workspace
from catalogstore.web import api

INJECTION = "x'); DROP TABLE runs; --"
ALL = {"raw", "a", "b", "c", "moved", "broken", "manual"}


class Boom(Exception):
    pass


def _moment() -> datetime:
    """A moment strictly between what happened before and what happens after."""
    time.sleep(0.01)
    moment = datetime.now(UTC)
    time.sleep(0.01)
    return moment


@pytest.fixture
def data(stack: Any) -> dict[str, Any]:
    """raw: made by prepare; a, b, c: each by its own train run (lr 0.05, 0.001, 'fast');
    moved: made by a's run, then changed by tune (lr 0.2); broken: by crash, which
    failed; manual: recorded with lineage off (no run made it)."""
    seen: dict[str, Any] = {}
    with catalogstore.run("prepare", params={"rows": 3}, metadata={"owner": "ann"}) as prep:
        new_artifact("raw").new_file("rows.csv", "1,2,3")
    seen["prepare"] = prep.id
    seen["after_prepare"] = _moment()
    with catalogstore.run("train", params={
            "lr": 0.05, "epochs": "10", "optimizer": "adam", "fp16": True, "layers": [64, 32],
            "learning-rate": 0.1, "note": None, "tag": INJECTION, "a.b": 1, "small": 1e-7},
            metadata={"owner": "ann"}) as train_a:
        get_artifact("raw").get_file("rows.csv").read()  # an input: not made by train
        new_artifact("a")["kind"] = "model"
        new_artifact("moved")["kind"] = "model"
        train_a.metadata["score"] = 0.93
        train_a.metadata["loss"] = float("nan")  # not JSON: written as null
    seen["a"] = train_a.id
    with catalogstore.run("train", params={"lr": 0.001, "epochs": 5, "optimizer": "sgd",
                                           "fp16": False}, metadata={"owner": "bob"}) as b:
        new_artifact("b")["kind"] = "model"
    seen["b"] = b.id
    with catalogstore.run("train", params={"lr": "fast", "optimizer": "adam"}) as c:
        new_artifact("c")["kind"] = "model"
    seen["c"] = c.id
    seen["before_tune"] = _moment()
    with catalogstore.run("tune", params={"lr": 0.2}) as tune:
        get_artifact("moved")["kind"] = "tuned"  # its current version: tune's
    seen["tune"] = tune.id
    with pytest.raises(Boom), catalogstore.run("crash", params={"lr": 0.3}) as crash:
        new_artifact("broken")["kind"] = "half"
        raise Boom
    seen["crash"] = crash.id
    catalogstore.configure(lineage=False)
    new_artifact("manual")["kind"] = "model"
    catalogstore.configure(lineage=True)
    return seen


def names(filter: str, **options: Any) -> set[str]:
    return {a.name for a in query_artifacts(filter, **options)}


def test_the_issue_example(data):
    assert names("run.name = 'train' AND run.params.lr > 0.01") == {"a"}
    # moved was made by train with lr 0.05 too, but its current version is tune's.
    assert names("run.params.lr > 0.01") == {"a", "moved", "broken"}
    assert names("run.name = 'train'") == {"a", "b", "c"}
    assert names("run.name = 'tune'") == {"moved"}
    # raw was read by train, not made by it.
    assert names("run.name = 'prepare'") == {"raw"}


def test_text_fields(data):
    assert names(f"run.id = '{data['a']}'") == {"a"}
    assert names(f"run.id IN ('{data['b']}', '{data['tune']}')") == {"b", "moved"}
    assert names("run.id = 'no-such-run'") == set()
    assert names("run.name IN ('prepare', 'crash')") == {"raw", "broken"}
    assert names("run.name LIKE 'tr%'") == {"a", "b", "c"}
    assert names("run.name NOT LIKE 'tr%'") == {"raw", "moved", "broken"}
    assert names("run.name != 'train'") == {"raw", "moved", "broken"}  # a run made it
    assert names("run.name NOT IN ('train', 'tune')") == {"raw", "broken"}
    assert names("run.name < 'train'") == {"raw", "broken"}  # 'crash', 'prepare'
    assert names("run.status = 'succeeded'") == ALL - {"broken", "manual"}
    assert names("run.status = 'failed'") == {"broken"}
    assert names("run.host = " + repr(socket.gethostname()[:255])) == ALL - {"manual"}
    assert names("run.host != " + repr(socket.gethostname()[:255])) == set()


def test_timestamps(data):
    after_prepare = data["after_prepare"].isoformat()
    before_tune = data["before_tune"].isoformat()
    assert names(f"run.started_at < '{after_prepare}'") == {"raw"}
    assert names(f"run.started_at > '{before_tune}'") == {"moved", "broken"}
    assert names(f"run.ended_at <= '{after_prepare}'") == {"raw"}
    assert names(f"run.started_at > '{after_prepare}' AND run.ended_at < '{before_tune}'") \
        == {"a", "b", "c"}
    # No offset: UTC, as created_at takes it.
    naive = data["before_tune"].replace(tzinfo=None).isoformat()
    assert names(f"run.started_at > '{naive}'") == {"moved", "broken"}
    assert names("run.started_at > '2000-01-01' AND run.ended_at > '2000-01-01'") == \
        ALL - {"manual"}
    assert names("run.ended_at IS NOT NULL") == ALL - {"manual"}


def test_a_running_run(data):
    with catalogstore.run("live", params={"lr": 0.5}):
        new_artifact("live")["kind"] = "model"
        assert names("run.status = 'running'") == {"live"}
        assert names("run.ended_at IS NULL") == {"live", "manual"}  # as a missing key
        assert names("run.params.lr >= 0.5") == {"live"}
    assert names("run.status = 'running'") == set()
    assert names("run.name = 'live' AND run.status = 'succeeded'") == {"live"}


def test_params_compare_as_metadata_does(data):
    # Numbers as numbers, and strings that spell one; text as text.
    assert names("run.params.lr < 0.01") == {"b"}
    assert names("run.params.lr = 0.05") == {"a"}
    assert names("run.params.lr IN (0.001, 0.2)") == {"b", "moved"}
    assert names("run.params.lr > 0 OR run.params.lr <= 0") == \
        {"a", "b", "moved", "broken"}  # 'fast' is no number
    assert names("run.params.lr = 'fast'") == {"c"}
    assert names("run.params.lr = '0.05'") == {"a"}  # a number's JSON text
    assert names("run.params.epochs > 9") == {"a"}  # '10' spells a number; 5 is less
    assert names("run.params.epochs < '9'") == {"a", "b"}  # as text: '10' and '5'
    assert names("run.params.epochs = 5 AND run.params.epochs = '5'") == {"b"}
    assert names("run.params.small = 1e-7 AND run.params.small < 0.000001") == {"a"}
    assert names("run.params.small = '1e-7'") == {"a"}  # the text meta.KEY would show
    assert names("run.params.optimizer = 'adam'") == {"a", "c"}
    assert names("run.params.optimizer LIKE 's%'") == {"b"}
    # Booleans and null by type; the string 'true' matches the boolean's text.
    assert names("run.params.fp16 = true") == {"a"}
    assert names("run.params.fp16 = false") == {"b"}
    assert names("run.params.fp16 = 'true'") == {"a"}
    assert names("run.params.fp16 = 1") == set()
    assert names("run.params.note = null") == {"a"}
    assert names("run.params.fp16 != null") == {"a", "b"}
    # Lists.
    assert names("run.params.layers CONTAINS 64") == {"a"}
    assert names("run.params.layers CONTAINS '64'") == set()
    assert names("run.params.layers = '[64,32]'") == {"a"}
    # Quoted keys, as for meta.
    assert names('run.params."learning-rate" = 0.1') == {"a"}
    assert names("run.params['learning-rate'] > 0.05") == {"a"}
    assert names("run.params['a.b'] = 1") == {"a"}


def test_run_metadata(data):
    assert names("run.meta.owner = 'ann'") == {"raw", "a"}
    assert names("run.meta.owner IN ('ann', 'bob')") == {"raw", "a", "b"}
    # Set in the block: written when the run ended.
    assert names("run.meta.score > 0.9") == {"a"}
    assert names("run.meta.loss = null") == {"a"}
    assert names("run.meta.owner IS NULL") == {"c", "moved", "broken", "manual"}


def test_missing_keys_and_artifacts_no_run_made(data):
    assert names("run.params.lr IS NOT NULL") == {"a", "b", "c", "moved", "broken"}
    assert names("run.params.lr IS NULL") == {"raw", "manual"}
    assert names("run.params.note IS NULL") == ALL  # null is null too
    # != holds for artifacts whose run has the key with another value; NOT also for the
    # others, those no run made included.
    assert names("run.params.lr != 0.05") == {"b", "c", "moved", "broken"}
    assert names("NOT run.params.lr = 0.05") == ALL - {"a"}
    assert names("run.params.missing = 1 OR run.params.missing != 1") == set()
    # An artifact recorded with lineage off: no run made its current version.
    assert names("run.id IS NULL") == {"manual"}
    assert names("run.name IS NOT NULL") == ALL - {"manual"}
    assert names("NOT run.name = 'train'") == ALL - {"a", "b", "c"}
    assert names("run.name = 'train' OR run.name != 'train'") == ALL - {"manual"}


def test_only_the_current_versions_run_counts(data):
    moved = get_artifact("moved")
    assert names("run.name = 'train' AND name = 'moved'") == set()
    with catalogstore.run("again", params={"lr": 0.05}):
        moved["kind"] = "retrained"
    assert names("run.name = 'again'") == {"moved"}
    assert names("run.name = 'tune'") == set()
    assert names("run.name = 'train' AND run.params.lr > 0.01") == {"a"}
    # Changed with lineage off: no run made the current version any more.
    catalogstore.configure(lineage=False)
    get_artifact("moved")["kind"] = "by hand"  # (moved keeps the settings it was got with)
    catalogstore.configure(lineage=True)
    assert names("run.name = 'again'") == set()
    assert names("run.id IS NULL") == {"manual", "moved"}


def test_not_or_and_other_fields_combine(data):
    assert names("run.name = 'train' AND NOT run.params.optimizer = 'adam'") == {"b"}
    assert names("run.params.lr < 0.01 OR run.status = 'failed'") == {"b", "broken"}
    assert names("(run.name = 'train' OR run.name = 'tune') AND meta.kind = 'model'") == \
        {"a", "b", "c"}
    assert names("NOT (run.name = 'train' OR run.id IS NULL)") == {"raw", "moved", "broken"}
    assert names("run.params.lr > 0.01 AND run.meta.owner = 'ann'") == {"a"}
    assert names("run.name = 'train' AND version = 2") == {"a", "b", "c"}  # made, then set
    assert names("run.name = 'train'", namespaces="other") == set()
    assert [a.name for a in query_artifacts("run.name = 'train'", order_by="-name")] == \
        ["c", "b", "a"]
    first = query_artifacts("run.name != 'x'", order_by="name", limit=2)
    rest = query_artifacts("run.name != 'x'", order_by="name", limit=10, after=first.next)
    assert [a.name for a in [*first, *rest]] == sorted(ALL - {"manual"})
    assert {a.name for a in list_artifacts(filter="run.name = 'tune'")} == {"moved"}


def test_the_catalog_plans_from_the_runs_indexes(data):
    """run.name and run.id name their artifacts from an index, so a search can start from
    them; a term on a run's parameters (each run's document read) is checked per
    candidate when another term has an index."""
    engine = get_workspace().catalog.engine
    with engine.connect() as conn:
        search = compile_search("run.name = 'train' AND run.params.lr > 0.01",
                                dialect=engine.dialect.name)
        plan = search.plan(conn)
        assert plan.ids is not None and plan.answered == [search.terms[0]]
        search = compile_search("run.params.lr > 0.01 AND meta.kind = 'model'",
                                dialect=engine.dialect.name)
        plan = search.plan(conn)
        assert plan.ids is not None and plan.answered == [search.terms[1]]
    assert names("run.params.lr > 0.01 AND meta.kind = 'model'") == {"a"}


def test_keys_are_data_never_sql_nor_json_paths(data):
    runs = _count_runs()
    quoted = INJECTION.replace("'", "''")
    assert names(f"run.params.tag = '{quoted}'") == {"a"}
    assert names(f'run.params."{INJECTION}" IS NULL') == ALL
    # A key is a key: no JSON path reaches lr through it.
    for key in ("$.lr", "$", "lr'", '"lr"', "{lr}", "lr[0]"):
        literal = key.replace('"', '""')
        assert names(f'run.params."{literal}" IS NOT NULL') == set(), key
        assert names(f'run.params."{literal}" > 0') == set(), key
    assert _count_runs() == runs  # the table is still there, and whole


def _count_runs() -> int:
    with get_workspace().catalog.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT COUNT(*) FROM runs")).scalar_one())


def test_a_params_document_edited_by_hand_is_no_number(data):
    """A string that spells a number beyond a double's range is no number (as in meta),
    never an SQL error; the rest of the run's values still answer."""
    with get_workspace().catalog.engine.begin() as conn:
        conn.execute(sa.text("UPDATE runs SET params_json = :doc WHERE id = :id"),
                     {"doc": json.dumps({"lr": "1e999", "epochs": 3}), "id": data["b"]})
    assert names("run.params.lr > 0 OR run.params.lr < 0") == {"a", "moved", "broken"}
    assert names("run.params.lr = '1e999' AND run.params.epochs = 3") == {"b"}


def test_every_place_the_language_is_used(data):
    runner = CliRunner()
    result = runner.invoke(app, ["query", "run.name = 'train' AND run.params.lr > 0.01",
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert [a["name"] for a in json.loads(result.stdout)["artifacts"]] == ["a"]
    result = runner.invoke(app, ["ls", "--filter", "run.params.lr < 0.01", "--json"])
    assert result.exit_code == 0, result.output
    assert [a["name"] for a in json.loads(result.stdout)] == ["b"]
    result = runner.invoke(app, ["query", "run.params = 1"])
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: invalid query: expected '.' or '[' after run.params")
    assert "column 12" in line
    page = api.search("run.name = 'tune' OR run.status = 'failed'")
    assert {a["name"] for a in page["artifacts"]} == {"moved", "broken"}
    with pytest.raises(QueryError, match="unknown run field 'bogus'"):
        api.search("run.bogus = 1")


def test_a_caret_points_at_a_bad_run_term(stack):
    with pytest.raises(QueryError) as caught:
        query_artifacts("meta.a = 1 AND run.params.lr > true")
    _, shown, caret = str(caught.value).splitlines()
    assert shown == "    meta.a = 1 AND run.params.lr > true"
    assert caret == "    " + " " * 31 + "^"
    assert "compares numbers or text" in caught.value.reason


@pytest.mark.parametrize("order_by", ["run.name", "-run.params.lr", "run.started_at desc"])
def test_ordering_by_a_run_field_is_refused(stack, order_by):
    with pytest.raises(QueryError, match=r"order_by takes a built-in field or meta\.KEY"):
        query_artifacts("", order_by=order_by)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_limits_hold_for_run_terms(stack):
    with catalogstore.run("wide", params={"k0": 0, "k5": 5}):
        new_artifact("made")
    new_artifact("other")  # by this process's implicit run, without those keys
    chain = [f"run.params.k{i} = {i}" for i in range(MAX_TERMS)]
    assert names(" OR ".join(chain)) == {"made"}
    assert names(" AND ".join(chain)) == set()
    assert names("NOT " * 32 + "run.name = 'wide'") == {"made"}
    with pytest.raises(QueryError, match="more than"):
        query_artifacts(" OR ".join([*chain, "run.name = 'wide'"]))


# -- nested paths: run.params.a.b, run.meta.a.b ----------------------------------------

HOSTILE_KEYS = ["'); DROP TABLE runs; --", "$.a", "$", '\\"', 'a"b', "it's", "{a,b}",
                "a.b", "0", "lr[0]", "\\", "%_*", "\u00e9t\u00e9 \U0001f600"]
"""Keys that would break SQL, a JSON path (SQLite's ``$.a``, PostgreSQL's ``{a,b}``),
a LIKE pattern or a naive quoting; and a digit, which never indexes an array."""
NESTED = {"adam", "sgd", "flat", "listed", "hostile", "fast", "deep", "manual"}


def quoted(key: str) -> str:
    """``key`` as a quoted name of the filter language (a double quote doubled)."""
    return '"' + key.replace('"', '""') + '"'


def deep(levels: int, leaf: Any) -> dict[str, Any]:
    """``{"k1": {"k2": ... {"kN": leaf}}}``."""
    value = leaf
    for level in range(levels, 0, -1):
        value = {f"k{level}": value}
    return value


@pytest.fixture
def nested(stack: Any) -> dict[str, str]:
    """Artifacts, each made by a run whose parameters and metadata nest objects (or
    hold something else where an object could be); manual: no run made it."""
    made: dict[str, str] = {}

    def make(name: str, params: dict[str, Any], metadata: dict[str, Any] | None = None
             ) -> None:
        with catalogstore.run(f"make-{name}", params=params, metadata=metadata) as made_by:
            new_artifact(name)["kind"] = "model"
        made[name] = made_by.id

    make("adam", {"optimizer": {"name": "adam", "lr": 0.02, "betas": [0.9, 0.999],
                                "decay": None, "schedule": {"warmup": {"steps": 100}}},
                  "opt-1": {"learning rate": 0.5}},
         {"a": {"b": "x"}, "owner": {"name": "ann"}})
    make("sgd", {"optimizer": {"name": "sgd", "lr": "0.001"}}, {"a": {"b": "y"}})
    # Not objects where the others nest one; top-level keys holding a dot.
    make("flat", {"optimizer": "adam", "optimizer.lr": 0.5, "lr": 0.02},
         {"a": "x", "a.b": "x"})
    # Arrays in the middle: a path goes through objects only, never indexes an array.
    make("listed", {"optimizer": [{"lr": 0.02}], "layers": [{"units": 64}, {"0": 1}]},
         {"a": [{"b": "x"}]})
    make("hostile", {key: {key: f"deep {key}"} for key in HOSTILE_KEYS},
         {"x": {INJECTION: 1}})
    make("fast", {"optimizer": {"lr": "fast", "fp16": True}})
    make("deep", deep(16, 16), {"a": {"b": {"c": "x"}}})
    catalogstore.configure(lineage=False)
    new_artifact("manual")["kind"] = "model"
    catalogstore.configure(lineage=True)
    return made


_SIXTEEN = ".".join(f"k{level}" for level in range(1, 17))
PATHS: list[tuple[str, set[str]]] = [
    ("run.params.optimizer.lr > 0.01", {"adam"}),
    ("run.params.optimizer.lr < 0.01", {"sgd"}),  # '0.001' spells a number
    ("run.params.optimizer.lr = 0.02", {"adam"}),
    ("run.params.optimizer.lr = '0.001'", {"sgd"}),
    ("run.params.optimizer.lr = 'fast'", {"fast"}),
    ("run.params.optimizer.lr > 0 OR run.params.optimizer.lr <= 0", {"adam", "sgd"}),
    ("run.params.optimizer.lr IN (0.02, 0.001, 'fast')", {"adam", "sgd", "fast"}),
    ("run.params.optimizer.name = 'adam'", {"adam"}),
    ("run.params.optimizer.name LIKE 's%'", {"sgd"}),
    ("run.params.optimizer.name NOT LIKE 's%'", {"adam"}),
    ("run.params.optimizer.fp16 = true", {"fast"}),
    ("run.params.optimizer.decay = null", {"adam"}),
    ("run.params.optimizer.betas CONTAINS 0.9", {"adam"}),
    ("run.params.optimizer.betas NOT CONTAINS 0.5", {"adam"}),
    ("run.params.optimizer.schedule.warmup.steps >= 100", {"adam"}),
    # An object at the end compares as its JSON text, as meta.KEY does.
    ("run.params.optimizer.schedule = '{\"warmup\":{\"steps\":100}}'", {"adam"}),
    ("run.params.optimizer.schedule.warmup IS NOT NULL", {"adam"}),
    # A top-level key holding a dot is reached quoted, never by a path.
    ('run.params."optimizer.lr" = 0.5', {"flat"}),
    ("run.params['optimizer.lr'] = 0.5", {"flat"}),
    ("run.params.optimizer.lr = 0.5", set()),
    # Sixteen keys deep.
    (f"run.params.{_SIXTEEN} = 16", {"deep"}),
    (f"run.params.{_SIXTEEN[:-4]} = '{{\"k16\":16}}'", {"deep"}),
]
"""Filters on the runs' nested parameters, and what they find (``nested``)."""


def test_nested_parameters_select_by_a_path(nested):
    for text, expected in PATHS:
        assert names(text) == expected, text


def test_each_key_of_a_path_may_be_quoted(nested):
    assert names('run.params."opt-1"."learning rate" = 0.5') == {"adam"}
    assert names("run.params['opt-1']['learning rate'] = 0.5") == {"adam"}
    assert names("run.params.\"opt-1\"['learning rate'] > 0.1") == {"adam"}
    assert names('run.params."optimizer".lr = 0.02') == {"adam"}
    assert names("run.params . optimizer . lr = 0.02") == {"adam"}  # spaces between
    assert names('run.params."opt-1".learning = 0.5') == set()


def test_nested_run_metadata(nested):
    assert names("run.meta.a.b = 'x'") == {"adam"}  # flat's a is 'x'; listed's a list
    assert names("run.meta.a.b != 'x'") == {"sgd", "deep"}  # has it, another value
    assert names("run.meta.a.b IN ('x', 'y')") == {"adam", "sgd"}
    assert names("run.meta['a.b'] = 'x'") == {"flat"}
    assert names("run.meta.owner.name = 'ann' AND run.params.optimizer.lr > 0.01") == {"adam"}
    assert names("run.meta.a.b.c = 'x'") == {"deep"}
    assert names("run.meta.a.b IS NOT NULL") == {"adam", "sgd", "deep"}


def test_a_path_through_a_missing_key_a_value_or_an_array_matches_nothing(nested):
    """A missing intermediate key, a string or an array where the path needs an object:
    as a missing key (no match, no error), on SQLite and PostgreSQL alike."""
    assert names("run.params.optimizer.lr IS NULL") == NESTED - {"adam", "sgd", "fast"}
    assert names("run.params.optimizer.lr IS NOT NULL") == {"adam", "sgd", "fast"}
    assert names("run.params.nothing.lr IS NULL") == NESTED
    assert names("run.params.nothing.lr = 1 OR run.params.nothing.lr != 1") == set()
    assert names("run.params.optimizer.lr != 0.02") == {"sgd", "fast"}
    assert names("NOT run.params.optimizer.lr > 0.01") == NESTED - {"adam"}
    # Arrays in the middle: never indexed, not even by a key that spells a number.
    assert names("run.params.layers.units IS NOT NULL") == set()
    assert names('run.params.layers."0" IS NOT NULL') == set()
    assert names('run.params.layers."0".units = 64') == set()
    assert names("run.params.optimizer.lr.x IS NOT NULL") == set()  # through a number
    assert names("run.params.optimizer.name.x IS NULL") == NESTED  # through a string
    assert names("run.params.optimizer.decay.x IS NULL") == NESTED  # through a null
    assert names("run.meta.a.b.c.d IS NOT NULL") == set()


def test_path_keys_are_data_never_sql_nor_json_paths(nested):
    runs = _count_runs()
    for key in HOSTILE_KEYS:
        twice = f"run.params.{quoted(key)}.{quoted(key)}"
        value = f"deep {key}".replace("'", "''")
        assert names(f"{twice} = '{value}'") == {"hostile"}, key
        bracketed = "['" + key.replace("'", "''") + "']"
        assert names(f"run.params{bracketed}{bracketed} IS NOT NULL") == {"hostile"}, key
        assert names(f"run.params.{quoted(key)}.lr IS NOT NULL") == set(), key
    assert names(f"run.meta.x.{quoted(INJECTION)} = 1") == {"hostile"}
    # No key is a JSON path, on either database: '$.a' is the key '$.a', '{a,b}' one key.
    assert names('run.params."$".a IS NOT NULL') == set()
    assert names('run.params."$.optimizer".lr IS NOT NULL') == set()
    assert names('run.params."$.optimizer.lr" IS NOT NULL') == set()
    assert names('run.params.optimizer."$.lr" IS NOT NULL') == set()
    assert names('run.params."{optimizer,lr}" IS NOT NULL') == set()
    assert names('run.params."{a,b}".a IS NOT NULL') == set()
    assert names('run.params.optimizer."lr[0]" IS NOT NULL') == set()
    assert _count_runs() == runs  # the table is still there, and whole


def test_nested_terms_beside_indexed_ones_are_checked_per_candidate(nested):
    engine = get_workspace().catalog.engine
    with engine.connect() as conn:
        search = compile_search("run.params.optimizer.lr > 0.01 AND meta.kind = 'model'",
                                dialect=engine.dialect.name)
        plan = search.plan(conn)
        assert plan.ids is not None and plan.answered == [search.terms[1]]
    assert names("run.params.optimizer.lr > 0.01 AND meta.kind = 'model'") == {"adam"}
    assert names("run.params.optimizer.lr > 0.01 OR name = 'sgd'") == {"adam", "sgd"}
    assert names("run.name = 'make-sgd' OR run.params.optimizer.fp16 = true") == {"sgd", "fast"}
    first = query_artifacts("run.params.optimizer IS NOT NULL", order_by="name", limit=2)
    rest = query_artifacts("run.params.optimizer IS NOT NULL", order_by="name", limit=10,
                           after=first.next)
    assert [a.name for a in [*first, *rest]] == ["adam", "fast", "flat", "listed", "sgd"]


@pytest.mark.parametrize(("text", "reason", "position"), [
    ("run.params.", 'expected a parameter name after "run.params."', 11),
    ("run.params.a. = 1", 'expected a parameter name after "run.params.a."', 14),
    ("run.params.a.", 'expected a parameter name after "run.params.a."', 13),
    ('run.params."x y".b. > 1', 'expected a parameter name after "run.params."x y".b."', 20),
    ("run.meta.a.b. = 'x'", 'expected a metadata key after "run.meta.a.b."', 14),
    ("run.params.a.'b' = 1", 'expected a parameter name after "run.params.a."', 13),
    ('run.params.a."" = 1', "cannot be empty", 13),
    ("run.params.a[] = 1", "expected a quoted key in run.params.a[", 13),
    ("run.params.a[0] = 1", "expected a quoted key in run.params.a[", 13),
    ("run.params.a['b' = 1", "expected ']' after the key", 17),
    ("run.params.a.1 = 1", 'quote a key that is not a name: run.params.a."1"', 12),
    ("run.params.a.b > true", "compares numbers or text", 17),
    ("run.params.a.b LIKE 5", "expected a quoted pattern", 20),
    ("run.params.a.b = 1 AND", "expected a field", 22),
    (f"run.params.{'.'.join(f'k{i}' for i in range(1, 18))} = 1",
     "a path of more than 16 keys", 11 + len(".".join(f"k{i}" for i in range(1, 17))) + 1),
    ("meta.a.b = 1", "must be quoted", 6),  # artifact metadata keys may hold dots
    ("alias.prod.meta.a.b = 1", "must be quoted", 17),
])
def test_a_malformed_path_is_refused_with_a_caret(stack, text, reason, position):
    with pytest.raises(QueryError) as caught:
        query_artifacts(text)
    error = caught.value
    assert reason in error.reason, error.reason
    assert error.position == position, str(error)
    _, shown, caret = str(error).splitlines()  # a long filter: around the problem
    assert caret.strip() == "^" and shown.endswith(text[position:])
    assert shown[caret.index("^"):] == text[position:]


def test_the_path_limit_is_the_same_everywhere(nested):
    from catalogstore.catalog.query.language import MAX_PATH_KEYS

    assert MAX_PATH_KEYS == 16
    path = ".".join(f"k{level}" for level in range(1, MAX_PATH_KEYS + 2))
    with pytest.raises(QueryError, match="a path of more than 16 keys"):
        query_artifacts(f"run.params.{path} = 1")
    with pytest.raises(QueryError, match="a path of more than 16 keys"):
        api.search(f"run.meta.{path} IS NULL")
    result = CliRunner().invoke(app, ["query", f"run.params.{path} = 1"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = result.stderr.splitlines()
    assert "a path of more than 16 keys" in line
