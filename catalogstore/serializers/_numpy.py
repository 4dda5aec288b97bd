"""NumPy arrays as ``.npy`` files, which NumPy and many other tools read directly."""

from __future__ import annotations

from typing import IO, Any

from catalogstore.serializers.base import Serializer


class NumpySerializer(Serializer):
    """``numpy.save`` format, without pickled objects (object arrays go to pickle)."""

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
