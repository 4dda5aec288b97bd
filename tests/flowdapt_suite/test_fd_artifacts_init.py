"""Flowdapt's ``tests/compute/artifacts/test_init.py``: the module functions.

Flowdapt checks with mocks that ``new_artifact``, ``get_artifact`` and
``list_artifacts`` fill in the namespace and the storage from the run context and
the configuration (``_get_values_from_context``) and hand them to the ``Artifact``
classmethods. Here the same seven scenarios run on real storage: the defaults come
from catalogstore's configuration, and the artifact reached through the module
function is the one the classmethod reaches with the same values.

Excluded (1): ``test_get_values_from_context`` patches Flowdapt's
``get_run_context`` and ``get_configuration``, its server's internals.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from catalogstore.artifacts import (
    Artifact,
    _get_values_from_context,
    get_artifact,
    list_artifacts,
    new_artifact,
)


@pytest.fixture
def custom(tmp_path: Path) -> dict[str, Any]:
    """Flowdapt's non-default values: another namespace, the file protocol, a path and
    a filesystem parameter."""
    return {"namespace": "custom_namespace", "protocol": "file",
            "base_path": str(tmp_path / "custom" / "path"), "auto_mkdir": True}


def test_default_values_come_from_the_configuration(local_stack: Any) -> None:
    # Flowdapt's mock of _get_values_from_context returned ("default", "memory", "", {}):
    # here the values are the configuration's.
    assert _get_values_from_context() == ("default", "file", local_stack.storage_url, {})
    assert _get_values_from_context(namespace="n", protocol="memory", base_path="b",
                                    x=1) == ("n", "memory", "b", {"x": 1})


def test_get_artifact(local_stack: Any) -> None:
    made = Artifact.new_artifact("test_artifact")
    artifact = get_artifact("test_artifact")
    assert artifact == made and artifact.namespace == "default"
    assert artifact.uri == f"file://{local_stack.storage_url}/artifacts/default/test_artifact"


def test_list_artifacts() -> None:
    Artifact.new_artifact("mock_artifact1")
    Artifact.new_artifact("mock_artifact2")
    assert [a.name for a in list_artifacts()] == ["mock_artifact1", "mock_artifact2"]
    assert list_artifacts() == Artifact.list_artifacts()


def test_new_artifact() -> None:
    artifact = new_artifact("test_artifact")
    assert Artifact.get_artifact("test_artifact") == artifact
    assert artifact.namespace == "default" and artifact.exists


def test_get_artifact_with_create_true() -> None:
    artifact = get_artifact("test_artifact", create=True)
    assert artifact.exists and Artifact.does_exist("test_artifact")
    assert get_artifact("test_artifact", create=True) == artifact


def test_get_artifact_not_found() -> None:
    with pytest.raises(FileNotFoundError):
        get_artifact("nonexistent_artifact")
    assert not Artifact.does_exist("nonexistent_artifact")


def test_list_artifacts_with_nondefault_values(custom: dict[str, Any]) -> None:
    Artifact.new_artifact("mock_artifact1", **custom)
    Artifact.new_artifact("mock_artifact2", **custom)
    listed = list_artifacts(**custom)
    assert [a.name for a in listed] == ["mock_artifact1", "mock_artifact2"]
    assert listed == Artifact.list_artifacts(**custom)
    assert list_artifacts() == []  # not on the configured storage
    assert Path(custom["base_path"], "artifacts", "custom_namespace", "mock_artifact1").is_dir()


def test_new_artifact_with_nondefault_values(custom: dict[str, Any]) -> None:
    artifact = new_artifact("test_artifact", **custom)
    assert artifact.namespace == "custom_namespace"
    assert Artifact.get_artifact("test_artifact", **custom) == artifact
    assert artifact.path == f"{custom['base_path']}/artifacts/custom_namespace/test_artifact"
    # Its catalog is the root's own (README: Flowdapt compatibility, per-call storage).
    assert Path(custom["base_path"], ".catalogstore", "catalog.db").is_file()
