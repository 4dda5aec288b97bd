"""Flowdapt's ``tests/compute/artifacts/test_interface.py``: the ``Artifact`` class.

All 11 tests are here. Two fail by design: ``read()`` of a file written from a
``str`` gives the ``str`` back (the seed's contract; Flowdapt gives bytes, which
``read(mode="rb")`` gives here), and an empty artifact name raises
``InvalidNameError`` (a ``ValueError``) instead of an ``AssertionError``.
``test_metadata`` passes with typed metadata (issue 14).
"""

from __future__ import annotations

import pytest
from fd_marks import difference

from catalogstore.artifacts import Artifact
from catalogstore.errors import InvalidNameError


@pytest.mark.parametrize(("artifact_name", "expected_uri"), [
    ("test_artifact", "memory://test/artifacts/default/test_artifact")])
def test_artifact_creation(artifact_params: dict[str, str], artifact_name: str,
                           expected_uri: str) -> None:
    artifact = Artifact.new_artifact(artifact_name, **artifact_params)
    try:
        assert artifact.uri == expected_uri
        assert artifact.is_empty is True
        assert artifact.exists is True
    finally:
        artifact.delete()


def test_artifact_delete(artifact_params: dict[str, str]) -> None:
    artifact = Artifact.new_artifact("test_artifact", **artifact_params)
    artifact.delete()
    assert artifact.is_empty is True
    assert artifact.exists is False
    with pytest.raises(FileNotFoundError):
        artifact.get_file("test_file")
    with pytest.raises(FileNotFoundError):
        artifact.list_files()
    with pytest.raises(FileNotFoundError):
        artifact.new_file("test_file", "test_content")


def test_artifact_does_exist(artifact_params: dict[str, str], artifact: Artifact) -> None:
    assert Artifact.does_exist(artifact.name, **artifact_params) is True
    assert Artifact.does_exist("non_existent_artifact", **artifact_params) is False


@pytest.mark.parametrize(("file_name", "content", "expected_content"), [
    pytest.param("test_file", "test_content", b"test_content", marks=difference(
        "read() of a file written from str returns the str (the seed's contract)")),
    ("empty_file", None, b""),
])
def test_artifact_file_creation_and_reading(artifact: Artifact, file_name: str,
                                            content: str | None,
                                            expected_content: bytes) -> None:
    file = artifact.new_file(file_name, content)
    assert file.name == file_name
    assert file.read() == expected_content
    assert not artifact.is_empty


def test_metadata(artifact: Artifact) -> None:
    artifact["key1"] = "value1"
    artifact["key2"] = 10
    artifact.set_meta("key3", [1, 2, 3])
    assert artifact["key1"] == "value1"
    assert artifact.metadata["key2"] == 10
    assert artifact.get_meta("key3") == [1, 2, 3]


def test_artifact_file_deletion(artifact: Artifact) -> None:
    artifact.new_file("test_file", "test_content")
    artifact.delete_file("test_file")
    with pytest.raises(FileNotFoundError):
        artifact.get_file("test_file")
    assert artifact.exists
    assert artifact.is_empty
    assert artifact.list_files() == []


def test_duplicate_file_creation(artifact: Artifact) -> None:
    artifact.new_file("test_file", "test_content")
    with pytest.raises(FileExistsError):
        artifact.new_file("test_file", "test_content", exist_ok=False)
    artifact.new_file("test_file", "test_content", exist_ok=True)


def test_nonexistent_file_deletion(artifact: Artifact) -> None:
    with pytest.raises(FileNotFoundError):
        artifact.delete_file("nonexistent_file")


@difference("an invalid artifact name raises InvalidNameError (a ValueError), which "
            "python -O keeps, not AssertionError")
def test_invalid_parameters(artifact_params: dict[str, str]) -> None:
    with pytest.raises(AssertionError):
        Artifact.new_artifact("", **artifact_params)
    artifact = Artifact.new_artifact("test_artifact", **artifact_params)
    with pytest.raises(TypeError):
        artifact.new_file("test_file", {"test": "dict"})  # type: ignore[arg-type]
    artifact.delete()


def test_artifact_clear(artifact: Artifact) -> None:
    artifact.new_file("test_file", "test_content")
    artifact.clear()
    assert artifact.list_files() == []


# -- what the differences are instead ---------------------------------------------------


def test_read_as_flowdapt_reads_with_mode_rb(artifact: Artifact) -> None:
    file = artifact.new_file("test_file", "test_content")
    assert file.read() == "test_content"  # the seed's contract
    assert file.read(mode="rb") == b"test_content"  # Flowdapt's read()
    assert file.read(4, mode="rb") == b"test"


def test_invalid_parameters_raise_value_errors(artifact_params: dict[str, str]) -> None:
    with pytest.raises(InvalidNameError):
        Artifact.new_artifact("", **artifact_params)
    with pytest.raises(ValueError, match="artifact name"):
        Artifact.new_artifact("a/b", **artifact_params)
    assert Artifact.list_artifacts(**artifact_params) == []
