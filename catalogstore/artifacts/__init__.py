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

from catalogstore.artifacts import lookup
from catalogstore.artifacts.artifact import Artifact, ArtifactFile
from catalogstore.artifacts.retention import (
    get_retention,
    reset_retention,
    retention_policies,
    set_retention,
)
from catalogstore.context import current_namespace
from catalogstore.errors import ArtifactExistsError
from catalogstore.names import check_meta_value, validate_meta_key, validate_name

if TYPE_CHECKING:
    from catalogstore.txn.workspace import Workspace

__all__ = [
    "Artifact",
    "ArtifactFile",
    "Page",
    "artifact_exists",
    "check_if_artifact_exists",
    "get_artifact",
    "get_retention",
    "list_artifacts",
    "list_artifacts_page",
    "new_artifact",
    "query_artifacts",
    "reset_retention",
    "retention_policies",
    "set_retention",
]


def get_workspace() -> Workspace:
    from catalogstore.txn.workspace import get_workspace as _get_workspace

    return _get_workspace()


def _get_values_from_context(namespace: str = "", protocol: str = "", base_path: str = "",
                             **params: Any) -> tuple[str, str, str, dict[str, Any]]:
    """Flowdapt's defaults of a call: the namespace, and the storage, from the settings
    (the configured storage's protocol and path when the call names none).

    ``params`` are kept as given: the configured storage options are added to them
    when the call reaches the configured storage (:mod:`catalogstore.artifacts.roots`).
    """
    settings = get_workspace().settings if not (protocol or base_path) else None
    if settings is not None:
        url = settings.storage_url
        protocol, base_path = url.split("://", 1) if "://" in url else ("file", url)
    return current_namespace(namespace), protocol, base_path, dict(params)


def new_artifact(name: str, namespace: str = "", protocol: str = "", base_path: str = "",
                 **params: Any) -> Artifact:
    """Create the artifact ``name`` in ``namespace`` (default: the current namespace).

    Parameters
    ----------
    protocol, base_path, params
        Flowdapt's per-call storage: an fsspec protocol, the root path on it and the
        filesystem's options; by default the configured storage. Which catalog
        indexes another storage: :mod:`catalogstore.artifacts.roots`.

    Raises
    ------
    ArtifactExistsError
        (a ``FileExistsError``) when the namespace has an artifact of that name.
    InvalidNameError
        when ``name`` or ``namespace`` breaks the naming rules.
    """
    namespace, protocol, base_path, params = _get_values_from_context(
        namespace=namespace, protocol=protocol, base_path=base_path, **params)
    return Artifact.new_artifact(name=name, namespace=namespace, protocol=protocol,
                                 base_path=base_path, **params)


def get_artifact(name: str, namespace: str = "", protocol: str = "", base_path: str = "", *,
                 create: bool = False, version: int | None = None, alias: str | None = None,
                 **params: Any) -> Artifact:
    """The artifact ``name`` of ``namespace`` (default: the current namespace).

    Parameters
    ----------
    name
        Its name; ``name:v3`` or ``name@prod`` name one of its versions.
    protocol, base_path, params
        The storage, as for :func:`new_artifact`.
    create
        Create the artifact when it does not exist, instead of raising.
    version, alias
        One of its kept versions, by number or alias: a read-only
        :class:`~catalogstore.artifacts.versions.ArtifactVersion`.

    Raises
    ------
    ArtifactNotFoundError
        (a ``FileNotFoundError``) when there is no such artifact and ``create`` is false.
    VersionNotFoundError
        (a ``LookupError``) when it keeps no such version or alias.
    """
    namespace, protocol, base_path, params = _get_values_from_context(
        namespace=namespace, protocol=protocol, base_path=base_path, **params)
    where = {"name": name, "namespace": namespace, "protocol": protocol,
             "base_path": base_path, **params}
    if ":" in name or "@" in name or version is not None or alias is not None:
        from catalogstore.artifacts.versions import open_ref

        if create and (version, alias) != (None, None):
            raise TypeError("create=True makes an artifact, not a version")
        if create:  # a new name: ':' and '@' are never part of one
            validate_name(name)
        return open_ref(Artifact.get_artifact, where, version, alias)
    try:
        return Artifact.get_artifact(**where)
    except FileNotFoundError:
        if not create:
            raise
    try:
        return Artifact.new_artifact(**where)
    except ArtifactExistsError:  # created by someone else meanwhile: use theirs
        # (not a NameCollisionError, the other FileExistsError: that one is refused)
        return Artifact.get_artifact(**where)


def check_if_artifact_exists(name: str, namespace: str = "", protocol: str = "",
                             base_path: str = "", **params: Any) -> bool:
    """Whether the catalog of the storage (as for :func:`new_artifact`) has ``name``."""
    namespace, protocol, base_path, params = _get_values_from_context(
        namespace=namespace, protocol=protocol, base_path=base_path, **params)
    return Artifact.does_exist(name=name, namespace=namespace, protocol=protocol,
                               base_path=base_path, **params)


def artifact_exists(name: str, namespace: str = "") -> bool:
    """Whether the catalog has the artifact ``name`` in ``namespace``."""
    return lookup.does_exist(get_workspace(), name, namespace)


def list_artifacts(namespace: str = "", protocol: str = "", base_path: str = "", *,
                   where: dict[str, Any] | None = None, all_namespaces: bool = False,
                   filter: str | None = None, order_by: str | None = None,
                   limit: int | None = None, **params: Any) -> list[Artifact]:
    """The artifacts of ``namespace``, by name, read from the catalog only.

    Parameters
    ----------
    protocol, base_path, params
        The storage, as for :func:`new_artifact`.
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
    if not (where or all_namespaces or filter or order_by or limit is not None):
        namespace, protocol, base_path, params = _get_values_from_context(
            namespace=namespace, protocol=protocol, base_path=base_path, **params)
        return Artifact.list_artifacts(namespace=namespace, protocol=protocol,
                                       base_path=base_path, **params)
    return list(list_artifacts_page(namespace, protocol, base_path, where=where,
                                    all_namespaces=all_namespaces, filter=filter,
                                    order_by=order_by, limit=limit, **params))


def list_artifacts_page(namespace: str = "", protocol: str = "", base_path: str = "", *,
                        where: dict[str, Any] | None = None, all_namespaces: bool = False,
                        filter: str | None = None, order_by: str | None = None,
                        limit: int | None = None, after: str | None = None,
                        **params: Any) -> Page:
    """What :func:`list_artifacts` lists, as a :class:`Page` of at most ``limit``
    artifacts with the cursor of the next one (``after``: the previous page's ``next``)."""
    workspace = lookup.storage_of(protocol, base_path, params)
    ns = None if all_namespaces else lookup.namespace_of(workspace, namespace)
    # Typed: a str compares as text, a number as a number, True only with booleans.
    checked = {validate_meta_key(k): check_meta_value(k, v) for k, v in (where or {}).items()}
    return Page(*lookup.search(Artifact, workspace, filter, where=checked,
                               namespaces="*" if ns is None else [ns], order_by=order_by,
                               limit=limit, after=after))


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
    return Page(*lookup.search(Artifact, get_workspace(), filter, where=None,
                               namespaces=namespaces, order_by=order_by, limit=limit,
                               after=after))
