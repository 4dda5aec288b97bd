"""What every page shows, as JSON-ready dictionaries: the ``/api/...`` answers.

The HTML pages render exactly these dictionaries, so the API and the pages never
disagree. Everything is read from the catalog (SQL aggregates and keyset pages of
the search language); only previews and downloads read the storage, through the
artifacts API and so through the storage gateway.

An artifact in a URL is its name, or one of its kept versions as the package spells
it (``NAME:v3``, ``NAME@prod``; :func:`open_artifact`): the same answers then show
that version, read-only, and its files are that version's bytes.

Input from the URL goes through the package's validation: a malformed filter,
ordering or cursor raises :class:`~catalogstore.errors.QueryError`, a bad name
:class:`~catalogstore.errors.InvalidNameError`, a missing artifact, version or file
a :class:`~catalogstore.errors.NotFoundError`; :mod:`catalogstore.web.app` turns
them into 400 and 404 answers.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from catalogstore.artifacts import Artifact, get_artifact, query_artifacts
from catalogstore.artifacts.versions import ArtifactVersion, open_version, split_ref
from catalogstore.catalog.versions import VersionRecord
from catalogstore.errors import (
    ArtifactNotFoundError,
    InvalidNameError,
    QueryError,
    RunNotFoundError,
    VersionNotFoundError,
)
from catalogstore.names import LATEST, validate_file_name, validate_meta_key, validate_name
from catalogstore.record import FileRecord
from catalogstore.settings import redact_url
from catalogstore.txn.workspace import get_workspace

DEFAULT_LIMIT = 50
"""Artifacts per search page unless the URL asks for another number."""
MAX_LIMIT = 500
"""The largest page a URL may ask for: a page is rendered whole."""
MAX_COLUMNS = 20
"""Metadata keys a search page may show as columns."""
ORDERABLE = ("namespace", "name", "files", "size", "created_at", "updated_at")


def when(moment: datetime | None) -> str | None:
    """A catalog timestamp in ISO form (the catalog hands back aware UTC datetimes)."""
    return None if moment is None else moment.isoformat(timespec="seconds")


def shown(value: Any) -> str:
    """A metadata value as a page shows it: a string as it is, anything else (number,
    boolean, null, list, object) as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def namespaces() -> dict[str, Any]:
    """Every namespace with its number of artifacts, files and bytes (two grouped
    SQL queries; no listing of artifacts)."""
    from sqlalchemy import func, select

    from catalogstore.catalog.models import ARTIFACTS as A
    from catalogstore.catalog.models import FILES as F

    catalog = get_workspace().catalog
    with catalog.errors("count namespaces"), catalog.engine.connect() as conn:
        counts = conn.execute(select(A.c.namespace, func.count()).group_by(A.c.namespace)
                              .order_by(A.c.namespace)).all()
        sizes = {ns: (files, int(size or 0)) for ns, files, size in conn.execute(
            select(A.c.namespace, func.count(), func.sum(F.c.size))
            .join(F, F.c.artifact_id == A.c.id).group_by(A.c.namespace))}
    rows = [{"namespace": ns, "artifacts": count, "files": sizes.get(ns, (0, 0))[0],
             "size": sizes.get(ns, (0, 0))[1]} for ns, count in counts]
    return {"namespaces": rows,
            "total": {"artifacts": sum(r["artifacts"] for r in rows),
                      "files": sum(r["files"] for r in rows),
                      "size": sum(r["size"] for r in rows)}}


def objects(namespace: str = "", *, after: str = "", limit: str | None = None) -> dict[str, Any]:
    """The object store's keys, apart from user artifacts: each key's current tier,
    where its value is, its serializer, origin (``put`` or ``adopted``) and the size of
    its artifact's files; a keyset page in (namespace, key) order from the ``objects``
    table (``after``: the previous page's ``next``, ``NAMESPACE/KEY``)."""
    from sqlalchemy import func, select, tuple_

    from catalogstore.catalog.models import FILES as F
    from catalogstore.catalog.models import OBJECTS as O

    size = _limit(limit)
    query = (select(O.c.namespace, O.c.key, O.c.tier, O.c.location, O.c.serializer,
                    O.c.origin, O.c.updated_at, O.c.artifact_id, func.sum(F.c.size))
             .select_from(O.outerjoin(F, F.c.artifact_id == O.c.artifact_id))
             .group_by(O.c.namespace, O.c.key, O.c.tier, O.c.location, O.c.serializer,
                       O.c.origin, O.c.updated_at, O.c.artifact_id)
             .order_by(O.c.namespace, O.c.key).limit(size + 1))
    if namespace:
        query = query.where(O.c.namespace == validate_name(namespace, "namespace"))
    if after:
        ns, slash, key = after.partition("/")
        if not slash:
            raise QueryError(f"invalid page cursor {after[:40]!r}: NAMESPACE/KEY expected")
        query = query.where(tuple_(O.c.namespace, O.c.key) >
                            tuple_(validate_name(ns, "namespace"), validate_name(key, "key")))
    catalog = get_workspace().catalog
    with catalog.errors("list the object store's keys"), catalog.engine.connect() as conn:
        found = conn.execute(query).all()
    rows = [{"namespace": ns, "key": key, "tier": tier, "location": location,
             "serializer": serializer, "origin": origin, "updated_at": when(updated),
             "artifact": artifact_id is not None, "size": None if total is None else int(total)}
            for ns, key, tier, location, serializer, origin, updated, artifact_id, total
            in found[:size]]
    more = len(found) > size
    return {"objects": rows, "namespace": namespace,
            "next": f"{rows[-1]['namespace']}/{rows[-1]['key']}" if more else None}


def _limit(text: str | None) -> int:
    if text is None or text == "":
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise QueryError(f"invalid limit {text[:20]!r}: a whole number from 1 to {MAX_LIMIT}")
    return int(text)


def _columns(keys: Sequence[str]) -> list[str]:
    if len(keys) > MAX_COLUMNS:
        raise QueryError(f"at most {MAX_COLUMNS} metadata columns, not {len(keys)}")
    columns: list[str] = []
    for key in keys:
        if key and validate_meta_key(key) not in columns:
            columns.append(key)
    return columns


def search(filter: str = "", *, namespace: str = "", order: str = "", after: str = "",
           limit: str | None = None, columns: Sequence[str] = ()) -> dict[str, Any]:
    """One keyset page of the artifacts matching ``filter`` (the filter language of
    :mod:`catalogstore.catalog.query.language`).

    Parameters
    ----------
    namespace
        A namespace or glob pattern (``team-*``); empty: every namespace.
    order
        ``FIELD``, ``-FIELD`` or ``FIELD desc``; empty: by namespace, then name.
    after
        The ``next`` cursor of the previous page (with the same filter and order).
    limit
        The page size as the URL gives it (1 to :data:`MAX_LIMIT`).
    columns
        Metadata keys the page shows as columns.

    Raises
    ------
    QueryError
        for a malformed filter, ordering, pattern, cursor, limit; InvalidMetadataError
        for a bad column key.
    """
    size = _limit(limit)
    shown_columns = _columns(columns)
    try:
        page = query_artifacts(filter or None, namespaces=namespace or "*",
                               order_by=order or None, limit=size, after=after or None)
    except RecursionError:
        # A URL may nest parentheses thousands deep; the parser recurses per level.
        raise QueryError("the filter is nested too deeply", filter, 0) from None
    records = [a.record for a in page]
    totals = get_workspace().catalog.file_totals([r.id for r in records])
    keys = sorted({key for r in records for key in r.metadata})
    return {
        "filter": filter, "namespace": namespace, "order": order, "limit": size,
        "after": after, "columns": shown_columns, "keys_on_page": keys,
        "artifacts": [{"namespace": r.namespace, "name": r.name,
                       "files": totals.get(r.id, (0, 0))[0],
                       "size": totals.get(r.id, (0, 0))[1],
                       "created_at": when(r.created_at), "updated_at": when(r.updated_at),
                       "metadata": dict(r.metadata)} for r in records],
        "next": page.next,
    }


def _file(record: FileRecord) -> dict[str, Any]:
    return {"name": record.name, "size": record.size, "checksum": record.checksum,
            "text": record.encoding is not None, "updated_at": when(record.updated_at)}


def open_artifact(namespace: str, ref: str) -> Artifact:
    """The artifact ``namespace/ref``: ``ref`` is its name (the current version), or
    ``NAME:vN`` or ``NAME@ALIAS`` for a kept version (a read-only
    :class:`~catalogstore.artifacts.versions.ArtifactVersion`, whose files read that
    version's bytes).

    Raises
    ------
    InvalidNameError
        for a namespace, name, version number or alias that breaks the rules.
    ArtifactNotFoundError, VersionNotFoundError
        when there is no such artifact, or it keeps no such version or alias.
    """
    validate_name(split_ref(ref)[0])
    return get_artifact(ref, validate_name(namespace, "namespace"))


def artifact_ref(found: Artifact) -> str:
    """How a URL names ``found``: ``NAME``, or ``NAME:vN`` for a version's view."""
    if isinstance(found, ArtifactVersion):
        return f"{found.name}:v{found.version}"
    return found.name


def artifact(namespace: str, name: str) -> dict[str, Any]:
    """The artifact with its metadata (typed values as stored), its files and the
    newest page of its versions; with ``name`` ``NAME:vN`` or ``NAME@ALIAS``, that
    version's metadata and files instead (``is_current`` says whether it is the
    current one).

    Raises
    ------
    InvalidNameError
        for a namespace, name, version or alias that breaks the naming rules.
    ArtifactNotFoundError, VersionNotFoundError
        when there is no such artifact, or it keeps no such version.
    """
    found = open_artifact(namespace, name)
    record = found.record
    listing = _version_page(found, None, DEFAULT_LIMIT)
    current: int = listing["current"]
    if isinstance(found, ArtifactVersion):
        kept = found.info
        metadata, files = kept.metadata, sorted(kept.files.values(), key=lambda f: f.name)
        shown_version, created = kept.version, when(kept.created_at)
        aliases, pinned = list(kept.aliases), kept.pinned
    else:
        # One query for every file (ArtifactFile.info would ask once per file).
        metadata, files = record.metadata, get_workspace().catalog.list_files(record.id)
        # The current version is the newest: on the first page (unless not kept, as
        # for rows bulk-loaded without versions).
        row: dict[str, Any] = next((v for v in listing["versions"] if v["current"]), {
            "created_at": None, "aliases": [LATEST], "pinned": False})
        shown_version, created = current, row["created_at"]
        aliases, pinned = row["aliases"], row["pinned"]
    return {"namespace": record.namespace, "name": record.name, "ref": artifact_ref(found),
            "created_at": when(record.created_at), "updated_at": when(record.updated_at),
            "version": shown_version, "version_created_at": created,
            "current_version": current, "is_current": shown_version == current,
            "aliases": aliases, "pinned": pinned,
            "metadata": dict(metadata),
            "files": [_file(f) for f in files if _valid_file(f.name)],
            "size": sum(f.size for f in files), "versions": listing}


# -- versions (issue 15) --------------------------------------------------------------


def versions(namespace: str, name: str, *, after: str = "",
             limit: str | None = None) -> dict[str, Any]:
    """One keyset page of the artifact's kept versions, newest first: each version's
    number, creation time, files, bytes, aliases (``latest`` on the current one) and
    pin (``after``: the previous page's ``next``, a version number).

    Raises
    ------
    QueryError
        for a malformed cursor or limit.
    InvalidNameError, ArtifactNotFoundError
        for a bad name or a missing artifact.
    """
    size = _limit(limit)
    before = None
    if after:
        if not (after.isdigit() and len(after) <= 9):
            raise QueryError(f"invalid page cursor {after[:40]!r}: a version number expected")
        before = int(after)
    found = get_artifact(validate_name(name), validate_name(namespace, "namespace"))
    return {"namespace": found.namespace, "name": found.name, "after": after, "limit": size,
            **_version_page(found, before, size)}


@functools.cache
def _version_statements() -> tuple[Any, Any, Any]:
    """The statements of :func:`_version_page`, built once: the current version, a page
    of versions (files and bytes by correlated subqueries on the primary key, run for
    the page's rows only), the aliases."""
    from sqlalchemy import bindparam, func, select

    from catalogstore.catalog.models import ALIASES as L
    from catalogstore.catalog.models import ARTIFACTS as A
    from catalogstore.catalog.models import VERSION_FILES as VF
    from catalogstore.catalog.models import VERSIONS as V

    of_version = (VF.c.artifact_id == V.c.artifact_id, VF.c.version == V.c.version)
    current = select(A.c.version).where(A.c.id == bindparam("id"))
    page = (select(V.c.version, V.c.created_at, V.c.pinned,
                   select(func.count()).where(*of_version).scalar_subquery(),
                   select(func.coalesce(func.sum(VF.c.size), 0)).where(*of_version)
                   .scalar_subquery())
            .where(V.c.artifact_id == bindparam("id"), V.c.version < bindparam("before"))
            .order_by(V.c.version.desc()).limit(bindparam("size")))
    aliases = (select(L.c.version, L.c.alias).where(L.c.artifact_id == bindparam("id"))
               .order_by(L.c.alias))
    return current, page, aliases


def _version_page(found: Artifact, before: int | None, size: int) -> dict[str, Any]:
    """The kept versions of ``found`` older than ``before`` (all: ``None``), newest
    first, ``size`` of them, read in one snapshot on the version tables' primary keys
    (a page never loads every version, nor any version's files)."""
    current_of, page_of, aliases_of = _version_statements()
    params = {"id": found.record.id, "before": _NO_VERSION if before is None else before,
              "size": size + 1}
    catalog = get_workspace().catalog
    with catalog.errors("list versions"), catalog.engine.connect() as conn, conn.begin():
        current = conn.execute(current_of, params).scalar()
        if current is None:
            raise ArtifactNotFoundError(f"artifact {found.name!r} does not exist in "
                                        f"namespace {found.namespace!r}")
        rows = conn.execute(page_of, params).all()
        aliases: dict[int, list[str]] = {}
        for number, alias in conn.execute(aliases_of, params):
            aliases.setdefault(number, []).append(alias)
    page = rows[:size]
    return {"current": int(current), "versions": [
        {"version": number, "created_at": when(created), "files": files, "size": int(total),
         "aliases": ([LATEST] if number == current else []) + aliases.get(number, []),
         "pinned": bool(pinned), "current": number == current}
        for number, created, pinned, files, total in page],
        "next": str(page[-1][0]) if len(rows) > size else None}


_NO_VERSION = 2**31 - 1
"""Above every version number (an ``Integer`` column): the first page's bound."""
_VERSION_TEXT = re.compile(r"v?([0-9]{1,9})")


def _version_of(found: Artifact, text: str) -> ArtifactVersion:
    """The version ``text`` names: a number (``3`` or ``v3``) or an alias."""
    number = _VERSION_TEXT.fullmatch(text)
    if number is not None:
        return open_version(found, version=int(number[1]))
    return open_version(found, alias=text)


def diff(namespace: str, name: str, old: str = "", new: str = "") -> dict[str, Any]:
    """What changed from version ``old`` to version ``new`` of the artifact (each a
    number, ``v3`` or an alias; ``new`` by default the current version, ``old`` the
    kept version before ``new``): metadata keys added, removed and changed (by value
    and type), files added, removed and changed (by checksum).

    Raises
    ------
    InvalidNameError
        for a bad name, version number or alias.
    ArtifactNotFoundError, VersionNotFoundError
        for a missing artifact, a version or alias it does not keep, or no kept
        version before ``new`` when ``old`` is not given.
    """
    found = get_artifact(validate_name(name), validate_name(namespace, "namespace"))
    after = _version_of(found, new or LATEST)
    if old:
        before = _version_of(found, old)
    else:
        earlier = _version_page(found, after.version, 1)["versions"]
        if not earlier:
            raise VersionNotFoundError(
                f"artifact {found.namespace}/{found.name} keeps no version before "
                f"v{after.version}: name the other version with from=")
        before = open_version(found, version=earlier[0]["version"])
    return {"namespace": found.namespace, "name": found.name,
            "from": _version_head(before.info), "to": _version_head(after.info),
            "metadata": _metadata_changes(before.info.metadata, after.info.metadata),
            "files": _file_changes(before.info, after.info)}


def _version_head(kept: VersionRecord) -> dict[str, Any]:
    return {"version": kept.version, "created_at": when(kept.created_at),
            "aliases": list(kept.aliases), "current": kept.current}


def _metadata_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    def typed(value: Any) -> tuple[str, str]:  # 1, 1.0 and true differ, as JSON has them
        return _json_type(value), shown(value)

    changed = [key for key in sorted(old.keys() & new.keys())
               if typed(old[key]) != typed(new[key])]
    return {"added": [{"key": key, "value": new[key]} for key in sorted(new.keys() - old.keys())],
            "removed": [{"key": key, "value": old[key]}
                        for key in sorted(old.keys() - new.keys())],
            "changed": [{"key": key, "from": old[key], "to": new[key]} for key in changed],
            "unchanged": len(old.keys() & new.keys()) - len(changed)}


def _file_changes(old: VersionRecord, new: VersionRecord) -> dict[str, Any]:
    before = {n: f for n, f in old.files.items() if _valid_file(n)}
    after = {n: f for n, f in new.files.items() if _valid_file(n)}
    changed = [n for n in sorted(before.keys() & after.keys())
               if before[n].checksum != after[n].checksum]
    return {"added": [_file(after[n]) for n in sorted(after.keys() - before.keys())],
            "removed": [_file(before[n]) for n in sorted(before.keys() - after.keys())],
            "changed": [{"name": n, "from": _file(before[n]), "to": _file(after[n])}
                        for n in changed],
            "unchanged": len(before.keys() & after.keys()) - len(changed)}


def _valid_file(name: str) -> bool:
    # A catalog row edited by hand is not offered as a link.
    try:
        validate_file_name(name)
    except ValueError:
        return False
    return True


def metadata_rows(metadata: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(key, type name, shown value) of each metadata pair, by key."""
    return [(key, _json_type(value), shown(value)) for key, value in sorted(metadata.items())]


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "list" if isinstance(value, list) else "object"


VERIFY_LISTED = 100
"""Differences a health page lists (the summary counts them all)."""


def health(*, verify: bool = False) -> dict[str, Any]:
    """The schema revision, the storage used per namespace (catalog sums), and with
    ``verify`` the summary of ``verify --fast`` (sizes only; it lists the storage, so
    it runs only when asked).
    """
    from catalogstore.catalog.migrate import current_revision, head_revision

    workspace = get_workspace()
    catalog = workspace.catalog
    with catalog.errors("read the schema revision"), catalog.engine.connect() as conn:
        current = current_revision(conn)
    head = head_revision()
    answer: dict[str, Any] = {
        "catalog": catalog.where, "storage": redact_url(workspace.settings.storage_url),
        "schema": {"current": current, "head": head, "up_to_date": current == head},
        "storage_used": namespaces(), "verify": None,
    }
    if verify:
        from catalogstore.maintenance import verify as run_verify

        report = run_verify(fast=True)
        by_kind: dict[str, int] = {}
        for difference in report.differences:
            by_kind[difference.kind] = by_kind.get(difference.kind, 0) + 1
        answer["verify"] = {
            "mode": "fast (sizes only, no checksums)", "ok": report.ok,
            "namespaces": len(report.namespaces), "artifacts": report.artifacts,
            "files": report.files, "seconds": round(report.seconds, 3),
            "staged_in_use": report.staged_in_use, "differences": len(report.differences),
            "by_kind": by_kind,
            "listed": [{"kind": d.kind, "where": d.where, "detail": d.detail}
                       for d in report.differences[:VERIFY_LISTED]],
        }
    return answer


# -- lineage (issue 16) ----------------------------------------------------------------

DEFAULT_DEPTH = 3
"""Runs on a path from the version that a lineage answer walks unless asked for more."""
MAX_DEPTH = 50
MAX_RUNS = 60
"""Runs a lineage answer holds at most, the nearest first (``cut`` says when it left
some out): a page draws its graph whole."""
MAX_NODES = 200
"""Versions and generations a lineage answer holds at most, the nearest first."""
RUN_EDGES = 200
"""Inputs, and outputs, a run's answer lists at most (it says how many there are)."""
RUN_CHILDREN = 200
"""Runs nested in a run that its answer lists at most, the first by start time (it says
how many there are)."""
_RUN_ID = re.compile(r"[0-9A-Za-z_-]{1,32}")
_FLAGS = {"": True, "1": True, "true": True, "0": False, "false": False}


def _flag(text: str, what: str) -> bool:
    if text not in _FLAGS:
        raise QueryError(f"invalid {what} {text[:20]!r}: 1 or 0 (true or false)")
    return _FLAGS[text]


def _depth(text: str) -> int:
    if text == "":
        return DEFAULT_DEPTH
    if not text.isdigit() or not 1 <= int(text) <= MAX_DEPTH:
        raise QueryError(f"invalid depth {text[:20]!r}: a whole number from 1 to {MAX_DEPTH}")
    return int(text)


def lineage(namespace: str, name: str, *, upstream: str = "", downstream: str = "",
            depth: str = "") -> dict[str, Any]:
    """The lineage of the artifact's version (``name``: NAME for the current one,
    ``NAME:vN`` or ``NAME@ALIAS``; :func:`open_artifact`) as
    :meth:`~catalogstore.catalog.lineage.LineageGraph.to_dict` gives it, walked
    ``upstream`` and ``downstream`` (each ``1`` by default, or ``0``) at most ``depth``
    runs on a path (:data:`DEFAULT_DEPTH`), cut to the :data:`MAX_RUNS` nearest runs and
    :data:`MAX_NODES` nearest versions (``cut`` says which was cut).

    Raises
    ------
    QueryError
        for a bad ``upstream``, ``downstream`` or ``depth``.
    InvalidNameError, ArtifactNotFoundError, VersionNotFoundError
        as :func:`open_artifact`.
    """
    up, down, levels = _flag(upstream, "upstream"), _flag(downstream, "downstream"), \
        _depth(depth)
    found = open_artifact(namespace, name)
    walked = found.lineage(upstream=up, downstream=down, depth=levels,
                           max_runs=MAX_RUNS + 1)
    graph = walked.nearest(MAX_RUNS, MAX_NODES)
    return {"namespace": found.namespace, "name": found.name, "ref": artifact_ref(found),
            "version": found.version, "upstream": up, "downstream": down, "depth": levels,
            "limits": {"runs": MAX_RUNS, "nodes": MAX_NODES},
            "cut": {"runs": len(walked.runs) > len(graph.runs),
                    "nodes": len(walked.nodes) > len(graph.nodes)},
            **graph.to_dict()}


def run(run_id: str) -> dict[str, Any]:
    """The run ``run_id``: its name, parameters, metadata, status, times, host and
    process, task, its parent (``{"id", "name", "status"}``, ``name`` None when the
    catalog has no such run), the first :data:`RUN_CHILDREN` runs nested in it by start
    time (``children``: ``{"id", "name", "status", "started_at", "ended_at"}`` each;
    ``children_total``), and its first :data:`RUN_EDGES` inputs (each with the run that
    made it, ``producer``) and outputs with their numbers.

    Raises
    ------
    InvalidNameError
        for an id that no run could have.
    RunNotFoundError
        when the catalog records no such run.
    """
    from catalogstore.catalog import lineage as recorded

    if not _RUN_ID.fullmatch(run_id):
        raise InvalidNameError(f"invalid run id {run_id[:40]!r}: up to 32 letters, digits, "
                               "'-' and '_'")
    catalog = get_workspace().catalog
    found = recorded.get_run(catalog, run_id)
    if found is None:
        raise RunNotFoundError(f"the catalog records no run {run_id!r}")
    parent = None
    if found.parent_id is not None:
        outer = recorded.get_run(catalog, found.parent_id)
        parent = {"id": found.parent_id, "name": outer.name if outer else None,
                  "status": outer.status if outer else None}
    children = recorded.child_runs(catalog, run_id, RUN_CHILDREN)
    edges = recorded.run_edges(catalog, run_id, RUN_EDGES)
    return {**recorded.run_dict(found), "parent": parent,
            "children": [recorded.run_summary(r) for r in children.runs],
            "children_total": children.total, **{
        way: {"total": edges[direction].total,
              "nodes": [{**recorded.node_dict(node), "producer": producer}
                        for node, producer in zip(edges[direction].nodes,
                                                  edges[direction].producers, strict=True)]}
        for way, direction in (("inputs", recorded.INPUT), ("outputs", recorded.OUTPUT))}}
