"""Typed metadata (issue 14): JSON values keep their type through the API, ``.artifact.json``,
the catalog, the filter language and ``reindex``, on both stacks.

Flowdapt's side of it (its writes read back byte for byte, 1,000 of its artifacts
reindexed) is in ``test_flowdapt_typed.py``.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
import sqlalchemy as sa

from catalogstore import maintenance
from catalogstore.artifacts import get_artifact, list_artifacts, new_artifact, query_artifacts
from catalogstore.catalog.engine import make_engine
from catalogstore.errors import QueryError
from catalogstore.record import json_float, metadata_from_json, metadata_to_json

# name -> metadata: every JSON type, and strings that look like other types.
DATA: dict[str, dict[str, Any]] = {
    "ints": {"epochs": 10, "layers": [64, 32, 3], "final": True, "note": None},
    "floats": {"epochs": 10.0, "layers": [3.0], "final": False, "lr": 1e-5},
    "texts": {"epochs": "10", "layers": "3", "final": "true", "note": "null"},
    "nested": {"layers": [[3], {"a": 3}], "cfg": {"opt": "adam", "betas": [0.9, 0.999]},
               "tags": ["gpu", "fp16"], "final": None},
    "empty": {"layers": [], "cfg": {}, "tags": "gpu"},
}


@pytest.fixture
def typed(stack: Any) -> Any:
    for name, meta in DATA.items():
        new_artifact(name).update_meta(meta)
    return stack


def names(filter: str) -> set[str]:
    return {a.name for a in query_artifacts(filter)}


def raw_json(stack: Any, name: str) -> bytes:
    fs = stack.filesystem()
    fs.invalidate_cache()
    return bytes(fs.cat_file(f"{stack.root.rstrip('/')}/artifacts/default/{name}/.artifact.json"))


def types_of(meta: dict[str, Any]) -> list[tuple[str, type]]:
    return [(k, type(v)) for k, v in meta.items()]


def test_values_keep_their_type_and_order_everywhere(typed):
    for name, meta in DATA.items():
        artifact = get_artifact(name)
        assert artifact.metadata == meta
        assert types_of(artifact.metadata) == types_of(meta)  # key order too
        assert raw_json(typed, name) == metadata_to_json(meta)
        assert json.loads(raw_json(typed, name)) == meta
    listed = {a.name: a.metadata for a in list_artifacts()}
    assert {n: types_of(m) for n, m in listed.items()} == {n: types_of(m) for n, m in DATA.items()}
    # A key set again keeps its place; one deleted and set again moves to the end.
    artifact = get_artifact("ints")
    artifact["epochs"] = 11
    artifact.del_meta("layers")
    artifact["layers"] = [1]
    assert list(get_artifact("ints").metadata) == ["epochs", "final", "note", "layers"]
    assert raw_json(typed, "ints") == b'{"epochs":11,"final":true,"note":null,"layers":[1]}'


def test_the_metadata_returned_is_a_copy(typed):
    artifact = get_artifact("nested")
    artifact.metadata["cfg"]["opt"] = "sgd"
    artifact.get_meta("tags").append("x")
    assert artifact.metadata == DATA["nested"]
    value = [1, 2]
    artifact["mine"] = value
    value.append(3)
    assert artifact["mine"] == [1, 2]


def test_numbers_compare_as_numbers(typed):
    assert names("meta.epochs = 10") == {"ints", "floats", "texts"}  # "10" spells a number
    assert names("meta.epochs > 9.5") == {"ints", "floats", "texts"}
    assert names("meta.epochs = '10'") == {"texts", "ints"}  # the text form of 10 is "10"
    assert names("meta.lr < 0.001") == {"floats"}
    assert {a.name for a in list_artifacts(where={"epochs": 10})} == {"ints", "floats", "texts"}
    assert {a.name for a in list_artifacts(where={"epochs": "10"})} == {"ints", "texts"}


def test_booleans_compare_as_booleans(typed):
    assert names("meta.final = true") == {"ints"}
    assert names("meta.final = false") == {"floats"}
    assert names("meta.final != true") == {"floats", "texts", "nested"}
    assert names("meta.final IN (true, false)") == {"ints", "floats"}
    assert names("meta.final = 'true'") == {"ints", "texts"}  # text form, as documented
    assert {a.name for a in list_artifacts(where={"final": True})} == {"ints"}
    assert {a.name for a in list_artifacts(where={"final": 1})} == set()


def test_null_is_testable(typed):
    assert names("meta.note = null") == {"ints"}
    assert names("meta.final = null") == {"nested"}
    # Absent and null are both NULL; IS NOT NULL wants a value.
    assert names("meta.note IS NULL") == {"ints", "floats", "nested", "empty"}
    assert names("meta.note IS NOT NULL") == {"texts"}
    assert names("meta.note != null") == {"texts"}
    assert {a.name for a in list_artifacts(where={"note": None})} == {"ints"}


def test_list_membership(typed):
    assert names("meta.layers CONTAINS 3") == {"ints", "floats"}  # 3 and 3.0, not "3"
    assert names("meta.layers CONTAINS '3'") == set()
    assert names("meta.tags CONTAINS 'gpu'") == {"nested"}  # not the string "gpu"
    assert names("meta.tags NOT CONTAINS 'gpu'") == {"empty"}
    assert names("NOT meta.tags CONTAINS 'gpu'") == ALL - {"nested"}
    assert names("meta.layers CONTAINS 3 AND meta.final = false") == {"floats"}
    assert names("meta.cfg CONTAINS 'adam'") == set()  # objects are not lists
    new_artifact("flags").update_meta({"layers": [True, None, 0]})
    assert names("meta.layers CONTAINS true") == {"flags"}
    assert names("meta.layers CONTAINS null") == {"flags"}
    assert names("meta.layers CONTAINS 0") == {"flags"}
    assert names("meta.layers CONTAINS false") == set()


def test_lists_and_objects_compare_whole(typed):
    assert {a.name for a in list_artifacts(where={"layers": [64, 32, 3]})} == {"ints"}
    assert {a.name for a in list_artifacts(where={"cfg": {}})} == {"empty"}
    assert {a.name for a in list_artifacts(where={"layers": [3]})} == set()


ALL = set(DATA)


@pytest.mark.parametrize(("text", "reason"), [
    ("meta.a > true", "compares numbers or text"),
    ("meta.a LIKE null", "quoted pattern"),
    ("name = true", "never true, false or null"),
    ("files CONTAINS 3", "CONTAINS applies to meta.KEY"),
    ("meta.a CONTAINS", "expected a value after CONTAINS"),
])
def test_typed_literals_that_do_not_fit_are_refused(stack, text, reason):
    with pytest.raises(QueryError, match=reason):
        query_artifacts(text)


def test_the_seed_string_examples_keep_working(stack):
    artifact = new_artifact("model")
    artifact.set_meta("model_type", "xgboost")
    artifact["stage"] = "trained"
    assert artifact.get_meta("model_type") == "xgboost"
    assert [a.name for a in list_artifacts(where={"model_type": "xgboost"})] == ["model"]
    assert names("meta.stage = 'trained'") == {"model"}


def test_plain_sql_sees_type_text_and_number(typed):
    engine = make_engine(typed.catalog_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT key, type, value, number FROM artifact_search WHERE name = 'ints' "
            "ORDER BY key")).all()
        strings = conn.execute(sa.text(
            "SELECT name FROM artifact_search WHERE key = 'tags' AND value = 'gpu'")).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [
        ("epochs", "number", "10", 10.0), ("final", "boolean", "true", None),
        ("layers", "array", "[64,32,3]", None), ("note", "null", "null", None)]
    assert [r[0] for r in strings] == ["empty"]


def test_reindex_keeps_every_type_and_the_order(typed):
    fs = typed.filesystem()
    root = typed.root.rstrip("/")
    for folder in ("foreign", "notjson"):
        fs.makedirs(f"{root}/artifacts/default/{folder}", exist_ok=True)
    # Written by another tool: spaces, NaN and Infinity (Python's json), keys unsorted.
    fs.pipe_file(f"{root}/artifacts/default/foreign/data", b"x")
    fs.pipe_file(f"{root}/artifacts/default/foreign/.artifact.json",
                 b'{"z": NaN, "b": [1, -Infinity], "a": {"y": 1, "x": [true]}, "n": 1.0}')
    fs.pipe_file(f"{root}/artifacts/default/notjson/data", b"kept")
    fs.pipe_file(f"{root}/artifacts/default/notjson/.artifact.json", b"{'python': 'repr'}")
    report = maintenance.reindex()
    assert report.added == ["default/foreign", "default/notjson"]
    assert [b.path for b in report.broken] == ["artifacts/default/notjson/.artifact.json"]
    foreign = get_artifact("foreign").metadata
    assert foreign == {"z": None, "b": [1, None], "a": {"y": 1, "x": [True]}, "n": 1.0}
    assert types_of(foreign) == [("z", type(None)), ("b", list), ("a", dict), ("n", float)]
    broken = get_artifact("notjson")
    assert broken.metadata == {} and broken.get_file("data").read() == b"kept"
    for name, meta in DATA.items():  # what catalogstore wrote comes back unchanged
        assert types_of(get_artifact(name).metadata) == types_of(meta)
    assert maintenance.reindex().changes == 0


def test_flowdapt_float_layout():
    """orjson's layout (ryu): shortest digits, scientific below 1e-5 and from 1e16."""
    expected = {1e-05: "0.00001", 1.234e-05: "0.00001234", 1e-07: "1e-7", 1e16: "1e+16",
                1e15: "1000000000000000.0", 100.0: "100.0", -0.0: "-0.0", 0.1: "0.1",
                5e-324: "5e-324", 1.7976931348623157e308: "1.7976931348623157e+308",
                1.2345678901234568e20: "1.2345678901234568e+20", 1e22: "1e+22",
                0.0001: "0.0001", 12345678.9: "12345678.9", math.inf: "null"}
    assert {v: json_float(v) for v in expected} == expected
    assert metadata_to_json({"s": "é\u2028\x7f\x1f\"\\/\t", "n": None}) == \
        '{"s":"é\u2028\x7f\\u001f\\"\\\\/\\t","n":null}'.encode()
    assert metadata_from_json(metadata_to_json(DATA["nested"])) == DATA["nested"]


def test_the_cli_shows_typed_values(typed):
    from typer.testing import CliRunner

    from catalogstore.cli import app

    shown = CliRunner().invoke(app, ["show", "default/ints"])
    assert shown.exit_code == 0, shown.output
    assert "[64,32,3]" in shown.output and "null" in shown.output
    listed = CliRunner().invoke(app, ["ls", "--where", "epochs=10", "--json"])
    assert listed.exit_code == 0, listed.output
    data = json.loads(listed.output)
    rows = data if isinstance(data, list) else data["artifacts"]
    assert {r["name"]: r["metadata"]["epochs"] for r in rows} == {"ints": 10, "texts": "10"}


def test_a_metadata_document_edited_by_hand_is_reported_and_repaired(typed):
    engine = make_engine(typed.catalog_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE artifacts SET metadata_json = 'not json' "
                             "WHERE name = 'ints'"))
        conn.execute(sa.text("UPDATE artifacts SET metadata_json = '{\"epochs\": 10}' "
                             "WHERE name = 'floats'"))
    engine.dispose()
    assert get_artifact("ints").metadata == {}  # read as nothing, never a failure
    assert get_artifact("floats").metadata == {"epochs": 10}
    report = maintenance.verify()
    assert {(d.kind, d.name) for d in report.differences} == {
        ("metadata-document", "ints"), ("metadata-document", "floats")}
    repaired = maintenance.verify(repair=True)
    assert all(d.repaired for d in repaired.differences)
    assert maintenance.verify().ok
    for name in ("ints", "floats"):
        assert get_artifact(name).metadata == DATA[name]
        assert types_of(get_artifact(name).metadata) == types_of(DATA[name])
