"""Artifacts: named containers of files plus key/value metadata on any fsspec storage.

Laid out as Flowdapt lays them out, ``{storage_url}/artifacts/{namespace}/{name}/``
with the metadata mirrored in ``.artifact.json``, and indexed by the SQL catalog.

Examples
--------
>>> from catalogstore.artifacts import new_artifact, get_artifact   # doctest: +SKIP
>>> artifact = new_artifact("my_artifact")                          # doctest: +SKIP
>>> artifact.new_file("my_file", content="Hello, World!").read()     # doctest: +SKIP
'Hello, World!'
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, overload

from catalogstore.artifacts.artifact import Artifact, ArtifactFile
from catalogstore.context import current_namespace
from catalogstore.errors import ArtifactExistsError, ArtifactNotFoundError
from catalogstore.names import check_meta_value, validate_meta_key, validate_name
from catalogstore.txn.batch import current_batch
from catalogstore.txn.changeset import Changeset

if TYPE_CHECKING:
    from catalogstore.txn.workspace import Workspace

__all__ = [
    "Artifact",
    "ArtifactFile",
    "Page",
    "artifact_exists",
    "get_artifact",
    "list_artifacts",
    "new_artifact",
    "query_artifacts",
]


def get_workspace() -> Workspace:
    from catalogstore.txn.workspace import get_workspace as _get_workspace

    return _get_workspace()


def _resolve(name: str, namespace: str) -> tuple[Workspace, str, str]:
    workspace = get_workspace()
    ns = current_namespace(namespace, workspace.settings)
    return workspace, ns, validate_name(name)


def new_artifact(name: str, namespace: str = "") -> Artifact:
    """Create the artifact ``name`` in ``namespace`` (default: the current namespace).

    Raises
    ------
    ArtifactExistsError
        (a ``FileExistsError``) when the namespace has an artifact of that name.
    InvalidNameError
        when ``name`` or ``namespace`` breaks the naming rules.
    """
    workspace, ns, name = _resolve(name, namespace)
    batch = current_batch(workspace)
    if batch is not None:
        cs = batch.changeset(ns, name)
        if cs.create:
            raise ArtifactExistsError(f"artifact {name!r} is already created in this transaction")
        # An artifact that exists in the catalog makes the batch's commit fail as a whole
        # (the unique constraint decides, so concurrent creators cannot both win).
        cs.create = True
        return Artifact(workspace, None, namespace=ns, name=name)
    artifact = Artifact(workspace, None, namespace=ns, name=name)
    artifact._commit([Changeset(ns, name, create=True)])
    return artifact


def get_artifact(name: str, namespace: str = "", *, create: bool = False) -> Artifact:
    """The artifact ``name`` of ``namespace`` (default: the current namespace).

    Parameters
    ----------
    create
        Create the artifact when it does not exist, instead of raising.

    Raises
    ------
    ArtifactNotFoundError
        (a ``FileNotFoundError``) when there is no such artifact and ``create`` is false.
    """
    workspace, ns, name = _resolve(name, namespace)
    record = workspace.catalog.get_artifact(ns, name)
    if record is not None:
        return Artifact(workspace, record, namespace=ns, name=name)
    batch = current_batch(workspace)
    if batch is not None and batch.changeset(ns, name).create:
        return Artifact(workspace, None, namespace=ns, name=name)
    if create:
        try:
            return new_artifact(name, ns)
        except ArtifactExistsError:  # created by someone else meanwhile: use theirs
            return get_artifact(name, ns)
    raise ArtifactNotFoundError(f"artifact {name!r} does not exist in namespace {ns!r}")


def artifact_exists(name: str, namespace: str = "") -> bool:
    """Whether the catalog has the artifact ``name`` in ``namespace``."""
    workspace, ns, name = _resolve(name, namespace)
    return workspace.catalog.get_artifact(ns, name) is not None


def list_artifacts(namespace: str = "", *, where: dict[str, Any] | None = None,
                   all_namespaces: bool = False, filter: str | None = None,
                   order_by: str | None = None, limit: int | None = None) -> list[Artifact]:
    """The artifacts of ``namespace``, by name, read from the catalog only.

    Parameters
    ----------
    where
        Keep the artifacts whose metadata has each of these key/value pairs: a ``str``
        compares with the value's text, a number numerically, ``True``/``False`` with
        booleans, ``None`` with ``null``, a list or dict whole.
    all_namespaces
        List every namespace instead of one.
    filter
        Keep the artifacts that match this filter, e.g. ``"meta.accuracy > 0.9"``
        (the language of :mod:`catalogstore.catalog.query.language`), besides ``where``.
    order_by
        A built-in field or ``meta.KEY``, with ``-`` before or ``desc`` after it
        (default: by namespace, then name).
    limit
        At most this many artifacts (the first page; :func:`query_artifacts` pages on).

    Raises
    ------
    QueryError
        (a ``ValueError``) for a malformed filter or ordering.
    """
    workspace = get_workspace()
    ns = None if all_namespaces else current_namespace(namespace, workspace.settings)
    # Typed: a str compares as text, a number as a number, True only with booleans.
    where = {validate_meta_key(k): check_meta_value(k, v) for k, v in (where or {}).items()}
    return list(_search(workspace, filter, where=where, namespaces="*" if ns is None else [ns],
                        order_by=order_by, limit=limit, after=None))


@dataclass(frozen=True)
class Page(Sequence[Artifact]):
    """One page of a search: its artifacts, and the cursor of the next page.

    A sequence of :class:`Artifact`; ``next`` is ``None`` on the last page.
    """

    artifacts: list[Artifact] = field(default_factory=list)
    next: str | None = None

    @overload
    def __getitem__(self, index: int) -> Artifact: ...

    @overload
    def __getitem__(self, index: slice) -> list[Artifact]: ...

    def __getitem__(self, index: int | slice) -> Artifact | list[Artifact]:
        return self.artifacts[index]

    def __len__(self) -> int:
        return len(self.artifacts)

    def __iter__(self) -> Iterator[Artifact]:
        return iter(self.artifacts)


def query_artifacts(filter: str | None = None, *, namespaces: str | Iterable[str] = "*",
                    order_by: str | None = None, limit: int | None = None,
                    after: str | None = None) -> Page:
    """Search the catalog (never the storage) for the artifacts that match ``filter``.

    Parameters
    ----------
    filter
        For example ``"meta.model = 'xgb' AND meta.accuracy > 0.9"``; ``None``
        matches every artifact. The language is described in
        :mod:`catalogstore.catalog.query.language`.
    namespaces
        ``"*"`` (every namespace), a namespace, a glob pattern of them
        (``"team-*"``: ``*`` any run of characters, ``?`` one), or a list of those.
    order_by
        A built-in field (``name``, ``namespace``, ``created_at``, ``updated_at``,
        ``files``, ``size``) or ``meta.KEY``, with ``-`` before or ``desc`` after it
        for descending order; default: by namespace, then name.
    limit
        The page size; ``None`` returns every match in one page.
    after
        The ``next`` cursor of the previous page (with the same ``order_by``).

    Returns
    -------
    Page
        The artifacts, and the cursor of the next page (``None`` on the last page).
        Pages are keyset pages: artifacts created while paging neither shift them
        nor show up twice.

    Raises
    ------
    QueryError
        (a ``ValueError``) for a malformed filter, ordering, pattern, limit or cursor,
        pointing at the problem.

    Examples
    --------
    >>> page = query_artifacts("meta.accuracy > 0.9", order_by="-created_at",
    ...                        limit=50)                                    # doctest: +SKIP
    >>> more = query_artifacts("meta.accuracy > 0.9", order_by="-created_at",
    ...                        limit=50, after=page.next)                   # doctest: +SKIP
    """
    return _search(get_workspace(), filter, where=None, namespaces=namespaces,
                   order_by=order_by, limit=limit, after=after)


def _search(workspace: Workspace, filter: str | None, *, where: dict[str, Any] | None,
            namespaces: str | Iterable[str], order_by: str | None, limit: int | None,
            after: str | None) -> Page:
    from catalogstore.catalog.query.compile import compile_search

    search = compile_search(filter, dialect=workspace.catalog.engine.dialect.name,
                            where=where, namespaces=namespaces, order_by=order_by,
                            limit=limit, after=after)
    records, cursor = workspace.catalog.search(search)
    return Page([Artifact(workspace, record, namespace=record.namespace, name=record.name)
                 for record in records], cursor)
