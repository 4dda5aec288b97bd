"""Versions and aliases on the command line (issue 15, item 5).

- ``catalogstore versions NS/NAME [--json]``: every kept version with its number,
  creation time, files, bytes, aliases (``latest`` on the current one) and pin;
- ``catalogstore alias NS/NAME@ALIAS [VERSION]`` sets or moves an alias (VERSION as
  ``3`` or ``v3``; default the current one), ``--remove`` removes it;
  ``catalogstore pin`` / ``unpin NS/NAME[:vN|@ALIAS]``;
- ``catalogstore show NS/NAME:v3`` and ``NS/NAME@prod`` show that version as
  ``show NS/NAME`` shows the current one;
- ``catalogstore cp cs://NS/NAME:v3/FILE DEST`` (and ``@prod``, and the whole version
  into a folder) copies a version's files out, checked against their checksums;
- ``catalogstore get NS/KEY --version N`` reads an earlier value of an object key;
- every bad reference, version or alias is one ``error:`` line and exit 1.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_cli import error_line, run

from catalogstore.artifacts import get_artifact, new_artifact
from catalogstore.object_store import put
from catalogstore.storage.checksum import checksum_bytes
from tests.stacks import STACKS


@pytest.fixture
def model(stack: Any) -> Any:
    """team/model: v1 empty, v2 weights w1, v3 + accuracy 0.81 and config.json (prod),
    v4 weights replaced, v5 accuracy 0.9 (current)."""
    artifact = new_artifact("model", "team")
    artifact.new_file("weights.bin", content=b"w1")
    with artifact.transaction():
        artifact["accuracy"] = 0.81
        artifact.new_file("config.json", content='{"lr": 0.1}')
    artifact.get_file("weights.bin").write(b"w2-longer")
    artifact["accuracy"] = 0.9
    artifact.set_alias("prod", 3)
    return artifact


local = pytest.mark.parametrize("stack", [STACKS[0]], indirect=True)
both = pytest.mark.parametrize("stack", STACKS, indirect=True)


@local
def test_versions_lists_every_kept_version(model):
    listed = json.loads(run("versions", "team/model", "--json").stdout)
    assert [v["version"] for v in listed] == [1, 2, 3, 4, 5]
    assert [(v["files"], v["size"]) for v in listed] == [(0, 0), (1, 2), (2, 13), (2, 20),
                                                         (2, 20)]
    assert [v["aliases"] for v in listed] == [[], [], ["prod"], [], ["latest"]]
    assert [v["current"] for v in listed] == [False] * 4 + [True]
    assert not any(v["pinned"] for v in listed)
    assert listed[2]["metadata"] == {"accuracy": 0.81}
    assert all(v["created_at"].endswith("+00:00") for v in listed)
    out = run("versions", "team/model").stdout
    assert "prod" in out and "latest" in out and "20 bytes" in out
    assert all(f"v{n}" in out for n in range(1, 6))
    run("pin", "team/model:v2")
    assert [v["pinned"] for v in json.loads(run("versions", "team/model", "--json").stdout)] \
        == [False, True, False, False, False]


@local
def test_alias_sets_moves_and_removes(model):
    assert run("alias", "team/model@prod", "4").stdout.strip() == "team/model@prod -> v4"
    assert get_artifact("model", "team").aliases["prod"] == 4
    run("alias", "team/model@staging", "v2")
    assert run("alias", "team/model@next").stdout.strip() == "team/model@next -> v5"
    assert get_artifact("model", "team").aliases == {"prod": 4, "staging": 2, "next": 5,
                                                    "latest": 5}
    assert get_artifact("model@staging", "team").version == 2
    out = run("alias", "team/model@staging", "--remove").stdout
    assert out.strip() == "removed team/model@staging"
    assert "staging" not in get_artifact("model", "team").aliases
    line = error_line(run("alias", "team/model@staging", "--remove", code=1).stderr)
    assert "no alias 'staging'" in line


@local
@pytest.mark.parametrize(("args", "message"), [
    (("alias", "team/model@prod", "9"), "keeps no version 9"),
    (("alias", "team/model@prod", "x"), "invalid version 'x'"),
    (("alias", "team/model@prod", "v0"), "invalid version 'v0'"),
    (("alias", "team/model@prod", "3.5"), "invalid version '3.5'"),
    (("alias", "team/model@latest", "3"), "invalid alias 'latest'"),
    (("alias", "team/model@v2", "3"), "invalid alias 'v2'"),
    (("alias", "team/model@bad name", "3"), "invalid alias 'bad name'"),
    (("alias", "team/model", "3"), "give NAMESPACE/NAME@ALIAS"),
    (("alias", "team/model:v3", "3"), "give NAMESPACE/NAME@ALIAS"),
    (("alias", "team/nothing@prod", "1"), "does not exist"),
    (("alias", "../model@prod", "1"), "invalid namespace"),
    (("versions", "team/nothing"), "does not exist"),
    (("versions", "team/model:v3"), "lists every version of NAMESPACE/NAME"),
    (("versions", "team/mo:del"), "invalid artifact reference"),
    (("show", "team/model:v9"), "keeps no version model:v9"),
    (("show", "team/model@staging"), "keeps no version model@staging"),
    (("show", "team/model:v0"), "invalid version 0"),
    (("show", "team/model:3"), "invalid artifact reference"),
    (("show", "team/model@"), "invalid artifact reference"),
    (("show", "team/model@a@b"), "invalid artifact reference"),
    (("show", "team/model@\udcff"), "invalid alias"),
    (("pin", "team/model:v9"), "keeps no version model:v9"),
    (("pin", "team/model@nope"), "keeps no version model@nope"),
    (("unpin", "team/model:v1234567890"), "invalid artifact reference"),
    (("rm", "team/model:v3", "--yes"), "versions never change"),
    (("meta", "set", "team/model:v3", "k=v"), "versions never change"),
    (("cp", "cs://team/model:v9/weights.bin", "out"), "keeps no version model:v9"),
    (("cp", "cs://team/model:v3/nothing", "out"), "has no file 'nothing'"),
    (("cp", "cs://team/model:vx/weights.bin", "out"), "invalid artifact reference"),
    (("cp", "cs://team/mo:del/weights.bin", "out"), "invalid artifact reference"),
])
def test_bad_references_are_one_error_line(model, args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = error_line(run(*args, code=1).stderr)
    assert message in line, line


@local
def test_malformed_cp_references_are_usage_errors(model):
    line = error_line(run("cp", "cs://team/model@x/../weights.bin", "out", code=2).stderr)
    assert "is not cs://NAMESPACE/NAME" in line


@local
def test_nothing_is_copied_into_a_version(model, tmp_path):
    source = tmp_path / "new.bin"
    source.write_bytes(b"new")
    for ref in ("cs://team/model:v3/new.bin", "cs://team/model@prod", "cs://team/model:v3"):
        line = error_line(run("cp", str(source), ref, code=1).stderr)
        assert "is a version: versions never change" in line, line
    assert model.version == 5 and not get_artifact("model", "team").has_file("new.bin")


@local
def test_pin_and_unpin(model):
    assert run("pin", "team/model:v2").stdout.strip() == "pinned team/model:v2"
    assert run("pin", "team/model@prod").stdout.strip() == "pinned team/model:v3"
    assert run("pin", "team/model").stdout.strip() == "pinned team/model:v5"
    assert [v.pinned for v in model.versions()] == [False, True, True, False, True]
    assert run("unpin", "team/model@prod").stdout.strip() == "unpinned team/model:v3"
    run("unpin", "team/model:v2")
    assert [v.pinned for v in model.versions()] == [False, False, False, False, True]


@local
def test_show_a_version_as_the_current_one_is_shown(model):
    shown = json.loads(run("show", "team/model:v3", "--json").stdout)
    assert shown["version"] == 3 and shown["aliases"] == ["prod"]
    assert shown["current"] is False and shown["pinned"] is False
    assert shown["metadata"] == {"accuracy": 0.81}
    assert [(f["name"], f["size"], f["checksum"]) for f in shown["files"]] == [
        ("config.json", 11, checksum_bytes(b'{"lr": 0.1}')),
        ("weights.bin", 2, checksum_bytes(b"w1"))]
    assert shown["created_at"] <= shown["updated_at"]  # updated: when v3 was committed
    assert json.loads(run("show", "team/model@prod", "--json").stdout) == shown
    current = json.loads(run("show", "team/model", "--json").stdout)
    assert current["version"] == 5 and current["aliases"] == ["latest"] and current["current"]
    assert current["metadata"] == {"accuracy": 0.9}
    assert [(f["name"], f["size"]) for f in current["files"]] == [("config.json", 11),
                                                               ("weights.bin", 9)]
    assert set(current) == set(shown)
    out = run("show", "team/model:v3").stdout
    assert "0.81" in out and "w2" not in out and "prod" in out
    assert checksum_bytes(b"w1") in out
    out = run("show", "team/model").stdout
    assert "5 (current)" in out and "latest" in out


@both
def test_cp_copies_a_version_out(model, tmp_path):
    out = tmp_path / "w.bin"
    run("cp", "cs://team/model:v3/weights.bin", str(out))
    assert out.read_bytes() == b"w1"  # replaced since: read from the kept bytes
    run("cp", "cs://team/model@prod/config.json", str(tmp_path))
    assert (tmp_path / "config.json").read_text() == '{"lr": 0.1}'
    run("cp", "cs://team/model/weights.bin", str(out))
    assert out.read_bytes() == b"w2-longer"
    result = run("cp", "cs://team/model:v2", str(tmp_path / "v2"))
    assert "copied 1 file(s)" in result.stdout
    assert sorted(p.name for p in (tmp_path / "v2").iterdir()) == ["weights.bin"]
    assert (tmp_path / "v2" / "weights.bin").read_bytes() == b"w1"


@local
def test_get_an_earlier_value(stack, tmp_path):
    put("threshold", 0.5, namespace="team", artifact_only=True)
    put("threshold", 0.7, namespace="team", artifact_only=True)
    assert run("get", "team/threshold", "--version", "1").stdout == "0.5\n"
    assert run("get", "team/threshold").stdout == "0.7\n"
    out = tmp_path / "v1.json"
    run("get", "team/threshold", "--version", "1", "-o", str(out))
    assert out.read_text() == "0.5\n"
    run("get", "team/threshold", "--version", "0", code=2)
    assert "keeps no version threshold:v9" in error_line(
        run("get", "team/threshold", "--version", "9", code=1).stderr)
