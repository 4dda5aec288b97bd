"""What the storage reports of a file written to the staging area.

Kept apart from :mod:`catalogstore.storage.filestore` so that the unit of work
can name it without importing fsspec.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class StagedFile:
    """File content written to the staging area, waiting for its commit."""

    path: str
    """Path of the staged bytes, relative to the storage root."""
    size: int
    checksum: str
    encoding: str | None
    modified: datetime | None = None
    """When the bytes last changed, if not at the commit: ``reindex`` records the
    storage's modification time, so that a later run can trust an unchanged file."""
