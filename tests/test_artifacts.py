"""The artifact contract, over the whole matrix of stacks: SQLite and PostgreSQL, each
with local files and with S3."""

from __future__ import annotations

import json

import pytest
from stacks import ALL_STACKS

import catalogstore
from catalogstore.artifacts import (
    Artifact,
    ArtifactFile,
    artifact_exists,
    get_artifact,
    list_artifacts,
    new_artifact,
)
from catalogstore.demo.stages import metadata_stage, read_artifact_stage, save_artifact_stage
from catalogstore.errors import (
    AlreadyExistsError,
    ArtifactExistsError,
    ArtifactFileNotFoundError,
    ArtifactNotFoundError,
    CatalogStoreError,
    InvalidMetadataError,
    MetadataKeyError,
)
from catalogstore.storage.checksum import checksum_bytes

pytestmark = pytest.mark.parametrize("stack", ALL_STACKS, indirect=True)


def storage_json(stack, artifact: Artifact) -> dict:
    fs = stack.filesystem()
    fs.invalidate_cache()
    return json.loads(fs.cat_file(f"{artifact.path}/.artifact.json"))


def storage_names(stack, artifact: Artifact) -> set[str]:
    """The user's files in the artifact's folder (``.artifact.json`` aside)."""
    fs = stack.filesystem()
    fs.invalidate_cache()
    return {p.rsplit("/", 1)[-1] for p in fs.ls(artifact.path, detail=False)} - {
        ".artifact.json"}


# -- the seed's examples, with only the import prefix changed -------------------
# (catalogstore.demo.stages holds them verbatim; the demo command runs them too)


def test_seed_artifact_stages(stack, capsys):
    save_artifact_stage()
    read_artifact_stage()
    assert capsys.readouterr().out == "Hello, World!\nHello, World!\n"
    assert not artifact_exists("my_artifact")
    assert list_artifacts() == []


def test_seed_metadata_example(stack):
    artifact = metadata_stage()
    expected = {"created_by": "my_username", "creation_date": "2023-05-26"}
    assert artifact.metadata == expected
    assert get_artifact("my_new_artifact").metadata == expected
    assert storage_json(stack, artifact) == expected
    artifact.del_meta("created_by")
    assert artifact.get_meta("created_by") is None
    assert artifact.get_meta("created_by", "fallback") == "fallback"


# -- files ----------------------------------------------------------------------


def test_read_gives_back_what_was_written(stack):
    artifact = new_artifact("kinds")
    text = artifact.new_file("text", content="héllo\nwörld\r\n")
    data = artifact.new_file("data", content=b"\x00\xffbytes")
    empty = artifact.new_file("empty")
    assert text.read() == "héllo\nwörld\r\n"
    assert data.read() == b"\x00\xffbytes"
    assert empty.read() == b""
    again = get_artifact("kinds")
    assert again.get_file("text").read() == "héllo\nwörld\r\n"
    assert again.get_file("data").read() == b"\x00\xffbytes"
    text.write(b"now bytes")
    assert text.read() == b"now bytes"


def test_size_and_checksum_recorded(stack):

    artifact = new_artifact("sums")
    f = artifact.new_file("f", content=b"abc" * 1000)
    assert f.size == 3000
    assert f.checksum == checksum_bytes(b"abc" * 1000)


def test_files_listing_and_errors(stack):
    artifact = new_artifact("files")
    assert artifact.is_empty
    artifact.new_file("b", content=b"2")
    artifact.new_file("a", content=b"1")
    assert [f.name for f in artifact.list_files()] == ["a", "b"]
    assert all(isinstance(f, ArtifactFile) for f in artifact)
    assert "a" in artifact and "zzz" not in artifact
    assert artifact.has_file("a") and not artifact.has_file("zzz")
    with pytest.raises(ArtifactFileNotFoundError):
        artifact.get_file("zzz")
    with pytest.raises(FileNotFoundError):
        artifact.get_file("zzz")
    assert artifact.get_file("zzz", create=True).read() == b""
    with pytest.raises(AlreadyExistsError):
        artifact.new_file("a", content=b"x", exist_ok=False)
    assert artifact.new_file("a").read() == b"1"  # kept when no content is given
    assert artifact.new_file("a", content=b"9").read() == b"9"
    assert storage_names(stack, artifact) == {"a", "b", "zzz"}
    artifact.get_file("b").remove()
    assert storage_names(stack, artifact) == {"a", "zzz"}
    with pytest.raises(ArtifactFileNotFoundError):
        artifact.delete_file("b")


def test_open_streams_text_and_binary(stack):
    artifact = new_artifact("streams")
    f = artifact.get_file("log", create=True)
    with f.open("w") as out:
        out.write("line 1\n")
        out.write("line 2\n")
    assert f.read() == "line 1\nline 2\n"
    with f.open("r") as inp:
        assert inp.readlines() == ["line 1\n", "line 2\n"]
    with f.open("wb") as out:
        for i in range(10):
            out.write(bytes([i]) * 1000)
    with f.open("rb") as inp:
        assert inp.read(1000) == b"\x00" * 1000
    assert f.size == 10_000
    with pytest.raises(ValueError, match="mode"):
        f.open("a")


def test_failed_stream_write_keeps_old_content(stack):
    artifact = new_artifact("keep")
    f = artifact.new_file("f", content=b"old")
    with pytest.raises(RuntimeError), f.open("wb") as out:
        out.write(b"new partial")
        raise RuntimeError("boom")
    assert f.read() == b"old"
    with pytest.raises(RuntimeError), f.open("w") as out:
        out.write("new partial")
        raise RuntimeError("boom")
    assert f.read() == b"old"
    assert stack.filesystem().cat_file(f.path) == b"old"


# -- metadata ---------------------------------------------------------------------


def test_metadata_rules(stack):
    artifact = new_artifact("meta")
    artifact["n"] = 3
    artifact["x"] = 0.5
    artifact["flag"] = True
    assert artifact.metadata == {"n": 3, "x": 0.5, "flag": True}
    for bad in (b"bytes", {1: "a"}, [object()], 2**64, "nul\x00", {"a": {"b": {3}}}):
        with pytest.raises(InvalidMetadataError):
            artifact["bad"] = bad
    with pytest.raises(TypeError):
        artifact[1] = "x"  # type: ignore[index]
    with pytest.raises(MetadataKeyError):
        artifact["missing"]
    with pytest.raises(KeyError):
        del artifact["missing"]
    assert storage_json(stack, artifact) == {"n": 3, "x": 0.5, "flag": True}


def test_metadata_special_characters(stack):
    artifact = new_artifact("special")
    values = {"quote'\"": "a'b\"c", "sql; DROP TABLE artifacts; --": "%_\\", "ünï": "çödé ✓"}
    artifact.update_meta(values)
    assert get_artifact("special").metadata == values
    assert storage_json(stack, artifact) == values
    assert [a.name for a in list_artifacts(where={"sql; DROP TABLE artifacts; --": "%_\\"})] \
        == ["special"]


def test_list_where_and_namespaces(stack):
    for i in range(5):
        a = new_artifact(f"m{i}")
        a.update_meta({"model": "xgb" if i % 2 else "lgbm", "i": i})
    with catalogstore.namespace("other"):
        new_artifact("m0")["model"] = "xgb"
        assert [a.name for a in list_artifacts()] == ["m0"]
    assert [a.name for a in list_artifacts(where={"model": "xgb"})] == ["m1", "m3"]
    assert [a.name for a in list_artifacts(where={"model": "xgb", "i": 3})] == ["m3"]
    assert [a.namespace for a in list_artifacts("other")] == ["other"]
    everything = list_artifacts(all_namespaces=True)
    assert {(a.namespace, a.name) for a in everything} == {
        *{("default", f"m{i}") for i in range(5)}, ("other", "m0")}
    assert list_artifacts()[1].metadata == {"model": "xgb", "i": 1}


# -- artifacts ------------------------------------------------------------------------


def test_artifact_lifecycle_errors(stack):
    new_artifact("one")
    with pytest.raises(ArtifactExistsError):
        new_artifact("one")
    with pytest.raises(FileExistsError):
        new_artifact("one")
    with pytest.raises(ArtifactNotFoundError):
        get_artifact("two")
    with pytest.raises(FileNotFoundError):
        get_artifact("two")
    created = get_artifact("two", create=True)
    assert created.name == "two" and artifact_exists("two")
    assert get_artifact("two", create=True) == created
    created.delete()
    assert not artifact_exists("two")
    with pytest.raises(ArtifactNotFoundError):
        created.set_meta("k", "v")
    assert isinstance(ArtifactNotFoundError("x"), CatalogStoreError)


def test_new_artifact_visible_in_storage(stack):
    artifact = new_artifact("visible")
    fs = stack.filesystem()
    fs.invalidate_cache()
    assert fs.exists(artifact.path)
    assert storage_names(stack, artifact) == set()
    assert storage_json(stack, artifact) == {}
    assert artifact.uri.endswith("/artifacts/default/visible")
    artifact["k"] = "v"
    assert storage_json(stack, artifact) == {"k": "v"}


def test_clear(stack):
    artifact = new_artifact("clear")
    artifact.new_file("f", content=b"x")
    artifact["k"] = "v"
    artifact.clear()
    assert artifact.is_empty and artifact.metadata == {}
    assert storage_names(stack, artifact) == set()
    assert artifact_exists("clear")


# -- transactions ----------------------------------------------------------------------


def test_transaction_commits_together(stack):
    artifact = new_artifact("tx")
    artifact.new_file("old", content=b"old")
    with artifact.transaction():
        artifact.new_file("new", content="new")
        artifact.get_file("old").remove()
        artifact["k"] = "v"
        # read-your-writes inside the block, nothing outside yet
        assert artifact.get_file("new").read() == "new"
        assert artifact.metadata == {"k": "v"}
        assert [f.name for f in artifact.list_files()] == ["new"]
        assert get_artifact("tx").metadata == {}
        assert [f.name for f in get_artifact("tx").list_files()] == ["old"]
        assert storage_names(stack, artifact) == {"old"}
    assert [f.name for f in get_artifact("tx").list_files()] == ["new"]
    assert get_artifact("tx").metadata == {"k": "v"}
    assert storage_names(stack, artifact) == {"new"}
    assert storage_json(stack, artifact) == {"k": "v"}


def test_transaction_that_raises_leaves_nothing(stack):
    artifact = new_artifact("rollback")
    artifact.new_file("keep", content=b"keep")
    artifact["k"] = "before"
    before_json = storage_json(stack, artifact)
    with pytest.raises(ZeroDivisionError), artifact.transaction():
        artifact.new_file("added", content=b"x" * 100_000)
        artifact.get_file("keep").write(b"changed")
        artifact["k"] = "after"
        artifact["extra"] = "1"
        artifact.get_file("keep").remove()
        raise ZeroDivisionError
    again = get_artifact("rollback")
    assert again.metadata == {"k": "before"} == artifact.metadata
    assert [f.name for f in again.list_files()] == ["keep"]
    assert again.get_file("keep").read() == b"keep"
    assert storage_names(stack, artifact) == {"keep"}
    assert storage_json(stack, artifact) == before_json
    fs = stack.filesystem()
    fs.invalidate_cache()
    staged = fs.find(f"{stack.root}/.catalogstore/staging")
    assert staged == [], "staged files of a failed transaction must be removed"


def test_batch_across_artifacts(stack):
    with catalogstore.transaction():
        for i in range(20):
            a = new_artifact(f"b{i}")
            a.new_file("data", content=f"payload {i}")
            a.update_meta({"i": i, "kind": "sample"})
        assert list_artifacts() == []
        assert get_artifact("b3").metadata == {"i": 3, "kind": "sample"}
    listed = list_artifacts(where={"kind": "sample"})
    assert len(listed) == 20
    assert get_artifact("b7").get_file("data").read() == "payload 7"
    assert a.metadata == {"i": 19, "kind": "sample"}
    assert storage_json(stack, a) == {"i": 19, "kind": "sample"}


def test_batch_that_raises_creates_nothing(stack):
    existing = new_artifact("existing")
    with pytest.raises(RuntimeError), catalogstore.transaction():
        new_artifact("ghost").new_file("f", content=b"x")
        existing["k"] = "v"
        raise RuntimeError
    assert not artifact_exists("ghost")
    assert get_artifact("existing").metadata == {}
    fs = stack.filesystem()
    fs.invalidate_cache()
    assert not fs.exists(f"{stack.root}/artifacts/default/ghost")


def test_batch_with_duplicate_name_commits_nothing(stack):
    new_artifact("dup")
    with pytest.raises(ArtifactExistsError), catalogstore.transaction():
        new_artifact("fresh")
        new_artifact("dup")
    assert not artifact_exists("fresh")


def test_a_stream_opened_before_a_deletion_or_replacement_reads_what_is_current(stack):
    """On an object store a stream fetches the object at its first read: a replacement
    or a deletion between the open and that read gives the new content or "not found",
    as if the open had come a moment later, never a storage error (issue 13). On local
    disk the open file keeps the bytes it opened."""
    remote = stack.storage_url.startswith("s3://")
    new_artifact("churned").new_file("v", content="first")
    stream = get_artifact("churned").get_file("v").open("r")
    get_artifact("churned").new_file("v", content="second")
    with stream:
        assert stream.read() == ("second" if remote else "first")
    stream = get_artifact("churned").get_file("v").open("rb")
    get_artifact("churned").delete()
    with stream:
        if remote:
            with pytest.raises(ArtifactNotFoundError):
                stream.read()
        else:
            assert stream.read() == b"second"
