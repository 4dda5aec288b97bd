"""NumPy arrays to and from artifacts (Flowdapt's ``artifacts.dataset.arrays``).

An array is written as ``partition-<i>.npy`` files (split along its first axis)
with ``value_type=numpy.ndarray``. Arrays are written and read with
``allow_pickle=False``: an object array is refused instead of being pickled, and
reading never unpickles what the storage holds (Flowdapt allows pickles).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy

from catalogstore.artifacts.artifact import Artifact, ArtifactFile
from catalogstore.artifacts.dataset.handler import (
    from_artifact_hook,
    read_partitions,
    register_handler,
    require,
    to_artifact_hook,
    write_partitions,
)
from catalogstore.errors import SerializationError

__all__ = [
    "array_from_artifact",
    "array_to_artifact",
    "numpy_array_from_artifact",
    "numpy_array_to_artifact",
    "read_array_from_artifact",
    "write_array_to_artifact",
]

_NDARRAY = "numpy.ndarray"
_READ_FORMATS = ("npy", "npz")
_WRITE_FORMATS = ("npy",)


def read_array_from_artifact(artifact_file: ArtifactFile, format: str = "npy") -> Any:
    """The array in ``artifact_file`` (``npy``; ``npz`` gives NumPy's archive)."""
    if format not in _READ_FORMATS:
        raise ValueError(f"cannot read arrays as {format!r}; formats: {', '.join(_READ_FORMATS)}")
    with artifact_file.open("rb") as stream:
        loaded = numpy.load(stream, allow_pickle=False)
        return dict(loaded) if format == "npz" else loaded


def write_array_to_artifact(file: ArtifactFile, array: numpy.ndarray[Any, Any],
                            format: str = "npy") -> None:
    """Replace the content of ``file`` with ``array`` (``npy``)."""
    if format not in _WRITE_FORMATS:
        raise ValueError(f"cannot write arrays as {format!r}; formats: "
                         f"{', '.join(_WRITE_FORMATS)}")
    try:
        with file.open("wb") as stream:
            numpy.save(stream, array, allow_pickle=False)
    except ValueError as exc:  # an object array: would need pickle
        raise SerializationError(f"cannot write {file.name}: {exc}") from exc


def numpy_array_to_artifact(artifact: Artifact, value: Any, format: str = "npy",
                            num_parts: int = 1) -> None:
    """Write ``value``, a NumPy array (else :class:`SerializationError`), as ``num_parts``
    partitions along its first axis, in one commit."""
    parts = numpy.array_split(require(value, numpy.ndarray), num_parts)
    write_partitions(artifact, parts, format, write_array_to_artifact)


def numpy_array_from_artifact(artifact: Artifact, format: str = "npy"
                              ) -> numpy.ndarray[Any, Any]:
    """The array :func:`numpy_array_to_artifact` wrote (see
    :func:`~catalogstore.artifacts.dataset.handler.read_partitions` for errors)."""
    return numpy.concatenate(read_partitions(artifact, format, [_NDARRAY],
                                             read_array_from_artifact))


def array_to_artifact(format: str = "npy", *, executor: str = "", **kwargs: Any
                      ) -> Callable[[Artifact, Any], Any]:
    """A save hook for arrays: ``array_to_artifact()(artifact, array)``.

    Parameters
    ----------
    format
        File format of the partitions.
    executor
        Whose handler writes (default: the executor this code runs in, else the
        generic one).
    kwargs
        Options of the handler (``num_parts`` for NumPy arrays).
    """
    return to_artifact_hook(format, executor, kwargs)


def array_from_artifact(format: str = "npy", *, executor: str = "", **kwargs: Any
                        ) -> Callable[[Artifact], Any]:
    """The load hook of :func:`array_to_artifact`: ``array_from_artifact()(artifact)``."""
    return from_artifact_hook(format, executor, kwargs)


register_handler("*", _NDARRAY, "to_artifact", numpy_array_to_artifact)
register_handler("*", _NDARRAY, "from_artifact", numpy_array_from_artifact)
