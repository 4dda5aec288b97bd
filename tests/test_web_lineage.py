"""The web browser's lineage (issues 16 and 17) over plain HTTP: an artifact version's
graph of runs and versions as JSON and as a page drawing it in inline SVG, each run's
page, bounds on what an answer holds, bad input answered 400 or 404, hostile run names
and parameters shown as text, and the browser's own reads recorded as no run's inputs.

The graph: ``prepare`` makes ``ml/raw`` v1, ``train`` reads it and makes ``ml/model``
v1, ``refresh`` makes raw v2 (pinned) and ``append`` v3 (so retention removes v1 only),
and a run with a hostile name, nested in ``pipeline``, reads the model and makes
``ml/report``.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from markupsafe import escape

pytest.register_assert_rewrite("web_catalog")

from web_catalog import TOKEN, XSS, Served, serve_new  # noqa: E402

pytest_plugins = ["web_catalog"]

HOSTILE = XSS + "\"'&"
"""A run name: markup, both quotes and an ampersand."""
API = "/api/artifacts/ml/model"
PAGE = "/artifacts/ml/model"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """This module's graph served (in place of web_catalog's catalog, whose fixture
    keeps it configured in each test)."""
    pytest.importorskip("starlette")
    with serve_new(tmp_path_factory.mktemp("lineage"), fill_lineage) as served:
        yield served


def fill_lineage() -> None:
    """The graph of the module's docstring, in the configured catalog (raw v1 removed by
    gc's retention, v2 pinned)."""
    import catalogstore
    from catalogstore.artifacts import get_artifact, new_artifact, set_retention
    from catalogstore.maintenance import gc

    with catalogstore.run("prepare", params={"rows": 3}), catalogstore.transaction():
        new_artifact("raw", "ml").new_file("rows.csv", content="1,2,3\n")
    with catalogstore.run("train", params={"lr": 0.05, XSS: XSS}), \
            catalogstore.transaction():
        rows = get_artifact("raw", "ml").get_file("rows.csv").read()
        new_artifact("model", "ml").new_file("weights", content=rows[::-1])
    with catalogstore.run("refresh"):
        get_artifact("raw", "ml").get_file("rows.csv").write("4,5,6\n")
    with catalogstore.run("append"):
        get_artifact("raw", "ml").get_file("rows.csv").write("4,5,6\n7,8,9\n")
    get_artifact("raw", "ml").pin(2)
    with catalogstore.run("pipeline"), catalogstore.run(HOSTILE, metadata={"note": XSS}), \
            catalogstore.transaction():
        weights = get_artifact("model", "ml").get_file("weights").read()
        new_artifact("report", "ml").new_file("report.txt", content=weights)
    set_retention("ml", keep_last=1, keep_days=0)
    gc()


def _runs(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in data["runs"]}


def _labels(data: dict[str, Any]) -> dict[str, str]:
    return {f"{n['namespace']}/{n['name']}:v{n['version']}": n["state"] for n in data["nodes"]}


def test_the_lineage_of_a_version_both_ways(served: Served) -> None:
    data = served.json(API + "/lineage")
    runs = _runs(data)
    assert set(runs) == {"prepare", "train", HOSTILE}
    assert all(r["status"] == "succeeded" and r["ended_at"] for r in runs.values())
    assert runs["train"]["params"] == {"lr": 0.05, XSS: XSS}
    assert _labels(data) == {"ml/model:v1": "kept", "ml/raw:v1": "removed",
                             "ml/report:v1": "kept"}
    edges = {(r["name"], e["direction"], n["name"]) for e in data["edges"]
             for r in data["runs"] if r["id"] == e["run"]
             for n in data["nodes"] if n["node"] == e["node"]}
    assert edges == {("prepare", "output", "raw"), ("train", "input", "raw"),
                     ("train", "output", "model"), (HOSTILE, "input", "model"),
                     (HOSTILE, "output", "report")}
    assert len(data["edges"]) == 5
    assert (data["ref"], data["version"], data["depth"]) == ("model", 1, 3)
    assert data["cut"] == {"runs": False, "nodes": False}
    assert data["root"] == next(n["node"] for n in data["nodes"] if n["name"] == "model")


def test_one_way_a_depth_and_a_version_by_number(served: Served) -> None:
    assert set(_runs(served.json(API + "/lineage?downstream=0"))) == {"prepare", "train"}
    assert set(_runs(served.json(API + "/lineage?upstream=false"))) == {HOSTILE}
    assert set(_runs(served.json(API + "/lineage?depth=1"))) == {"train", HOSTILE}
    raw = served.json("/api/artifacts/ml/raw:v2/lineage")
    assert set(_runs(raw)) == {"refresh"} and raw["ref"] == "raw:v2"
    assert _labels(raw) == {"ml/raw:v2": "kept"}


def test_a_graph_larger_than_the_bounds_is_cut_nearest_first(
        served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    from catalogstore.web import api

    monkeypatch.setattr(api, "MAX_RUNS", 2)
    data = served.json(API + "/lineage")
    assert set(_runs(data)) == {"train", HOSTILE}  # prepare is two runs away
    assert data["cut"] == {"runs": True, "nodes": False}
    assert "ml/raw:v1" in _labels(data)  # train's input, still shown
    monkeypatch.setattr(api, "MAX_NODES", 2)
    data = served.json(API + "/lineage")
    assert data["cut"] == {"runs": True, "nodes": True} and len(data["nodes"]) == 2
    assert "ml/model:v1" in _labels(data)  # the root is always kept
    assert {e["node"] for e in data["edges"]} <= {n["node"] for n in data["nodes"]}
    page = served.get(PAGE + "/lineage")[2].decode()
    assert 'id="cut"' in page


@pytest.mark.parametrize(("query", "says"), [
    ("depth=0", "invalid depth '0'"), ("depth=51", "invalid depth '51'"),
    ("depth=x", "invalid depth 'x'"), ("upstream=maybe", "invalid upstream 'maybe'"),
    ("downstream=2", "invalid downstream '2'")])
def test_bad_lineage_parameters_answer_400(served: Served, query: str, says: str) -> None:
    error = served.json(f"{API}/lineage?{query}", 400)["error"]
    assert error["type"] == "QueryError" and error["message"].startswith(says)
    code, _, page = served.get(f"{PAGE}/lineage?{query}")
    assert code == 400 and says.encode() in page.replace(b"&#39;", b"'")


@pytest.mark.parametrize(("path", "kind"), [
    ("/api/artifacts/ml/nothing/lineage", "ArtifactNotFoundError"),
    ("/api/artifacts/ml/raw:v1/lineage", "VersionNotFoundError"),  # removed by retention
    ("/api/artifacts/ml/model@nope/lineage", "VersionNotFoundError"),
    ("/api/runs/" + "0" * 32, "RunNotFoundError")])
def test_missing_things_answer_404(served: Served, path: str, kind: str) -> None:
    assert served.json(path, 404)["error"]["type"] == kind


@pytest.mark.parametrize("run_id", ["x" * 33, "a.b", "%3Cscript%3E"])
def test_a_malformed_run_id_answers_400(served: Served, run_id: str) -> None:
    error = served.json(f"/api/runs/{run_id}", 400)["error"]
    assert error["type"] == "InvalidNameError" and "invalid run id" in error["message"]


def test_a_run_with_its_parent_inputs_and_outputs(served: Served) -> None:
    runs = _runs(served.json(API + "/lineage"))
    nested = served.json(f"/api/runs/{runs[HOSTILE]['id']}")
    assert nested["name"] == HOSTILE and nested["metadata"] == {"note": XSS}
    assert nested["parent"]["name"] == "pipeline" and nested["parent"]["status"] == "succeeded"
    assert [(n["name"], n["version"], n["state"], n["producer"])
            for n in nested["inputs"]["nodes"]] == [("model", 1, "kept", runs["train"]["id"])]
    assert [n["name"] for n in nested["outputs"]["nodes"]] == ["report"]
    assert (nested["inputs"]["total"], nested["outputs"]["total"]) == (1, 1)
    parent = served.json(f"/api/runs/{nested['parent']['id']}")
    assert parent["name"] == "pipeline" and parent["parent"] is None
    assert parent["inputs"]["total"] == parent["outputs"]["total"] == 0
    train = served.json(f"/api/runs/{runs['train']['id']}")
    assert [(n["name"], n["state"]) for n in train["inputs"]["nodes"]] == [("raw", "removed")]
    assert train["pid"] > 0 and train["host"] and train["task_id"] is None


def test_a_run_lists_its_children_with_links(served: Served) -> None:
    """A run's answer lists the runs nested in it (``children``, by start time, and
    ``children_total``); its page shows them as a table linking each, names escaped."""
    runs = _runs(served.json(API + "/lineage"))
    nested = served.json(f"/api/runs/{runs[HOSTILE]['id']}")
    pipeline = served.json(f"/api/runs/{nested['parent']['id']}")
    assert pipeline["children_total"] == 1
    assert pipeline["children"] == [{key: nested[key] for key in (
        "id", "name", "status", "started_at", "ended_at")}]
    assert (nested["children"], nested["children_total"]) == ([], 0)
    page = served.get(f"/runs/{pipeline['id']}")[2].decode()
    assert f'<a class="child" href="/runs/{nested["id"]}">{escape(HOSTILE)}</a>' in page
    assert "<script>" not in page and 'id="children"' in page
    assert 'id="children"' not in served.get(f"/runs/{runs['train']['id']}")[2].decode()


def test_a_run_with_more_children_than_a_page_lists_the_first(
        stack, monkeypatch: pytest.MonkeyPatch) -> None:
    import catalogstore
    from catalogstore.web import api
    from catalogstore.web.serve import serving

    monkeypatch.setattr(api, "RUN_CHILDREN", 2)
    with catalogstore.run("fan-out") as outer:
        parts = []
        for i in range(3):
            with catalogstore.run(f"part-{i}") as part:
                parts.append(part.id)
    with serving(TOKEN) as base:
        served = Served(base, stack.catalog_url, stack.storage_url)
        data = served.json(f"/api/runs/{outer.id}")
        assert [c["id"] for c in data["children"]] == parts[:2]
        assert data["children_total"] == 3
        assert [c["name"] for c in data["children"]] == ["part-0", "part-1"]
        assert served.json(f"/api/runs/{parts[0]}")["parent"]["name"] == "fan-out"
        page = served.get(f"/runs/{outer.id}")[2].decode()
        assert page.count('<a class="child"') == 2 and "the first 2 of 3" in page


def test_the_lineage_page_draws_the_graph_with_links(served: Served) -> None:
    code, headers, body = served.get(PAGE + "/lineage")
    page = body.decode()
    assert code == 200 and headers["content-type"].startswith("text/html")
    assert "script-src" not in headers["content-security-policy"]
    summary = re.search(r'id="lineage-summary">([^<]*)<', page)
    assert summary and summary[1].startswith("v1: 3 run(s), 3 version(s), 5 edge(s)")
    svg = page[page.index("<svg"):page.index("</svg>")]
    assert svg.count('<line class="edge"') == 5
    runs = _runs(served.json(API + "/lineage"))
    for r in runs.values():
        assert f'href="/runs/{r["id"]}" data-status="succeeded"' in svg
    assert 'href="/artifacts/ml/model:v1"' in svg and 'href="/artifacts/ml/report:v1"' in svg
    # The removed version: drawn dashed (its class), labelled, linked to its artifact.
    removed = re.search(r'<a class="lineage-version" href="([^"]*)" data-node="[^"]*" '
                        r'data-state="removed">.*?</a>', svg, re.S)
    assert removed and removed[1] == "/artifacts/ml/raw"
    assert 'class="version removed"' in removed[0] and "v1 · removed" in removed[0]
    assert 'class="version kept root"' in svg
    # Left to right: raw, then train, then the model, then the nested run, the report.
    xs = {name: int(x) for x, name in re.findall(
        r'<text x="(\d+)" y="\d+" class="label">([^<]*)</text>', svg)}
    nested = str(escape(HOSTILE[:23])) + "…"  # a long name cut, whole in the tooltip
    assert xs["ml/raw"] < xs["train"] < xs["ml/model"] < xs[nested] < xs["ml/report"]
    assert f"<title>run {escape(HOSTILE)} [succeeded]" in svg


def test_hostile_names_and_params_are_text(served: Served) -> None:
    runs = _runs(served.json(API + "/lineage"))
    for path in (PAGE + "/lineage", f"/runs/{runs[HOSTILE]['id']}",
                 f"/runs/{runs['train']['id']}"):
        code, _, body = served.get(path)
        assert code == 200 and b"<script>" not in body and b"&lt;script&gt;" in body, path
    _, _, body = served.get(f"/runs/{runs[HOSTILE]['id']}")
    assert b"&lt;script&gt;window.__xss = 1&lt;/script&gt;&#34;&#39;&amp;" in body


def test_a_run_page_shows_and_links_what_it_read_and_made(served: Served) -> None:
    runs = _runs(served.json(API + "/lineage"))
    _, _, body = served.get(f"/runs/{runs['train']['id']}")
    page = body.decode()
    assert re.search(r'id="run-name">train<', page) and 'id="run-status">succeeded<' in page
    assert '<td class="mono">lr</td><td>0.05</td><td class="type">number</td>' in page
    assert 'href="/artifacts/ml/raw">ml/raw:v1</a></td><td class="state removed">' in page
    assert 'href="/artifacts/ml/model:v1">ml/model:v1</a>' in page
    assert f'href="/runs/{runs["prepare"]["id"]}">run {runs["prepare"]["id"][:8]}' in page
    _, _, body = served.get(f"/runs/{runs[HOSTILE]['id']}")
    parent = served.json(f"/api/runs/{runs[HOSTILE]['id']}")["parent"]
    assert f'<a id="parent" href="/runs/{parent["id"]}">pipeline</a>' in body.decode()


def test_artifact_and_version_pages_link_their_lineage(served: Served) -> None:
    for page, target in ((PAGE, PAGE), ("/artifacts/ml/raw:v2", "/artifacts/ml/raw:v2")):
        body = served.get(page)[2].decode()
        assert f'id="lineage-link" href="{target}/lineage"' in body


def test_looking_at_a_version_in_the_browser_is_no_run_s_input(served: Served) -> None:
    """Previews and downloads read the version in the server's process: were they
    recorded, the browser would show itself reading everything it was asked about."""
    for path in ("/api/artifacts/ml/report/files/report.txt/preview",
                 "/api/artifacts/ml/report/files/report.txt/content",
                 "/api/artifacts/ml/report:v1/files/report.txt/content"):
        assert served.get(path)[0] == 200
    assert set(_runs(served.json("/api/artifacts/ml/report/lineage"))) == {HOSTILE, "train",
                                                                          "prepare"}


@pytest.mark.parametrize("path", [f"{PAGE}/lineage", f"{API}/lineage", "/runs/" + "a" * 32,
                                  "/api/runs/" + "a" * 32])
def test_lineage_routes_need_the_token(served: Served, path: str) -> None:
    code, _, body = served.get(path, token=None)
    assert code == 401 and b"train" not in body


def test_lineage_routes_on_each_stack(stack) -> None:
    """The lineage and run answers on SQLite + local disk and PostgreSQL + S3."""
    from catalogstore.web.serve import serving

    fill_lineage()
    with serving(TOKEN) as base:
        served = Served(base, stack.catalog_url, stack.storage_url)
        data = served.json(API + "/lineage?" + urllib.parse.urlencode({"depth": 5}))
        assert set(_runs(data)) == {"prepare", "train", HOSTILE}
        assert _labels(data)["ml/raw:v1"] == "removed" and len(data["edges"]) == 5
        run = served.json(f"/api/runs/{_runs(data)[HOSTILE]['id']}")
        assert run["parent"]["name"] == "pipeline"
        code, _, page = served.get(PAGE + "/lineage")
        assert code == 200 and page.count(b'<line class="edge"') == 5
        assert served.get("/api/artifacts/ml/report/files/report.txt/content")[0] == 200
        assert set(_runs(served.json("/api/artifacts/ml/report/lineage?upstream=0"))) == set()
