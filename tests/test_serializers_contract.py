"""The serializer contract (:mod:`catalogstore.testing.serializers`) for every built-in
serializer, with the values each one claims."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from catalogstore import serializers
from catalogstore.serializers import Serializer, get_serializer
from catalogstore.testing.serializers import SerializerContract

PLAIN = [None, True, 3, -2.5, "héllo", b"\x00bytes", [1, "a"], (1, (2,)), {"a": {1: 2}},
         {1, 2}, datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)]


def _scale(factor: int) -> Any:
    return lambda x: x * factor  # a closure: pickle refuses it


class TestPickle(SerializerContract):
    @pytest.fixture
    def serializer(self) -> Serializer:
        return get_serializer("pickle")

    @pytest.fixture
    def values(self) -> list[Any]:
        return PLAIN


class TestCloudPickle(SerializerContract):
    @pytest.fixture
    def serializer(self) -> Serializer:
        return get_serializer("cloudpickle")

    @pytest.fixture
    def values(self) -> list[Any]:
        return [*PLAIN, _scale(3)]

    def assert_same(self, expected: Any, got: Any) -> None:
        if callable(expected):
            assert got(2) == expected(2)
        else:
            super().assert_same(expected, got)


class TestJSON(SerializerContract):
    @pytest.fixture
    def serializer(self) -> Serializer:
        return get_serializer("json")

    @pytest.fixture
    def values(self) -> list[Any]:  # only what JSON keeps as it is
        return [None, True, 3, -2.5, "héllo", [1, "a", [None]], {"a": {"b": [1.5]}}]


class TestNumpy(SerializerContract):
    @pytest.fixture
    def serializer(self) -> Serializer:
        return get_serializer("npy")

    @pytest.fixture
    def values(self) -> list[Any]:
        np = pytest.importorskip("numpy")
        grid = np.arange(12, dtype=np.int32).reshape(3, 4)
        return [np.arange(5.0), grid, grid.T, grid[:, ::2], np.array(["a", "bc"]),
                np.zeros((0, 3))]

    def assert_same(self, expected: Any, got: Any) -> None:
        np = pytest.importorskip("numpy")
        assert got.dtype == expected.dtype and np.array_equal(got, expected)


class TestParquet(SerializerContract):
    @pytest.fixture
    def serializer(self) -> Serializer:
        return get_serializer("parquet")

    @pytest.fixture
    def values(self) -> list[Any]:
        pd = pytest.importorskip("pandas")
        return [pd.DataFrame({"a": [1, 2], "b": ["x", None]}),
                pd.DataFrame({"t": pd.to_datetime(["2024-01-01"])}, index=pd.Index([7], name="i"))]

    def assert_same(self, expected: Any, got: Any) -> None:
        pytest.importorskip("pandas").testing.assert_frame_equal(got, expected)


class TestArrow(SerializerContract):
    @pytest.fixture
    def serializer(self) -> Serializer:
        return get_serializer("arrow")

    @pytest.fixture
    def values(self) -> list[Any]:
        pa = pytest.importorskip("pyarrow")
        return [pa.table({"a": [1, 2], "b": ["x", None]}), pa.table({"n": pa.array([], pa.int8())})]

    def assert_same(self, expected: Any, got: Any) -> None:
        assert got.equals(expected)


def test_every_built_in_serializer_runs_the_contract() -> None:
    # The registry is private; reading it here keeps a new built-in from going untested.
    # (Other tests register serializers of their own, which are not built in.)
    built_in = {name for name, serializer in serializers._registry.items()
                if type(serializer).__module__.startswith("catalogstore.serializers")}
    tested = {cls.__name__ for cls in SerializerContract.__subclasses__()}
    names = {"pickle": "TestPickle", "cloudpickle": "TestCloudPickle", "json": "TestJSON",
             "npy": "TestNumpy", "parquet": "TestParquet", "arrow": "TestArrow"}
    assert built_in <= set(names), f"add a contract test of {sorted(built_in - set(names))}"
    assert {names[name] for name in built_in} <= tested
