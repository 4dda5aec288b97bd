"""The registry of dataset handlers: which function writes or reads a value of a type
on an executor (Flowdapt's ``artifacts.dataset.handler``).

A handler is registered for ``(executor, type name, operation)``; ``"*"`` as the
executor makes it the fallback of every executor. Operations are
``"to_artifact"`` (``handler(artifact, value, **options)``) and
``"from_artifact"`` (``handler(artifact, **options)``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from catalogstore.errors import ArtifactTypeError, SerializationError, type_name

if TYPE_CHECKING:
    from catalogstore.artifacts.artifact import Artifact, ArtifactFile

__all__ = ["get_handler_func", "register_handler"]

T = TypeVar("T")

Handler = Callable[..., Any]
_handlers: dict[tuple[str, str, str], Handler] = {}
_lock = threading.Lock()


def register_handler(executor: str, data_type: str, operation: str, handler: Handler) -> None:
    """Use ``handler`` for ``operation`` on values of ``data_type`` (the type's full
    name, e.g. ``"pandas.core.frame.DataFrame"``) on ``executor`` (``"*"``: any);
    a handler registered before for the same three is replaced."""
    with _lock:
        _handlers[(executor, data_type, operation)] = handler


def get_handler_func(executor: str, data_type: str, operation: str) -> Handler:
    """The handler of ``executor``, else the generic (``"*"``) one.

    Raises
    ------
    ValueError
        when neither is registered.
    """
    handler = _handlers.get((executor, data_type, operation)) or \
        _handlers.get(("*", data_type, operation))
    if handler is None:
        raise ValueError(f"no handler for {operation} of {data_type!r} values on executor "
                         f"{executor!r}; register one with register_handler()")
    return handler


def _executor(executor: str) -> str:
    if executor:
        return executor
    from catalogstore.artifacts.dataset.utils import _get_current_executor

    return _get_current_executor() or "*"


def to_artifact_hook(format: str, executor: str, options: dict[str, Any]
                     ) -> Callable[[Artifact, Any], Any]:
    """The save hook of ``array_to_artifact``/``dataframe_to_artifact``: empties the
    artifact, records the value's type and lets the type's handler write it."""
    executor = _executor(executor)

    def save(artifact: Artifact, value: Any) -> Any:
        value_type = type_name(value)
        handler = get_handler_func(executor, value_type, "to_artifact")
        artifact.clear()
        artifact["value_type"] = value_type
        return handler(artifact, value, format=format, **options)
    return save


def from_artifact_hook(format: str, executor: str, options: dict[str, Any]
                       ) -> Callable[[Artifact], Any]:
    """The load hook of ``array_from_artifact``/``dataframe_from_artifact``: the handler
    of the recorded ``value_type`` reads the value."""
    executor = _executor(executor)

    def load(artifact: Artifact) -> Any:
        handler = get_handler_func(executor, artifact["value_type"], "from_artifact")
        return handler(artifact, format=format, **options)
    return load


def check_value_type(artifact: Artifact, *expected: str) -> None:
    """Raise :class:`ArtifactTypeError` unless the artifact's ``value_type`` is one of
    ``expected``."""
    found = artifact.get_meta("value_type")
    if found not in expected:
        raise ArtifactTypeError(
            f"artifact {artifact.namespace}/{artifact.name} holds value_type {found!r}, not "
            f"{' or '.join(map(repr, expected))}: load it with the hook that saved it")


def partition_files(artifact: Artifact, format: str) -> list[ArtifactFile]:
    """The artifact's ``partition-<i>.<format>`` files in the order of ``i`` (a name sort
    would put ``partition-10`` before ``partition-2``).

    Raises
    ------
    ValueError
        when there is none.
    """
    found: list[tuple[int, ArtifactFile]] = []
    for file in artifact.list_files():
        stem, dot, suffix = file.name.partition(".")
        index = stem.removeprefix("partition-")
        if dot and suffix == format and index != stem and index.isdigit():
            found.append((int(index), file))
    if not found:
        raise ValueError(f"artifact {artifact.namespace}/{artifact.name} has no "
                         f"partition-<n>.{format} file")
    return [file for _, file in sorted(found, key=lambda pair: pair[0])]


def write_partitions(artifact: Artifact, parts: Iterable[T], format: str,
                     write: Callable[[ArtifactFile, T, str], None]) -> None:
    """Write each part with ``write`` as ``partition-<i>.<format>``, all in one commit."""
    with artifact.transaction():
        for i, part in enumerate(parts):
            write(artifact.file_handle(f"partition-{i}.{format}"), part, format)


def read_partitions(artifact: Artifact, format: str, value_types: Iterable[str],
                    read: Callable[[ArtifactFile, str], T]) -> list[T]:
    """Each partition read with ``read``, in order, once ``value_type`` is checked.

    Raises
    ------
    ArtifactTypeError
        (an ``AssertionError``) when ``value_type`` is none of ``value_types``.
    ValueError
        when the artifact has no partition file of ``format``.
    """
    check_value_type(artifact, *value_types)
    return [read(file, format) for file in partition_files(artifact, format)]


def require(value: Any, cls: type[T]) -> T:
    """``value`` if it is a ``cls``, else :class:`SerializationError` (a ``TypeError``)."""
    if not isinstance(value, cls):
        raise SerializationError(f"expected a {type_name(cls())}, got {type_name(value)}")
    return value
