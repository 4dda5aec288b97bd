"""catalogstore: hand objects from one workflow stage to the next, and keep them.

- :mod:`catalogstore.artifacts`: named containers of files and metadata on any
  fsspec storage, indexed by a SQL catalog.
- :func:`configure`, :func:`namespace`: where things are stored, and under which
  namespace.
- :func:`transaction`: many artifact changes committed as one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from catalogstore import errors
from catalogstore.errors import CatalogStoreError
from catalogstore.settings import (
    Settings,
    configure,
    current_namespace,
    get_settings,
    namespace,
)

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from catalogstore.workspace import Batch

__version__ = "0.1.0"
__all__ = [
    "CatalogStoreError",
    "Settings",
    "configure",
    "current_namespace",
    "errors",
    "get_settings",
    "namespace",
    "transaction",
]


def transaction(settings: Settings | None = None) -> AbstractContextManager[Batch]:
    """Commit every artifact change made in the block as one catalog transaction.

    See :func:`catalogstore.workspace.transaction`.
    """
    from catalogstore.workspace import transaction as _transaction

    return _transaction(settings)
