"""Pickle-based serializers: any Python object, readable by Flowdapt's object store."""

from __future__ import annotations

import pickle
from typing import IO, Any

from catalogstore.serializers.base import Serializer


class PickleSerializer(Serializer):
    """The standard library's pickle (protocol 5): the default for other objects."""

    name = "pickle"
    executes_code = True

    def dump(self, value: Any, stream: IO[bytes]) -> None:
        pickle.dump(value, stream, protocol=5)

    def load(self, stream: IO[bytes]) -> Any:
        return pickle.load(stream)


class CloudPickleSerializer(PickleSerializer):
    """cloudpickle: also lambdas, closures and classes defined in ``__main__``.

    Chosen automatically when plain pickle cannot handle a value. Its bytes load
    with plain ``pickle.loads``, which is what Flowdapt's object store does.
    """

    name = "cloudpickle"

    def dump(self, value: Any, stream: IO[bytes]) -> None:
        import cloudpickle

        cloudpickle.dump(value, stream, protocol=5)
