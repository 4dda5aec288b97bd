"""The serializer contract (:mod:`catalogstore.testing.serializers`) for every built-in
serializer, with the values each one claims."""

from __future__ import annotations

import datetime
import io
import pickle
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
        pairs = np.zeros(3, dtype=[("x", "<f8"), ("y", ">i2")])
        pairs["y"] = [1, -2, 3]
        return [np.arange(5.0), grid, grid.T, grid[:, ::2], np.array(["a", "bc"]),
                np.zeros((0, 3)), np.array(2.5), np.arange(4, dtype=">u4"), pairs,
                np.array([True, False]), np.zeros(3, dtype=[])]

    def assert_same(self, expected: Any, got: Any) -> None:
        np = pytest.importorskip("numpy")
        assert got.dtype == expected.dtype and np.array_equal(got, expected)
        fortran = expected.flags.f_contiguous and not expected.flags.c_contiguous
        assert got.flags.f_contiguous if fortran else got.flags.c_contiguous  # its order


def _npy(value: Any) -> bytes:
    stream = io.BytesIO()
    get_serializer("npy").dump(value, stream)
    return stream.getvalue()


def test_an_array_is_read_in_place_and_writable() -> None:
    """The object store's read: the array is a view of the buffer it was read into
    (no second copy), writable; from read-only bytes, a writable copy."""
    np = pytest.importorskip("numpy")
    npy = get_serializer("npy")
    value = np.arange(1000.0).reshape(10, 100)
    data = _npy(value)
    buffer = npy.new_buffer(len(data))
    buffer[:] = np.frombuffer(data, np.uint8)
    got = npy.loads(buffer)
    assert np.shares_memory(got, buffer) and got.flags.writeable
    assert np.array_equal(got, value)
    copied = npy.loads(data)
    assert copied.flags.writeable and np.array_equal(copied, value)


class Runs:
    """Unpickling it runs code: what an object array in a .npy file could carry."""

    ran = False

    def __reduce__(self) -> Any:
        return (_ran, ())


def _ran() -> None:
    Runs.ran = True


def object_npy(version: tuple[int, int]) -> bytes:
    """A .npy file of that format version whose header says "Python objects" and whose
    data is a pickle holding :class:`Runs`."""
    np = pytest.importorskip("numpy")
    header = repr({"descr": "|O", "fortran_order": False, "shape": (1,)}).encode()
    length = 2 if version == (1, 0) else 4
    header += b" " * (63 - (8 + length + len(header)) % 64) + b"\n"  # aligned, as np.save
    payload = pickle.dumps(np.array([Runs()], dtype=object), protocol=5)
    return b"\x93NUMPY" + bytes(version) + len(header).to_bytes(length, "little") + header \
        + payload


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)])
def test_an_object_array_in_npy_bytes_is_refused_unread(version: tuple[int, int]) -> None:
    """A .npy header saying "Python objects" would have its data unpickled: refused
    from bytes and from a buffer, and nothing is run."""
    np = pytest.importorskip("numpy")
    data = object_npy(version)
    npy = get_serializer("npy")
    buffer = npy.new_buffer(len(data))
    buffer[:] = np.frombuffer(data, np.uint8)
    for source in (data, buffer):
        with pytest.raises(ValueError, match=r"[Oo]bject"):
            npy.loads(source)
    assert not Runs.ran


def test_npy_bytes_that_do_not_fill_their_header_are_refused() -> None:
    np = pytest.importorskip("numpy")
    data = _npy(np.arange(8.0))
    npy = get_serializer("npy")
    for wrong in (data[:-1], data + b"\0"):
        with pytest.raises(ValueError, match=r"bytes follow the \.npy header"):
            npy.loads(wrong)


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
