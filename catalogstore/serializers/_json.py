"""JSON: readable by any tool, for values made of dicts, lists, strings and numbers."""

from __future__ import annotations

import json
from typing import IO, Any

from catalogstore.serializers.base import Serializer


class JSONSerializer(Serializer):
    """UTF-8 JSON. Only chosen when asked for: JSON turns tuples into lists and
    non-string keys into strings, so it does not give back every value as it was."""

    name = "json"
    file_name = "object.json"

    def dump(self, value: Any, stream: IO[bytes]) -> None:
        stream.write(json.dumps(value, ensure_ascii=False, allow_nan=False).encode())

    def load(self, stream: IO[bytes]) -> Any:
        return json.loads(stream.read())
