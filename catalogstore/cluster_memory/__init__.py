"""Cluster memory: share Python objects between the worker processes of an executor.

Backends: ``local`` (processes on one machine, shared memory), ``ray`` (Ray's
object store) and ``dask`` (a Dask cluster). :func:`get_cluster_memory` picks
one in this order: the explicit argument, the enclosing :func:`use_backend`
block, ``CATALOGSTORE_MEMORY_BACKEND``, the runtime the code runs in (a Ray
task, actor or initialised driver; a Dask worker or active client), else
``local``. Third parties add backends with :func:`register_backend` or the
``catalogstore.cluster_memory`` entry-point group.

Examples
--------
>>> from catalogstore.cluster_memory import get_cluster_memory   # doctest: +SKIP
>>> memory = get_cluster_memory()                                # doctest: +SKIP
>>> memory.put("cities_list", ["St. Louis", "Moab", "Los Angeles"])  # doctest: +SKIP
>>> memory.get("cities_list")                                    # doctest: +SKIP
['St. Louis', 'Moab', 'Los Angeles']
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib
import logging
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from catalogstore.cluster_memory.base import ClusterMemory
from catalogstore.errors import BackendUnavailableError, ConfigurationError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = [
    "ClusterMemory",
    "check_for_key_in_cluster_memory",
    "delete_from_cluster_memory",
    "detect_runtime",
    "get_cluster_memory",
    "get_cluster_memory_backend",
    "get_from_cluster_memory",
    "put_in_cluster_memory",
    "register_backend",
    "use_backend",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Backend:
    target: str
    """``module:Class`` of the implementation, imported on first use."""
    install_hint: str


# Sorted by name; the runtime check order of "auto" is _DETECTION_ORDER.
_BACKENDS: dict[str, _Backend] = {
    "dask": _Backend("catalogstore.cluster_memory._dask:DaskMemory",
                     "pip install 'catalogstore[dask]'"),
    "local": _Backend("catalogstore.cluster_memory._local:LocalMemory", ""),
    "ray": _Backend("catalogstore.cluster_memory._ray:RayMemory",
                    "pip install 'catalogstore[ray]'"),
}
_DETECTION_ORDER = ("ray", "dask")
_RUNTIME_MODULES = {"ray": "ray", "dask": "distributed"}
_ENTRY_POINT_GROUP = "catalogstore.cluster_memory"
_entry_points_loaded = False
_lock = threading.Lock()
_block_backend: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "catalogstore_memory_backend", default=None)


def register_backend(name: str, target: str | type[ClusterMemory], *,
                     install_hint: str = "", replace: bool = False) -> None:
    """Make a cluster memory backend available under ``name``.

    Parameters
    ----------
    target
        The class, or ``"module:Class"`` to import it lazily.
    replace
        Allow replacing a registered backend of the same name.
    """
    if isinstance(target, type):
        if not issubclass(target, ClusterMemory):
            raise TypeError(f"{target!r} is not a ClusterMemory subclass")
        target = f"{target.__module__}:{target.__qualname__}"
    with _lock:
        if name in _BACKENDS and not replace:
            raise ConfigurationError(f"a cluster memory backend named {name!r} is registered "
                                     "already; pass replace=True to replace it")
        _BACKENDS[name] = _Backend(target, install_hint)
        _load_backend.cache_clear()


def _entry_points() -> None:
    """Register the backends that installed packages declare, once."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    from importlib.metadata import entry_points

    eps: list[EntryPoint] = list(entry_points(group=_ENTRY_POINT_GROUP))
    with _lock:
        for ep in eps:
            _BACKENDS.setdefault(ep.name, _Backend(ep.value, ""))
        _entry_points_loaded = True


@functools.cache
def _load_backend(name: str) -> type[ClusterMemory]:
    _entry_points()
    backend = _BACKENDS.get(name)
    if backend is None:
        raise ConfigurationError(
            f"unknown cluster memory backend {name!r}; known: {', '.join(sorted(_BACKENDS))}")
    module_name, _, class_name = backend.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = f"; install it with {backend.install_hint}" if backend.install_hint else ""
        raise BackendUnavailableError(
            f"the {name} cluster memory backend cannot be imported ({exc}){hint}") from exc
    cls = getattr(module, class_name)
    if not (isinstance(cls, type) and issubclass(cls, ClusterMemory)):
        raise ConfigurationError(f"{backend.target} is not a ClusterMemory subclass")
    return cls


def _detect() -> str:
    """The backend of the runtime this code runs in, without importing any runtime."""
    for name in _DETECTION_ORDER:
        # A runtime that was never imported cannot be running in this process.
        if _RUNTIME_MODULES[name] in sys.modules and _load_backend(name).is_available():
            return name
    return "local"


def detect_runtime() -> str | None:
    """The distributed runtime this code runs in (``"ray"``, ``"dask"``), else ``None``;
    never imports one."""
    name = _detect()
    return None if name == "local" else name


def resolve_backend(explicit: str | None = None) -> str:
    """The backend name :func:`get_cluster_memory` would use for ``explicit``."""
    name = explicit or _block_backend.get()
    if not name:
        from catalogstore.settings import get_settings

        name = get_settings().memory_backend
    if name == "auto":
        name = _detect()
        logger.debug("cluster memory: using the %s backend (detected)", name)
    return name


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[str]:
    """Use the backend ``name`` for every :func:`get_cluster_memory` of the block."""
    _load_backend(name)  # fail here, with the install hint, not later
    token = _block_backend.set(name)
    try:
        yield name
    finally:
        _block_backend.reset(token)


def get_cluster_memory(backend: str | None = None, *, namespace: str = "",
                       max_object_bytes: int | None = None) -> ClusterMemory:
    """The cluster memory of the executor this code runs in.

    Parameters
    ----------
    backend
        ``"local"``, ``"ray"``, ``"dask"`` or a registered name; default: see the
        module documentation.
    namespace
        Namespace of calls that name none (default: the current namespace).
    max_object_bytes
        Size limit of :meth:`ClusterMemory.put` (default: the configuration's).

    Raises
    ------
    BackendUnavailableError
        (an ``ImportError``) when an explicitly chosen backend is not installed
        or its runtime is not running; the message says how to fix it.
    """
    name = resolve_backend(backend)
    cls = _load_backend(name)
    return cls(namespace=namespace, max_object_bytes=max_object_bytes)


# -- Flowdapt's functions (issue 14): the same names and signatures -----------------------


def get_cluster_memory_backend(backend: str | None = None, **kwargs: Any) -> ClusterMemory:
    """Flowdapt's name of :func:`get_cluster_memory`.

    ``backend`` may be left out (Flowdapt requires it): it is then chosen as
    :func:`get_cluster_memory` chooses. ``kwargs`` are its keyword arguments
    (``namespace``, ``max_object_bytes``); another one raises ``TypeError``.
    """
    return get_cluster_memory(backend or None, **kwargs)


def put_in_cluster_memory(key: str, value: Any, *, namespace: str = "",
                          backend: str | None = None, **kwargs: Any) -> None:
    """Store ``value`` under ``key`` in the cluster memory of ``backend``.

    ``namespace`` defaults to the current namespace; ``kwargs`` go to
    :func:`get_cluster_memory_backend`.
    """
    get_cluster_memory_backend(backend, **kwargs).put(key, value, namespace=namespace)


def get_from_cluster_memory(key: str, *, namespace: str = "", backend: str | None = None,
                            **kwargs: Any) -> Any:
    """The value of ``key`` in the cluster memory of ``backend``.

    Raises
    ------
    ObjectNotFoundError
        (a ``KeyError``, as Flowdapt raises) when there is none.
    """
    return get_cluster_memory_backend(backend, **kwargs).get(key, namespace=namespace)


def delete_from_cluster_memory(key: str, *, namespace: str = "", backend: str | None = None,
                               **kwargs: Any) -> bool:
    """Remove ``key`` from the cluster memory of ``backend``; whether it was there."""
    return get_cluster_memory_backend(backend, **kwargs).delete(key, namespace=namespace)


def check_for_key_in_cluster_memory(key: str, *, namespace: str = "",
                                    backend: str | None = None, **kwargs: Any) -> bool:
    """Whether the cluster memory of ``backend`` holds ``key``."""
    return get_cluster_memory_backend(backend, **kwargs).exists(key, namespace=namespace)
