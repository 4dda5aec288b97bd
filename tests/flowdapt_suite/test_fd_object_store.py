"""Flowdapt's ``tests/compute/test_object_store.py``: both of its tests are excluded.

- ``test_object_store_put_get`` and ``test_object_store_put_get_fallback`` run a
  workflow through Flowdapt's ``execute_workflow`` (its workflow engine, the
  server's internals); the second also patches the object store's cluster memory
  calls to raise. What they check of the object store is checked here without the
  engine: a value put by one stage is got by the next (other processes), and a
  put that cluster memory refuses lands in an artifact that ``list_artifacts``
  shows.
"""

from __future__ import annotations

import multiprocessing
from typing import Any

from catalogstore.artifacts import list_artifacts
from catalogstore.object_store import exists, get, put


def _stage1() -> None:
    put("test", 1)


def _stage2() -> Any:
    return get("test")


def test_a_value_put_by_one_stage_is_got_by_the_next() -> None:
    # Two stages in two worker processes of a local executor: the first puts, the
    # second gets (cluster memory, else the artifact).
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        pool.apply(_stage1)
        assert pool.apply(_stage2) == 1


def test_a_value_memory_refuses_goes_to_an_artifact() -> None:
    # Cluster memory refuses the value (here: it is over the size limit), so it goes
    # to an artifact.
    put("test", 1, cluster_memory_params={"max_object_bytes": 1})
    assert len(list_artifacts()) == 1, list_artifacts()
    assert get("test") == 1 and exists("test")
