"""The storage half of a commit: applied after the commit point, rolled forward after a crash."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from catalogstore.names import METADATA_FILENAME, artifact_dir, version_blob, version_dir
from catalogstore.record import metadata_to_json
from catalogstore.storage.tree import list_files_with_info

if TYPE_CHECKING:
    from catalogstore.catalog.catalog import Catalog
    from catalogstore.storage.filestore import FileStore
    from catalogstore.txn.commit import Committed
    from catalogstore.txn.journal import JournalEntry


def apply(files: FileStore, done: Committed) -> None:
    """Make the storage match one committed changeset (under its artifact's lock)."""
    cs = done.changeset
    folder = artifact_dir(cs.namespace, cs.name)
    if cs.delete:  # never one that creates: no staged folder
        files.remove_tree(folder)
        files.remove_tree(version_dir(done.artifact_id))  # every version goes with it
        return
    if cs.staged_folder is not None:
        assert done.metadata is not None  # a new artifact's metadata, maybe empty
        place_staged_folder(files, cs.staged_folder, folder, [
            (staged.path, name) for name, staged in cs.writes.items()], done.metadata)
        return
    if cs.create:
        files.makedirs(folder)
    with files.folders_held():  # files moved and removed, no folder
        keep_replaced(files, done.artifact_id, folder, done.kept)
        files.move_all([(staged.path, f"{folder}/{name}") for name, staged in cs.writes.items()])
        for name in cs.removes:
            files.remove_quietly(f"{folder}/{name}")
        # Written at creation too: an object store needs it for the folder to exist,
        # and Flowdapt would otherwise create it when it first reads the artifact.
        if done.metadata is not None:
            files.write_metadata(folder, metadata_to_json(done.metadata))


def keep_replaced(files: FileStore, artifact_id: int, folder: str,
                  kept: Sequence[tuple[str, str]]) -> None:
    """Keep the bytes of the files a change replaces or removes ((file name, checksum)
    pairs) for the earlier versions that hold them, before they go: once per checksum
    under :func:`~catalogstore.names.version_blob`, as a hard link or server-side copy."""
    files.for_each(lambda pair: files.keep(f"{folder}/{pair[0]}",
                                           version_blob(artifact_id, pair[1])), list(kept))


def place_staged_folder(files: FileStore, staged: str, folder: str,
                        moves: list[tuple[str, str]], metadata: dict[str, Any]) -> None:
    """Make the staged folder of a new artifact its folder: each staged file
    (``moves``: staged path, file name) under its name, ``.artifact.json`` beside
    them, then one rename. Where the artifact's folder exists already (a crash
    left it, or someone wrote it behind the catalog's back), the files are moved
    into it one by one instead, as for an existing artifact."""
    for path, name in moves:
        if path != f"{staged}/{name}":
            files.move(path, f"{staged}/{name}")
    content = metadata_to_json(metadata)
    files.write_new_file(content, f"{staged}/{METADATA_FILENAME}")
    if files.place_folder(staged, folder):
        return
    for _, name in moves:
        files.move(f"{staged}/{name}", f"{folder}/{name}")
    files.write_metadata(folder, content)
    files.remove_tree(staged)


def roll_forward(files: FileStore, catalog: Catalog, entry: JournalEntry) -> None:
    """Apply what a checked journal entry left undone (under its artifact's lock).

    Every step is checked against the catalog as it is now, so an entry that was
    applied already changes nothing.
    """
    folder = artifact_dir(entry.namespace, entry.name)
    record = catalog.get_artifact(entry.namespace, entry.name)
    if record is None:
        if entry.delete:
            files.remove_tree(folder)
        for staged, _, _ in entry.moves:
            files.remove_quietly(staged)
        if entry.folder is not None:
            files.remove_tree(entry.folder)
        return
    current = {f.name: f for f in catalog.list_files(record.id)}
    if entry.delete:
        # Deleted, then created again by a process that did not roll this entry forward
        # first: the new artifact's files were moved in beside the deleted one's. Those
        # go; the new one's are all in the catalog (issue 13).
        listed, _ = list_files_with_info(files, folder, 1)  # foreign entries: left alone
        for file_name in listed:
            if file_name != METADATA_FILENAME and file_name not in current:
                files.remove_quietly(f"{folder}/{file_name}")
    moves = []
    for staged, file_name, checksum in entry.moves:
        row = current.get(file_name)
        if row is not None and row.checksum == checksum and files.exists(staged):
            moves.append((staged, file_name))
        else:
            files.remove_quietly(staged)
    # What is still to be replaced or removed holds the bytes earlier versions need.
    pending = {file_name for _, file_name in moves} | \
        {file_name for file_name in entry.removes if file_name not in current}
    keep_replaced(files, record.id, folder,
                  [(name, checksum) for name, checksum in entry.keeps if name in pending])
    if entry.folder is not None and files.exists(entry.folder):
        # The crash came before the staged folder was placed.
        files.remove_quietly(f"{entry.folder}/{METADATA_FILENAME}")
        place_staged_folder(files, entry.folder, folder, moves, record.metadata)
        return
    if entry.create:  # a creation without files: the folder may never have been made
        files.makedirs(folder)
    for staged, file_name in moves:
        files.move(staged, f"{folder}/{file_name}")
    for file_name in entry.removes:
        if file_name not in current:
            files.remove_quietly(f"{folder}/{file_name}")
    files.write_metadata(folder, metadata_to_json(record.metadata))
