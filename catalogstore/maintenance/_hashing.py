"""The one pipeline that reads artifacts' content from the storage for ``reindex`` and
``verify``: their ``.artifact.json`` files and the checksums of their data files,
fetched in parallel through the storage gateway (remote stores answer each request
in milliseconds; local disks are read in order)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from catalogstore.names import artifact_dir
from catalogstore.record import FileRecord
from catalogstore.storage.tree import (
    Broken,
    StoredArtifact,
    algorithm_of,
    checksum_of,
    parallel,
    read_metadata,
)
from catalogstore.txn.workspace import Workspace

Metadata = dict[str, Any] | Broken | None
"""An artifact's ``.artifact.json`` as read: its metadata, why it is unreadable, or
``None`` when there is none."""
Hashed = tuple[str, int] | Broken
"""A file's checksum and the number of bytes hashed, or why it could not be read."""


def read_metadatas(ws: Workspace, ns: str, stored: dict[str, StoredArtifact],
                   names: Sequence[str]) -> dict[str, Metadata]:
    """The ``.artifact.json`` of each of ``names`` (all in ``stored``)."""
    return dict(zip(names, parallel(
        ws.files, lambda n: read_metadata(ws.files, ns, n, stored[n]), names), strict=True))


def hash_files(ws: Workspace, ns: str,
               wanted: dict[tuple[str, str], tuple[FileRecord | None, int]]
               ) -> dict[tuple[str, str], Hashed]:
    """The checksums of the files ``wanted`` names, as (artifact, file) -> (the catalog's
    row, if any: its algorithm is used; the size listed in storage)."""
    jobs = [(f"{artifact_dir(ns, name)}/{file}", algorithm_of(row), size)
            for (name, file), (row, size) in wanted.items()]
    return dict(zip(wanted, parallel(ws.files, lambda job: checksum_of(ws.files, job), jobs),
                    strict=True))
