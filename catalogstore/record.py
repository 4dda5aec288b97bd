"""The records the catalog hands out, and the one conversion to ``.artifact.json``.

``.artifact.json`` holds exactly an artifact's metadata as one flat JSON object
(Flowdapt reads it as the metadata); :func:`metadata_to_json` and
:func:`metadata_from_json` are the only code that writes or reads that shape.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from catalogstore.bounded_json import parse_document
from catalogstore.errors import InvalidDocumentError, InvalidMetadataError
from catalogstore.names import meta_value_to_str, validate_meta_key

NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
"""What a metadata value must look like, in full, to count as a number: a decimal
number with an optional exponent (``42``, ``-0.5``, ``1e-05``, ``.5``, ``007``), ASCII
digits only, no spaces, no ``nan``, ``inf`` or ``1_000``."""


@dataclass(frozen=True)
class FileRecord:
    """A file as the catalog knows it."""

    name: str
    size: int
    checksum: str
    encoding: str | None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class ArtifactRecord:
    """An artifact as the catalog knows it, metadata included."""

    id: int
    namespace: str
    name: str
    created_at: datetime
    updated_at: datetime
    metadata: dict[str, str] = field(default_factory=dict)


def metadata_to_json(metadata: dict[str, str]) -> bytes:
    """The content of ``.artifact.json`` for ``metadata``."""
    return json.dumps(metadata, ensure_ascii=False, sort_keys=True).encode()


def metadata_from_json(content: bytes | str) -> dict[str, str]:
    """Metadata from a ``.artifact.json`` content (as Flowdapt or catalogstore wrote it).

    Non-string values that Flowdapt allowed are converted by the rule of
    :func:`catalogstore.names.meta_value_to_str`.
    """
    try:
        # Bounded and total: the storage is hostile input (issue 12).
        data: Any = parse_document(content) if content else {}
    except InvalidDocumentError as exc:
        raise InvalidMetadataError(f".artifact.json: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidMetadataError(
            f".artifact.json must hold a JSON object, not {type(data).__name__}"
        )
    return {validate_meta_key(k): meta_value_to_str(k, v) for k, v in data.items()}


def value_number(value: str) -> float | None:
    """The number a metadata value stands for, or ``None`` when it is not one.

    The catalog stores it beside the text (``artifact_metadata.number``), so numeric
    comparisons and their index work alike on SQLite and PostgreSQL and never cast
    text in SQL (a cast of a non-numeric value would raise on PostgreSQL). Values
    beyond the range of a double (``1e999``) are not numbers.
    """
    if not NUMBER.fullmatch(value):
        return None
    number = float(value)
    return number if math.isfinite(number) else None
