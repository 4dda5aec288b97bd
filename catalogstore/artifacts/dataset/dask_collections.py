"""Dask arrays and dataframes to and from artifacts, written and read by the workers
(Flowdapt's ``executor.dask.collections``).

Importing this module registers the ``"dask"`` executor's handlers of
:mod:`~catalogstore.artifacts.dataset.handler`: with ``executor="dask"`` (or
inside a Dask worker) :func:`~catalogstore.artifacts.dataset.array_to_artifact`
and :func:`~catalogstore.artifacts.dataset.dataframe_to_artifact` write one
partition file per block or partition, each from the worker that holds it, and
the ``from_artifact`` hooks return lazy collections that read them there. The
artifact's handle travels to the workers and is opened again on the same catalog
and storage, so the storage must be one every worker reaches (a shared folder,
S3), as with Flowdapt.

A Dask array records its layout in the artifact's metadata (``dtype``, ``shape``,
``chunks``, ...) as lists and numbers: that needs typed metadata (issue 14, point 2).
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import dask.dataframe as dd
import numpy
import pandas
from dask.base import compute
from dask.delayed import delayed

from catalogstore.artifacts.artifact import Artifact
from catalogstore.artifacts.dataset.arrays import (
    read_array_from_artifact,
    write_array_to_artifact,
)
from catalogstore.artifacts.dataset.dataframes import (
    read_dataframe_from_artifact,
    write_dataframe_to_artifact,
)
from catalogstore.artifacts.dataset.handler import (
    check_value_type,
    partition_files,
    register_handler,
)
from catalogstore.errors import type_name

__all__ = [
    "dask_array_from_artifact",
    "dask_array_to_artifact",
    "dask_dataframe_from_artifact",
    "dask_dataframe_to_artifact",
    "simple_collection_from_dask",
    "simple_collection_to_dask",
]

_ARRAY_TYPES = tuple(dict.fromkeys(("dask.array.core.Array", type_name(da.zeros(1)))))
# Flowdapt's names of Dask's dataframe types over its versions, and this Dask's.
_FRAME_TYPES = tuple(dict.fromkeys((
    "dask.dataframe.core.DataFrame", "dask.dataframe.core.Series",
    "dask_expr._collection.DataFrame", "dask.dataframe.dask_expr._collection.DataFrame",
    type_name(dd.from_pandas(pandas.DataFrame({"x": [0]}), npartitions=1)),
    type_name(dd.from_pandas(pandas.Series([0]), npartitions=1)))))


def _untyped(collection: Any) -> Any:
    """``collection`` as ``Any``: Dask's collection methods carry no annotations."""
    return collection


def _compute_on_workers(writes: list[Any]) -> None:
    """Run the delayed writes on the cluster (from a task: through its worker's client)."""
    from distributed import worker_client

    try:
        with worker_client() as client:
            client.compute(writes, sync=True)
    except ValueError:  # not inside a task: the default scheduler (a client if active)
        compute(*writes)


def dask_dataframe_to_artifact(artifact: Artifact, dataframe: Any, format: str = "parquet"
                               ) -> Artifact:
    """Write each partition of a Dask dataframe as ``partition-<i>.<format>`` from the
    worker that holds it.

    Raises
    ------
    TypeError
        when ``dataframe`` is not a Dask dataframe or series.
    """
    if not isinstance(dataframe, (dd.DataFrame, dd.Series)):
        raise TypeError(f"expected a Dask dataframe, got {type_name(dataframe)}")
    write = delayed(write_dataframe_to_artifact, name="write-dataframe-to-artifact")
    _compute_on_workers([write(artifact.file_handle(f"partition-{i}.{format}"), part, format)
                         for i, part in enumerate(_untyped(dataframe).to_delayed())])
    return artifact


def dask_dataframe_from_artifact(artifact: Artifact, format: str = "parquet",
                                 num_points: int = -1) -> Any:
    """A lazy Dask dataframe of the partitions (the last ``num_points`` rows if positive).

    Raises
    ------
    ArtifactTypeError
        (an ``AssertionError``) when the artifact does not hold a Dask dataframe.
    """
    check_value_type(artifact, *_FRAME_TYPES)
    read = delayed(read_dataframe_from_artifact, name="read-dataframe-from-artifact")
    frame = dd.from_delayed([read(file, format=format)
                             for file in partition_files(artifact, format)])
    return frame.tail(num_points, compute=False) if num_points > 0 else frame


def dask_array_to_artifact(artifact: Artifact, array: Any, format: str = "npy",
                           axis: int = 0) -> Artifact:
    """Write each block of a Dask array as ``partition-<i>.<format>`` from the worker that
    holds it, and the array's layout in the metadata.

    Raises
    ------
    TypeError
        when ``array`` is not a Dask array.
    """
    if not isinstance(array, da.Array):
        raise TypeError(f"expected a Dask array, got {type_name(array)}")
    artifact.update_meta({
        "dtype": str(array.dtype), "shape": list(array.shape),
        "chunks": [list(c) for c in array.chunks], "chunksize": list(array.chunksize),
        "axis": axis, "numblocks": list(array.numblocks),
        "blocksize": list(array.blocks[0].shape)})
    write = delayed(write_array_to_artifact, name="write-array-to-artifact")
    _compute_on_workers([write(artifact.file_handle(f"partition-{i}.{format}"), block, format)
                         for i, block in enumerate(array.blocks.ravel())])
    return artifact


def dask_array_from_artifact(artifact: Artifact, format: str = "npy") -> Any:
    """A lazy Dask array of the blocks, laid out again on the recorded block grid.

    Each block gets its own shape from the recorded ``chunks``, so an array of
    several blocks along several axes, or with a smaller last block, comes back as
    it was (Flowdapt joins every block along one axis, at the size of the first).

    Raises
    ------
    ArtifactTypeError
        (an ``AssertionError``) when the artifact does not hold a Dask array.
    ValueError
        when the partition files do not match the recorded chunks.
    """
    check_value_type(artifact, *_ARRAY_TYPES)
    read = delayed(read_array_from_artifact, name="read-array-from-artifact")
    dtype = numpy.dtype(artifact["dtype"])
    chunks = [tuple(int(n) for n in axis) for axis in artifact["chunks"]]
    grid = tuple(len(axis) for axis in chunks)
    files = partition_files(artifact, format)
    if len(files) != int(numpy.prod(grid)):
        raise ValueError(f"artifact {artifact.namespace}/{artifact.name} has {len(files)} "
                         f"partition files for a grid of {grid} blocks")
    blocks = numpy.empty(grid, dtype=object)
    for index, file in zip(numpy.ndindex(*grid), files, strict=True):  # blocks.ravel() order
        shape = tuple(chunks[axis][i] for axis, i in enumerate(index))
        blocks[index] = da.from_delayed(read(file, format=format), dtype=dtype, shape=shape)
    return da.block(blocks.tolist())


def simple_collection_to_dask(value: Any, **kwargs: Any) -> Any:
    """A pandas dataframe or NumPy array as a Dask collection.

    Raises
    ------
    TypeError
        for anything else.
    """
    if isinstance(value, pandas.DataFrame):
        return dd.from_pandas(value, npartitions=kwargs.pop("npartitions", 1), **kwargs)
    if isinstance(value, numpy.ndarray):
        return da.from_array(value, **kwargs)
    raise TypeError(f"cannot make a Dask collection of {type_name(value)}")


def simple_collection_from_dask(value: Any, **kwargs: Any) -> Any:
    """A Dask dataframe or array computed into pandas or NumPy.

    Raises
    ------
    TypeError
        for anything else.
    """
    if isinstance(value, (dd.DataFrame, dd.Series, da.Array)):
        return _untyped(value).compute(**kwargs)
    raise TypeError(f"{type_name(value)} is not a Dask collection")


for _name in _FRAME_TYPES:
    register_handler("dask", _name, "to_artifact", dask_dataframe_to_artifact)
    register_handler("dask", _name, "from_artifact", dask_dataframe_from_artifact)
for _name in _ARRAY_TYPES:
    register_handler("dask", _name, "to_artifact", dask_array_to_artifact)
    register_handler("dask", _name, "from_artifact", dask_array_from_artifact)
