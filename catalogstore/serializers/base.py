"""The serializer interface: how the object store turns a value into an artifact's bytes."""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from typing import IO, Any, ClassVar


class Serializer(ABC):
    """Writes a value to a binary stream and reads it back.

    Subclasses set :attr:`name` (the registry name, recorded in the artifact's
    metadata so ``get`` needs no hint), :attr:`version`, :attr:`file_name` (the
    artifact file the bytes go to) and :attr:`types` (dotted names of the types it
    is chosen for automatically; dotted names keep ``import catalogstore`` from
    importing NumPy or pandas).

    Examples
    --------
    A serializer for a user type, registered so the object store picks it::

        class PointSerializer(Serializer):
            name = "point"
            types = ("mylib.Point",)

            def dump(self, value, stream):
                stream.write(f"{value.x},{value.y}".encode())

            def load(self, stream):
                x, y = stream.read().decode().split(",")
                return Point(float(x), float(y))

        register_serializer(PointSerializer)
    """

    name: ClassVar[str]
    version: ClassVar[int] = 1
    file_name: ClassVar[str] = "object"
    """Name of the artifact file holding the serialized value."""
    types: ClassVar[tuple[str, ...]] = ()
    """Dotted names (``"numpy.ndarray"``) of the types this serializer is chosen for."""
    executes_code: ClassVar[bool] = False
    """Loading can run arbitrary code (pickle): only done for bytes the store wrote."""

    @abstractmethod
    def dump(self, value: Any, stream: IO[bytes]) -> None:
        """Write ``value`` to ``stream``."""

    @abstractmethod
    def load(self, stream: IO[bytes]) -> Any:
        """Read a value written by :meth:`dump` from ``stream``."""

    def loads(self, data: bytes) -> Any:
        """Read a value from the whole of what :meth:`dump` wrote (how the object store reads).

        By default :meth:`load` from a ``BytesIO``; a serializer that can decode
        the bytes in place (without the copy a stream read makes) overrides it.
        ``data`` is ``bytes``, or the buffer of :meth:`new_buffer` if it gives one.
        """
        return self.load(io.BytesIO(data))

    def new_buffer(self, size: int) -> Any:
        """A writable buffer of ``size`` bytes (any object with the buffer protocol) for
        the object store to read a stored value into and give to :meth:`loads`, which
        then decodes it in place: the value can be a view of it, with no copy (a NumPy
        array). ``None`` (the default): :meth:`loads` is given ``bytes``.
        """
        return None

    def accepts(self, value: Any) -> bool:
        """Whether this serializer can write ``value`` (checked before anything is written)."""
        return True
