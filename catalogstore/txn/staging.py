"""The staging area's layout: the one place that names staged paths and checks their shape.

New content waits for its commit under ``.catalogstore/staging/`` (outside
``artifacts/``, so neither Flowdapt nor a listing sees it), each file under 32
random hex digits (as many as a UUID4 has). An artifact that a transaction
creates on local disk gets a staged *folder* of that shape instead, holding its
files under their own names (or under 32 hex digits while a name is taken) and,
just before it becomes the artifact's folder, its ``.artifact.json``.

The journal checks the paths a row names against :func:`is_staged` and
:func:`split_folder`, and ``gc`` removes only what :func:`is_staged` accepts.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

from catalogstore.names import STAGING_DIR

if TYPE_CHECKING:
    from catalogstore.storage.filestore import FileStore

__all__ = ["STAGING_DIR", "is_staged", "new_folder", "new_path", "split_folder"]

_STAGED = re.compile(re.escape(STAGING_DIR) + r"/[0-9a-f]{32}")
_IN_STAGED_FOLDER = re.compile(r"(" + _STAGED.pattern + r")/([^/]+)")
FOLDER_SHAPE = f"{STAGING_DIR}/<32 hex digits>"
"""How messages describe a staged file's or folder's path."""


def new_path(folder: str = STAGING_DIR) -> str:
    """A name used once in the staging area, or in a staged ``folder`` of it."""
    return f"{folder}/{os.urandom(16).hex()}"


def new_folder(files: FileStore) -> str:
    """A new, empty folder in the local staging area, for the files of a new artifact."""
    path = new_path()
    files.make_new_folder(path)
    return path


def is_staged(path: Any) -> bool:
    """Whether ``path`` has the shape of a staged file or folder, or of a file in a
    staged folder (the file's name unchecked)."""
    return isinstance(path, str) and bool(_STAGED.fullmatch(path) or
                                          _IN_STAGED_FOLDER.fullmatch(path))


def is_staged_top(path: Any) -> bool:
    """Whether ``path`` is a staged file or folder directly in the staging area."""
    return isinstance(path, str) and _STAGED.fullmatch(path) is not None


def split_folder(path: str) -> tuple[str, str] | None:
    """(staged folder, name) of a path inside a staged folder; ``None`` for any other."""
    inside = _IN_STAGED_FOLDER.fullmatch(path)
    return (inside.group(1), inside.group(2)) if inside else None
