"""What every page shows, as JSON-ready dictionaries: the ``/api/...`` answers.

The HTML pages render exactly these dictionaries, so the API and the pages never
disagree. Everything is read from the catalog (SQL aggregates and keyset pages of
the search language); only previews and downloads read the storage, through the
artifacts API and so through the storage gateway.

Input from the URL goes through the package's validation: a malformed filter,
ordering or cursor raises :class:`~catalogstore.errors.QueryError`, a bad name
:class:`~catalogstore.errors.InvalidNameError`, a missing artifact or file a
:class:`~catalogstore.errors.NotFoundError`; :mod:`catalogstore.web.app` turns
them into 400 and 404 answers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from catalogstore.artifacts import get_artifact, query_artifacts
from catalogstore.errors import QueryError
from catalogstore.names import validate_file_name, validate_meta_key, validate_name
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


def artifact(namespace: str, name: str) -> dict[str, Any]:
    """The artifact with its metadata (typed values as stored) and its files.

    Raises
    ------
    InvalidNameError
        for a namespace or name that breaks the naming rules.
    ArtifactNotFoundError
        when there is no such artifact.
    """
    found = get_artifact(validate_name(name), validate_name(namespace, "namespace"))
    record = found.record
    # One query for every file (ArtifactFile.info would ask once per file).
    files = get_workspace().catalog.list_files(record.id)
    return {"namespace": record.namespace, "name": record.name,
            "created_at": when(record.created_at), "updated_at": when(record.updated_at),
            "metadata": dict(record.metadata),
            "files": [_file(f) for f in files if _valid_file(f.name)],
            "size": sum(f.size for f in files)}


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
