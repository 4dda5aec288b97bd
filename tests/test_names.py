"""Validation before anything is written: names, namespaces, file names, metadata."""

from __future__ import annotations

import os

import pytest

from catalogstore.artifacts import get_artifact, list_artifacts, new_artifact
from catalogstore.errors import CatalogStoreError, InvalidMetadataError, InvalidNameError
from catalogstore.names import validate_file_name, validate_name

BAD_NAMES = [
    "", ".", "..", "../x", "a/b", "a\\b", "/abs", "\\abs", "C:\\x", "a\x00b", "a\nb", "a\tb",
    "x" * 129, "a..b", "%2e%2e", "%252e%252e%252f", "a#b", "a?b", "file://x", "s3://b/k",
    "\uff41\uff42\uff43", "café", "a b", ".hidden", "-dash", "~home", "a:b", "x\u202e",
    "\u0430dmin",
]
GOOD_NAMES = ["a", "my_artifact", "My-Artifact-2", "v1.2.3", "0", "x" * 128, "A_b-C.d"]
BAD_FILE_NAMES = [
    "", ".", "..", "../x", "a/b", "a\\b", "/abs", ".artifact.json", "a\x00", "a\x7f", "x" * 256,
    " lead", "trail ", "%2e%2e%2f", "a#b", "a?b", "s3://x", "ünï", "a:b", "a*b", "a|b",
]
GOOD_FILE_NAMES = ["my_file", "model.pkl", ".hidden", "_x", "a b.txt", "v1+2=3@x,y", "x" * 255]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_are_refused(name):
    with pytest.raises(InvalidNameError):
        validate_name(name)


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_good_names(name):
    assert validate_name(name) == name


@pytest.mark.parametrize("name", BAD_FILE_NAMES)
def test_bad_file_names_are_refused(name):
    with pytest.raises(InvalidNameError):
        validate_file_name(name)


@pytest.mark.parametrize("name", GOOD_FILE_NAMES)
def test_good_file_names(name):
    assert validate_file_name(name) == name


def test_non_string_names():
    for value in (None, 1, b"bytes", ["a"]):
        with pytest.raises(InvalidNameError):
            validate_name(value)
        with pytest.raises(InvalidNameError):
            validate_file_name(value)


def _tree(root) -> set[str]:
    return {os.path.relpath(os.path.join(d, f), root)
            for d, _, files in os.walk(root) for f in files}


def test_api_refuses_before_writing(local_stack, tmp_path):
    artifact = new_artifact("ok")
    before = _tree(tmp_path)
    for name in BAD_NAMES:
        calls = [(new_artifact, (name,)), (get_artifact, (name,))]
        if name:  # "" means "the current namespace" for namespace arguments
            calls += [(new_artifact, ("ok2", name)), (list_artifacts, (name,))]
        for fn, args in calls:
            with pytest.raises(CatalogStoreError):
                fn(*args)
        with pytest.raises(CatalogStoreError):
            get_artifact(name, create=True)
    for name in BAD_FILE_NAMES:
        with pytest.raises(InvalidNameError):
            artifact.new_file(name, content=b"x")
        with pytest.raises(InvalidNameError):
            artifact.get_file(name, create=True)
    for key in ("", "a\x00", 5, "k" * 256):
        with pytest.raises(InvalidMetadataError):
            artifact.set_meta(key, "v")
    with pytest.raises(InvalidMetadataError):
        artifact.set_meta("k", "nul\x00inside")
    assert _tree(tmp_path) == before
    assert [a.name for a in list_artifacts()] == ["ok"]
    assert artifact.is_empty and artifact.metadata == {}
