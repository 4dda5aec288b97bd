"""Save and load hooks for arrays and dataframes (Flowdapt's ``artifacts.dataset``).

:func:`array_to_artifact` and :func:`dataframe_to_artifact` return a hook that
writes a value as partition files (``partition-0.npy``, ``partition-0.parquet``,
...) and records its type in ``value_type``; :func:`array_from_artifact` and
:func:`dataframe_from_artifact` return the hook that reads it back. Which function
does the work is chosen by the executor and the value's type
(:mod:`~catalogstore.artifacts.dataset.handler`), so an executor can register its
own (Dask collections: :mod:`~catalogstore.artifacts.dataset.dask`). Importing
this package imports NumPy and pandas.
"""

from catalogstore.artifacts.dataset.arrays import array_from_artifact, array_to_artifact
from catalogstore.artifacts.dataset.dataframes import (
    dataframe_from_artifact,
    dataframe_to_artifact,
)
from catalogstore.artifacts.dataset.handler import get_handler_func, register_handler

__all__ = [
    "array_from_artifact",
    "array_to_artifact",
    "dataframe_from_artifact",
    "dataframe_to_artifact",
    "get_handler_func",
    "register_handler",
]
