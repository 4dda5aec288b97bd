"""``catalogstore query``: search the catalog in the filter language of
:mod:`catalogstore.catalog.query.language`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from catalogstore.artifacts import query_artifacts
from catalogstore.cli.app import app
from catalogstore.cli.output import listing, more_to_list, print_json, print_listing
from catalogstore.errors import QueryError


@app.command("query")
def query(
    filter: Annotated[str, typer.Argument(
        metavar="FILTER",
        help="e.g. \"meta.model = 'xgb' AND meta.accuracy > 0.9\"; empty: every artifact. "
             "Fields: meta.KEY (meta.\"odd key\"), name, namespace, created_at, updated_at, "
             "files, size, version (the current one's number), alias (alias = 'prod': has "
             "that alias), alias.NAME.meta.KEY (the metadata of the version alias NAME "
             "names), run.name, run.id, run.status, run.host, run.started_at, run.ended_at, "
             "run.params.KEY, run.meta.KEY (the run that made the current version; "
             "run.params.a.b: a path into nested objects); "
             "operators = != < <= > >= IN LIKE CONTAINS IS [NOT] NULL AND OR NOT.")
    ] = "",
    namespace: Annotated[list[str] | None, typer.Option(
        "--namespace", "-n", metavar="PATTERN",
        help="Namespace or glob pattern (team-*) to search (repeatable; default: all).")] = None,
    order_by: Annotated[str | None, typer.Option(
        "--order-by", "-o", metavar="FIELD",
        help="name, namespace, created_at, updated_at, files, size, version or meta.KEY; "
             "'-FIELD' or 'FIELD desc' for descending (default: namespace, name).")] = None,
    limit: Annotated[int | None, typer.Option(
        "--limit", min=1, help="At most N artifacts; the next page's cursor is printed.")] = None,
    after: Annotated[str | None, typer.Option(
        "--after", metavar="CURSOR", help="Continue after the page that printed CURSOR.")] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help='Print {"artifacts": [...], "next": CURSOR or null}.')] = False,
) -> None:
    """Search artifacts by metadata and built-in fields (reads the catalog only).

    Numbers compare numerically (meta.epochs > 9 holds for '10'), quoted values as
    text; a key the artifact lacks matches only IS NULL. Examples:

        catalogstore query "meta.model = 'xgb' AND meta.accuracy >= 0.9" --order-by=-meta.accuracy

        catalogstore query "name LIKE 'run-%' AND created_at > '2024-05-01'" -n 'team-*' --limit 20

        catalogstore query "alias.prod.meta.accuracy > 0.9 AND version > 3"

        catalogstore query "run.name = 'train' AND run.params.lr > 0.01"
    """
    try:
        page = query_artifacts(filter, namespaces=namespace or "*", order_by=order_by,
                               limit=limit, after=after)
    except QueryError as exc:
        raise QueryError(f"invalid query: {exc.summary}") from None
    rows = listing(list(page))
    if as_json:
        print_json({"artifacts": rows, "next": page.next})
        return
    scope = "any namespace" if not namespace else "namespace " + " or ".join(
        repr(n) for n in namespace)
    print_listing(rows, f"no artifacts in {scope} match {filter!r}" if filter
                   else f"no artifacts in {scope}")
    more_to_list(page.next)
