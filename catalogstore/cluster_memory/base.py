"""The cluster memory interface that every backend implements.

A backend stores Python objects (not bytes: Ray and Dask serialize better than
we could, and the local backend keeps NumPy buffers zero-copy) under a
``(namespace, key)`` pair. The public methods validate keys and namespaces,
enforce the size limit and translate errors; backends implement the
underscored primitives.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from catalogstore.context import current_namespace
from catalogstore.errors import ObjectNotFoundError, ObjectTooLargeError
from catalogstore.names import validate_name

DEFAULT_MAX_OBJECT_BYTES = 4 << 30
"""Size limit of a backend when neither the caller nor the configuration sets one."""


class ClusterMemory(ABC):
    """Fast, ephemeral sharing of Python objects between the processes of an executor.

    Parameters
    ----------
    namespace
        Namespace of calls that name none (default: the current namespace, see
        :func:`catalogstore.namespace`).
    max_object_bytes
        Largest object :meth:`put` accepts; larger ones raise
        :class:`~catalogstore.errors.ObjectTooLargeError` (the object store then
        falls back to artifacts). Default: ``CATALOGSTORE_MEMORY_MAX_OBJECT_BYTES``,
        else :data:`DEFAULT_MAX_OBJECT_BYTES`.
    """

    name: ClassVar[str]
    """Registry name of the backend."""
    supports_zero_copy: ClassVar[bool] = False
    """``get`` of a NumPy array maps the stored buffer instead of copying it."""
    is_distributed: ClassVar[bool] = False
    """Processes on several machines see the same objects."""

    @property
    def outlives_process(self) -> bool:
        """Whether what this process puts outlives it: an executor's runtime or session
        holds it (the default), not only the process itself. The object store's
        ``fallback`` strategy uses cluster memory only when it does (issue 13)."""
        return True

    @property
    def location(self) -> str:
        """Where values live, as messages name it (backend, session)."""
        return f"{self.name} cluster memory"

    def __init__(self, namespace: str = "", max_object_bytes: int | None = None) -> None:
        if namespace:
            validate_name(namespace, "namespace")
        self._namespace = namespace
        if max_object_bytes is None:
            from catalogstore.settings import get_settings

            max_object_bytes = get_settings().memory_max_object_bytes
        self.max_object_bytes = max_object_bytes or DEFAULT_MAX_OBJECT_BYTES

    def __repr__(self) -> str:
        return f"{type(self).__name__}(namespace={self.namespace!r})"

    @classmethod
    def is_available(cls) -> bool:
        """Whether this backend's runtime is running here (auto-detection asks this)."""
        return False

    @property
    def namespace(self) -> str:
        return current_namespace(self._namespace)

    def _ns(self, namespace: str) -> str:
        return current_namespace(namespace or self._namespace)

    def _check_size(self, key: str, nbytes: int) -> None:
        if nbytes > self.max_object_bytes:
            raise ObjectTooLargeError(
                f"{key!r} takes {nbytes} bytes, over the {self.name} cluster memory limit of "
                f"{self.max_object_bytes} bytes (CATALOGSTORE_MEMORY_MAX_OBJECT_BYTES)")

    def _missing(self, namespace: str, key: str) -> ObjectNotFoundError:
        return ObjectNotFoundError(
            f"no object {key!r} in namespace {namespace!r} of the {self.name} cluster memory")

    # -- public API -------------------------------------------------------------

    def put(self, key: str, value: Any, *, namespace: str = "") -> None:
        """Store ``value`` under ``key``, replacing what was there (atomically)."""
        self._put(self._ns(namespace), validate_name(key, "key"), value)

    def get(self, key: str, *, namespace: str = "") -> Any:
        """The value stored under ``key``.

        Raises
        ------
        ObjectNotFoundError
            (a ``KeyError``) when there is none.
        """
        return self._get(self._ns(namespace), validate_name(key, "key"))

    def delete(self, key: str, *, namespace: str = "") -> bool:
        """Remove ``key``; returns whether it existed (a missing key is not an error)."""
        return self._delete(self._ns(namespace), validate_name(key, "key"))

    def exists(self, key: str, *, namespace: str = "") -> bool:
        return self._exists(self._ns(namespace), validate_name(key, "key"))

    def keys(self, *, namespace: str = "") -> list[str]:
        """The keys of a namespace, sorted."""
        return sorted(self._keys(self._ns(namespace)))

    def sizes(self, *, namespace: str = "") -> dict[str, int]:
        """Bytes held per key of a namespace (as the backend accounts them)."""
        return self._sizes(self._ns(namespace))

    def namespaces(self) -> list[str]:
        """The namespaces that hold at least one object, sorted."""
        return sorted(self._namespaces())

    def clear(self, *, namespace: str | None = None) -> None:
        """Remove every object of every namespace, or of ``namespace`` only.

        As Flowdapt's ``ClusterMemory.clear()`` (issue 14): without an argument the
        whole memory is emptied, whatever namespace the handle is bound to; pass
        ``namespace=""`` for the handle's (current) namespace alone.
        """
        if namespace is None:
            for name in self._namespaces():
                self._clear(name)
        else:
            self._clear(self._ns(namespace))

    def close(self) -> None:  # noqa: B027 - most backends hold nothing per handle
        """Release what this handle holds in this process (stored objects stay)."""

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.exists(key)

    def __getitem__(self, key: str) -> Any:
        return self.get(key)

    def __setitem__(self, key: str, value: Any) -> None:
        self.put(key, value)

    def __delitem__(self, key: str) -> None:
        if not self.delete(key):
            raise self._missing(self.namespace, key)

    def __enter__(self) -> ClusterMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- backend primitives -------------------------------------------------------

    @abstractmethod
    def _put(self, namespace: str, key: str, value: Any) -> None: ...

    @abstractmethod
    def _get(self, namespace: str, key: str) -> Any: ...

    @abstractmethod
    def _delete(self, namespace: str, key: str) -> bool: ...

    @abstractmethod
    def _exists(self, namespace: str, key: str) -> bool: ...

    @abstractmethod
    def _keys(self, namespace: str) -> list[str]: ...

    @abstractmethod
    def _sizes(self, namespace: str) -> dict[str, int]: ...

    def _clear(self, namespace: str) -> None:
        for key in self._keys(namespace):
            self._delete(namespace, key)

    @abstractmethod
    def _namespaces(self) -> list[str]:
        """The namespaces holding objects (``clear()`` empties each of them)."""
