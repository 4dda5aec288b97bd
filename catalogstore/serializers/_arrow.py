"""pandas DataFrames and Arrow tables as Parquet, which most data tools read directly."""

from __future__ import annotations

from typing import IO, Any

from catalogstore.serializers.base import Serializer


class _Parquet(Serializer):
    """A Parquet file, which the object store reads into a buffer of pyarrow's own
    (aligned, from its memory pool) that pyarrow's reader then reads in place."""

    file_name = "object.parquet"

    def new_buffer(self, size: int) -> Any:
        import pyarrow as pa

        return pa.allocate_buffer(size)


class ParquetSerializer(_Parquet):
    """A pandas DataFrame as Parquet (pyarrow), index and dtypes kept in its schema.

    DataFrames whose column names are not all strings go to pickle instead:
    Parquet would turn the names into strings.
    """

    name = "parquet"
    types = ("pandas.DataFrame",)

    def accepts(self, value: Any) -> bool:
        return all(isinstance(column, str) for column in value.columns)

    def dump(self, value: Any, stream: IO[bytes]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pandas(value, preserve_index=True), stream)

    def load(self, stream: IO[bytes]) -> Any:
        import pyarrow.parquet as pq

        return pq.read_table(stream).to_pandas()

    def loads(self, data: Any) -> Any:
        return _read_buffer(data).to_pandas()


class ArrowSerializer(_Parquet):
    """A pyarrow Table as Parquet, read back as a Table."""

    name = "arrow"
    types = ("pyarrow.Table",)

    def dump(self, value: Any, stream: IO[bytes]) -> None:
        import pyarrow.parquet as pq

        pq.write_table(value, stream)

    def load(self, stream: IO[bytes]) -> Any:
        import pyarrow.parquet as pq

        return pq.read_table(stream)

    def loads(self, data: Any) -> Any:
        return _read_buffer(data)


def _read_buffer(data: Any) -> Any:
    """The Parquet table in ``data`` (bytes, or a pyarrow buffer), read in place: pyarrow
    reading a Python stream would copy every column chunk out of it first."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pq.read_table(pa.BufferReader(data))
