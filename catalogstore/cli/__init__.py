"""The ``catalogstore`` command line: one module per command group.

- :mod:`~catalogstore.cli.app`: the application and its one-line errors;
  :mod:`~catalogstore.cli.output`: tables and JSON.
- :mod:`~catalogstore.cli.db` (``db``), :mod:`~catalogstore.cli.memory` (``memory``),
  :mod:`~catalogstore.cli.artifacts` (``ls``, ``show``, ``cp``, ``rm``),
  :mod:`~catalogstore.cli.meta` (``meta``), :mod:`~catalogstore.cli.versions`
  (``versions``, ``alias``, ``pin``, ``unpin``),
  :mod:`~catalogstore.cli.query` (``query``), :mod:`~catalogstore.cli.maintenance`
  (``reindex``, ``verify``, ``gc``), :mod:`~catalogstore.cli.retention` (``retention``),
  :mod:`~catalogstore.cli.demo` (``demo``),
  :mod:`~catalogstore.cli.objects` (``get``, ``put``, ``adopt``),
  :mod:`~catalogstore.cli.ui` (``ui``, the web browser of :mod:`catalogstore.web`),
  :mod:`~catalogstore.cli.lineage` (``lineage``).

Each command module registers its commands on :data:`app` when imported.
"""

from __future__ import annotations

from catalogstore.cli import (  # noqa: F401
    artifacts,
    db,
    demo,
    lineage,
    maintenance,
    memory,
    meta,
    objects,
    query,
    retention,
    ui,
    versions,
)
from catalogstore.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``catalogstore`` console script."""
    app()
