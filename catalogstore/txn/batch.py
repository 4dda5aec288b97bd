"""Batches: changes to many artifacts committed to the catalog as one transaction.

Kept apart from :mod:`catalogstore.txn.workspace` so that artifact handles can ask
"is a batch open?" without importing SQLAlchemy.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import TYPE_CHECKING

from catalogstore.errors import TransactionError
from catalogstore.storage.staged import StagedFile
from catalogstore.txn.changeset import Changeset

if TYPE_CHECKING:
    from catalogstore.settings import Settings
    from catalogstore.txn.workspace import Workspace


class Batch:
    """Changes to many artifacts that commit to the catalog as one transaction."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.changesets: dict[tuple[str, str], Changeset] = {}

    def changeset(self, namespace: str, name: str) -> Changeset:
        key = (namespace, name)
        cs = self.changesets.get(key)
        if cs is None:
            cs = self.changesets[key] = Changeset(namespace, name)
        return cs


_batch: contextvars.ContextVar[Batch | None] = contextvars.ContextVar(
    "catalogstore_batch", default=None)


def current_batch(workspace: Workspace) -> Batch | None:
    """The batch open in this context for ``workspace``, if any."""
    batch = _batch.get()
    return batch if batch is not None and batch.workspace is workspace else None


@contextlib.contextmanager
def transaction(settings: Settings | None = None) -> Iterator[Batch]:
    """Collect every artifact change of the block and commit them together.

    The catalog commits once for the whole block, which makes creating many
    small artifacts much cheaper than one by one. If the block raises, nothing
    of it becomes visible. A nested ``transaction()`` joins the outer one.

    Examples
    --------
    >>> import catalogstore
    >>> from catalogstore.artifacts import new_artifact
    >>> with catalogstore.transaction():                     # doctest: +SKIP
    ...     for i in range(1000):
    ...         new_artifact(f"sample-{i}").new_file("data", content=b"...")
    """
    from catalogstore.txn.workspace import get_workspace

    workspace = get_workspace(settings)
    outer = current_batch(workspace)
    if outer is not None:
        yield outer
        return
    if _batch.get() is not None:
        raise TransactionError("a transaction of another configuration is already open")
    batch = Batch(workspace)
    token = _batch.set(batch)
    try:
        try:
            yield batch
        finally:
            _batch.reset(token)
    except BaseException:
        workspace.discard(list(batch.changesets.values()))
        raise
    workspace.commit(list(batch.changesets.values()))


def release_staged(workspace: Workspace, replaced: StagedFile | None) -> None:
    """Remove a staged file that a later write in the same transaction replaced
    (left for ``gc`` if the storage fails)."""
    if replaced is not None:
        workspace.files.discard_quietly(replaced.path)
