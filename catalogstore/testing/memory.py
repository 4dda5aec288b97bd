"""The cluster memory contract, run over every backend.

A backend's test module subclasses :class:`ClusterMemoryContract` and provides a
``memory`` fixture (a fresh, empty :class:`ClusterMemory` of that backend, its
namespace unique to the test), ``memory_kwargs`` (the arguments of
``get_cluster_memory`` that reach the same memory from another process) and
``remote`` (run a picklable function with arguments in another worker process of
the backend's executor and return its result), so every promise below is checked
across processes too. The NumPy cases are skipped where NumPy is not installed::

    from catalogstore.testing.memory import ClusterMemoryContract

    class TestMyBackend(ClusterMemoryContract):
        @pytest.fixture
        def memory(self):
            ...
"""

from __future__ import annotations

import pickle
import threading
from collections.abc import Callable
from typing import Any

import pytest

from catalogstore.cluster_memory import ClusterMemory
from catalogstore.errors import (
    InvalidNameError,
    ObjectNotFoundError,
    ObjectTooLargeError,
    SerializationError,
)

CITIES = ["St. Louis", "Moab", "Los Angeles"]


def create_cities_list(memory_kwargs: dict[str, Any]) -> None:
    """The seed's first stage (plus the test's namespace)."""
    from catalogstore.cluster_memory import get_cluster_memory

    cluster_memory = get_cluster_memory(**memory_kwargs)
    cluster_memory.put("cities_list", ["St. Louis", "Moab", "Los Angeles"])


def use_cities_list(memory_kwargs: dict[str, Any]) -> list[str]:
    """The seed's second stage."""
    from catalogstore.cluster_memory import get_cluster_memory

    cluster_memory = get_cluster_memory(**memory_kwargs)
    cities: list[str] = cluster_memory.get("cities_list")
    return cities


def remote_get(memory_kwargs: dict[str, Any], key: str) -> Any:
    from catalogstore.cluster_memory import get_cluster_memory

    return get_cluster_memory(**memory_kwargs).get(key)


def remote_put(memory_kwargs: dict[str, Any], key: str, value: Any) -> None:
    from catalogstore.cluster_memory import get_cluster_memory

    get_cluster_memory(**memory_kwargs).put(key, value)


def remote_array_sum(memory_kwargs: dict[str, Any], key: str) -> tuple[float, bool]:
    """Sum of a stored array, and whether the array the worker got is writeable."""
    from catalogstore.cluster_memory import get_cluster_memory

    array = get_cluster_memory(**memory_kwargs).get(key)
    return float(array.sum()), bool(array.flags.writeable)


class Unpicklable:
    def __reduce__(self) -> Any:
        raise TypeError("cannot pickle this")


class ClusterMemoryContract:
    """Tests every backend must pass. Subclasses provide ``memory``, ``memory_kwargs``
    (the arguments of ``get_cluster_memory`` that reach the same memory from another
    process) and ``remote(fn, *args)``."""

    def test_put_get_roundtrip(self, memory: ClusterMemory) -> None:
        values = {"list": CITIES, "dict": {"a": 1, 2: (3, 4)}, "none": None, "bytes": b"x" * 100,
                  "str": "héllo", "set": {1, 2}}
        for key, value in values.items():
            memory.put(key, value)
        for key, value in values.items():
            assert memory.get(key) == value
        assert memory.keys() == sorted(values)

    def test_replace_delete_exists(self, memory: ClusterMemory) -> None:
        memory.put("k", 1)
        memory.put("k", 2)
        assert memory.get("k") == 2
        assert memory.exists("k") and "k" in memory
        assert memory.delete("k") is True
        assert not memory.exists("k")
        assert memory.delete("k") is False  # missing: not an error
        with pytest.raises(ObjectNotFoundError):
            memory.get("k")
        with pytest.raises(KeyError):
            memory.get("never")
        with pytest.raises(KeyError):
            del memory["never"]

    def test_namespaces_are_separate(self, memory: ClusterMemory) -> None:
        memory.put("k", "mine")
        memory.put("k", "theirs", namespace="other-ns")
        assert memory.get("k") == "mine"
        assert memory.get("k", namespace="other-ns") == "theirs"
        memory.clear(namespace="")  # the handle's namespace only
        assert memory.keys() == []
        assert memory.keys(namespace="other-ns") == ["k"]
        memory.clear(namespace="other-ns")
        assert memory.keys(namespace="other-ns") == []

    def test_clear_empties_every_namespace(self, memory: ClusterMemory) -> None:
        # Flowdapt's ClusterMemory.clear() (issue 14): every namespace, not the handle's.
        memory.put("k1", 1)
        memory.put("k2", 2)
        memory.put("k3", 3, namespace="other-ns")
        assert {memory.namespace, "other-ns"} <= set(memory.namespaces())
        memory.clear()
        assert memory.namespaces() == []
        for key, namespace in (("k1", ""), ("k2", ""), ("k3", "other-ns")):
            assert not memory.exists(key, namespace=namespace)
            with pytest.raises(KeyError):
                memory.get(key, namespace=namespace)

    def test_bad_keys_are_refused(self, memory: ClusterMemory) -> None:
        for key in ("", "../x", "a/b", "a\x00"):
            with pytest.raises(InvalidNameError):
                memory.put(key, 1)
        assert memory.keys() == []

    def test_unpicklable_value(self, memory: ClusterMemory) -> None:
        memory.put("k", "old")
        with pytest.raises(SerializationError, match=r"'k'.*Unpicklable"):
            memory.put("k", Unpicklable())
        assert memory.get("k") == "old"  # nothing half-written
        with pytest.raises(SerializationError):
            memory.put("lock", threading.Lock())
        assert memory.keys() == ["k"]

    def test_size_limit(self, memory: ClusterMemory) -> None:
        limited = type(memory)(namespace=memory.namespace, max_object_bytes=1000)
        limited.put("small", b"x" * 10)
        with pytest.raises(ObjectTooLargeError, match="big"):
            limited.put("big", b"x" * 10_000)
        assert not limited.exists("big")

    def test_sizes(self, memory: ClusterMemory) -> None:
        memory.put("a", b"x" * 10_000)
        sizes = memory.sizes()
        assert set(sizes) == {"a"} and sizes["a"] >= 10_000

    def test_numpy_array(self, memory: ClusterMemory) -> None:
        np = pytest.importorskip("numpy")
        array = np.arange(1_000_000, dtype=np.float64)
        memory.put("array", array)
        got = memory.get("array")
        assert np.array_equal(got, array)
        strided = array[::3]
        memory.put("strided", strided)
        assert np.array_equal(memory.get("strided"), strided)

    def test_handle_pickles(self, memory: ClusterMemory) -> None:
        memory.put("k", "v")
        assert pickle.loads(pickle.dumps(memory)).get("k") == "v"

    # -- across processes -----------------------------------------------------------

    def test_seed_stages_in_other_processes(self, memory: ClusterMemory,
                                            memory_kwargs: dict[str, Any],
                                            remote: Callable[..., Any]) -> None:
        remote(create_cities_list, memory_kwargs)
        assert remote(use_cities_list, memory_kwargs) == CITIES
        assert memory.get("cities_list") == CITIES

    def test_put_here_get_there(self, memory: ClusterMemory, memory_kwargs: dict[str, Any],
                                remote: Callable[..., Any]) -> None:
        np = pytest.importorskip("numpy")
        memory.put("from-driver", {"x": 1})
        assert remote(remote_get, memory_kwargs, "from-driver") == {"x": 1}
        array = np.ones(2_000_000)
        memory.put("array", array)
        total, writeable = remote(remote_array_sum, memory_kwargs, "array")
        assert total == 2_000_000.0
        if memory.supports_zero_copy:
            assert writeable is False  # zero-copy views are read-only
        remote(remote_put, memory_kwargs, "from-worker", [1, 2, 3])
        assert memory.get("from-worker") == [1, 2, 3]
