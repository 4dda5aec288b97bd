"""The object store's artifact tier: serializers, layout, integrity, on both stacks."""

from __future__ import annotations

import io
import json
import pickle
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from catalogstore.artifacts import get_artifact, new_artifact
from catalogstore.errors import (
    ConfigurationError,
    CorruptArtifactError,
    ObjectNotFoundError,
    SerializationError,
    UntrustedObjectError,
)
from catalogstore.object_store import INLINE_LIMIT, Strategy, delete, exists, flush, get, put
from catalogstore.serializers import Serializer, get_serializer, register_serializer


def roundtrip(key: str, value: Any, **kwargs: Any) -> Any:
    put(key, value, artifact_only=True, **kwargs)
    return get(key, artifact_only=True)


def test_dataframe_with_mixed_dtypes_and_nan(stack):
    df = pd.DataFrame({
        "i": [1, 2, 3], "f": [0.5, np.nan, 2.5], "s": ["a", None, "c"],
        "b": [True, False, True], "t": pd.to_datetime(["2024-01-01", "2024-01-02", None]),
        "c": pd.Categorical(["x", "y", "x"]),
    }, index=pd.Index([10, 20, 30], name="row"))
    got = roundtrip("frame", df)
    pd.testing.assert_frame_equal(got, df)
    artifact = get_artifact("frame")
    assert [f.name for f in artifact.list_files()] == ["object.parquet"]
    assert artifact["serializer"] == "parquet"
    assert artifact["python_type"] == "pandas.DataFrame"
    assert artifact["value_type"] == "object"
    file = artifact.get_file("object.parquet")
    assert file.size > 0 and file.checksum.startswith("xxh128:")
    # Parquet any tool reads: pyarrow straight from the storage, once a small value's
    # files are written (after its commit, issue 19).
    import pyarrow.parquet as pq

    flush()
    with stack.filesystem().open(file.path, "rb") as f:
        assert pq.read_table(f).num_rows == 3


def test_numpy_arrays(stack):
    array = np.arange(60, dtype=np.float32).reshape(6, 10)
    strided = array[::2, ::3]
    assert not strided.flags.c_contiguous
    np.testing.assert_array_equal(roundtrip("strided", strided), strided)
    assert get_artifact("strided")["serializer"] == "npy"
    # .npy that numpy reads straight from the storage (once written: issue 19)
    flush()
    with stack.filesystem().open(get_artifact("strided").get_file("object.npy").path, "rb") as f:
        np.testing.assert_array_equal(np.load(f), strided)
    objects = np.array([{"a": 1}, None], dtype=object)
    got = roundtrip("objects", objects)
    assert got.tolist() == objects.tolist()
    assert get_artifact("objects")["serializer"] == "pickle"


def test_pickle_cloudpickle_json_arrow(stack):
    nested = {1: {(2, 3): [4.5, None]}, "k": {frozenset({1}): b"bytes"}}
    assert roundtrip("nested", nested) == nested
    assert get_artifact("nested")["serializer"] == "pickle"
    square = roundtrip("square", lambda x: x * x)
    assert square(7) == 49
    assert get_artifact("square")["serializer"] == "cloudpickle"
    assert roundtrip("doc", {"a": [1, 2], "b": "ü"}, serializer="json") == {"a": [1, 2],
                                                                           "b": "ü"}
    assert [f.name for f in get_artifact("doc").list_files()] == ["object.json"]
    table = pa.table({"x": [1, 2], "y": ["a", "b"]})
    assert roundtrip("table", table).equals(table)
    assert get_artifact("table")["serializer"] == "arrow"


def test_flowdapt_layout_for_pickled_objects(stack):
    put("thing", {"a": 1}, artifact_only=True)
    artifact = get_artifact("thing")
    assert [f.name for f in artifact.list_files()] == ["object"]
    assert artifact["value_type"] == "object"
    # Flowdapt's load hook: plain pickle.loads of the file named "object".
    assert pickle.loads(artifact.get_file("object").read()) == {"a": 1}


def test_replace_changes_format_and_cleans_up(stack):
    put("k", {"v": 1}, artifact_only=True)
    put("k", np.zeros(3), artifact_only=True)
    artifact = get_artifact("k")
    assert [f.name for f in artifact.list_files()] == ["object.npy"]
    assert artifact["serializer"] == "npy"
    np.testing.assert_array_equal(get("k", artifact_only=True), np.zeros(3))


def test_delete_and_exists(stack):
    assert not exists("gone", artifact_only=True)
    delete("gone", artifact_only=True)  # missing: a no-op
    with pytest.raises(ObjectNotFoundError):
        get("gone", artifact_only=True)
    with pytest.raises(KeyError):
        get("gone", strategy=Strategy.ARTIFACT)
    assert get("gone", artifact_only=True, default="d") == "d"
    from catalogstore.artifacts import list_artifacts

    assert list_artifacts() == []  # nothing was created by any of it
    put("here", 1, artifact_only=True)
    assert exists("here", artifact_only=True)
    delete("here", artifact_only=True)
    assert not exists("here", artifact_only=True)


def test_tampered_bytes_are_refused_before_unpickling(stack, tmp_path):
    marker = tmp_path / "exploited"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    # A value over INLINE_LIMIT is read from its file; a small one from the catalog,
    # never from the storage (issue 19).
    large = {"safe": True, "pad": "x" * INLINE_LIMIT}
    for key, value in (("victim", large), ("small", {"safe": True})):
        put(key, value, artifact_only=True)
        flush()
        file = get_artifact(key).get_file("object")
        fs = stack.filesystem()
        with fs.open(file.path, "wb") as f:  # behind the catalog's back
            f.write(pickle.dumps(Exploit()))
    with pytest.raises(CorruptArtifactError, match="checksum"):
        get("victim", artifact_only=True)
    assert get("small", artifact_only=True) == {"safe": True}
    assert not marker.exists()


def test_objects_the_store_did_not_write_are_not_unpickled(stack):
    artifact = new_artifact("foreign")
    artifact.new_file("object", content=pickle.dumps([1, 2]))
    artifact["value_type"] = "object"  # as Flowdapt lays it out
    with pytest.raises(UntrustedObjectError, match="serializer='cloudpickle'"):
        get("foreign", artifact_only=True)
    assert get("foreign", artifact_only=True, serializer="cloudpickle") == [1, 2]
    new_artifact("plain").new_file("data", content=b"x")
    with pytest.raises(ObjectNotFoundError, match="user artifact, not an object"):
        get("plain", artifact_only=True)


def test_unserializable_values(stack):
    import threading

    with pytest.raises(SerializationError, match=r"'lock'.*_thread.lock"):
        put("lock", threading.Lock(), artifact_only=True)
    with pytest.raises(SerializationError):
        put("nan", {"x": float("nan")}, artifact_only=True, serializer="json")
    with pytest.raises(ConfigurationError, match="unknown serializer"):
        put("x", 1, artifact_only=True, serializer="nope")
    assert not exists("lock", artifact_only=True) and not exists("nan", artifact_only=True)


class Point:
    def __init__(self, x: float, y: float) -> None:
        self.x, self.y = x, y


class PointSerializer(Serializer):
    name = "point"
    file_name = "point.csv"
    types = (f"{__name__}.Point",)

    def dump(self, value: Point, stream: io.BufferedIOBase) -> None:
        stream.write(f"{value.x},{value.y}".encode())

    def load(self, stream: io.BufferedIOBase) -> Point:
        x, y = stream.read().decode().split(",")
        return Point(float(x), float(y))


def test_user_serializer(stack):
    register_serializer(PointSerializer, replace=True)
    got = roundtrip("p", Point(1.5, 2.0))
    assert (got.x, got.y) == (1.5, 2.0)
    artifact = get_artifact("p")
    assert artifact["serializer"] == "point"
    assert artifact.get_file("point.csv").read() == b"1.5,2.0"
    assert isinstance(get_serializer("point"), PointSerializer)
    with pytest.raises(ConfigurationError, match="registered already"):
        register_serializer(PointSerializer)


def test_metadata_is_json_in_storage(stack):
    put("meta", [1], artifact_only=True)
    flush()  # a small value's files are written after its commit (issue 19)
    fs = stack.filesystem()
    fs.invalidate_cache()
    meta = json.loads(fs.cat_file(f"{get_artifact('meta').path}/.artifact.json"))
    assert meta == {"value_type": "object", "serializer": "pickle",
                    "serializer_version": "1", "python_type": "builtins.list"}
