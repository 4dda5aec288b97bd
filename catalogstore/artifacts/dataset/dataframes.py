"""pandas dataframes to and from artifacts (Flowdapt's ``artifacts.dataset.dataframes``).

A dataframe is written as ``partition-<i>.parquet`` (or ``.csv``) files of
consecutive rows, with ``value_type=pandas.core.frame.DataFrame``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas

from catalogstore.artifacts.artifact import Artifact, ArtifactFile
from catalogstore.artifacts.dataset.handler import (
    from_artifact_hook,
    read_partitions,
    register_handler,
    require,
    to_artifact_hook,
    write_partitions,
)
from catalogstore.artifacts.dataset.utils import split_dataframe
from catalogstore.errors import type_name

__all__ = [
    "dataframe_from_artifact",
    "dataframe_to_artifact",
    "pandas_dataframe_from_artifact",
    "pandas_dataframe_to_artifact",
    "read_dataframe_from_artifact",
    "write_dataframe_to_artifact",
]

_DATAFRAME = "pandas.core.frame.DataFrame"
"""Flowdapt's name of the type, as its artifacts record it."""
_DATAFRAME_NAMES = tuple(dict.fromkeys((_DATAFRAME, type_name(pandas.DataFrame()))))
"""And the name this pandas gives (``pandas.DataFrame`` since pandas moved ``__module__``)."""
_READERS: dict[str, Callable[..., pandas.DataFrame]] = {
    "parquet": pandas.read_parquet, "csv": pandas.read_csv, "orc": pandas.read_orc}
_WRITE_FORMATS = ("parquet", "csv")


def read_dataframe_from_artifact(file: ArtifactFile, format: str = "parquet"
                                 ) -> pandas.DataFrame:
    """The dataframe in ``file`` (``parquet``, ``csv`` or ``orc``)."""
    reader = _READERS.get(format)
    if reader is None:
        raise ValueError(f"cannot read dataframes as {format!r}; formats: {', '.join(_READERS)}")
    with file.open("rb") as stream:
        return reader(stream)


def write_dataframe_to_artifact(file: ArtifactFile, dataframe: pandas.DataFrame,
                                format: str = "parquet") -> None:
    """Replace the content of ``file`` with ``dataframe`` (``parquet`` or ``csv``)."""
    if format not in _WRITE_FORMATS:
        raise ValueError(f"cannot write dataframes as {format!r}; formats: "
                         f"{', '.join(_WRITE_FORMATS)}")
    with file.open("wb") as stream:
        if format == "parquet":
            dataframe.to_parquet(stream)
        else:
            dataframe.to_csv(stream)


def pandas_dataframe_to_artifact(artifact: Artifact, value: Any, format: str = "parquet",
                                 num_parts: int = 1) -> None:
    """Write ``value``, a pandas DataFrame (else :class:`SerializationError`), as
    ``num_parts`` partitions of consecutive rows, in one commit."""
    parts = split_dataframe(require(value, pandas.DataFrame), num_parts)
    write_partitions(artifact, parts, format, write_dataframe_to_artifact)


def pandas_dataframe_from_artifact(artifact: Artifact, format: str = "parquet"
                                   ) -> pandas.DataFrame:
    """The dataframe :func:`pandas_dataframe_to_artifact` wrote (see
    :func:`~catalogstore.artifacts.dataset.handler.read_partitions` for errors)."""
    return pandas.concat(read_partitions(artifact, format, _DATAFRAME_NAMES,
                                         read_dataframe_from_artifact))


def dataframe_to_artifact(format: str = "parquet", *, executor: str = "", **kwargs: Any
                          ) -> Callable[[Artifact, Any], Any]:
    """A save hook for dataframes: ``dataframe_to_artifact(format="csv")(artifact, df)``.

    Parameters are those of :func:`~catalogstore.artifacts.dataset.array_to_artifact`
    (``num_parts`` for pandas).
    """
    return to_artifact_hook(format, executor, kwargs)


def dataframe_from_artifact(format: str = "parquet", *, executor: str = "", **kwargs: Any
                            ) -> Callable[[Artifact], Any]:
    """The load hook of :func:`dataframe_to_artifact`."""
    return from_artifact_hook(format, executor, kwargs)


for _name in _DATAFRAME_NAMES:
    register_handler("*", _name, "to_artifact", pandas_dataframe_to_artifact)
    register_handler("*", _name, "from_artifact", pandas_dataframe_from_artifact)
