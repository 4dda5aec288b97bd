"""Choosing a cluster memory backend: explicit > block > configuration > runtime > local."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest

import catalogstore
from catalogstore.cluster_memory import (
    ClusterMemory,
    get_cluster_memory,
    register_backend,
    resolve_backend,
    use_backend,
)
from catalogstore.errors import BackendUnavailableError, ConfigurationError


class DictMemory(ClusterMemory):
    """A minimal in-process backend: proves third-party registration works."""

    name = "dict"
    store: dict[tuple[str, str], Any] = {}

    def _put(self, namespace: str, key: str, value: Any) -> None:
        self.store[(namespace, key)] = value

    def _get(self, namespace: str, key: str) -> Any:
        try:
            return self.store[(namespace, key)]
        except KeyError:
            raise self._missing(namespace, key) from None

    def _delete(self, namespace: str, key: str) -> bool:
        return self.store.pop((namespace, key), None) is not None

    def _exists(self, namespace: str, key: str) -> bool:
        return (namespace, key) in self.store

    def _keys(self, namespace: str) -> list[str]:
        return [k for ns, k in self.store if ns == namespace]

    def _sizes(self, namespace: str) -> dict[str, int]:
        return {k: sys.getsizeof(v) for (ns, k), v in self.store.items() if ns == namespace}

    def _namespaces(self) -> list[str]:
        return sorted({ns for ns, _ in self.store})


@pytest.fixture(scope="module", autouse=True)
def _dict_backend() -> None:
    register_backend("dict", DictMemory, replace=True)


def test_default_outside_any_runtime_is_local() -> None:
    # A fresh interpreter: no Ray or Dask was imported, so none can be running.
    code = textwrap.dedent("""
        import sys
        from catalogstore.cluster_memory import resolve_backend
        print(resolve_backend(), "ray" in sys.modules, "distributed" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["local", "False", "False"]


def test_order_of_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_backend("dict") == "dict"
    monkeypatch.setenv("CATALOGSTORE_MEMORY_BACKEND", "dict")
    assert resolve_backend() == "dict"
    assert isinstance(get_cluster_memory(), DictMemory)
    with use_backend("local"):
        assert resolve_backend() == "local"  # the block beats the configuration
        assert resolve_backend("dict") == "dict"  # the argument beats the block
    catalogstore.configure(memory_backend="auto")
    assert resolve_backend() in ("local", "ray", "dask")


def test_registered_backend_follows_the_contract() -> None:
    memory = get_cluster_memory("dict", namespace="sel")
    memory.put("k", [1, 2])
    assert memory.get("k") == [1, 2]
    assert memory.keys() == ["k"]
    with catalogstore.namespace("sel"):
        assert get_cluster_memory("dict")["k"] == [1, 2]
    assert memory.delete("k") and not memory.delete("k")


def test_errors() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown cluster memory backend .nope.*dask"):
        get_cluster_memory("nope")
    with pytest.raises(ConfigurationError, match="registered already"):
        register_backend("dict", DictMemory)
    with pytest.raises(TypeError):
        register_backend("bad", dict)  # type: ignore[arg-type]
    register_backend("missing", "catalogstore_no_such_module:Memory",
                     install_hint="pip install catalogstore-missing")
    with pytest.raises(BackendUnavailableError, match="pip install catalogstore-missing"):
        get_cluster_memory("missing")
    with pytest.raises(ImportError):
        use_backend("missing").__enter__()
    with pytest.raises(ConfigurationError, match="CATALOGSTORE_MEMORY_BACKEND"):
        catalogstore.configure(memory_backend="Not A Name")
