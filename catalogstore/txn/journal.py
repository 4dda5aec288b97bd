"""Journal entries: the storage half of a commit, written with it and rolled forward after a crash.

A commit writes one ``catalog_journal`` row per artifact whose folder or files
change (:func:`journal_payload`): one it creates, even without files, one it
deletes, one whose files it writes or removes. The row holds the artifact's
namespace and name and, as JSON, the staged files to move into place, the files
to remove, whether the artifact folder goes or is made and, for an artifact
created on local disk, the staged folder that becomes its folder. A change of
metadata alone gets a row only when its ``.artifact.json`` rewrite failed
(:meth:`~catalogstore.txn.workspace.Workspace.commit`). The catalog stores the
payload as text it does not look into; :meth:`~catalogstore.txn.workspace.Workspace.recover`
replays the rows a crash left, and every row stays until its change is applied.

Rows are read back from a database that anyone with its URL can edit, so every
row is checked before any of it becomes a path (:func:`read_entry`): the names
by the rules of :mod:`catalogstore.names`, each staged path against the shape
of :mod:`catalogstore.txn.staging`, the payload against the shape written here.
A row that breaks them is refused as a whole: it is reported, left in the
journal for a person to look at, and nothing of it is applied.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from catalogstore.errors import InvalidNameError
from catalogstore.names import validate_file_name, validate_name, version_blob
from catalogstore.txn import staging

if TYPE_CHECKING:
    from catalogstore.catalog.catalog import Catalog
    from catalogstore.txn.changeset import Changeset


def needs_entry(cs: Changeset) -> bool:
    """Whether the storage change of ``cs`` is more than a metadata rewrite.

    A creation without files is one too (issue 13): without a row, a folder that the
    storage refused to make was never made, and the catalog kept an artifact that
    storage does not have.
    """
    if cs.written_by_mirror:  # the catalog's pending bytes say what is left to write
        return False
    return bool(cs.create or cs.writes or cs.removes or cs.delete or cs.staged_folder)


def journal_payload(cs: Changeset, kept: Sequence[tuple[str, str]] = ()) -> str:
    """The storage half of a changeset, as the journal keeps it (JSON text); ``kept``:
    (file name, checksum) of the committed files it replaces or removes, whose bytes
    are kept for earlier versions first."""
    payload: dict[str, Any] = {
        "moves": [[f.path, name, f.checksum] for name, f in cs.writes.items()],
        "removes": sorted(cs.removes),
        "delete": cs.delete,
    }
    if kept:
        payload["keeps"] = [list(pair) for pair in kept]
    if cs.create:
        payload["create"] = True
    if cs.staged_folder is not None:
        payload["folder"] = cs.staged_folder
    return json.dumps(payload)


def metadata_payload() -> str:
    """The payload of a row for a ``.artifact.json`` rewrite alone (rewritten from the
    catalog's metadata as it is when the row is rolled forward)."""
    return json.dumps({"moves": [], "removes": [], "delete": False})


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
    create: bool = False
    """The change created the artifact: its folder is made if it is missing."""
    keeps: tuple[tuple[str, str], ...] = ()
    """(file name, checksum) of the files replaced or removed, kept for earlier versions."""
    problem: str | None = None
    """Why the row is refused (it breaks the naming rules or the journal's shape)."""
    staged: frozenset[str] = frozenset()
    """The well-formed staged paths the row names, refused or not: ``gc`` leaves
    them alone while the row is there."""


def read_journal(catalog: Catalog) -> list[JournalEntry]:
    """The catalog's journal rows (storage changes committed but not yet marked
    applied), each checked: a row edited by hand is refused."""
    return [read_entry(*row) for row in catalog.journal()]


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
                  staging.is_staged(move[0])} if isinstance(moves, list) else set()
        if staging.is_staged(data.get("folder")):
            staged.add(data["folder"])
    try:
        validate_name(namespace, "namespace")
        validate_name(name)
        if not isinstance(data, dict):
            raise ValueError("the payload is not a JSON object")
        folder = data.get("folder")
        if folder is not None and not staging.is_staged_top(folder):
            raise ValueError(f"staged folder {folder!r:.80} is not in the staging area "
                             f"({staging.FOLDER_SHAPE})")
        moves = tuple(_move(move, folder) for move in _list(data, "moves"))
        removes = tuple(validate_file_name(f) for f in _list(data, "removes"))
        keeps = tuple(_keep(keep) for keep in _list(data, "keeps"))
        delete, create = data.get("delete", False), data.get("create", False)
        if not isinstance(delete, bool) or not isinstance(create, bool):
            raise ValueError("'delete' or 'create' is not true or false")
    except (InvalidNameError, ValueError) as exc:
        return JournalEntry(journal_id, str(namespace), str(name),
                            problem=f"journal entry {journal_id} is refused: {exc}",
                            staged=frozenset(staged))
    return JournalEntry(journal_id, namespace, name, moves, removes, delete, folder, create,
                        keeps, staged=frozenset(staged))


def _list(data: dict[str, Any], key: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise ValueError(f"{key!r} is not a list")
    return value


def _keep(keep: Any) -> tuple[str, str]:
    """A checked (file name, checksum) pair: both become paths."""
    if not (isinstance(keep, list) and len(keep) == 2 and all(isinstance(k, str) for k in keep)):
        raise ValueError(f"a kept file is not [file name, checksum]: {keep!r:.80}")
    version_blob(1, keep[1])  # refuses a checksum that is no <algorithm>:<hex>
    return validate_file_name(keep[0]), keep[1]


def _move(move: Any, folder: str | None) -> tuple[str, str, str]:
    """A checked move; with a staged ``folder``, its staged paths are files of it."""
    if not (isinstance(move, list) and len(move) == 3 and all(isinstance(m, str) for m in move)):
        raise ValueError(f"a move is not [staged path, file name, checksum]: {move!r:.80}")
    staged, file_name, checksum = move
    inside = staging.split_folder(staged)
    if folder is not None and inside is not None and inside[0] == folder:
        validate_file_name(inside[1])
    elif folder is not None or not staging.is_staged_top(staged):
        where = f"{folder}/<file name>" if folder else staging.FOLDER_SHAPE
        raise ValueError(f"staged path {staged!r:.80} is not in the staging area ({where})")
    return staged, validate_file_name(file_name), checksum
