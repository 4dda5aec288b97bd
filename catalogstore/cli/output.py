"""What the commands print: tables on a terminal, JSON on request."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.filesize import decimal as human_size
from rich.table import Column, Table
from rich.text import Text

from catalogstore.artifacts import Artifact
from catalogstore.record import json_text
from catalogstore.txn.workspace import get_workspace


def shown(value: Any) -> str:
    """A metadata value as the CLI prints it: a string as is, other values as JSON."""
    return value if isinstance(value, str) else json_text(value)


def split_ref(ref: str) -> tuple[str, str]:
    """``NAMESPACE/NAME`` (or ``NAME`` in the current namespace) as (namespace, name)."""
    namespace, _, name = ref.rpartition("/")
    return namespace, name


VersionRef = Annotated[str, typer.Argument(
    metavar="NAMESPACE/NAME[:vN|@ALIAS]", help="The artifact's current version (a bare NAME "
    "is in the current namespace), or the one :vN or @ALIAS names (:v3, @prod).")]
"""The argument of the commands that take a version as well as an artifact."""


def console() -> Console:
    # Created per call so that it writes to the sys.stdout in force (tests swap it).
    # Piped output has no width to fit: give tables room instead of rich's 80 columns.
    console = Console(highlight=False)
    return console if console.is_terminal else Console(highlight=False, width=120)


def when(moment: datetime | None) -> str:
    """A catalog timestamp in ISO form (the catalog hands back aware UTC datetimes)."""
    return "" if moment is None else moment.isoformat(timespec="seconds")


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def listing(artifacts: list[Artifact]) -> list[dict[str, Any]]:
    """One JSON-ready row per artifact, file counts and sizes from one catalog query."""
    records = [a.record for a in artifacts]
    totals = get_workspace().catalog.file_totals([r.id for r in records])
    return [{"namespace": r.namespace, "name": r.name,
             "files": totals.get(r.id, (0, 0))[0], "size": totals.get(r.id, (0, 0))[1],
             "metadata": r.metadata, "created_at": when(r.created_at),
             "updated_at": when(r.updated_at)} for r in records]


def more_to_list(cursor: str | None, *, err: bool = False) -> None:
    """The line after a page that has a next one: how to get it (``--after CURSOR``)."""
    if cursor is not None:
        typer.echo(f"more exist: add --after {cursor}", err=err)


_META_LINES = 4
"""Metadata pairs shown per artifact in a listing table."""


def print_listing(rows: list[dict[str, Any]], empty: str) -> None:
    if not rows:
        typer.echo(empty)
        return
    # Identity columns never wrap; metadata shows one KEY=VALUE per line, cut to fit.
    table = Table(Column("namespace", no_wrap=True), Column("name", no_wrap=True),
                  Column("files", justify="right", no_wrap=True),
                  Column("size", justify="right", no_wrap=True),
                  Column("metadata", overflow="ellipsis", min_width=16),
                  Column("updated (UTC)", no_wrap=True))
    for row in rows:
        pairs = [f"{k}={shown(v)}" for k, v in sorted(row["metadata"].items())]
        if len(pairs) > _META_LINES:  # `show` has them all
            pairs[_META_LINES - 1:] = [f"... {len(pairs) - _META_LINES + 1} more"]
        meta = "\n".join(pairs)
        table.add_row(row["namespace"], row["name"], str(row["files"]),
                      human_size(row["size"]), Text(meta),
                      row["updated_at"][:16].replace("T", " "))
    console().print(table)
