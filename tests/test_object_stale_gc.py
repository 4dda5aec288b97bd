"""gc deletes the object artifacts that a newer generation in cluster memory made stale
(issue 13, point 2).

A put to cluster memory commits the key's new record, then deletes the artifact that
held the older value. A process that dies between the two leaves that artifact: ``get``
ignores it (it follows the record), and ``gc`` removes it, but only while the record
that made it stale is still current. The crash is reproduced exactly: the record a
memory put commits is written, and the deletion that would follow never runs.
"""

from __future__ import annotations

import uuid

import pytest
from stacks import STACKS
from typer.testing import CliRunner

from catalogstore import maintenance
from catalogstore.artifacts import get_artifact, get_workspace, new_artifact
from catalogstore.cli import app
from catalogstore.errors import ArtifactNotFoundError
from catalogstore.object_store import get, put
from catalogstore.txn import objects as records

pytestmark = pytest.mark.parametrize("stack", STACKS, indirect=True)


def memory_put_that_died(key: str) -> str:
    """Commit the record of a value put to cluster memory, as ``put`` does, and stop
    before the older artifact is deleted; returns the new generation."""
    generation = uuid.uuid4().hex
    records.write(get_workspace(), records.ObjectRecord(
        "default", key, generation, records.CLUSTER_MEMORY, "local:session-that-died"))
    return generation


def test_gc_removes_the_artifact_a_newer_generation_made_stale(stack):
    put("threshold", 0.5, artifact_only=True)
    put("kept", [1, 2], artifact_only=True)  # its record is the artifact: current
    user = new_artifact("model")  # a user's artifact: never an object's stale copy
    user.new_file("weights", content=b"w")
    generation = memory_put_that_died("threshold")
    memory_put_that_died("model")  # a memory value may share a user artifact's name
    assert get("threshold", artifact_only=True, default="gone") == "gone"  # not 0.5

    report = maintenance.gc()

    assert report.stale_objects == ["default/threshold"]
    with pytest.raises(ArtifactNotFoundError):
        get_artifact("threshold")
    current = records.read(get_workspace(), "default", "threshold")
    assert current is not None and current.generation == generation  # the record stays
    assert get("kept") == [1, 2]
    assert get_artifact("model").get_file("weights").read() == b"w"
    assert maintenance.verify().ok
    assert maintenance.gc().stale_objects == []  # nothing left to do


def test_a_put_after_the_stale_listing_wins(stack):
    put("k", "old", artifact_only=True)
    artifact_id = get_artifact("k").record.id
    stale_generation = memory_put_that_died("k")
    put("k", "newest", artifact_only=True)  # the key moved on: the artifact is current
    with pytest.raises(records.Superseded):
        get_workspace().commit([records.stale_artifact_removal(
            "default", "k", artifact_id, stale_generation)])
    assert get("k") == "newest"
    assert maintenance.gc().stale_objects == []
    assert get("k") == "newest"


def test_gc_command_says_what_it_removed(stack):
    put("k", "old", artifact_only=True)
    memory_put_that_died("k")
    result = CliRunner().invoke(app, ["gc"])
    assert result.exit_code == 0, result.output
    assert "objects: 1 stale artifact(s) of older generations removed" in result.output
