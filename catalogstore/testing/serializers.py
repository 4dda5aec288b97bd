"""The serializer contract: a registered serializer gives back every value it claims.

A serializer's test module subclasses :class:`SerializerContract` and provides
``serializer`` (an instance, registered with
:func:`~catalogstore.serializers.register_serializer` or the
``catalogstore.serializers`` entry points) and ``values`` (values it must round-trip,
at least one of each type it declares); ``assert_same`` compares a value with what
came back (``==`` unless overridden, e.g. for arrays)::

    from catalogstore.testing.serializers import SerializerContract

    class TestPointSerializer(SerializerContract):
        @pytest.fixture
        def serializer(self):
            return get_serializer("point")

        @pytest.fixture
        def values(self):
            return [Point(1, 2), Point(-0.5, 1e300)]
"""

from __future__ import annotations

import importlib
import io
from typing import Any

from catalogstore.names import validate_file_name
from catalogstore.serializers import Serializer, get_serializer, serializer_for


class SerializerContract:
    """Tests every serializer must pass. Subclasses provide ``serializer`` and ``values``."""

    def assert_same(self, expected: Any, got: Any) -> None:
        assert type(got) is type(expected)
        assert got == expected

    def test_registered_under_its_name(self, serializer: Serializer) -> None:
        assert isinstance(serializer.name, str) and serializer.name
        assert type(get_serializer(serializer.name)) is type(serializer)
        validate_file_name(serializer.file_name)  # it becomes an artifact file

    def test_round_trip_through_a_stream(self, serializer: Serializer,
                                         values: list[Any]) -> None:
        for value in values:
            assert serializer.accepts(value)
            stream = io.BytesIO()
            serializer.dump(value, stream)
            stream.seek(0)
            self.assert_same(value, serializer.load(stream))

    def test_loads_reads_what_dump_wrote(self, serializer: Serializer,
                                         values: list[Any]) -> None:
        for value in values:
            stream = io.BytesIO()
            serializer.dump(value, stream)
            self.assert_same(value, serializer.loads(stream.getvalue()))

    def test_loads_decodes_its_own_buffer(self, serializer: Serializer,
                                          values: list[Any]) -> None:
        """The object store reads a value into the buffer of ``new_buffer`` (when it
        gives one) and hands it to ``loads``."""
        for value in values:
            stream = io.BytesIO()
            serializer.dump(value, stream)
            data = stream.getvalue()
            buffer = serializer.new_buffer(len(data))
            if buffer is None:
                return
            with memoryview(buffer) as view, view.cast("B") as target:
                assert not target.readonly and target.nbytes == len(data)
                target[:] = data
            self.assert_same(value, serializer.loads(buffer))

    def test_chosen_for_the_types_it_declares(self, serializer: Serializer,
                                              values: list[Any]) -> None:
        for dotted in serializer.types:
            module, _, name = dotted.rpartition(".")
            declared = getattr(importlib.import_module(module), name)
            of_type = [value for value in values if isinstance(value, declared)]
            assert of_type, f"values hold no {dotted}: add one"
            for value in of_type:
                assert type(serializer_for(value)) is type(serializer)
