"""The file format of the local cluster memory, and whole-file I/O.

A file is a header (magic, version, buffer count, pickle length, then offset and
length of each buffer), the pickle (protocol 5) right after it, then each
out-of-band buffer at a 64-byte aligned offset. Reading hands the buffers to
``pickle.loads`` as slices of whatever holds the file (a read-only mapping for
large files), so arrays built on them are zero-copy and read-only.
"""

from __future__ import annotations

import os
import pickle
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from catalogstore.errors import SerializationError, type_name

MAGIC = b"CSMEMOBJ"
VERSION = 1
_HEAD = struct.Struct("<8sIIQ")  # magic, version, buffer count, pickle length
_SPAN = struct.Struct("<QQ")  # offset, length of one out-of-band buffer
ALIGN = 64
_ZEROS = bytes(ALIGN)
_IOV_MAX = min(os.sysconf("SC_IOV_MAX"), 1024) if hasattr(os, "sysconf") else 16


@dataclass
class Payload:
    """A value pickled in memory: the header and pickle bytes, and views of its buffers."""

    head: bytes
    main: bytes
    buffers: list[memoryview]
    offsets: list[int]
    size: int

    def parts(self) -> list[bytes | memoryview]:
        """The whole file content as consecutive pieces (padding included)."""
        parts: list[bytes | memoryview] = [self.head, self.main]
        pos = len(self.head) + len(self.main)
        for offset, buffer in zip(self.offsets, self.buffers, strict=True):
            if offset > pos:
                parts.append(_ZEROS[:offset - pos])
            parts.append(buffer)
            pos = offset + buffer.nbytes
        return parts

    def placed(self) -> Iterator[tuple[int, bytes | memoryview]]:
        """``(offset, piece)`` of the content that matters (no padding)."""
        yield 0, self.head
        yield len(self.head), self.main
        yield from zip(self.offsets, self.buffers, strict=True)


def dumps(key: str, value: Any) -> Payload:
    """Pickle ``value`` (protocol 5), keeping its contiguous buffers out of band, uncopied."""
    buffers: list[memoryview] = []

    def out_of_band(buffer: pickle.PickleBuffer) -> bool:
        try:
            buffers.append(buffer.raw())
        except BufferError:  # not contiguous: pickle copies it into the stream instead
            return True
        return False

    try:
        main = pickle.dumps(value, protocol=5, buffer_callback=out_of_band)
    except Exception as exc:  # pickle raises PicklingError, TypeError, AttributeError, ...
        raise SerializationError(
            f"cannot put {key!r} in the local cluster memory: a {type_name(value)} cannot "
            f"be pickled ({type(exc).__name__}: {exc})") from exc
    pos = _HEAD.size + _SPAN.size * len(buffers) + len(main)
    offsets = []
    for buffer in buffers:
        pos = (pos + ALIGN - 1) & -ALIGN
        offsets.append(pos)
        pos += buffer.nbytes
    head = _HEAD.pack(MAGIC, VERSION, len(buffers), len(main)) + b"".join(
        _SPAN.pack(offset, buffer.nbytes) for offset, buffer in zip(offsets, buffers, strict=True))
    return Payload(head, main, buffers, offsets, pos)


def loads(key: str, data: Any) -> tuple[Any, int]:
    """The value in ``data`` (bytes or a mapping) and how many buffers refer into it."""
    view = memoryview(data)
    try:
        magic, version, count, main_len = _HEAD.unpack_from(view, 0)
        if magic != MAGIC or version != VERSION:
            raise ValueError(f"not a catalogstore object (magic {magic!r}, version {version})")
        spans = [_SPAN.unpack_from(view, _HEAD.size + i * _SPAN.size) for i in range(count)]
        start = _HEAD.size + _SPAN.size * count
        if start + main_len > view.nbytes or any(o + n > view.nbytes for o, n in spans):
            raise ValueError("truncated")
        main = view[start:start + main_len]
        try:
            return pickle.loads(main, buffers=[view[o:o + n] for o, n in spans]), count
        finally:
            main.release()
    except Exception as exc:
        raise SerializationError(f"cannot read {key!r} from the local cluster memory: "
                                 f"{type(exc).__name__}: {exc}") from exc


# -- whole-file I/O ---------------------------------------------------------------


def write_all(fd: int, parts: list[bytes | memoryview], offset: int = 0) -> None:
    """``pwritev`` of ``parts`` from ``offset``, through short writes and ``IOV_MAX``."""
    views = [memoryview(p).cast("B") for p in parts if len(p)]
    while views:
        written = os.pwritev(fd, views[:_IOV_MAX], offset)
        offset += written
        while views and written >= views[0].nbytes:
            written -= views.pop(0).nbytes
        if written:
            views[0] = views[0][written:]


def read_all(fd: int, size: int) -> bytes:
    data = os.pread(fd, size, 0)
    while len(data) < size:  # short reads of very large files
        more = os.pread(fd, size - len(data), len(data))
        if not more:
            break
        data += more
    return data

