"""Naming rules and the storage layout, checked before anything is written.

Names are whitelisted, not blacklisted: everything that could mean a path
(``/``, ``\\``, ``..``), a URL (``:``, ``%``, ``#``, ``?``), a control character
or a Unicode look-alike is outside the allowed set, so no spelling of a name can
reach outside its artifact folder, and two distinct names never land in one
folder on a case-sensitive filesystem. Being ASCII, no two allowed names
normalise alike (NFC/NFD, fullwidth or Cyrillic look-alikes are all refused);
names that differ only by case are refused by the catalog when the second
spelling is created (:mod:`catalogstore.catalog.collisions`), since a
case-insensitive filesystem would give them one folder.

- **Artifact names and namespaces**: ASCII letters, digits, ``_``, ``-`` and
  ``.``; start with a letter or digit; at most 128 characters; no ``..``.
  Flowdapt's names (letters, digits, ``_``, ``-``) are all valid.
- **File names**: the same set plus ``+``, ``=``, ``@``, ``,`` and inner spaces;
  may start with ``.`` or ``_``; at most 255 characters; not ``.artifact.json``.
- **Metadata**: keys are non-empty strings of at most 255 printable characters;
  no key or value holds a NUL or a lone surrogate (``"\\ud800"``: not text);
  values are JSON values (:func:`check_meta_value`), kept with their type.
"""

from __future__ import annotations

import math
import re
from typing import Any

from catalogstore.bounded_json import MAX_DEPTH, text_problem
from catalogstore.errors import InvalidMetadataError, InvalidNameError

METADATA_FILENAME = ".artifact.json"
"""The file beside an artifact's files that mirrors its metadata (Flowdapt's layout)."""
ARTIFACTS_DIR = "artifacts"
"""Folder under the storage root that holds ``{namespace}/{name}/``."""
STAGING_DIR = ".catalogstore/staging"
"""Folder under the storage root where writes wait for their commit."""
VERSIONS_DIR = ".catalogstore/versions"
"""Folder under the storage root holding the bytes of earlier versions' files (issue
15): ``{artifact id}/{algorithm}-{hex}``, one file per checksum, so a file unchanged
between versions is kept once."""

MAX_NAME = 128
MAX_FILE_NAME = 255
MAX_META_KEY = 255

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_FILE_NAME = re.compile(r"[A-Za-z0-9._+=@,-]([A-Za-z0-9._+=@, -]*[A-Za-z0-9._+=@,-])?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _refuse(what: str, value: object, why: str) -> InvalidNameError:
    return InvalidNameError(f"invalid {what} {value!r}: {why}")


def _check_str(value: object, what: str, longest: int) -> str:
    """``value`` if it is a non-empty ``str`` of at most ``longest`` characters."""
    if not isinstance(value, str):
        raise _refuse(what, value, f"must be a str, not {type(value).__name__}")
    if not value:
        raise _refuse(what, value, "must not be empty")
    if len(value) > longest:
        raise _refuse(what, value[:40] + "...", f"longer than {longest} characters")
    return value


_valid_names: set[str] = set()
"""Names that passed :func:`validate_name`: each is checked many times along one write."""
_VALID_NAMES_KEPT = 4096


def validate_name(value: object, what: str = "artifact name") -> str:
    """Return ``value`` if it is a valid artifact name or namespace, else raise."""
    if type(value) is str and value in _valid_names:
        return value
    value = _check_str(value, what, MAX_NAME)
    if ".." in value or not _NAME.fullmatch(value):
        raise _refuse(
            what, value,
            "use ASCII letters, digits, '_', '-' and '.', starting with a letter or digit "
            "(no '/', '\\', '..' or other characters)",
        )
    if len(_valid_names) >= _VALID_NAMES_KEPT:
        _valid_names.clear()
    _valid_names.add(value)
    return value


def validate_file_name(value: object) -> str:
    """Return ``value`` if it is a valid file name inside an artifact, else raise."""
    what = "file name"
    value = _check_str(value, what, MAX_FILE_NAME)
    if value == METADATA_FILENAME:
        raise _refuse(what, value, "reserved for the artifact's metadata")
    if ".." in value or value == "." or not _FILE_NAME.fullmatch(value):
        raise _refuse(
            what, value,
            "use ASCII letters, digits, inner spaces and '._-+=@,' "
            "(no '/', '\\', '..' or other characters)",
        )
    return value


def validate_meta_key(key: object) -> str:
    """Return ``key`` if it can be a metadata key, else raise."""
    if not isinstance(key, str):
        raise InvalidMetadataError(f"metadata key must be a str, not {type(key).__name__}")
    if not key or len(key) > MAX_META_KEY or _CONTROL.search(key) or text_problem(key):
        raise InvalidMetadataError(
            f"invalid metadata key {key[:40]!r}: 1 to {MAX_META_KEY} characters, "
            "no control characters or lone surrogates"
        )
    return key


JSON_SCALARS = (str, int, float, bool, type(None))
MIN_INT, MAX_INT = -(2**63), 2**64 - 1
"""The integers Flowdapt can write (orjson refuses others): so are catalogstore's."""
MAX_META_DEPTH = MAX_DEPTH - 1
"""Deepest nesting of a metadata value (``[[1]]`` is 2 deep): ``.artifact.json`` holds
it one level down, and the store reads back no document nested deeper than
:data:`~catalogstore.bounded_json.MAX_DEPTH`."""


def check_meta_value(key: str, value: Any, depth: int = 0) -> Any:
    """``value`` as the JSON value stored under ``key``, or :class:`InvalidMetadataError`.

    Values are what Flowdapt stores: ``str``, ``int``, ``float``, ``bool``, ``None``,
    lists (tuples become lists) and dicts with ``str`` keys, nested. NaN and the
    infinities are not JSON: they become ``None``, as Flowdapt (orjson) writes them.
    Subclasses (``numpy.float64``, ``IntEnum``) become the plain type; integers
    beyond 64 bits, strings with a NUL or a lone surrogate and every other type
    are refused, and so is nesting deeper than :data:`MAX_META_DEPTH` (a list that
    holds itself too). Containers are copied, so later changes to the caller's list
    do not reach the metadata. ``depth``: the containers around ``value``.
    """
    kind = type(value)
    if kind is str:
        problem = text_problem(value)
        if problem is not None:  # the databases cannot store either (issue 12)
            raise InvalidMetadataError(f"metadata value of {key!r} contains {problem[0]} "
                                       f"at character {problem[1]}")
        return value
    if value is None or kind is bool:
        return value
    if kind is int:
        if not MIN_INT <= value <= MAX_INT:
            raise InvalidMetadataError(
                f"metadata value of {key!r} is an integer beyond 64 bits: store it as a str")
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if (kind is list or kind is tuple or kind is dict) and depth == MAX_META_DEPTH:
        raise InvalidMetadataError(f"metadata value of {key!r} is nested more than "
                                   f"{MAX_META_DEPTH} levels deep")
    if kind is list or kind is tuple:
        return [check_meta_value(key, item, depth + 1) for item in value]
    if kind is dict:
        for inner in value:
            if type(inner) is not str:
                raise InvalidMetadataError(
                    f"metadata value of {key!r}: object keys must be str, not "
                    f"{type(inner).__name__}")
            check_meta_value(key, inner)  # a NUL or lone surrogate in a nested key
        return {inner: check_meta_value(key, item, depth + 1)
                for inner, item in value.items()}
    for plain in (bool, int, float, str):
        if isinstance(value, plain):
            return check_meta_value(key, plain(value), depth)
    raise InvalidMetadataError(
        f"metadata value of {key!r} must be a JSON value (str, int, float, bool, None, "
        f"list, dict), not {kind.__name__}; convert it, e.g. with str()")


def artifact_dir(namespace: str, name: str) -> str:
    """Path of an artifact's folder relative to the storage root.

    Checked here too, not only where users pass names in: names also come back
    from the catalog, and a row edited by hand must not steer a write or a
    delete outside the storage root.
    """
    return f"{ARTIFACTS_DIR}/{validate_name(namespace, 'namespace')}/{validate_name(name)}"


_ALGORITHM, _HEX = r"[a-z0-9]{1,16}", r"[0-9a-f]{8,128}"
_CHECKSUM = re.compile(rf"({_ALGORITHM}):({_HEX})")


def version_dir(artifact_id: int) -> str:
    """The folder of an artifact's kept bytes (:data:`VERSIONS_DIR`)."""
    if type(artifact_id) is not int or artifact_id < 1:
        raise InvalidNameError(f"invalid artifact id {artifact_id!r}")
    return f"{VERSIONS_DIR}/{artifact_id}"


def version_blob(artifact_id: int, checksum: str) -> str:
    """Where the bytes of checksum ``checksum`` of an artifact's earlier version are kept.
    Checked: a checksum comes back from the catalog or the journal, which may have
    been edited by hand, and becomes a path."""
    found = _CHECKSUM.fullmatch(checksum) if isinstance(checksum, str) else None
    if found is None:
        raise InvalidNameError(f"invalid checksum {str(checksum)[:40]!r}: not "
                               "<algorithm>:<hex>")
    return f"{version_dir(artifact_id)}/{found[1]}-{found[2]}"


_KEPT_ID = re.compile(r"[1-9][0-9]{0,18}")
_KEPT_NAME = re.compile(rf"({_ALGORITHM})-({_HEX})")  # as version_blob() names them


def kept_artifact_id(folder: str) -> int | None:
    """The artifact id a folder of :data:`VERSIONS_DIR` is named after, or None when its
    name is no id (someone else's entry: never deleted through)."""
    return int(folder) if _KEPT_ID.fullmatch(folder) else None


def kept_checksum(name: str) -> str | None:
    """The checksum whose bytes a file of a :func:`version_dir` named ``name`` keeps, or
    None when :func:`version_blob` gives no such name (someone else's entry)."""
    found = _KEPT_NAME.fullmatch(name)
    return None if found is None else f"{found[1]}:{found[2]}"


LATEST = "latest"
"""The alias every artifact has: its current version (never set by hand)."""
_VERSION_LIKE = re.compile(r"v[0-9]+")


def validate_alias(alias: object) -> str:
    """``alias`` if a version alias may be set under it (issue 15): a valid name, not
    ``latest`` (always the current version) and not spelled like a version (``v3``)."""
    value = validate_name(alias, "alias")
    if value == LATEST or _VERSION_LIKE.fullmatch(value):
        raise InvalidNameError(f"invalid alias {value!r}: {LATEST!r} and version numbers "
                               "(v1, v2, ...) name versions already")
    return value
