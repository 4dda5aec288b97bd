"""NumPy arrays as ``.npy`` files, which NumPy and many other tools read directly."""

from __future__ import annotations

import io
import math
from typing import IO, Any

from catalogstore.serializers.base import Serializer

_HEADER_MAX = 10_000
"""The longest ``.npy`` header read (NumPy's own bound, ``max_header_size``)."""


class NumpySerializer(Serializer):
    """``numpy.save`` format, without pickled objects (object arrays go to pickle).

    The object store reads an array into one buffer and returns a view of it past the
    header: no copy, and writable. Only the header is parsed (NumPy's parser, which
    evaluates literals only); a dtype holding Python objects is refused, as
    ``numpy.load(allow_pickle=False)`` refuses it.
    """

    name = "npy"
    file_name = "object.npy"
    types = ("numpy.ndarray",)

    def accepts(self, value: Any) -> bool:
        return not value.dtype.hasobject

    def dump(self, value: Any, stream: IO[bytes]) -> None:
        import numpy as np

        np.save(stream, value, allow_pickle=False)

    def load(self, stream: IO[bytes]) -> Any:
        import numpy as np

        return np.load(stream, allow_pickle=False)

    def new_buffer(self, size: int) -> Any:
        import numpy as np

        return np.empty(size, dtype=np.uint8)  # not zeroed: the read fills it

    def loads(self, data: Any) -> Any:
        """The array over ``data`` (a buffer of :meth:`new_buffer`: no copy); over
        read-only ``bytes``, a writable copy, as :meth:`load` gives."""
        array = _array_over(data)
        return array if array.flags.writeable else array.copy(order="K")


def _array_over(data: Any) -> Any:
    """The array a ``.npy`` file's bytes describe, as a view of them."""
    import numpy as np
    from numpy.lib import format as npy

    with memoryview(data) as whole, whole.cast("B") as view:
        size = view.nbytes
        header = io.BytesIO(view[:_HEADER_MAX + 12].tobytes())  # magic, length, header
    version = npy.read_magic(header)
    if version == (1, 0):
        shape, fortran, dtype = npy.read_array_header_1_0(header, max_header_size=_HEADER_MAX)
    elif version == (2, 0):
        shape, fortran, dtype = npy.read_array_header_2_0(header, max_header_size=_HEADER_MAX)
    else:  # 3.0 (UTF-8 field names), which NumPy parses only in np.load
        return np.load(io.BytesIO(data), allow_pickle=False)
    if dtype.hasobject:
        raise ValueError("the array holds Python objects, which would be unpickled: "
                         "refused (allow_pickle=False)")
    offset = header.tell()
    expected = math.prod(shape) * dtype.itemsize
    if size - offset != expected:
        raise ValueError(f"{size - offset} bytes follow the .npy header, which describes "
                         f"{expected}")
    return np.ndarray(shape, dtype=dtype, buffer=data, offset=offset,
                      order="F" if fortran else "C")
