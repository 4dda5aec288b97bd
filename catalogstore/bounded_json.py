"""The one parser of JSON documents read from the storage: bounded, total, checked.

The storage is hostile input (anyone who can write the bucket can write an
``.artifact.json``), so :func:`parse_document` never lets a document exhaust
memory, the stack or the CPU, and never hands back a value the catalog could not
hold. Any JSON value within the limits is accepted (what a value means is for its
caller to decide); everything else raises :class:`~catalogstore.errors.
InvalidDocumentError` with the reason, which ``reindex`` and ``verify`` report as a
broken entry of that artifact while they go on with the rest.

Limits (issue 12):

- at most :data:`MAX_DOCUMENT_BYTES` bytes, read no further than that;
- UTF-8 only (no BOM, no other encoding, no encoded surrogates);
- nesting at most :data:`MAX_DEPTH` arrays/objects deep, checked *before* the
  parser runs, so a 2,000-deep array never reaches a recursive parser;
- numbers with no run of more than :data:`MAX_INTEGER_DIGITS` digits (integer part,
  fraction or exponent; a 5,000-digit integer costs quadratic time to convert, and
  Python refuses it beyond 4,300 digits anyway);
- ``NaN``, ``Infinity``, ``-Infinity`` (not JSON, though Python's ``json`` writes them)
  are read as ``null``, which is what Flowdapt (orjson) writes for them: a tree
  another tool wrote keeps its artifacts (issue 14); numbers beyond the range of a
  double (``1e400``) are refused: no database column or JSON reader takes them;
- no string, key or value, holds a lone surrogate (``"\\ud800"``: not text, the
  database drivers cannot encode it) or a NUL character (PostgreSQL cannot store it).
"""

from __future__ import annotations

import itertools
import json
import math
import re
from typing import Any

from catalogstore.errors import InvalidDocumentError

MAX_DOCUMENT_BYTES = 16 << 20
"""Largest document read (16 MiB)."""
MAX_DEPTH = 64
"""Deepest nesting of arrays and objects (``[[1]]`` is 2 deep)."""
MAX_INTEGER_DIGITS = 100
"""Longest run of digits in a number (an integer: its digits, sign apart)."""

_OTHER_BYTES = bytes(b for b in range(256) if b not in b"[]{}")
_DEPTH_STEP = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_TOO_MANY_OPENINGS = b"\x01" * (MAX_DEPTH + 1)
# Numbers seen through a mask (digits as "0", "e"/"E" as "e", signs as "+", all else as
# " "), so that the checks below are substring searches, in C.
_NUMBER_MASK = bytes(48 if chr(b).isdigit() and b < 128 else 101 if b in b"eE"
                     else 43 if b in b"+-" else 32 for b in range(256))
_LONG_DIGITS = b"0" * (MAX_INTEGER_DIGITS + 1)
_BIG_EXPONENTS = (b"e000", b"e+000")  # three digits or more: may overflow a double
# What may hide a NUL or a lone surrogate: only then are the parsed values walked (raw
# control characters and surrogates never parse).
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")


def text_problem(text: str) -> tuple[str, int] | None:
    """Why ``text`` is not storable text (a NUL or a lone surrogate) and where, or ``None``.

    The rule of every string a user hands in too (names, metadata, filters, URLs).
    """
    if "\x00" in text:
        return "a NUL character", text.index("\x00")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"a lone surrogate {text[exc.start]!r}", exc.start
    return None


def _outside_strings(content: bytes) -> bytes:
    """``content`` without its strings, in linear time (a regex over strings took
    quadratic time on an unterminated string of escaped quotes). Escapes go first, left
    to right as JSON reads them (``\\\\`` before ``\\"``), so every quote left delimits a
    string: of a JSON document, what is between the odd and even quotes. Of a document
    that is not JSON the result means nothing, and the parser refuses it."""
    return b"".join(content.replace(b"\\\\", b"").replace(b'\\"', b"").split(b'"')[::2])


def _depth(outside_strings: bytes) -> int:
    """The deepest nesting of a document whose strings are taken out (an upper bound if it
    is not JSON): linear time, in C but for the running sum."""
    brackets = outside_strings.translate(None, _OTHER_BYTES)
    if len(brackets) <= MAX_DEPTH:  # too few brackets to nest too deep
        return len(brackets)
    # +1 for an opening bracket, -1 for a closing one.
    steps = brackets.translate(_DEPTH_STEP)
    if _TOO_MANY_OPENINGS in steps:  # the usual attack, found by a substring search
        return MAX_DEPTH + 1
    return max(itertools.accumulate(memoryview(steps).cast("b")))


def _constant(token: str) -> None:
    """``NaN``, ``Infinity`` and ``-Infinity``: ``null``, as orjson writes them."""
    return None


_DECODER = json.JSONDecoder(parse_constant=_constant)


def check_values(value: Any) -> None:
    """Refuse a lone surrogate or NUL in any key or string of ``value``, and a float beyond
    the range of a double: what :func:`parse_document` checks of the values it parsed,
    for JSON values that come from elsewhere (a user's metadata). Walked with a stack,
    never recursively.

    Raises
    ------
    InvalidDocumentError
        naming the problem.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            texts: Any = (item,)
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise InvalidDocumentError("a number beyond the range of a double")
            continue
        elif isinstance(item, dict):
            texts = item.keys()
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
            continue
        else:
            continue
        for text in texts:
            problem = text_problem(text)
            if problem is not None:
                raise InvalidDocumentError(f"a string holds {problem[0]} (at character "
                                           f"{problem[1]}): not text")


def parse_document(content: bytes | str, *, limit: int = MAX_DOCUMENT_BYTES) -> Any:
    """The JSON value of ``content``, within the limits of the module docstring.

    Parameters
    ----------
    content
        The document's bytes as read (at most ``limit`` + 1 of them: a longer one is
        refused without reading the rest), or text already decoded.
    limit
        Largest size accepted, in bytes.

    Raises
    ------
    InvalidDocumentError
        naming what is wrong: too large, not UTF-8, not JSON, too deep, a number too
        long or out of range, a lone surrogate or NUL.
    """
    if isinstance(content, str):
        try:
            content = content.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidDocumentError(f"holds a lone surrogate at position {exc.start}"
                                       ) from None
    if len(content) > limit:
        raise InvalidDocumentError(f"more than the {limit} bytes accepted")
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidDocumentError(f"not UTF-8 (byte {exc.start}: "
                                   f"{content[exc.start:exc.start + 1]!r})") from None
    if text.startswith("\ufeff"):
        raise InvalidDocumentError("starts with a byte order mark: JSON is plain UTF-8")
    # Strings may hold brackets and digits: they are taken out (a regex pass) only when
    # the whole document has too many brackets or too long a run of digits.
    outside_strings = content
    numbers = content.translate(_NUMBER_MASK)
    long_digits = _LONG_DIGITS in numbers
    if len(content.translate(None, _OTHER_BYTES)) > MAX_DEPTH or long_digits:
        outside_strings = _outside_strings(content)
    depth = _depth(outside_strings)
    if depth > MAX_DEPTH:
        raise InvalidDocumentError(f"nested more than the {MAX_DEPTH} levels accepted")
    if long_digits and _LONG_DIGITS in outside_strings.translate(_NUMBER_MASK):
        raise InvalidDocumentError(f"a number with a run of more than {MAX_INTEGER_DIGITS} "
                                   "digits")
    try:
        value = _DECODER.decode(text)
    except InvalidDocumentError:
        raise
    except json.JSONDecodeError as exc:
        raise InvalidDocumentError(f"not valid JSON: {exc}") from None
    except (RecursionError, ValueError) as exc:  # not JSON, whatever its brackets said
        raise InvalidDocumentError(f"not valid JSON: {type(exc).__name__}") from None
    if (b"\\u" in content and _SUSPECT_ESCAPE.search(content)) \
            or any(e in numbers for e in _BIG_EXPONENTS):  # in a string too: only walked
        check_values(value)
    return value
