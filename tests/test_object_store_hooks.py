"""Flowdapt's object store parameters over the key's generation records (issues 12-14).

A put with a save hook or ``artifact_params`` records the key's generation in the
commit of its files (in the catalog of the storage root it wrote to); a get with a
load hook follows the current record; a hook's files carry no provenance for the
store to unpickle, while the default hooks keep the store's digest and adopt rules;
``cluster_memory_params`` reach the cluster memory in put and get, and ``executor``
names the backend.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas
import pytest

import catalogstore
from catalogstore.artifacts import Artifact, get_workspace, new_artifact
from catalogstore.artifacts.misc import (
    json_from_artifact,
    json_to_artifact,
    pickle_from_artifact,
    pickle_to_artifact,
)
from catalogstore.artifacts.roots import storage_workspace
from catalogstore.cluster_memory._local import LocalMemory
from catalogstore.errors import (
    NotAnObjectError,
    ObjectNotFoundError,
    ObjectTooLargeError,
    SerializationError,
    UntrustedObjectError,
)
from catalogstore.object_store import (
    adopt,
    default_load_hook,
    default_save_hook,
    delete,
    exists,
    get,
    put,
)
from catalogstore.txn import objects as records

pytest_plugins = ["executors"]  # dask_client: one Dask cluster for the whole test session


@pytest.fixture
def session(local_stack: Any) -> Iterator[Any]:
    catalogstore.configure(memory_backend="local")
    with LocalMemory.new_session():
        yield local_stack


def _record(key: str, workspace: Any = None) -> records.ObjectRecord | None:
    return records.read(workspace or get_workspace(), "default", key)


def test_a_save_hook_records_the_generation_with_its_files(session: Any) -> None:
    put("j", {"a": 1}, strategy="artifact", save_artifact_hook=json_to_artifact("v"))
    record = _record("j")
    assert record is not None and record.tier == records.ARTIFACT
    assert record.artifact_id == Artifact.get_artifact("j").record.id
    # The hook's files are the user's format: the record vouches for no bytes.
    assert (record.serializer, record.digest) == (None, None)
    assert exists("j")

    def failing(artifact: Artifact, value: Any) -> None:
        json_to_artifact("v")(artifact, value)
        raise RuntimeError("hook failed")

    with pytest.raises(RuntimeError):
        put("j", {"a": 2}, strategy="artifact", save_artifact_hook=failing)
    # Nothing of the failed put: the files and the record are those of the first.
    assert _record("j") == record
    assert get("j", load_artifact_hook=json_from_artifact("v")) == {"a": 1}
    with pytest.raises(SerializationError, match="load hook"):
        get("j")  # the store does not decode a hook's files itself


def test_a_load_hook_follows_the_current_generation(session: Any) -> None:
    put("k", {"old": True}, strategy="artifact", save_artifact_hook=json_to_artifact("v"))
    put("k", {"new": True}, strategy="cluster_memory")
    assert _record("k").tier == records.CLUSTER_MEMORY  # type: ignore[union-attr]
    hook = json_from_artifact("v")
    assert get("k", load_artifact_hook=hook) == {"new": True}
    with pytest.raises(ObjectNotFoundError):
        get("k", load_artifact_hook=hook, strategy="artifact")  # never the older copy
    put("k", {"newest": True}, strategy="artifact", save_artifact_hook=json_to_artifact("v"))
    assert get("k", load_artifact_hook=hook, strategy="artifact") == {"newest": True}
    assert get("k", load_artifact_hook=hook) == {"newest": True}
    delete("k")
    assert not exists("k") and _record("k") is None
    assert not Artifact.does_exist("k")


def test_a_hook_put_does_not_replace_a_user_artifact_unless_told(session: Any) -> None:
    new_artifact("mine")["owner"] = "me"
    with pytest.raises(NotAnObjectError):
        put("mine", {"x": 1}, strategy="artifact", save_artifact_hook=json_to_artifact("v"))
    put("mine", {"x": 1}, strategy="artifact", save_artifact_hook=json_to_artifact("v"),
        overwrite=True)
    # Its own earlier put is not a user artifact: a put without a hook replaces it.
    put("mine", [2], strategy="artifact")
    assert get("mine") == [2]


def test_a_pickle_written_by_a_hook_is_not_unpickled_by_the_store(session: Any) -> None:
    put("p", {"x": 1}, strategy="artifact", save_artifact_hook=pickle_to_artifact("object"))
    assert get("p", load_artifact_hook=pickle_from_artifact("object")) == {"x": 1}
    with pytest.raises(UntrustedObjectError):
        get("p", serializer="cloudpickle")  # no digest recorded for the hook's bytes


def test_the_default_hooks_keep_the_digest_and_adopt_rules(session: Any) -> None:
    put("o", {1, 2}, strategy="artifact", save_artifact_hook=default_save_hook("pickle"))
    record = _record("o")
    assert record is not None and record.serializer == "pickle" and record.digest
    assert get("o") == {1, 2}
    assert get("o", load_artifact_hook=default_load_hook()) == {1, 2}
    assert default_load_hook()(Artifact.get_artifact("o")) == {1, 2}
    # Called on an artifact directly, the default save hook writes no record: the
    # object is trusted once adopted, as one written by Flowdapt.
    default_save_hook()(new_artifact("direct"), [7])
    with pytest.raises(UntrustedObjectError):
        get("direct")
    with pytest.raises(UntrustedObjectError):
        default_load_hook()(Artifact.get_artifact("direct"))
    adopt("direct")
    assert get("direct") == [7]
    assert default_load_hook()(Artifact.get_artifact("direct")) == [7]


@pytest.mark.parametrize("hooked", [False, True])
def test_artifact_params_record_in_that_roots_catalog(session: Any, tmp_path: Path,
                                                      hooked: bool) -> None:
    where = {"protocol": "file", "base_path": str(tmp_path / "other")}
    hooks: dict[str, Any] = {"save_artifact_hook": json_to_artifact("v")} if hooked else {}
    loads: dict[str, Any] = {"load_artifact_hook": json_from_artifact("v")} if hooked else {}
    put("r", [1], strategy="artifact", artifact_params=where, **hooks)
    root = storage_workspace(where["protocol"], where["base_path"])
    record = _record("r", root)
    assert record is not None
    assert record.artifact_id == Artifact.get_artifact("r", **where).record.id
    assert _record("r") is None and not Artifact.does_exist("r")
    assert get("r", artifact_params=where, **loads) == [1]
    assert exists("r", artifact_params=where) and not exists("r")
    with pytest.raises(ObjectNotFoundError):
        get("r")
    delete("r", artifact_params=where)
    assert _record("r", root) is None and not Artifact.does_exist("r", **where)


def test_cluster_memory_params_reach_put_and_get(session: Any) -> None:
    with pytest.raises(ObjectTooLargeError):
        put("m", b"x" * 100, strategy="cluster_memory",
            cluster_memory_params={"max_object_bytes": 1})
    put("m", b"x" * 100, cluster_memory_params={"max_object_bytes": 1})  # to an artifact
    assert _record("m").tier == records.ARTIFACT  # type: ignore[union-attr]
    put("m", 5, strategy="cluster_memory", executor="local")
    with pytest.raises(TypeError):
        get("m", cluster_memory_params={"unknown": 1})
    assert get("m", executor="local", cluster_memory_params={"max_object_bytes": 10}) == 5
    # The persisting put refreshes the memory copy through the same parameters.
    with pytest.raises(TypeError):
        put("m", 6, strategy="artifact", cluster_memory_params={"unknown": 1})


def test_executor_names_the_backend(session: Any) -> None:
    put("e", 1, strategy="cluster_memory", executor="local")
    record = _record("e")
    assert record is not None and record.tier == records.CLUSTER_MEMORY
    assert get("e", executor="local") == 1
    with pytest.raises(Exception, match="nosuch"):
        put("e", 2, strategy="cluster_memory", executor="nosuch")


def test_a_dask_collection_saved_by_its_hook_is_recorded(session: Any,
                                                        dask_client: Any) -> None:
    dd = pytest.importorskip("dask.dataframe")
    pytest.importorskip("catalogstore.artifacts.dataset.dask_collections")  # its handlers
    from catalogstore.artifacts.dataset import dataframe_from_artifact, dataframe_to_artifact

    frame = pandas.DataFrame({"a": range(6)})
    put("d", dd.from_pandas(frame, npartitions=2), strategy="artifact",
        save_artifact_hook=dataframe_to_artifact(executor="dask"))
    record = _record("d")
    assert record is not None
    assert record.artifact_id == Artifact.get_artifact("d").record.id
    read = get("d", load_artifact_hook=dataframe_from_artifact(executor="dask"))
    pandas.testing.assert_frame_equal(read.compute().reset_index(drop=True), frame)
