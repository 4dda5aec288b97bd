"""Journal entries: the storage half of a commit, written with it and rolled forward after a crash.

A commit writes one ``catalog_journal`` row per artifact whose files change
(:func:`journal_payload`); the row holds the artifact's namespace and name and,
as JSON, the staged files to move into place, the files to remove, whether
the artifact folder goes and, for an artifact created on local disk, the staged
folder that becomes its folder. :meth:`catalogstore.workspace.Workspace.recover`
replays the rows a crash left.

Rows are read back from a database that anyone with its URL can edit, so every
row is checked before any of it becomes a path (:func:`read_entry`): the names
by the rules of :mod:`catalogstore.names`, each staged path against the shape
the file store gives staged files, the payload against the shape written here.
A row that breaks them is refused as a whole: it is reported, left in the
journal for a person to look at, and nothing of it is applied.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from catalogstore.errors import InvalidNameError
from catalogstore.names import STAGING_DIR, validate_file_name, validate_name

if TYPE_CHECKING:
    from catalogstore.txn.changeset import Changeset

# What FileStore.new_staging_path and new_staging_folder give: 32 random hex digits in
# the staging area; a staged folder holds files named as the artifact's files, or so.
_STAGED = re.compile(re.escape(STAGING_DIR) + r"/[0-9a-f]{32}")
_IN_STAGED_FOLDER = re.compile(r"(" + _STAGED.pattern + r")/([^/]+)")


def journal_payload(cs: Changeset) -> dict[str, Any]:
    """The storage half of a changeset, as the journal keeps it."""
    payload = {
        "moves": [[f.path, name, f.checksum] for name, f in cs.writes.items()],
        "removes": sorted(cs.removes),
        "delete": cs.delete,
    }
    if cs.staged_folder is not None:
        payload["folder"] = cs.staged_folder
    return payload


@dataclass(frozen=True)
class JournalEntry:
    """One journal row, checked; only an entry without ``problem`` may be applied."""

    id: int
    namespace: str
    name: str
    moves: tuple[tuple[str, str, str], ...] = ()
    """(staged path, file name, checksum) of each file to move into place."""
    removes: tuple[str, ...] = ()
    delete: bool = False
    folder: str | None = None
    """The staged folder that becomes the new artifact's folder (its files are in it)."""
    problem: str | None = None
    """Why the row is refused (it breaks the naming rules or the journal's shape)."""
    staged: frozenset[str] = frozenset()
    """The well-formed staged paths the row names, refused or not: ``gc`` leaves
    them alone while the row is there."""


def read_entry(journal_id: int, namespace: Any, name: Any, payload: Any) -> JournalEntry:
    """The checked entry of a journal row (``payload`` as the database holds it)."""
    staged: set[str] = set()
    try:
        data = json.loads(payload)
    except (TypeError, ValueError):
        data = None
    if isinstance(data, dict):
        moves = data.get("moves")
        staged = {move[0] for move in moves if isinstance(move, list) and move and
                  _staged_shape(move[0])} if isinstance(moves, list) else set()
        if _staged_shape(data.get("folder")):
            staged.add(data["folder"])
    try:
        validate_name(namespace, "namespace")
        validate_name(name)
        if not isinstance(data, dict):
            raise ValueError("the payload is not a JSON object")
        folder = data.get("folder")
        if folder is not None and not (isinstance(folder, str) and _STAGED.fullmatch(folder)):
            raise ValueError(f"staged folder {folder!r:.80} is not in the staging area "
                             f"({STAGING_DIR}/<32 hex digits>)")
        moves = tuple(_move(move, folder) for move in _list(data, "moves"))
        removes = tuple(validate_file_name(f) for f in _list(data, "removes"))
        delete = data.get("delete", False)
        if not isinstance(delete, bool):
            raise ValueError("'delete' is not true or false")
    except (InvalidNameError, ValueError) as exc:
        return JournalEntry(journal_id, str(namespace), str(name),
                            problem=f"journal entry {journal_id} is refused: {exc}",
                            staged=frozenset(staged))
    return JournalEntry(journal_id, namespace, name, moves, removes, delete, folder,
                        staged=frozenset(staged))


def _staged_shape(path: Any) -> bool:
    """Whether ``path`` has the shape of a staged file or folder (its names unchecked)."""
    return isinstance(path, str) and bool(_STAGED.fullmatch(path) or
                                          _IN_STAGED_FOLDER.fullmatch(path))


def _list(data: dict[str, Any], key: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise ValueError(f"{key!r} is not a list")
    return value


def _move(move: Any, folder: str | None) -> tuple[str, str, str]:
    """A checked move; with a staged ``folder``, its staged paths are files of it."""
    if not (isinstance(move, list) and len(move) == 3 and all(isinstance(m, str) for m in move)):
        raise ValueError(f"a move is not [staged path, file name, checksum]: {move!r:.80}")
    staged, file_name, checksum = move
    inside = _IN_STAGED_FOLDER.fullmatch(staged)
    if folder is not None and inside is not None and inside.group(1) == folder:
        validate_file_name(inside.group(2))
    elif folder is not None or not _STAGED.fullmatch(staged):
        where = f"{folder}/<file name>" if folder else f"{STAGING_DIR}/<32 hex digits>"
        raise ValueError(f"staged path {staged!r:.80} is not in the staging area ({where})")
    return staged, validate_file_name(file_name), checksum
