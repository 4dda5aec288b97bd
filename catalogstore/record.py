"""The records the catalog hands out, and the one conversion of metadata values.

``.artifact.json`` holds exactly an artifact's metadata as one JSON object, written
byte for byte as Flowdapt writes it (orjson: compact, keys in insertion order,
native types); :func:`metadata_to_json` and :func:`metadata_from_json` are the only
code that writes or reads that shape. In the catalog a value is three columns
(:func:`value_columns`, read back by :func:`value_from_columns`): its JSON type,
its text form and, for numbers, its number.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from catalogstore.bounded_json import MAX_DOCUMENT_BYTES, parse_document
from catalogstore.errors import InvalidDocumentError, InvalidMetadataError
from catalogstore.names import check_meta_value, validate_meta_key

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
    version: int | None = None
    """The artifact's current version when the row was read alone (a file's read is
    an input of that version: issue 16)."""


@dataclass(frozen=True)
class ArtifactRecord:
    """An artifact as the catalog knows it, metadata included."""

    id: int
    namespace: str
    name: str
    created_at: datetime
    updated_at: datetime
    metadata: dict[str, Any] = field(default_factory=dict)


_encode_str = json.encoder.encode_basestring
"""Python's string encoder without ``ensure_ascii``: it escapes as orjson does (``\\"``,
``\\\\``, ``\\n`` and the like, other control characters as ``\\u00XX``, the rest as is)."""


def json_float(number: float) -> str:
    """``number`` as orjson writes it: the shortest digits that read back the same (as
    ``repr``), in ryu's layout (``0.00001``, ``1e-7``, ``1e+16``, ``100.0``)."""
    if number != number or number in (math.inf, -math.inf):
        return "null"
    text = repr(number)
    if "e" not in text:  # 1e-4 <= |number| < 1e16: the same layout
        return text
    sign = "-" if text[0] == "-" else ""
    mantissa, _, exp = text.lstrip("-").partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    exponent = int(exp or 0) - len(frac)
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    digits = stripped or "0"
    length = len(digits)
    point = length + exponent  # 10 ** (point - 1) <= |number| < 10 ** point
    if exponent >= 0 and point <= 16:
        return f"{sign}{digits}{'0' * exponent}.0"
    if 0 < point <= 16:
        return f"{sign}{digits[:point]}.{digits[point:]}"
    if -5 < point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    shown = digits if length == 1 else f"{digits[0]}.{digits[1:]}"
    return f"{sign}{shown}e{'+' if point > 0 else '-'}{abs(point - 1)}"


def json_text(value: Any) -> str:
    """A (checked) JSON value as orjson writes it: compact, keys in insertion order."""
    kind = type(value)
    if kind is str:
        return _encode_str(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        return json_float(value)
    if kind is list:
        return "[" + ",".join([json_text(item) for item in value]) + "]"
    return "{" + ",".join([f"{_encode_str(k)}:{json_text(v)}" for k, v in value.items()]) + "}"


def metadata_document(metadata: dict[str, Any]) -> str:
    """``metadata`` as ``.artifact.json`` holds it (:func:`json_text`), refused when the
    store could not read it back (larger than
    :data:`~catalogstore.bounded_json.MAX_DOCUMENT_BYTES`): commits render it with the
    catalog's copy, before anything is written.

    Raises
    ------
    InvalidMetadataError
        when the document is too large.
    """
    text = json_text(metadata)
    # A character is at most 4 bytes: encoded only when it may be too large.
    if len(text) * 4 > MAX_DOCUMENT_BYTES and len(text.encode()) > MAX_DOCUMENT_BYTES:
        raise InvalidMetadataError(
            f"the metadata would take {len(text.encode())} bytes in .artifact.json, more "
            f"than the {MAX_DOCUMENT_BYTES} the store reads back: keep large values in "
            "files")
    return text


def metadata_to_json(metadata: dict[str, Any]) -> bytes:
    """The content of ``.artifact.json`` for ``metadata``, byte for byte as Flowdapt
    writes it (so a round trip through Flowdapt and back changes nothing)."""
    return json_text(metadata).encode()


def metadata_from_json(content: bytes | str) -> dict[str, Any]:
    """Metadata from a ``.artifact.json`` content (as Flowdapt or catalogstore wrote it).

    Every JSON value is kept with its type (and key order); ``NaN`` and the
    infinities, which some writers put in, become ``None`` as Flowdapt writes them.
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
    metadata = {validate_meta_key(k): check_meta_value(k, v) for k, v in data.items()}
    if len(content) * _MOST_GROWTH > MAX_DOCUMENT_BYTES:
        metadata_document(metadata)  # as the catalog will write it: within the bound?
    return metadata


_MOST_GROWTH = 5
"""How much larger a document can be written again than it was read: a number such as
``1e15,`` (5 characters) is written ``1000000000000000.0,`` (19)."""


def same_metadata(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two metadata hold the same keys with the same values, types included
    (``1``, ``1.0`` and ``True`` differ, as they do in ``.artifact.json``)."""
    return a.keys() == b.keys() and all(same_value(v, b[k]) for k, v in a.items())


def same_value(a: Any, b: Any) -> bool:
    """Whether two metadata values are equal and of one JSON type, nested values too."""
    return a is b or (type(a) is type(b) and (a == b if type(a) is str else
                                              json_text(a) == json_text(b)))


_scan_json = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
"""The C scanner behind ``json.loads``, called straight: a listing parses one document
per artifact, and ``loads``' wrapper (whitespace skipping) cost as much as parsing."""


def metadata_of(document: str) -> dict[str, Any]:
    """The metadata in a catalog's metadata document (``artifacts.metadata_json``): JSON
    text this module wrote; anything else (a row edited by hand) reads as ``{}``."""
    if type(document) is not str:
        return {}
    try:
        data, end = _scan_json(document, 0)
    except (StopIteration, ValueError, RecursionError):
        data, end = None, 0
    if end != len(document):  # not as written here (spaces around it?): the slow way
        try:
            data = json.loads(document)
        except (ValueError, TypeError, RecursionError):
            return {}
    return data if type(data) is dict else {}


JSON_TYPES = ("string", "number", "boolean", "null", "array", "object")
"""``artifact_metadata.type``: the JSON type of a value (the names of ``jsonb_typeof``)."""


def value_type(value: Any) -> str:
    """The JSON type name of a (checked) metadata value."""
    kind = type(value)
    if kind is str:
        return "string"
    if kind is bool:
        return "boolean"
    if kind is int or kind is float:
        return "number"
    if value is None:
        return "null"
    return "array" if kind is list else "object"


def value_columns(value: Any) -> tuple[str, str, float | None]:
    """A (checked) metadata value as the catalog stores it: (type, text, number).

    The text of a string is the string itself (plain SQL ``value = 'xgb'`` keeps
    working); of any other value its JSON text. The number is set for numbers and
    for strings that spell one (:func:`value_number`), as before values were typed.
    """
    return value_type(value), value_text(value), number_of(value)


def value_text(value: Any) -> str:
    """``artifact_metadata.value``: a string itself, any other value its JSON text."""
    return value if type(value) is str else json_text(value)


def number_of(value: Any) -> float | None:
    """``artifact_metadata.number``: a number's, or a string's that spells one."""
    kind = type(value)
    if kind is str:
        return value_number(value)
    if kind is int or kind is float:
        number = float(value)
        return number if math.isfinite(number) else None
    return None


_COLUMNS = {"type": value_type, "value": value_text, "number": number_of}
_last_document: tuple[str, Any] = ("", {})
"""The document :func:`document_column` parsed last: it is asked for each of a row's
columns in turn."""


def document_column(document: object, column: object, *keys: object) -> str | float | None:
    """The ``artifact_metadata`` column (``type``, ``value`` or ``number``) that the
    value under ``keys`` in a metadata document would have (:func:`value_columns`):
    under its key, or with more keys, under the last of them in the objects nested
    under the first ones (``"optimizer", "lr"``); ``None`` (SQL's NULL) when the
    document lacks the key, or the path meets anything but an object before its last
    key (a list is never indexed). A SQLite function on every connection
    (:mod:`catalogstore.catalog.engine`; each key one argument, bound): searches of a
    version's metadata, kept as its document only, and of runs' parameters compare
    them exactly as searches of ``artifact_metadata`` do. A document edited by hand
    reads as :func:`metadata_of` reads it."""
    global _last_document
    if type(document) is not str or column not in _COLUMNS or not keys:
        return None
    last, value = _last_document
    if document != last:
        value = metadata_of(document)
        _last_document = (document, value)
    for key in keys:
        if type(value) is not dict or type(key) is not str or key not in value:
            return None
        value = value[key]
    try:
        return _COLUMNS[column](value)
    except (TypeError, ValueError, OverflowError):  # a value no commit writes: 1e999
        return None


def value_from_columns(kind: str | None, text: str) -> Any:
    """The metadata value a catalog row holds (its ``type`` and ``value``)."""
    if kind == "string" or kind is None:
        return text
    try:
        return json.loads(text)
    except ValueError:  # a row edited by hand: its text, rather than failing the read
        return text


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
