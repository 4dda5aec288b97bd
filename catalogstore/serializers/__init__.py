"""Serializers of the object store, chosen by type or by name.

Built in: ``npy`` (NumPy arrays), ``parquet`` (pandas DataFrames), ``arrow``
(pyarrow Tables), ``json`` (only when asked for), ``pickle`` (everything else)
and ``cloudpickle`` (what pickle cannot do: lambdas, closures). Third parties
register theirs with :func:`register_serializer` or the
``catalogstore.serializers`` entry-point group.

Choosing by type walks the value's class hierarchy (as dask's ``Dispatch``
does) against the types serializers declare by dotted name, resolving only
names whose module is already imported: a NumPy array cannot exist unless NumPy
was imported, so ``import catalogstore`` never imports it.
"""

from __future__ import annotations

import functools
import importlib
import sys
import threading
from typing import Any

from catalogstore.errors import ConfigurationError, SerializationError, StorageError
from catalogstore.serializers._arrow import ArrowSerializer, ParquetSerializer
from catalogstore.serializers._json import JSONSerializer
from catalogstore.serializers._numpy import NumpySerializer
from catalogstore.serializers._pickle import CloudPickleSerializer, PickleSerializer
from catalogstore.serializers.base import Serializer

__all__ = ["Serializer", "get_serializer", "register_serializer", "serializer_for"]

DEFAULT = "pickle"
"""For values no serializer claims by type."""

_registry: dict[str, Serializer] = {}
_lock = threading.Lock()
_entry_points_loaded = False


def register_serializer(cls: type[Serializer], *, replace: bool = False) -> None:
    """Make ``cls`` available under ``cls.name`` and for the types it declares."""
    if not (isinstance(cls, type) and issubclass(cls, Serializer)):
        raise TypeError(f"{cls!r} is not a Serializer subclass")
    with _lock:
        if cls.name in _registry and not replace:
            raise ConfigurationError(f"a serializer named {cls.name!r} is registered "
                                     "already; pass replace=True to replace it")
        _registry[cls.name] = cls()
        _claims.cache_clear()


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group="catalogstore.serializers"):
        if ep.name not in _registry:
            register_serializer(ep.load())


def get_serializer(name: str) -> Serializer:
    """The serializer registered as ``name``."""
    _load_entry_points()
    try:
        return _registry[name]
    except KeyError:
        raise ConfigurationError(
            f"unknown serializer {name!r}; known: {', '.join(sorted(_registry))}") from None


def _resolve(dotted: str) -> type | None:
    """The type ``module.Name``, if its top-level module is imported already."""
    module, _, attr = dotted.rpartition(".")
    if module.split(".")[0] not in sys.modules:
        return None
    try:
        found = getattr(importlib.import_module(module), attr, None)
    except ImportError:
        return None
    return found if isinstance(found, type) else None


@functools.cache
def _claims(cls: type) -> tuple[Serializer, ...]:
    """Serializers that declare ``cls`` or one of its bases, nearest first."""
    declared = [(t, s) for s in _registry.values() for name in s.types
                if (t := _resolve(name)) is not None]
    return tuple(s for base in cls.__mro__ for t, s in declared if t is base)


def serializer_for(value: Any) -> Serializer:
    """The serializer chosen for ``value``: the nearest type claim that accepts it, else pickle."""
    _load_entry_points()
    cls: type = type(value)
    for serializer in _claims(cls):
        if serializer.accepts(value):
            return serializer
    return _registry[DEFAULT]


def dump_checked(serializer: Serializer, value: Any, stream: Any, key: str) -> None:
    """``serializer.dump`` with its failures turned into :class:`SerializationError`."""
    try:
        serializer.dump(value, stream)
    except (SerializationError, StorageError):  # the value was fine; the storage failed
        raise
    except Exception as exc:
        raise SerializationError(
            f"cannot serialize {key!r} ({type(value).__module__}.{type(value).__qualname__}) "
            f"with {serializer.name}: {type(exc).__name__}: {exc}") from exc


for _builtin in (ArrowSerializer, CloudPickleSerializer, JSONSerializer, NumpySerializer,
                 ParquetSerializer, PickleSerializer):
    register_serializer(_builtin)
