"""Flowdapt's ``tests/compute/executor/dask/test_collections.py``: Dask arrays and
dataframes saved to and loaded from artifacts by the workers.

Flowdapt's module is ``flowdapt.compute.executor.dask.collections``; catalogstore's
is :mod:`catalogstore.artifacts.dataset.dask_collections`. The fixtures differ:
the session's shared Dask cluster instead of a ``Client()`` per test, and the
artifact's storage root is the test's ``tmp_path`` instead of ``/tmp`` (shared
with every other user of the machine). All 7 tests are here; the two that save a
Dask array pass with typed metadata (its shape and chunks are recorded as lists).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy
import pandas
import pytest

from catalogstore.artifacts import Artifact
from catalogstore.artifacts.dataset.arrays import array_from_artifact, array_to_artifact
from catalogstore.artifacts.dataset.dataframes import (
    dataframe_from_artifact,
    dataframe_to_artifact,
)
from catalogstore.artifacts.dataset.handler import get_handler_func
from catalogstore.errors import type_name as get_full_path_type

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
collections = pytest.importorskip("catalogstore.artifacts.dataset.dask_collections")
timeseries = pytest.importorskip("dask.datasets").timeseries

pytest_plugins = ["executors"]  # dask_client: one Dask cluster for the session
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def dask_local_cluster(dask_client: Any) -> Any:
    return dask_client


@pytest.fixture
def artifact(tmp_path: Path) -> Iterator[Artifact]:
    # The file protocol, so that the workers read and write the same files.
    artifact = Artifact.new_artifact(name="test_artifact", protocol="file",
                                     base_path=str(tmp_path / "shared"))
    try:
        yield artifact
    finally:
        artifact.delete()


def test_handlers_are_registered() -> None:
    for data_type in ("dask.dataframe.core.DataFrame", "dask.array.core.Array",
                      "dask_expr._collection.DataFrame"):
        for operation in ("to_artifact", "from_artifact"):
            assert get_handler_func("dask", data_type, operation) is not None


def test_dask_array_to_artifact(artifact: Artifact) -> None:
    array = da.random.random(100, 100)
    array_to_artifact(executor="dask")(artifact, array)
    assert not artifact.is_empty, artifact.list_files()
    assert artifact["value_type"] == get_full_path_type(array)


def test_dask_array_from_artifact(artifact: Artifact) -> None:
    array = da.random.random(100, 100)
    array_to_artifact(executor="dask")(artifact, array)
    retrieved = array_from_artifact(executor="dask")(artifact)
    assert get_full_path_type(retrieved) == get_full_path_type(array)
    assert retrieved.shape == array.shape
    assert retrieved.dtype == array.dtype


def test_dask_df_to_artifact(artifact: Artifact) -> None:
    df = timeseries()
    dataframe_to_artifact(executor="dask")(artifact, df)
    assert not artifact.is_empty, artifact.list_files()
    assert artifact["value_type"] == get_full_path_type(df)


def test_dask_df_from_artifact(artifact: Artifact) -> None:
    df = timeseries()
    dataframe_to_artifact(executor="dask")(artifact, df)
    assert not artifact.is_empty, artifact.list_files()
    retrieved = dataframe_from_artifact(executor="dask")(artifact)
    assert get_full_path_type(retrieved) == get_full_path_type(df)


def test_simple_collection_to_dask() -> None:
    pdf = pandas.DataFrame({"x": range(100), "y": range(100, 200)})
    assert isinstance(collections.simple_collection_to_dask(pdf), dd.DataFrame)
    array = collections.simple_collection_to_dask(numpy.array([1, 2, 3, 4, 5]))
    assert isinstance(array, da.Array)
    with pytest.raises(TypeError):
        collections.simple_collection_to_dask("invalid input")


def test_simple_collection_from_dask() -> None:
    pdf = pandas.DataFrame({"x": range(100), "y": range(100, 200)})
    converted = collections.simple_collection_from_dask(dd.from_pandas(pdf, npartitions=10))
    assert isinstance(converted, pandas.DataFrame)
    dask_array = da.from_array(numpy.array([1, 2, 3, 4, 5]), chunks=2)
    assert isinstance(collections.simple_collection_from_dask(dask_array), numpy.ndarray)
    with pytest.raises(TypeError):
        collections.simple_collection_from_dask("invalid input")


# -- beyond Flowdapt's tests ----------------------------------------------------------------


def test_a_dask_array_of_a_block_grid_comes_back_as_written(artifact: Artifact) -> None:
    # Blocks along both axes, the last ones smaller: Flowdapt joins them along one
    # axis at the first block's size.
    array = da.random.random((25, 17), chunks=(10, 7))
    array_to_artifact(executor="dask")(artifact, array)
    back = array_from_artifact(executor="dask")(artifact)
    assert back.chunks == array.chunks
    numpy.testing.assert_array_equal(back.compute(), array.compute())
