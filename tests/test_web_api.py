"""The web browser's JSON API and pages over plain HTTP (issue 17): every ``/api``
route, its status codes and shapes, hostile input answered with 400s, escaping."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest

pytest.register_assert_rewrite("web_catalog")

from web_catalog import BIG_TEXT, RUNS, TOKEN, XSS, Served  # noqa: E402

from catalogstore.web.preview import TEXT_BYTES  # noqa: E402

pytest_plugins = ["web_catalog"]  # the served catalog

ART = "/api/artifacts/team-a/run-07"


def test_namespaces_count_and_sum_from_the_catalog(served: Served) -> None:
    data = served.json("/api/namespaces")
    by_ns = {row["namespace"]: row for row in data["namespaces"]}
    assert list(by_ns) == ["team-a", "team-b"]
    assert by_ns["team-a"]["artifacts"] == RUNS and by_ns["team-b"]["artifacts"] == 1
    assert by_ns["team-a"]["files"] == RUNS + 7
    assert by_ns["team-a"]["size"] > BIG_TEXT
    assert data["total"]["artifacts"] == RUNS + 1


def test_search_filters_orders_and_pages_with_the_cursor(served: Served) -> None:
    first = served.json("/api/search?" + urllib.parse.urlencode(
        {"q": "meta.accuracy > 0.05", "ns": "team-*", "order": "-meta.accuracy",
         "limit": "10", "col": "accuracy"}))
    assert [a["name"] for a in first["artifacts"]][:3] == ["run-07", "run-30", "run-29"]
    assert first["columns"] == ["accuracy"] and "model" in first["keys_on_page"]
    assert first["artifacts"][0]["files"] == 8 and first["next"]
    seen = [a["name"] for a in first["artifacts"]]
    after = first["next"]
    while after:
        page = served.json("/api/search?" + urllib.parse.urlencode(
            {"q": "meta.accuracy > 0.05", "ns": "team-*", "order": "-meta.accuracy",
             "limit": "10", "after": after}))
        seen += [a["name"] for a in page["artifacts"]]
        after = page["next"]
    assert len(seen) == len(set(seen)) == RUNS - 5  # run-01 .. run-05 (0.01 .. 0.05) left out


def test_search_defaults_to_every_namespace_by_name(served: Served) -> None:
    data = served.json("/api/search")
    assert data["limit"] == 50 and data["next"] is None
    assert [(a["namespace"], a["name"]) for a in data["artifacts"]][-1] == ("team-b", "evil")


@pytest.mark.parametrize(("query", "says"), [
    ({"q": "meta.accuracy >"}, "expected a value"),
    ({"q": "nonsense = 1"}, "unknown field"),
    ({"q": "name = 'unterminated"}, "unterminated"),
    ({"order": "meta."}, ""),
    ({"after": "not-a-cursor"}, "cursor"),
    ({"limit": "0"}, "limit"),
    ({"limit": "-1"}, "limit"),
    ({"limit": "9" * 40}, "limit"),
    ({"ns": "../etc"}, ""),
    ({"col": "bad\x01key"}, "metadata key"),
    ({"q": "(" * 5000}, ""),
])
def test_bad_search_input_is_a_400_with_the_message(served: Served, query: dict[str, str],
                                                    says: str) -> None:
    path = "/api/search?" + urllib.parse.urlencode(query)
    error = served.json(path, 400)["error"]
    assert says in error["message"]
    code, _, page = served.get(path.replace("/api/search", "/search"))
    assert code == 400 and b"Traceback" not in page and b'id="error"' in page


def test_a_filter_error_carries_its_caret(served: Served) -> None:
    error = served.json("/api/search?q=" + urllib.parse.quote("meta.a = 1 AND AND"), 400)["error"]
    assert error["type"] == "QueryError" and error["position"] == 15
    assert error["caret"].splitlines()[-1].index("^") == 4 + 15
    _, _, page = served.get("/search?q=" + urllib.parse.quote("meta.a = 1 AND AND"))
    assert b'<pre id="caret">' in page and b"^" in page


def test_artifact_has_typed_metadata_and_files_with_checksums(served: Served) -> None:
    data = served.json(ART)
    assert (data["namespace"], data["name"]) == ("team-a", "run-07")
    assert str(data["metadata"]["accuracy"]) == "0.93"
    files = {f["name"]: f for f in data["files"]}
    assert set(files) == {"notes.txt", "params.json", "metrics.parquet", "metrics.arrow",
                          "weights.npy", "objects.npy", "plot.png", "big.log"}
    assert files["big.log"]["size"] == BIG_TEXT
    assert all(f["checksum"].startswith("xxh128:") for f in files.values())


@pytest.mark.parametrize(("path", "status"), [
    ("/api/artifacts/team-a/nope", 404),
    ("/api/artifacts/nope/run-07", 404),
    ("/api/artifacts/team-a/bad..name", 400),
    ("/api/artifacts/team-a/%2E%2E", 400),
    ("/api/artifacts/team-a/run-07/files/missing.txt/preview", 404),
    ("/api/artifacts/team-a/run-07/files/.artifact.json/preview", 400),
    ("/api/artifacts/team-a/run-07/files/.artifact.json/content", 400),
    ("/api/artifacts/team-a/run-07/files/%2E%2E/content", 400),
    ("/api/artifacts/team-a/run-07/files/notes.txt/content?inline=1", 400),
    ("/api/health?verify=full", 400),
])
def test_bad_or_missing_names_answer_json_errors(served: Served, path: str, status: int) -> None:
    error = served.json(path, status)["error"]
    assert error["message"] and "Traceback" not in error["message"]


def test_previews_are_bounded(served: Served) -> None:
    text = served.json(ART + "/files/big.log/preview")
    assert text["kind"] == "text" and text["truncated"]
    assert text["bytes_read"] <= TEXT_BYTES + 16 and len(text["lines"]) <= 200
    params = served.json(ART + "/files/params.json/preview")
    assert params["kind"] == "json" and '  "lr": 0.1,' in params["lines"]
    parquet = served.json(ART + "/files/metrics.parquet/preview")
    assert parquet["kind"] == "table" and parquet["rows_total"] == 100
    assert [c["name"] for c in parquet["schema"]] == ["step", "loss", "tag"]
    assert parquet["rows"][1] == ["1", "0.5", "t1"] and len(parquet["rows"]) == 20
    arrow = served.json(ART + "/files/metrics.arrow/preview")
    assert arrow["kind"] == "table" and arrow["rows"][0] == ["0", "1.0", "t0"]


def test_json_previews_are_parsed_within_the_storage_bounds(local_stack) -> None:
    """A ``.json`` file is parsed as ``.artifact.json`` is (issue 12): one nested too
    deep is shown as text, not a 500 from a RecursionError."""
    from catalogstore.artifacts import new_artifact
    from catalogstore.web.preview import preview

    artifact = new_artifact("web")
    artifact.new_file("deep.json", content=b"[" * 3000 + b"]" * 3000)
    artifact.new_file("ok.json", content=b'{"a": [1, NaN]}')
    deep = preview("default", "web", "deep.json")
    assert deep["kind"] == "json" and len(deep["lines"]) == 1  # as written, not indented
    assert deep["lines"][0].startswith("[" * 100)
    assert preview("default", "web", "ok.json")["lines"] == [
        "{", '  "a": [', "    1,", "    null", "  ]", "}"]


def test_npy_preview_reads_the_header_and_never_unpickles(served: Served) -> None:
    npy = served.json(ART + "/files/weights.npy/preview")
    assert (npy["dtype"], npy["shape"]) == ("<f8", [3, 4])
    assert npy["values"][:3] == ["0.0", "1.0", "2.0"]
    objects = served.json(ART + "/files/objects.npy/preview")
    assert objects["kind"] == "npy" and objects["values"] is None
    assert "never unpickled" in objects["note"]


def test_download_streams_with_type_and_disposition(served: Served) -> None:
    code, headers, body = served.get(ART + "/files/big.log/content")
    assert code == 200 and len(body) == BIG_TEXT
    assert headers["content-disposition"].startswith('attachment; filename="big.log"')
    code, headers, body = served.get(ART + "/files/metrics.parquet/content")
    assert headers["content-type"] == "application/octet-stream" or \
        "parquet" in headers["content-type"]
    code, headers, body = served.get(ART + "/files/plot.png/content?inline=1")
    assert code == 200 and headers["content-type"] == "image/png"
    assert headers["content-disposition"].startswith("inline") and body[:4] == b"\x89PNG"
    image = served.json(ART + "/files/plot.png/preview")
    assert image["kind"] == "image" and image["inline"]


def test_health_shows_revision_storage_and_fast_verify(served: Served) -> None:
    data = served.json("/api/health")
    assert data["schema"]["up_to_date"] and data["schema"]["current"]
    assert data["verify"] is None
    assert data["storage_used"]["total"]["artifacts"] == RUNS + 1
    checked = served.json("/api/health?verify=fast")["verify"]
    assert checked["ok"] and checked["artifacts"] == RUNS + 1 and checked["differences"] == 0


def test_script_in_names_and_metadata_is_escaped(served: Served) -> None:
    for path in ("/artifacts/team-b/evil", "/search?ns=team-b&col=" + urllib.parse.quote(XSS),
                 "/search?q=" + urllib.parse.quote(f"meta.a = '{XSS}"),
                 "/artifacts/team-b/evil/files/" + urllib.parse.quote("a b+c=d@e,f.txt")):
        _, headers, page = served.get(path)
        assert b"<script>" not in page, path
        assert b"&lt;script&gt;" in page, path
        assert "script-src" not in headers["content-security-policy"]  # none at all
        assert "default-src 'none'" in headers["content-security-policy"]
    assert served.json("/api/artifacts/team-b/evil")["metadata"][XSS] == XSS


def test_the_token_is_required(served: Served) -> None:
    code, _, body = served.get("/api/namespaces", token=None)
    assert code == 401 and json.loads(body)["error"]["type"] == "Unauthorized"
    assert served.get("/", token="wrong")[0] == 401
    code, headers, _ = served.get(f"/?token={TOKEN}", token=None)
    assert code == 200 and "catalogstore_token" in headers["set-cookie"]
    assert "httponly" in headers["set-cookie"].lower()


def test_every_answer_says_its_server_time(served: Served) -> None:
    _, headers, _ = served.get("/api/namespaces")
    assert headers["server-timing"].startswith("app;dur=")


def _run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "catalogstore", *args], capture_output=True,
                          text=True, env=env, timeout=60, check=False)


def test_ui_refuses_a_remote_host_without_the_flag(tmp_path) -> None:
    import os

    env = {**os.environ, "CATALOGSTORE_CATALOG_URL": f"sqlite:///{tmp_path / 'c.db'}",
           "CATALOGSTORE_STORAGE_URL": str(tmp_path / "s")}
    out = _run_cli("ui", "--host", "0.0.0.0", env=env)
    assert out.returncode == 2 and "--allow-remote" in out.stderr
    assert "Traceback" not in out.stderr


def test_ui_command_serves_with_its_printed_token(tmp_path) -> None:
    import os
    import urllib.request

    from catalogstore.web.serve import free_port

    port = free_port()
    env = {**os.environ, "CATALOGSTORE_CATALOG_URL": f"sqlite:///{tmp_path / 'c.db'}",
           "CATALOGSTORE_STORAGE_URL": str(tmp_path / "s")}
    proc = subprocess.Popen([sys.executable, "-m", "catalogstore", "ui", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.split("open ", 1)[1].strip()
        assert url.startswith(f"http://127.0.0.1:{port}/?token=")
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url.replace("/?", "/api/namespaces?"),
                                            timeout=5) as answer:
                    assert json.loads(answer.read()) == {
                        "namespaces": [], "total": {"artifacts": 0, "files": 0, "size": 0}}
                    break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(10)


TYPED = {"s": "text <b>", "n": 0.5, "i": 3, "t": True, "z": None, "l": [1, "a"],
         "d": {"k": [XSS]}}


def test_any_json_metadata_value_is_shown_generically() -> None:
    from catalogstore.web.api import metadata_rows, shown

    assert [shown(TYPED[k]) for k in ("s", "n", "i", "t", "z", "l")] == [
        "text <b>", "0.5", "3", "true", "null", '[1,"a"]']
    assert {k: (t, v) for k, t, v in metadata_rows(TYPED)}["d"] == (
        "object", '{"k":["<script>window.__xss = 1</script>"]}')


def test_pages_render_typed_metadata_escaped() -> None:
    from catalogstore.web.app import _environment

    data = {"namespace": "ns", "name": "a", "ref": "a", "created_at": "", "updated_at": "",
            "size": 0, "files": [], "metadata": TYPED, "version": 1, "is_current": True,
            "aliases": ["latest"], "versions": {"versions": [], "next": None}}
    page = _environment().get_template("artifact.html").render(data=data)
    assert "text &lt;b&gt;" in page and "&lt;script&gt;" in page and "<script>" not in page
    assert ">true<" in page and ">null<" in page and "boolean" in page
    row = {"namespace": "ns", "name": "a", "files": 0, "size": 0, "created_at": "",
           "updated_at": "", "metadata": TYPED}
    search = {"filter": "", "namespace": "", "order": "", "limit": 50, "after": "",
              "columns": list(TYPED), "keys_on_page": list(TYPED), "artifacts": [row],
              "next": None}
    form = {"q": "", "ns": "", "order": "", "limit": "", "col": list(TYPED)}
    page = _environment().get_template("search.html").render(data=search, form=form)
    assert '<td>[1,&#34;a&#34;]</td>' in page and "<script>" not in page


def test_every_route_on_each_stack(stack) -> None:
    """The same routes on SQLite + local disk and PostgreSQL + S3 (aggregates, keyset
    pages, previews and downloads through the storage gateway)."""
    import catalogstore
    from catalogstore.artifacts import new_artifact
    from catalogstore.web.serve import serving

    with catalogstore.transaction():
        for i in range(3):
            run = new_artifact(f"run-{i}", "team-x")
            run.update_meta({"accuracy": i / 10, "note": XSS})
            run.new_file("notes.txt", content=f"run {i}\n")
    with serving(TOKEN) as base:
        served = Served(base, stack.catalog_url, stack.storage_url)
        assert served.json("/api/namespaces")["namespaces"] == [
            {"namespace": "team-x", "artifacts": 3, "files": 3, "size": 18}]
        page = served.json("/api/search?q=meta.accuracy+>%3D+0.1&order=-meta.accuracy&limit=1")
        assert [a["name"] for a in page["artifacts"]] == ["run-2"]
        page = served.json("/api/search?" + urllib.parse.urlencode(
            {"q": "meta.accuracy >= 0.1", "order": "-meta.accuracy", "limit": "1",
             "after": page["next"]}))
        assert [a["name"] for a in page["artifacts"]] == ["run-1"]
        assert served.json("/api/artifacts/team-x/run-1")["files"][0]["size"] == 6
        preview = served.json("/api/artifacts/team-x/run-1/files/notes.txt/preview")
        assert preview["lines"] == ["run 1"]
        code, _, body = served.get("/api/artifacts/team-x/run-1/files/notes.txt/content")
        assert (code, body) == (200, b"run 1\n")
        assert served.json("/api/search?q=meta.a+%3D", 400)["error"]["type"] == "QueryError"
        health = served.json("/api/health?verify=fast")
        assert health["schema"]["up_to_date"] and health["verify"]["ok"]
        _, _, html = served.get("/artifacts/team-x/run-1")
        assert b"&lt;script&gt;" in html and b"<script>" not in html


def test_a_typed_column_key_is_added_too(served: Served) -> None:
    data = served.json("/api/search?ns=team-a&limit=2&add=&add=epochs&col=model")
    assert data["columns"] == ["model", "epochs"]


def test_remote_host_with_the_flag_warns(tmp_path) -> None:
    import os

    from catalogstore.web.serve import free_port

    env = {**os.environ, "CATALOGSTORE_CATALOG_URL": f"sqlite:///{tmp_path / 'c.db'}",
           "CATALOGSTORE_STORAGE_URL": str(tmp_path / "s")}
    # 127.0.0.2 is loopback to the kernel, not to the command: it stands for a remote host.
    proc = subprocess.Popen([sys.executable, "-m", "catalogstore", "ui", "--host", "127.0.0.2",
                             "--allow-remote", "--port", str(free_port())],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stderr is not None
        assert proc.stderr.readline().startswith("warning: serving on 127.0.0.2")
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_file_gone_from_storage_is_an_error_answer(local_stack) -> None:
    from catalogstore.artifacts import new_artifact
    from catalogstore.web.serve import serving

    new_artifact("a", "ns").new_file("gone.txt", content="x")
    Path(local_stack.storage_url, "artifacts", "ns", "a", "gone.txt").unlink()
    with serving(TOKEN) as base:
        served = Served(base, local_stack.catalog_url, local_stack.storage_url)
        for path in ("/preview", "/content"):
            code, _, body = served.get("/api/artifacts/ns/a/files/gone.txt" + path)
            assert code == 500 and b"gone.txt" in body and b"Traceback" not in body
            assert json.loads(body)["error"]["type"] == "StorageError"
        code, _, page = served.get("/artifacts/ns/a/files/gone.txt")
        assert code == 500 and b"gone.txt" in page and b"Traceback" not in page


def test_ui_without_the_extra_says_how_to_install_it(tmp_path) -> None:
    code = ("import sys; sys.modules['uvicorn'] = None; sys.argv = ['catalogstore', 'ui']; "
            "from catalogstore.cli import main; main()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, timeout=60, check=False)
    assert out.returncode == 1
    assert out.stderr.strip() == ("error: catalogstore ui needs uvicorn: "
                                  "pip install 'catalogstore[ui]'")
