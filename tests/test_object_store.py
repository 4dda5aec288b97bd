"""The object store with both tiers: strategies, fallback, the seed's example.

Cluster memory is the local backend here, in a session of the test's own; the
Ray and Dask tiers are exercised in test_object_store_executors.py.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
import pytest

import catalogstore
from catalogstore.artifacts import artifact_exists, get_artifact
from catalogstore.cluster_memory import get_cluster_memory
from catalogstore.cluster_memory._local import LocalMemory
from catalogstore.errors import ObjectNotFoundError, ObjectTooLargeError, SerializationError
from catalogstore.object_store import Strategy, delete, exists, get, put


@pytest.fixture
def store(local_stack):
    """The embedded artifact stack plus a local cluster memory session of its own."""
    catalogstore.configure(memory_backend="local")
    with LocalMemory.new_session():
        yield local_stack


# -- the seed's example, with only the import prefix changed -----------------------


def prepare_dataframe():
    # Create the dataframe
    df = pd.DataFrame(np.random.rand(10, 100))

    # Put the object in the Object Store (Cluster Memory, high performance) and name it
    # "my_dataframe" to be retrieved in any subsequent stage/workflow
    put("my_dataframe", df)

    # Persist the object to distributed storage (Artifacts) for full persistence
    put("my_dataframe", df, artifact_only=True)
    return df


def use_dataframe(prepare_dataframe):
    # Get the object from the Object Store (Cluster Memory, high performance) using the
    # name "my_dataframe"
    df = get("my_dataframe")

    # Get the object from distributed storage (Artifacts)
    df = get("my_dataframe", artifact_only=True)
    return df


def clear_memory(use_dataframe):
    # Delete the object, if desired, from the Object Store (Cluster Memory)
    delete("my_dataframe")

    # Delete the object, if desired, from distributed storage (Artifacts)
    delete("my_dataframe", artifact_only=True)


def test_seed_example(store):
    df = prepare_dataframe()
    # The persisting put is the key's newest generation (issue 13); the copy in cluster
    # memory is kept current with it, so the next stage's get stays fast.
    assert get_cluster_memory().exists("my_dataframe")
    assert artifact_exists("my_dataframe")
    pd.testing.assert_frame_equal(use_dataframe(None), df)
    clear_memory(None)
    assert not exists("my_dataframe")
    assert not get_cluster_memory().exists("my_dataframe")
    assert not artifact_exists("my_dataframe")


def _stage(step: str) -> str:
    """One seed stage in a worker process (the session comes through the environment)."""
    if step == "prepare":
        put("df", pd.DataFrame({"x": [1.0, 2.0]}))
        put("df", pd.DataFrame({"x": [1.0, 2.0]}), artifact_only=True)
    elif step == "use":
        assert get("df")["x"].sum() == 3.0
        assert get("df", artifact_only=True)["x"].sum() == 3.0
    else:
        delete("df")
    return step


@pytest.mark.slow
def test_seed_stages_in_separate_processes(store):
    ctx = multiprocessing.get_context("spawn")
    for step in ("prepare", "use", "clear"):
        with ProcessPoolExecutor(1, mp_context=ctx) as pool:  # a new process per stage
            assert pool.submit(_stage, step).result(timeout=120) == step
    assert not exists("df")


# -- strategies -------------------------------------------------------------------


def test_fallback_prefers_memory(store):
    put("small", {"a": 1})
    assert get_cluster_memory().get("small") == {"a": 1}
    assert not artifact_exists("small")
    assert get("small") == {"a": 1}
    assert exists("small") and not exists("small", artifact_only=True)


def test_fallback_to_artifacts_when_memory_refuses(store, caplog):
    catalogstore.configure(memory_max_object_bytes=4096)
    big = np.arange(10_000, dtype=np.int64)
    put("big", [1])  # an older, small value in memory ...
    with caplog.at_level(logging.DEBUG, logger="catalogstore.object_store"):
        put("big", big)  # ... must not hide the new one, which goes to artifacts
    assert any("goes to artifacts" in r.getMessage() and "limit" in r.getMessage()
               for r in caplog.records)
    assert not get_cluster_memory().exists("big")
    assert get_artifact("big")["serializer"] == "npy"
    np.testing.assert_array_equal(get("big"), big)
    with pytest.raises(ObjectTooLargeError):
        put("big2", big, strategy=Strategy.CLUSTER_MEMORY)
    assert not exists("big2")


def test_fallback_when_memory_cannot_serialize(store):
    put("fn", lambda x: x + 1)  # pickle (the memory tier) refuses a lambda
    assert not get_cluster_memory().exists("fn")
    assert get_artifact("fn")["serializer"] == "cloudpickle"
    assert get("fn")(1) == 2
    with pytest.raises(SerializationError, match="'fn2'"):
        put("fn2", lambda x: x, strategy="cluster_memory")


def test_cluster_memory_strategy_never_touches_artifacts(store):
    put("m", 1, strategy="cluster_memory")
    assert get("m", strategy="cluster_memory") == 1
    assert not artifact_exists("m")
    put("a", 2, artifact_only=True)
    with pytest.raises(ObjectNotFoundError):
        get("a", strategy="cluster_memory")
    delete("a", strategy="cluster_memory")
    assert artifact_exists("a")


def test_delete_default_removes_every_tier(store):
    put("both", 1)
    put("both", 2, artifact_only=True)  # the newest generation; memory's copy follows it
    assert get_cluster_memory().get("both") == 2 and get("both") == 2
    assert get("both", strategy="cluster_memory") == 2  # the copy, current
    assert exists("both", strategy="cluster_memory") and exists("both", artifact_only=True)
    delete("both", strategy="artifact")  # the copy in memory stays, as the key's value
    assert not artifact_exists("both") and get("both") == 2 and exists("both")
    put("both", 3, artifact_only=True)
    assert get_cluster_memory().get("both") == 3
    delete("both", strategy="cluster_memory")  # the artifact stays, as the key's value
    assert not get_cluster_memory().exists("both") and get("both") == 3
    put("both", 1)
    put("both", 1, artifact_only=True)
    delete("both")  # unlike Flowdapt, the artifact copy goes too
    assert not get_cluster_memory().exists("both") and not artifact_exists("both")
    delete("both")  # missing: a no-op
    assert not artifact_exists("both")


def test_get_falls_through_to_artifacts(store):
    put("persisted", {"v": 2}, artifact_only=True)
    assert get("persisted") == {"v": 2}
    with pytest.raises(KeyError):
        get("nowhere")
    assert get("nowhere", default=None) is None


def test_configured_default_strategy(store):
    catalogstore.configure(object_store_strategy="artifact")
    assert os.environ["CATALOGSTORE_OBJECT_STORE_STRATEGY"] == "artifact"  # for workers
    put("cfg", 3)
    assert artifact_exists("cfg") and not get_cluster_memory().exists("cfg")


def test_memory_put_is_zero_copy_on_get(store):
    array = np.ones(1 << 20)
    put("arr", array)
    got = get("arr")
    assert not got.flags.writeable  # a read-only view of shared memory, not a copy
    np.testing.assert_array_equal(got, array)
