"""catalogstore: hand objects from one workflow stage to the next, and keep them.

The public API:

- :mod:`catalogstore.artifacts`: named containers of files and metadata on any
  fsspec storage, indexed by a SQL catalog.
- :mod:`catalogstore.object_store`: ``put``/``get``/``delete``/``exists`` of any
  Python object, in cluster memory (:mod:`catalogstore.cluster_memory`) or as an
  artifact (:mod:`catalogstore.serializers` turn values into files).
- :func:`configure`, :func:`namespace`: where things are stored, and under which
  namespace; :func:`transaction`: many artifact changes committed as one;
  :func:`run`: a named run whose reads and writes the lineage records.

Below it, data flowing down only (the README's "Architecture" draws it):
:mod:`catalogstore.txn`, the unit of work, is the only layer that knows both the
catalog (:mod:`catalogstore.catalog`, the SQL database and its query language)
and the storage gateway (:mod:`catalogstore.storage`, the only code that touches
a path of the storage). :mod:`catalogstore.maintenance` (``reindex``, ``verify``,
``gc``) sits beside them; :mod:`catalogstore.cli` on top.

Importing the package is cheap: pydantic, SQLAlchemy and fsspec load on the
first call that needs them (hence the imports inside the functions below).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from catalogstore import errors
from catalogstore.context import current_namespace, namespace
from catalogstore.errors import CatalogStoreError

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from catalogstore.settings import Settings
    from catalogstore.txn.batch import Batch
    from catalogstore.txn.runs import Run

__version__ = "0.1.0"
__all__ = [
    "CatalogStoreError",
    "configure",
    "current_namespace",
    "errors",
    "get_settings",
    "namespace",
    "run",
    "transaction",
]


def configure(**values: Any) -> Settings:
    """Set the configuration of this process and of the processes it starts.

    See :func:`catalogstore.settings.configure`.
    """
    from catalogstore.settings import configure as _configure

    return _configure(**values)


def get_settings() -> Settings:
    """The settings in force (see :func:`catalogstore.settings.get_settings`)."""
    from catalogstore.settings import get_settings as _get_settings

    return _get_settings()


def transaction(settings: Settings | None = None) -> AbstractContextManager[Batch]:
    """Commit every artifact change made in the block as one catalog transaction.

    See :func:`catalogstore.batch.transaction`.
    """
    from catalogstore.txn.batch import transaction as _transaction

    return _transaction(settings)


def run(name: str, params: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        settings: Settings | None = None) -> AbstractContextManager[Run]:
    """Open the run ``name`` for the block: the lineage records every artifact version
    and object made in it as its output, every one read as its input.

    See :func:`catalogstore.txn.runs.run`.
    """
    from catalogstore.settings import get_settings as _get_settings
    from catalogstore.txn.runs import run as _run
    from catalogstore.txn.workspace import get_workspace

    settings = settings or _get_settings()
    return _run(get_workspace(settings) if settings.lineage else None, name, params, metadata)
