"""Bounded previews of what a file holds: text and JSON (first lines), Parquet and
Arrow (schema and first rows, with pyarrow), ``.npy`` (dtype, shape, a few values),
images (shown inline by the page when small enough).

The file is the storage's, so hostile input: every preview reads it through
:class:`_Bounded`, which refuses to hand out more than a fixed number of bytes,
and nothing is unpickled (a ``.npy`` header is parsed here with
:func:`ast.literal_eval`, an object array is not read at all).
"""

from __future__ import annotations

import ast
import io
import json
import re
from typing import IO, Any

from catalogstore.bounded_json import parse_document
from catalogstore.errors import InvalidDocumentError
from catalogstore.names import validate_file_name
from catalogstore.web.api import artifact_ref, open_artifact, shown

TEXT_BYTES = 64 * 1024
"""Bytes of a text or JSON file a preview reads."""
TEXT_LINES = 200
LINE_CHARS = 2000
TABLE_BYTES = 16 * 1024 * 1024
"""Bytes of a Parquet or Arrow file a preview may read (footer and first row group)."""
TABLE_ROWS = 20
TABLE_COLUMNS = 50
NPY_VALUES = 20
NPY_HEADER = 64 * 1024
IMAGE_BYTES = 4 * 1024 * 1024
"""Images up to this size are shown inline; bigger ones only as a download."""

IMAGE_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg",
               b"GIF87a": "image/gif", b"GIF89a": "image/gif"}
"""Raster images by their first bytes (never SVG: it may hold scripts)."""


class PreviewLimitError(Exception):
    """A preview would read more than its bound."""


class _Bounded(io.RawIOBase):
    """A read-only view of ``file`` that raises once ``budget`` bytes were read."""

    def __init__(self, file: IO[bytes], budget: int) -> None:
        self._file = file
        self.budget = budget
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return bool(self._file.seekable())

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return int(self._file.seek(offset, whence))

    def tell(self) -> int:
        return int(self._file.tell())

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        want = len(view)
        if self.read_bytes + want > self.budget:
            raise PreviewLimitError(f"a preview reads at most {self.budget} bytes")
        data = self._file.read(want)
        view[:len(data)] = data
        self.read_bytes += len(data)
        return len(data)


def image_type(head: bytes) -> str | None:
    """The content type of a raster image starting with ``head``, else ``None``."""
    for magic, kind in IMAGE_TYPES.items():
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def preview(namespace: str, name: str, file: str) -> dict[str, Any]:
    """A bounded look at ``file`` of the artifact ``namespace/name`` (``NAME:vN`` or
    ``NAME@ALIAS``: of that version, its bytes as that version holds them).

    Returns ``{"file", "ref", "size", "kind", "bytes_read", ...}`` where ``kind`` is
    ``text``, ``json``, ``table`` (Parquet or Arrow), ``npy``, ``image`` or
    ``binary``, with what the kind shows; ``note`` says why something is left out.

    Raises
    ------
    InvalidNameError
        for a bad namespace, name or file name.
    NotFoundError
        when the artifact or the file does not exist.
    """
    found = open_artifact(namespace, name)
    handle = found.get_file(validate_file_name(file))
    size = handle.info.size
    answer: dict[str, Any] = {"namespace": found.namespace, "name": found.name,
                              "ref": artifact_ref(found), "file": file, "size": size}
    with handle.open("rb") as raw:
        bounded = _Bounded(raw, max(TABLE_BYTES, IMAGE_BYTES))
        head = bounded.read(16)
        bounded.seek(0)
        lower = file.lower()
        try:
            if head.startswith(b"\x93NUMPY") or lower.endswith(".npy"):
                answer.update(_npy(bounded))
            elif head.startswith(b"PAR1") or lower.endswith(".parquet"):
                answer.update(_table(bounded, "parquet"))
            elif head.startswith(b"ARROW1") or lower.endswith((".arrow", ".feather")):
                answer.update(_table(bounded, "arrow"))
            elif image_type(head):
                answer.update(kind="image", content_type=image_type(head),
                              inline=size <= IMAGE_BYTES)
                if size > IMAGE_BYTES:
                    answer["note"] = f"larger than {IMAGE_BYTES} bytes: not shown inline"
            else:
                answer.update(_text(bounded, size, lower.endswith(".json")))
        except PreviewLimitError as exc:
            answer.update(kind="binary", note=str(exc))
        answer["bytes_read"] = bounded.read_bytes
    return answer


def _text(file: _Bounded, size: int, is_json: bool) -> dict[str, Any]:
    data = file.read(TEXT_BYTES)
    whole = len(data) == size
    if b"\x00" in data:
        return {"kind": "binary", "note": "not text (a NUL byte in its first bytes)",
                "hex": data[:256].hex(" ")}
    text = data.decode("utf-8", errors="replace")
    if is_json and whole:
        try:
            return {"kind": "json", "lines": _lines(json.dumps(parse_document(data), indent=2,
                                                               ensure_ascii=False)),
                    "truncated": False}
        except InvalidDocumentError:  # not JSON, or beyond the bounds (too deep...)
            pass  # shown as text
    lines = _lines(text)
    return {"kind": "json" if is_json else "text", "lines": lines,
            "truncated": not whole or len(lines) == TEXT_LINES}


def _lines(text: str) -> list[str]:
    return [line[:LINE_CHARS] for line in text.splitlines()[:TEXT_LINES]]


def _table(file: _Bounded, fmt: str) -> dict[str, Any]:
    try:
        import pyarrow as pa
        import pyarrow.ipc
        import pyarrow.parquet as pq
    except ImportError:
        return {"kind": "binary", "note": f"{fmt}: install pyarrow to see its schema and rows"}
    try:
        if fmt == "parquet":
            parquet = pq.ParquetFile(file)
            schema = parquet.schema_arrow
            rows = parquet.metadata.num_rows
            first = next(parquet.iter_batches(batch_size=TABLE_ROWS), None)
        else:
            reader = pa.ipc.open_file(file)
            schema = reader.schema
            batches = reader.num_record_batches
            first = reader.get_batch(0) if batches else None
            rows = 0 if first is None else first.num_rows if batches == 1 else None
    except PreviewLimitError:
        raise
    except (pa.ArrowException, OSError, ValueError) as exc:
        return {"kind": "binary", "note": f"not readable as {fmt}: {str(exc)[:300]}"}
    names = schema.names[:TABLE_COLUMNS]
    table = [] if first is None else first.slice(0, TABLE_ROWS).to_pylist()
    return {"kind": "table", "format": fmt,
            "schema": [{"name": f.name, "type": str(f.type)} for f in schema][:TABLE_COLUMNS],
            "columns_total": len(schema.names), "rows_total": rows, "columns": names,
            "rows": [[shown(_plain(row.get(n))) for n in names] for row in table]}


def _plain(value: Any) -> Any:
    """A cell as JSON can show it (dates, bytes and decimals as text)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value[:64].hex()
    return str(value)


_SIMPLE_DTYPE = re.compile(r"[<>|=]?[biufcSUMm?][0-9]*(\[[a-z]+\])?")


def _npy(file: _Bounded) -> dict[str, Any]:
    magic = file.read(8)
    if len(magic) < 8 or not magic.startswith(b"\x93NUMPY"):
        return {"kind": "binary", "note": "not a .npy file (no NUMPY magic)"}
    major = magic[6]
    width = 2 if major == 1 else 4
    length = int.from_bytes(file.read(width), "little")
    if length > NPY_HEADER:
        return {"kind": "binary", "note": f".npy header of {length} bytes: not read"}
    try:
        header = ast.literal_eval(file.read(length).decode("latin-1" if major < 3 else "utf-8"))
        descr, fortran, shape = header["descr"], header["fortran_order"], header["shape"]
        if not (isinstance(shape, tuple) and all(isinstance(n, int) and n >= 0 for n in shape)):
            raise ValueError("bad shape")
    except (ValueError, SyntaxError, KeyError, TypeError, MemoryError, RecursionError):
        return {"kind": "binary", "note": ".npy header not readable"}
    answer: dict[str, Any] = {"kind": "npy", "dtype": str(descr), "shape": list(shape),
                              "fortran_order": bool(fortran), "values": None}
    count = 1
    for n in shape:
        count *= n
    if not isinstance(descr, str) or not _SIMPLE_DTYPE.fullmatch(descr):
        answer["note"] = "structured or object dtype: values not shown (never unpickled)"
        return answer
    try:
        import numpy as np
    except ImportError:
        answer["note"] = "install numpy to see values"
        return answer
    dtype = np.dtype(descr)
    take = min(count, NPY_VALUES)
    data = file.read(take * dtype.itemsize)
    values = np.frombuffer(data, dtype=dtype, count=len(data) // dtype.itemsize)
    answer["values"] = [shown(_plain(v)) for v in values.tolist()]
    answer["note"] = (f"first {len(answer['values'])} of {count} values in "
                      f"{'Fortran' if fortran else 'C'} order")
    return answer
