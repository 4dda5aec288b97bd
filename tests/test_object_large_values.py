"""Large object store values read into one buffer (issue 19, part 2).

``get`` of a large NumPy array reads the file into one preallocated buffer, hashes it
chunk by chunk as it lands, and returns the array as a view of that buffer past the
``.npy`` header: no intermediate ``bytes``, no second copy, writable. Parquet values are
read into a pyarrow buffer that pyarrow's reader reads in place. Bytes that are not
those the catalog recorded (changed, truncated, grown) raise ``CorruptArtifactError``
and nothing is returned; an ``.npy`` header naming Python objects is never unpickled.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from catalogstore.artifacts import new_artifact
from catalogstore.errors import CorruptArtifactError, SerializationError
from catalogstore.object_store import INLINE_LIMIT, adopt, get, put
from tests.conftest import Stack
from tests.test_serializers_contract import Runs, object_npy

MIB = 1 << 20


def _object_path(stack: Stack, key: str, file_name: str) -> str:
    return f"{stack.root}/artifacts/default/{key}/{file_name}"


def test_a_large_array_is_read_into_one_buffer(local_stack: Stack) -> None:
    """get allocates the array's bytes once: the peak of traced memory is about the
    array's size (the file read into ``bytes`` and then decoded made it twice that)."""
    value = np.random.default_rng(19).random(32 * MIB // 8)
    put("big", value, artifact_only=True)
    get("big", artifact_only=True)  # the first read of a process imports and caches
    gc.collect()
    tracemalloc.start()
    try:
        got = get("big", artifact_only=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert value.nbytes <= peak < 1.25 * value.nbytes
    assert np.array_equal(got, value) and got.dtype == value.dtype
    # Writable, and the caller's own: changing it changes nothing stored.
    assert got.flags.writeable
    got[:] = 0
    assert np.array_equal(get("big", artifact_only=True), value)


def _flip(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1:]


CHANGES: dict[str, Callable[[bytes], bytes]] = {
    "changed": _flip,
    "truncated": lambda data: data[:len(data) // 2],
    "grown": lambda data: data + b"\0" * 8,
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_large_value_whose_file_changed_is_refused(stack: Stack, change: str) -> None:
    """Another tool changed the file behind the catalog: get raises and returns nothing,
    for an array (read into a NumPy buffer) and a DataFrame (a pyarrow buffer)."""
    pd = pytest.importorskip("pandas")
    values: dict[str, tuple[Any, str]] = {
        "array": (np.arange(MIB // 8, dtype=np.float64), "object.npy"),
        "frame": (pd.DataFrame({"x": np.arange(50_000.0)}), "object.parquet"),
    }
    fs = stack.filesystem()
    for key, (value, file_name) in values.items():
        put(key, value, artifact_only=True)
        path = _object_path(stack, key, file_name)
        data = fs.cat_file(path)
        assert len(data) > INLINE_LIMIT  # a file, not a value the catalog keeps
        fs.pipe_file(path, CHANGES[change](data))
        with pytest.raises(CorruptArtifactError, match="does not match the checksum"):
            get(key, artifact_only=True)
        put(key, value, artifact_only=True)  # put again: read as before
        got = get(key, artifact_only=True)
        if key == "array":
            assert np.array_equal(got, value)
        else:
            pd.testing.assert_frame_equal(got, value)


def test_large_parquet_values_round_trip(stack: Stack) -> None:
    pd = pytest.importorskip("pandas")
    pa = pytest.importorskip("pyarrow")
    frame = pd.DataFrame({"x": np.arange(100_000), "y": np.arange(100_000) * 0.5},
                         index=pd.RangeIndex(100_000, name="i"))
    table = pa.table({"t": pa.array(np.arange(100_000.0))})
    put("frame", frame, artifact_only=True)
    put("table", table, artifact_only=True)
    pd.testing.assert_frame_equal(get("frame"), frame)
    assert get("table").equals(table)


def test_an_npy_file_holding_python_objects_is_never_unpickled(local_stack: Stack) -> None:
    """Another tool wrote an object artifact whose ``.npy`` header says "Python objects"
    (its data a pickle): read deliberately with the npy serializer, or adopted, it is
    refused, and nothing in it runs."""
    data = object_npy((1, 0))
    artifact = new_artifact("evil")
    with artifact.transaction():
        artifact.new_file("object.npy", data)
        artifact.update_meta({"value_type": "object", "serializer": "npy"})
    with pytest.raises(SerializationError, match="Python objects"):
        get("evil", serializer="npy")
    adopt("evil")
    with pytest.raises(SerializationError, match="Python objects"):
        get("evil")
    assert not Runs.ran
