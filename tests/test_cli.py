"""The ``catalogstore`` command line, in process and as the installed console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import catalogstore
from catalogstore.artifacts import artifact_exists, get_artifact, new_artifact
from catalogstore.catalog.migrate import head_revision
from catalogstore.cli import app
from catalogstore.storage.checksum import checksum_bytes

CLI = [sys.executable, "-m", "catalogstore"]  # wherever the virtual environment lives
runner = CliRunner()


def run(*args: str, code: int = 0):
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    return result


def error_line(stderr: str) -> str:
    """The only line of ``stderr``, which must be an ``error:`` line."""
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def script(*args: str, cwd: Path, env: dict[str, str] | None = None,
           code: int = 0) -> subprocess.CompletedProcess[str]:
    """Run the command line in a new process with only ``env`` as its CATALOGSTORE_* variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CATALOGSTORE_")}
    result = subprocess.run([*CLI, *args], cwd=cwd, env={**clean, **(env or {})},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == code, (result.stdout, result.stderr)
    return result


@pytest.fixture
def filled(local_stack):
    """Three artifacts in two namespaces, with files and metadata."""
    a = new_artifact("alpha")
    a.new_file("weights.bin", content=b"\x00" * 1500)
    a.new_file("readme", content="hello")
    a.update_meta({"model": "xgb", "note": "[b]x[/b]"})
    new_artifact("beta")["model"] = "lgbm"
    with catalogstore.namespace("other"):
        new_artifact("gamma")
    return local_stack


# -- in process -------------------------------------------------------------------


def test_ls_with_nothing(local_stack):
    assert "no artifacts in namespace 'default'" in run("ls").stdout
    assert json.loads(run("ls", "--json").stdout) == []
    assert json.loads(run("ls", "--all-namespaces", "--json").stdout) == []
    assert "matching model=x" in run("ls", "--where", "model=x").stdout


def test_ls_lists_files_sizes_and_metadata(filled):
    rows = json.loads(run("ls", "--json").stdout)
    assert [(r["namespace"], r["name"], r["files"], r["size"]) for r in rows] == [
        ("default", "alpha", 2, 1505), ("default", "beta", 0, 0)]
    assert rows[0]["metadata"] == {"model": "xgb", "note": "[b]x[/b]"}
    assert rows[0]["updated_at"].endswith("+00:00")
    only = json.loads(run("ls", "-w", "model=xgb", "--json").stdout)
    assert [r["name"] for r in only] == ["alpha"]
    assert json.loads(run("ls", "--where", "model=xgb", "--where", "note=x", "--json")
                      .stdout) == []
    everywhere = json.loads(run("ls", "-A", "--json").stdout)
    assert [(r["namespace"], r["name"]) for r in everywhere] == [
        ("default", "alpha"), ("default", "beta"), ("other", "gamma")]
    assert [r["name"] for r in json.loads(run("ls", "other", "--json").stdout)] == ["gamma"]
    table = run("ls").stdout
    for text in ("alpha", "beta", "1.5 kB", "model=xgb", "[b]x[/b]"):
        assert text in table
    assert "gamma" not in table


def test_show(filled):
    info = json.loads(run("show", "default/alpha", "--json").stdout)
    assert (info["namespace"], info["name"]) == ("default", "alpha")
    assert info["uri"].endswith("/artifacts/default/alpha")
    assert info["metadata"] == {"model": "xgb", "note": "[b]x[/b]"}
    assert [(f["name"], f["size"], f["checksum"]) for f in info["files"]] == [
        ("readme", 5, checksum_bytes(b"hello")),
        ("weights.bin", 1500, checksum_bytes(b"\x00" * 1500))]
    text = run("show", "alpha").stdout  # a bare name is in the current namespace
    for part in ("alpha", "weights.bin", "readme", "xxh128:", "model", "xgb"):
        assert part in text
    empty = run("show", "other/gamma").stdout
    assert "metadata: none" in empty and "files: none" in empty


def test_errors_are_one_line(filled):
    assert "does not exist" in error_line(run("show", "default/missing", code=1).stderr)
    assert "invalid artifact name" in error_line(run("show", "default/..", code=1).stderr)
    error_line(run("ls", "--where", "novalue", code=2).stderr)
    error_line(run("ls", "--bogus", code=2).stderr)
    error_line(run("ls", "other", "--all-namespaces", code=2).stderr)
    error_line(run("cp", "a", "b", code=2).stderr)
    error_line(run("cp", "cs://a/b", "cs://c/d", code=2).stderr)
    error_line(run("cp", "a", "cs://only-one", code=2).stderr)
    error_line(run("cp", "a", "cs://ns/bad..name", code=1).stderr)


def test_cp_round_trip(local_stack, tmp_path):
    data = os.urandom(3_000_000)
    (tmp_path / "model.bin").write_bytes(data)
    out = run("cp", str(tmp_path / "model.bin"), "cs://team/model").stdout
    assert "copied 1 file(s)" in out and "cs://team/model" in out
    assert get_artifact("model", "team").get_file("model.bin").read() == data
    run("cp", str(tmp_path / "model.bin"), "cs://team/model/renamed.bin")
    assert [f.name for f in get_artifact("model", "team")] == ["model.bin", "renamed.bin"]

    run("cp", "cs://team/model/renamed.bin", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == data
    run("cp", "cs://team/model", str(tmp_path / "all"))
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == ["model.bin", "renamed.bin"]

    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    (folder / "b.txt").write_text("b")
    assert "copied 2 file(s)" in run("cp", str(folder), "cs://team/set").stdout
    assert [f.name for f in get_artifact("set", "team")] == ["a.txt", "b.txt"]
    (folder / "sub").mkdir()
    line = error_line(run("cp", str(folder), "cs://team/other", code=1).stderr)
    assert "sub-folder 'sub'" in line
    assert not artifact_exists("other", "team"), "a refused upload creates no artifact"
    assert "has no file 'zzz'" in error_line(run("cp", "cs://team/set/zzz", "x", code=1).stderr)


def test_db_commands(local_stack):
    head = head_revision()
    current = run("db", "current", code=1).stdout  # behind: exit 1 (issue 12)
    assert "database: no schema" in current and "behind" in current
    assert f"upgraded from an empty database to revision {head}" in run("db", "upgrade").stdout
    current = run("db", "current").stdout
    assert f"database: {head}" in current and "up to date" in current
    assert f"already at revision {head}" in run("db", "upgrade").stdout
    assert "upgrade" in run("db").stdout  # help for the group
    # A revision this code does not know (a newer catalogstore migrated it): not "behind".
    from sqlalchemy import create_engine, text

    engine = create_engine(local_stack.catalog_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'ffffffffffff'"))
    engine.dispose()
    newer = run("db", "current", code=1).stdout
    assert "newer than this code: upgrade catalogstore" in newer and "behind" not in newer


def test_version_and_help(local_stack):
    assert run("--version").stdout.strip() == f"catalogstore {catalogstore.__version__}"
    assert "cs://NAMESPACE/NAME/FILE" in run("cp", "--help").stdout
    assert "demo" in run().stdout


@pytest.mark.slow
def test_passwords_are_never_shown(monkeypatch):
    monkeypatch.setenv("CATALOGSTORE_CATALOG_URL",
                       "postgresql+psycopg://someone:s3cret-pw@127.0.0.1:1/nothing")
    for args in (["db", "current"], ["db", "upgrade"], ["ls"]):
        result = run(*args, code=1)
        line = error_line(result.stderr)
        assert "s3cret-pw" not in result.stdout + result.stderr
        assert "someone:***@127.0.0.1" in line


# -- the installed console script ---------------------------------------------------


@pytest.mark.slow
def test_demo_in_an_empty_directory(tmp_path):
    first = script("demo", cwd=tmp_path)
    for stage in ("prepare_dataframe", "use_dataframe", "clear_memory"):
        assert f"stage {stage}: pid" in first.stdout
    assert "where 'my_dataframe' was after each stage" in first.stdout
    assert "Hello, World!" in first.stdout
    assert "my_new_artifact" in first.stdout
    assert (tmp_path / ".catalogstore" / "catalog.db").is_file()
    again = script("demo", cwd=tmp_path)  # runs again on what the first run left
    assert "removing demo/my_new_artifact" in again.stdout
    rows = json.loads(script("ls", "--all-namespaces", "--json", cwd=tmp_path).stdout)
    runs = [r for r in rows if r["name"].startswith("run-")]
    assert [(r["namespace"], r["name"], r["metadata"]) for r in rows if r not in runs] == [
        ("demo", "my_new_artifact", {"created_by": "my_username",
                                     "creation_date": "2023-05-26"})]
    # One run record per run, with each stage's process, timing and sizes.
    assert len(runs) == 2 and all(r["metadata"]["executor"] == "local" for r in runs)
    meta = runs[0]["metadata"]
    pids = {meta[f"stage.{s}.pid"] for s in ("prepare_dataframe", "use_dataframe",
                                              "clear_memory")}
    assert len(pids) == 3  # every stage ran in a process of its own
    assert int(meta["stage.prepare_dataframe.memory_bytes"]) > 0
    assert int(meta["stage.prepare_dataframe.artifact_bytes"]) > 0
    assert meta["stage.clear_memory.artifact_bytes"] == 0  # typed metadata: the int the demo set


@pytest.mark.slow
def test_console_script_on_each_stack(stack, tmp_path):
    env = stack.environ()
    data = os.urandom(1_000_000)
    (tmp_path / "data.bin").write_bytes(data)
    script("cp", str(tmp_path / "data.bin"), "cs://team/model", cwd=tmp_path, env=env)
    rows = json.loads(script("ls", "team", "--json", cwd=tmp_path, env=env).stdout)
    assert [(r["name"], r["files"], r["size"]) for r in rows] == [("model", 1, len(data))]
    info = json.loads(script("show", "team/model", "--json", cwd=tmp_path, env=env).stdout)
    assert info["files"][0]["checksum"] == checksum_bytes(data)
    script("cp", "cs://team/model", str(tmp_path / "out"), cwd=tmp_path, env=env)
    assert (tmp_path / "out" / "data.bin").read_bytes() == data
    failed = script("show", "team/missing", cwd=tmp_path, env=env, code=1)
    assert failed.stdout == ""
    assert "artifact 'missing' does not exist" in error_line(failed.stderr)


@pytest.mark.slow
def test_db_upgrade_of_an_empty_postgres_schema(pg_url, tmp_path):
    env = {"CATALOGSTORE_CATALOG_URL": pg_url}
    head = head_revision()
    behind = script("db", "current", cwd=tmp_path, env=env, code=1)  # exit 1 (issue 12)
    assert "database: no schema" in behind.stdout
    refused = script("ls", cwd=tmp_path, env=env, code=1)
    assert "catalogstore db upgrade" in error_line(refused.stderr)
    upgraded = script("db", "upgrade", cwd=tmp_path, env=env).stdout
    assert f"upgraded from an empty database to revision {head}" in upgraded
    assert json.loads(script("ls", "--json", cwd=tmp_path, env=env).stdout) == []


# -- rm, meta, get/put, ls paging, flags (issue 17 point 3) ---------------------------


def test_rm_an_artifact_its_files_and_an_object(filled):
    line = error_line(run("rm", "default/alpha", code=2).stderr)  # no terminal, no --yes
    assert "refused without --yes" in line
    assert artifact_exists("alpha", "default")
    assert "has no file 'zzz'" in error_line(
        run("rm", "alpha", "--file", "zzz", "--yes", code=1).stderr)
    assert "deleted readme from default/alpha" in run(
        "rm", "alpha", "--file", "readme", "-y").stdout
    assert [f.name for f in get_artifact("alpha")] == ["weights.bin"]
    assert "deleted artifact default/alpha" in run("rm", "default/alpha", "--yes").stdout
    assert not artifact_exists("alpha", "default")
    assert "does not exist" in error_line(run("rm", "default/alpha", "--yes", code=1).stderr)
    assert "invalid artifact name" in error_line(run("rm", "default/..", "-y", code=1).stderr)

    # An object: deleted by the object store, its record with it (get no longer finds it).
    from catalogstore import object_store
    object_store.put("model", {"a": 1}, artifact_only=True)
    assert "files go only with the whole key" in error_line(
        run("rm", "model", "--file", "x", "-y", code=2).stderr)
    assert "deleted object default/model" in run("rm", "model", "--yes").stdout
    assert not artifact_exists("model", "default")
    assert object_store.get("model", default=None) is None
    object_store.put("model", b"again", artifact_only=True)  # the key is usable again
    assert object_store.get("model") == b"again"


def test_rm_asks_on_a_terminal(filled, monkeypatch):
    # CliRunner's stdin is no terminal: the question is what a terminal would see.
    monkeypatch.setattr("catalogstore.cli.artifacts.stdin_is_terminal", lambda: True)
    result = runner.invoke(app, ["rm", "beta"], input="n\n")
    assert result.exit_code == 1 and "delete artifact default/beta" in result.stdout
    assert error_line(result.stderr) == "error: aborted"
    assert artifact_exists("beta", "default")
    result = runner.invoke(app, ["rm", "beta"], input="y\n")
    assert result.exit_code == 0, result.stderr
    assert not artifact_exists("beta", "default")


def test_meta_set_and_unset(filled):
    out = run("meta", "set", "default/beta", "epochs=10", "note=a=b", "empty=").stdout
    assert "default/beta: set epochs=10" in out
    meta = get_artifact("beta").metadata
    assert (meta["epochs"], meta["note"], meta["empty"]) == ("10", "a=b", "")
    run("meta", "set", "--json", "beta", "epochs=10", "acc=0.5", "ok=true", "tags=[1,\"x\"]",
        'name="xgb"', "gone=null")
    meta = get_artifact("beta").metadata
    assert (meta["epochs"], meta["acc"], meta["ok"], meta["tags"], meta["name"],
            meta["gone"]) == (10, 0.5, True, [1, "x"], "xgb", None)
    assert "not JSON" in error_line(run("meta", "set", "--json", "beta", "x=xgb", code=2).stderr)
    assert "is not KEY=VALUE" in error_line(run("meta", "set", "beta", "novalue", code=2).stderr)
    assert "does not exist" in error_line(run("meta", "set", "nope", "a=1", code=1).stderr)
    error_line(run("meta", "set", "beta", code=2).stderr)

    # unset: all or nothing
    assert "has no metadata key 'nokey'" in error_line(
        run("meta", "unset", "beta", "acc", "nokey", code=1).stderr)
    assert "acc" in get_artifact("beta").metadata
    assert "removed acc, ok" in run("meta", "unset", "default/beta", "acc", "ok").stdout
    assert not {"acc", "ok"} & set(get_artifact("beta").metadata)

    from catalogstore import object_store
    object_store.put("obj", 1, artifact_only=True)
    assert "object store's value" in error_line(
        run("meta", "set", "obj", "value_type=x", code=1).stderr)
    assert object_store.get("obj") == 1


def test_get_and_put(local_stack, tmp_path):
    from catalogstore import object_store
    data = os.urandom(100_000)
    (tmp_path / "in.bin").write_bytes(data)
    assert f"stored {len(data)} bytes as team/blob" in run(
        "put", "team/blob", str(tmp_path / "in.bin"), "--artifact-only").stdout
    assert object_store.get("blob", namespace="team") == data
    assert run("get", "team/blob").stdout_bytes == data
    run("get", "team/blob", "-o", str(tmp_path / "out.bin"))
    assert (tmp_path / "out.bin").read_bytes() == data
    result = runner.invoke(app, ["put", "team/stdin", "-"], input=b"from stdin")
    assert result.exit_code == 0, result.stderr
    assert object_store.get("stdin", namespace="team") == b"from stdin"

    object_store.put("text", "h\u00e9llo", namespace="team", artifact_only=True)
    assert run("get", "team/text").stdout_bytes == "h\u00e9llo".encode()
    object_store.put("conf", {"lr": 0.1, "layers": [1, 2]}, namespace="team",
                     artifact_only=True)
    assert json.loads(run("get", "team/conf").stdout) == {"lr": 0.1, "layers": [1, 2]}
    object_store.put("odd", {1, 2}, namespace="team", artifact_only=True)
    assert "holds a builtins.set" in error_line(run("get", "team/odd", code=1).stderr)
    assert "no object 'missing'" in error_line(run("get", "team/missing", code=1).stderr)
    error_line(run("put", "team/x", str(tmp_path / "none.bin"), code=1).stderr)
    error_line(run("put", "team/bad..key", str(tmp_path / "in.bin"), code=1).stderr)
    new_artifact("user", "team")
    refused = error_line(run("put", "team/user", str(tmp_path / "in.bin"), code=1).stderr)
    assert "team/user is a user artifact" in refused and "overwrite" not in refused


def test_ls_limit_says_more_exist(local_stack):
    for i in range(5):
        new_artifact(f"a{i}")
    first = run("ls", "--limit", "2").stdout
    assert "a0" in first and "a1" in first and "a2" not in first
    more = first.strip().splitlines()[-1]
    assert more.startswith("more exist: add --after ")
    cursor = more.rsplit(" ", 1)[1]
    second = run("ls", "--limit", "2", "--after", cursor).stdout
    assert "a2" in second and "a3" in second and "a1" not in second
    last = run("ls", "--limit", "4", "--after", cursor).stdout
    assert "a4" in last and "more exist" not in last
    result = run("ls", "--limit", "2", "--json")
    assert [r["name"] for r in json.loads(result.stdout)] == ["a0", "a1"]
    assert result.stderr.startswith("more exist: add --after ")
    assert "more exist" not in run("ls", "--limit", "5").stdout
    error_line(run("ls", "--after", "garbage", code=1).stderr)


def _commands(command, path=()):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def test_boolean_options_are_flags():
    import typer.main

    root = typer.main.get_command(app)
    checked = 0
    for path, command in _commands(root):
        for param in command.params:
            if param.type_descriptor.annotation is bool:
                assert param.is_flag, (path, param.name)
                checked += 1
        help_text = run(*path, "--help").stdout
        assert "<bool>" not in help_text and "BOOLEAN" not in help_text, path
    assert checked >= 10


@pytest.mark.slow
def test_new_commands_as_a_script(stack, tmp_path):
    env = stack.environ()
    (tmp_path / "v.bin").write_bytes(b"\x00value")
    script("cp", str(tmp_path / "v.bin"), "cs://team/model", cwd=tmp_path, env=env)
    script("cp", str(tmp_path / "v.bin"), "cs://team/model2", cwd=tmp_path, env=env)
    script("meta", "set", "--json", "team/model", "epochs=3", cwd=tmp_path, env=env)
    script("meta", "unset", "team/model", "epochs", cwd=tmp_path, env=env)
    script("meta", "set", "--json", "team/model", "acc=0.5", cwd=tmp_path, env=env)
    rows = json.loads(script("ls", "team", "--json", cwd=tmp_path, env=env).stdout)
    assert rows[0]["metadata"] == {"acc": 0.5}
    paged = script("ls", "team", "--limit", "1", cwd=tmp_path, env=env).stdout
    assert "model" in paged and "model2" not in paged
    cursor = paged.strip().splitlines()[-1].removeprefix("more exist: add --after ")
    rest = json.loads(script("ls", "team", "--limit", "1", "--after", cursor, "--json",
                             cwd=tmp_path, env=env).stdout)
    assert [r["name"] for r in rest] == ["model2"]
    refused = script("rm", "team/model", cwd=tmp_path, env=env, code=2)  # stdin not a tty
    assert "refused without --yes" in error_line(refused.stderr)
    script("rm", "team/model", "--yes", cwd=tmp_path, env=env)
    assert [r["name"] for r in json.loads(
        script("ls", "team", "--json", cwd=tmp_path, env=env).stdout)] == ["model2"]
    script("put", "team/key", str(tmp_path / "v.bin"), "--artifact-only", cwd=tmp_path,
           env=env)
    got = subprocess.run([*CLI, "get", "team/key"], cwd=tmp_path, capture_output=True,
                         env={**os.environ, **env}, timeout=120)
    assert got.returncode == 0 and got.stdout == b"\x00value", got.stderr
    script("rm", "team/key", "-y", cwd=tmp_path, env=env)
    missing = script("get", "team/key", cwd=tmp_path, env=env, code=1)
    assert "Traceback" not in missing.stderr
    error_line(missing.stderr)
    bad = script("meta", "set", "team/model2", "--json", "x=nope", cwd=tmp_path, env=env, code=2)
    error_line(bad.stderr)
