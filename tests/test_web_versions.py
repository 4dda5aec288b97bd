"""The web browser's versions and aliases (issues 15 and 17) over plain HTTP: the
versions of an artifact a keyset page at a time, newest first; one version's page
(``NAME:v3``, ``NAME@prod``) with its metadata and files read-only and that version's
bytes in previews and downloads; the changes between two versions; bad versions and
aliases answered 404 or 400 with a message; escaping, the token, and version rows
edited by hand that never lead outside the storage root."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator

import pytest
from markupsafe import escape

pytest.register_assert_rewrite("web_catalog")

from web_catalog import TOKEN, XSS, Served, serve_new  # noqa: E402

pytest_plugins = ["web_catalog"]

STEPS = 60
"""Metadata-only commits after versions 1 and 2: the model has 2 + STEPS versions."""
LAST = 2 + STEPS
API = "/api/artifacts/ml/model"
PAGE = "/artifacts/ml/model"
V1_META = {"accuracy": 0.8, "n": 1, "stage": "draft", XSS: XSS}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``ml/model``: version 1, version 2 changing metadata and files, then STEPS
    metadata-only versions; ``prod`` names 1, ``staging`` 2, 2 is pinned.
    ``ml/single`` has one version; ``ml/tampered`` has rows edited by hand."""
    pytest.importorskip("starlette")
    with serve_new(tmp_path_factory.mktemp("versions"), _fill) as served:
        yield served


def _fill() -> None:
    import catalogstore
    from catalogstore.artifacts import new_artifact

    with catalogstore.transaction():  # version 1
        model = new_artifact("model", "ml")
        model.update_meta(V1_META)
        model.new_file("weights.bin", content=b"w1")
        model.new_file("config.json", content='{"lr": 0.1}')
        model.new_file("notes.txt", content="first notes\n")
    with model.transaction():  # version 2
        model.update_meta({"accuracy": 0.9, "n": 1.0, "tuned": True, XSS: "<b>changed</b>"})
        model.del_meta("stage")
        model.get_file("weights.bin").write(b"w2-longer")
        model.delete_file("config.json")
        model.new_file("extra.txt", content="new\n")
    for step in range(STEPS):
        model["step"] = step
    model.set_alias("prod", 1)
    model.set_alias("staging", 2)
    model.pin(2)
    with catalogstore.transaction():
        new_artifact("single", "ml").new_file("a.txt", content="a")  # one version
        tampered = new_artifact("tampered", "ml")
        tampered.new_file("data.txt", content="old")
    tampered.get_file("data.txt").write("new")  # version 1's bytes kept apart
    _tamper(tampered.record.id)


def _tamper(artifact_id: int) -> None:
    """Version 1 of ``ml/tampered``: its file's checksum a path, and a file row named
    as a path, as someone editing the catalog by hand could leave them."""
    from sqlalchemy import update

    from catalogstore.catalog.models import VERSION_FILES as VF
    from catalogstore.txn.workspace import get_workspace

    with get_workspace().catalog.engine.begin() as conn:
        conn.execute(update(VF).where(VF.c.artifact_id == artifact_id, VF.c.version == 1)
                     .values(checksum="xxh128:../../../../etc/passwd"))
        conn.execute(VF.insert().values(artifact_id=artifact_id, version=1,
                                        name="../../outside.txt", size=1,
                                        checksum="xxh128:" + "0" * 32))


@pytest.fixture(autouse=True)
def _store_configured(request: pytest.FixtureRequest, _clean_configuration: None) -> None:
    """The served catalog stays configured in each test (conftest resets it)."""
    import catalogstore

    store = request.getfixturevalue("store")
    catalogstore.configure(catalog_url=store.catalog_url, storage_url=store.storage_url)


def _html(store: Served, path: str, status: int = 200) -> str:
    code, headers, body = store.get(path)
    assert code == status, body[:500]
    assert headers["content-type"].startswith("text/html")
    return body.decode()


def test_versions_are_listed_newest_first_a_keyset_page_at_a_time(store: Served) -> None:
    seen, after, pages = [], "", 0
    while True:
        page = store.json(f"{API}/versions?limit=25&after={after}")
        seen += page["versions"]
        pages += 1
        if page["next"] is None:
            break
        after = page["next"]
    assert pages == 3 and page["current"] == LAST
    assert [v["version"] for v in seen] == list(range(LAST, 0, -1))
    by_number = {v["version"]: v for v in seen}
    assert by_number[LAST]["aliases"] == ["latest"] and by_number[LAST]["current"]
    assert by_number[1]["aliases"] == ["prod"] and not by_number[1]["current"]
    assert by_number[2]["aliases"] == ["staging"] and by_number[2]["pinned"]
    assert not by_number[1]["pinned"]
    assert (by_number[1]["files"], by_number[1]["size"]) == (3, 2 + 11 + 12)
    assert (by_number[2]["files"], by_number[2]["size"]) == (3, 9 + 12 + 4)
    assert all(v["created_at"] for v in seen)


def test_the_artifact_page_shows_its_newest_versions(store: Served) -> None:
    data = store.json(API)
    assert (data["version"], data["current_version"], data["is_current"]) == (LAST, LAST, True)
    assert data["ref"] == "model" and data["aliases"] == ["latest"]
    listing = data["versions"]
    assert [v["version"] for v in listing["versions"]] == list(range(LAST, LAST - 50, -1))
    assert listing["next"] == str(LAST - 49)
    page = _html(store, PAGE)
    assert 'id="not-current"' not in page
    assert f'<a class="version" href="{PAGE}:v{LAST - 1}">v{LAST - 1}</a>' in page
    assert f'<a class="version" href="{PAGE}">v{LAST}</a>' in page
    assert f'id="older" href="{PAGE}/versions?after={LAST - 49}"' in page
    older = _html(store, f"{PAGE}/versions?after={LAST - 49}")
    assert f'href="{PAGE}:v1">v1</a>' in older and 'id="next"' not in older
    assert '<span class="alias">prod</span>' in older and "<td>pinned</td>" in older


def test_a_version_shows_its_metadata_and_files_read_only(store: Served) -> None:
    data = store.json(f"{API}:v1")
    assert data["metadata"] == V1_META
    assert data["metadata"]["n"] == 1 and isinstance(data["metadata"]["n"], int)
    assert [f["name"] for f in data["files"]] == ["config.json", "notes.txt", "weights.bin"]
    assert (data["version"], data["is_current"], data["current_version"]) == (1, False, LAST)
    assert (data["ref"], data["aliases"], data["size"]) == ("model:v1", ["prod"], 25)
    two = store.json(f"{API}:v2")
    assert two["metadata"]["n"] == 1.0 and two["pinned"]
    assert "stage" not in two["metadata"] and two["metadata"]["tuned"] is True
    page = _html(store, f"{PAGE}:v1")
    assert f"not the current one (v{LAST})" in page
    assert f'<a id="to-current" href="{PAGE}">' in page
    assert '<td class="mono">stage</td><td>draft</td>' in page
    assert f'href="{PAGE}:v1/files/config.json"' in page
    assert f'href="/api{PAGE}:v1/files/weights.bin/content"' in page
    near = _html(store, f"{PAGE}:v{LAST - 1}")  # its row in the versions is marked
    assert f'<tr class="shown"><td><a class="version" href="{PAGE}:v{LAST - 1}">' in near
    current = _html(store, f"{PAGE}:v{LAST}")  # the current version by its number
    assert 'id="not-current"' not in current and f'id="version-name">v{LAST}' in current


def test_an_alias_names_its_version(store: Served) -> None:
    assert store.json(f"{API}@prod")["metadata"] == V1_META
    staging = store.json(f"{API}@staging")
    assert (staging["version"], staging["ref"]) == (2, "model:v2")
    latest = store.json(f"{API}@latest")
    assert latest["is_current"] and latest["version"] == LAST
    page = _html(store, f"{PAGE}@prod")
    assert 'id="version-name">v1<' in page and 'id="not-current"' in page
    # Its links name the version by number: they stay on it when the alias moves.
    assert f'href="{PAGE}:v1/files/notes.txt"' in page and "@prod/files" not in page


def test_previews_and_downloads_read_the_versions_bytes(store: Served) -> None:
    assert store.get(f"{API}:v1/files/weights.bin/content")[2] == b"w1"
    assert store.get(f"{API}:v2/files/weights.bin/content")[2] == b"w2-longer"
    assert store.get(f"{API}@prod/files/weights.bin/content")[2] == b"w1"
    assert store.get(f"{API}/files/weights.bin/content")[2] == b"w2-longer"
    code, headers, _ = store.get(f"{API}:v1/files/weights.bin/content")
    assert code == 200
    assert headers["content-disposition"].startswith('attachment; filename="weights.bin"')
    config = store.json(f"{API}:v1/files/config.json/preview")  # gone from the current
    assert config["kind"] == "json" and '  "lr": 0.1' in config["lines"]
    assert config["ref"] == "model:v1"
    page = _html(store, f"{PAGE}:v1/files/config.json")
    assert f'<a id="back" href="{PAGE}:v1">model:v1</a>' in page
    assert f'href="/api{PAGE}:v1/files/config.json/content"' in page


def test_changes_between_two_versions(store: Served) -> None:
    data = store.json(f"{API}/diff?from=1&to=2")
    assert (data["from"]["version"], data["to"]["version"]) == (1, 2)
    meta = data["metadata"]
    assert meta["added"] == [{"key": "tuned", "value": True}]
    assert meta["removed"] == [{"key": "stage", "value": "draft"}]
    assert meta["changed"] == [{"key": XSS, "from": XSS, "to": "<b>changed</b>"},
                               {"key": "accuracy", "from": 0.8, "to": 0.9},
                               {"key": "n", "from": 1, "to": 1.0}]  # a number's type too
    assert meta["unchanged"] == 0
    files = data["files"]
    assert [f["name"] for f in files["added"]] == ["extra.txt"]
    assert [f["name"] for f in files["removed"]] == ["config.json"]
    [changed] = files["changed"]
    assert changed["name"] == "weights.bin"
    assert (changed["from"]["size"], changed["to"]["size"]) == (2, 9)
    assert changed["from"]["checksum"] != changed["to"]["checksum"]
    assert files["unchanged"] == 1  # notes.txt
    assert store.json(f"{API}/diff?from=prod&to=staging") == data
    assert store.json(f"{API}/diff?from=v1&to=v2") == data
    assert store.json(f"{API}/diff?to=2") == data  # from: the kept version before
    same = store.json(f"{API}/diff")  # the current version against the one before
    assert (same["from"]["version"], same["to"]["version"]) == (LAST - 1, LAST)
    assert same["metadata"]["changed"] == [{"key": "step", "from": STEPS - 2, "to": STEPS - 1}]
    assert same["files"] == {"added": [], "removed": [], "changed": [], "unchanged": 3}
    page = _html(store, f"{PAGE}/diff?from=prod&to=staging")
    assert '<tr class="changed"><td>changed</td><td class="mono">accuracy</td>' \
           '<td>0.8</td><td>0.9</td></tr>' in page
    assert '<tr class="removed"><td>removed</td><td class="mono">config.json</td>' in page
    assert '<input name="from" id="from" value="1"' in page
    assert 'id="files-same"' not in _html(store, f"{PAGE}/diff?from=1&to=2")
    assert 'id="files-same"' in _html(store, f"{PAGE}/diff")


@pytest.mark.parametrize(("path", "status", "says"), [
    (f"{API}:v999", 404, "keeps no version model:v999"),
    (f"{API}@nope", 404, "keeps no version model@nope"),
    (f"{API}@latest/files/config.json/preview", 404, "has no file 'config.json'"),
    (f"{API}:v1/files/extra.txt/content", 404, "has no file 'extra.txt'"),
    (f"{API}:v999/files/notes.txt/preview", 404, "keeps no version"),
    (f"{API}:v0", 400, "invalid version 0"),
    (f"{API}:vx", 400, "NAME:vN or NAME@ALIAS"),
    (f"{API}:v1234567890", 400, "NAME:vN or NAME@ALIAS"),
    (f"{API}:v1:v2", 400, "NAME:vN or NAME@ALIAS"),
    (f"{API}@", 400, "NAME:vN or NAME@ALIAS"),
    (f"{API}@..", 400, "invalid alias"),
    (f"{API}@a%00b", 400, "invalid alias"),
    ("/api/artifacts/ml/..:v1", 400, "invalid artifact name"),
    ("/api/artifacts/ml/nope:v1", 404, "does not exist"),
    (f"{API}/versions?after=x", 400, "a version number expected"),
    (f"{API}/versions?after=-1", 400, "a version number expected"),
    (f"{API}/versions?after=" + "9" * 40, 400, "a version number expected"),
    (f"{API}/versions?limit=0", 400, "limit"),
    (f"{API}:v1/versions", 400, "invalid artifact name"),
    ("/api/artifacts/ml/nope/versions", 404, "does not exist"),
    (f"{API}/diff?from=999", 404, "keeps no version model:v999"),
    (f"{API}/diff?to=nope", 404, "keeps no version model@nope"),
    (f"{API}/diff?from=a..b", 400, "invalid alias"),
    (f"{API}/diff?from=0", 400, "invalid version 0"),
    ("/api/artifacts/ml/single/diff", 404, "keeps no version before v1"),
    ("/api/artifacts/ml/nope/diff", 404, "does not exist"),
])
def test_bad_versions_and_aliases_answer_a_message(store: Served, path: str, status: int,
                                                   says: str) -> None:
    error = store.json(path, status)["error"]
    assert says in error["message"], error
    if path.endswith("/content"):
        return  # a download has no page
    page = _html(store, path.removeprefix("/api").replace("/preview", ""), status)
    assert 'id="error"' in page and "Traceback" not in page
    assert str(escape(says)) in page


def test_version_rows_edited_by_hand_never_lead_outside_the_root(store: Served) -> None:
    data = store.json("/api/artifacts/ml/tampered:v1")
    assert [f["name"] for f in data["files"]] == ["data.txt"]  # the path-like name: not offered
    for suffix in ("/preview", "/content"):
        error = store.json(f"/api/artifacts/ml/tampered:v1/files/data.txt{suffix}", 400)["error"]
        assert error["type"] == "InvalidNameError" and "invalid checksum" in error["message"]
        error = store.json("/api/artifacts/ml/tampered:v1/files/..%5C..%5Coutside.txt"
                           + suffix, 400)["error"]
        assert "invalid file name" in error["message"]
        # A "/" in the file name ends the route: no route, no read.
        code, _, body = store.get("/api/artifacts/ml/tampered:v1/files/..%2F..%2Foutside.txt"
                                  + suffix)
        assert (code, body) == (404, b"Not Found")
    diff = store.json("/api/artifacts/ml/tampered/diff?from=1")
    assert [f["name"] for f in diff["files"]["changed"]] == ["data.txt"]
    assert diff["files"]["removed"] == []
    assert store.get("/api/artifacts/ml/tampered/files/data.txt/content")[2] == b"new"


def test_version_pages_escape_metadata(store: Served) -> None:
    for path, status in ((f"{PAGE}:v1", 200), (f"{PAGE}@prod", 200), (f"{PAGE}:v2", 200),
                         (f"{PAGE}/diff?from=1&to=2", 200),
                         (f"{PAGE}/diff?from=" + urllib.parse.quote(XSS), 400)):
        code, headers, body = store.get(path)
        page = body.decode()
        assert code == status, path
        assert "<script>" not in page and "<b>" not in page, path
        assert "&lt;script&gt;" in page, path
        assert "default-src 'none'" in headers["content-security-policy"]
        assert "script-src" not in headers["content-security-policy"]


@pytest.mark.parametrize("path", [f"{PAGE}:v1", f"{PAGE}@prod", f"{PAGE}/versions",
                                  f"{PAGE}/diff?from=1", f"{API}:v1", f"{API}/versions",
                                  f"{API}/diff", f"{API}:v1/files/notes.txt/preview",
                                  f"{API}:v1/files/weights.bin/content"])
def test_version_routes_need_the_token(store: Served, path: str) -> None:
    code, _, body = store.get(path, token=None)
    assert code == 401 and b"w1" not in body and b"draft" not in body
    assert store.get(path, token="wrong")[0] == 401


def test_every_version_route_on_each_stack(stack) -> None:
    """Versions, a version's page, bytes and the changes on SQLite + local disk and on
    PostgreSQL + S3 (the kept bytes through the storage gateway)."""
    from catalogstore.artifacts import new_artifact
    from catalogstore.web.serve import serving

    run = new_artifact("run", "team-x")
    run.new_file("notes.txt", content="one\n")
    run["accuracy"] = 0.5
    run.get_file("notes.txt").write("two\n")
    run.set_alias("prod", 2)
    with serving(TOKEN) as base:
        served = Served(base, stack.catalog_url, stack.storage_url)
        listing = served.json("/api/artifacts/team-x/run/versions?limit=2")
        assert [v["version"] for v in listing["versions"]] == [4, 3]
        older = served.json(f"/api/artifacts/team-x/run/versions?after={listing['next']}")
        assert [(v["version"], v["aliases"]) for v in older["versions"]] == [
            (2, ["prod"]), (1, [])]
        assert served.json("/api/artifacts/team-x/run@prod")["files"][0]["size"] == 4
        code, _, body = served.get("/api/artifacts/team-x/run@prod/files/notes.txt/content")
        assert (code, body) == (200, b"one\n")
        preview = served.json("/api/artifacts/team-x/run:v3/files/notes.txt/preview")
        assert preview["lines"] == ["one"]
        diff = served.json("/api/artifacts/team-x/run/diff?from=prod")
        assert diff["metadata"]["added"] == [{"key": "accuracy", "value": 0.5}]
        assert [f["name"] for f in diff["files"]["changed"]] == ["notes.txt"]
        assert served.json("/api/artifacts/team-x/run:v9", 404)["error"]["type"] == \
            "VersionNotFoundError"
