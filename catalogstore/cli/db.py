"""``catalogstore db upgrade`` and ``db current``: the catalog's schema (alembic)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from catalogstore.catalog.engine import make_engine
from catalogstore.catalog.migrate import (
    current_revision,
    head_revision,
    known_revisions,
    upgrade,
)
from catalogstore.cli.app import group
from catalogstore.errors import CatalogError
from catalogstore.settings import get_settings, redact_text, redact_url

db_app = group("db", "The catalog database's schema (alembic).")


@contextlib.contextmanager
def _database() -> Iterator[tuple[Engine, str]]:
    """An engine on the configured catalog and its URL without password."""
    url = get_settings().catalog_url
    shown = redact_url(url)
    engine = make_engine(url)
    try:
        yield engine, shown
    except SQLAlchemyError as exc:
        reason = redact_text(str(getattr(exc, "orig", None) or exc).splitlines()[0])
        raise CatalogError(f"catalog {shown}: {reason}") from exc
    finally:
        engine.dispose()


def _revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return current_revision(conn)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the catalog's schema to this catalogstore's revision."""
    with _database() as (engine, shown):
        before = _revision(engine)
        upgrade(engine)
        after = _revision(engine)
    if before == after:
        typer.echo(f"catalog {shown}: already at revision {after}")
    else:
        typer.echo(f"catalog {shown}: upgraded from {before or 'an empty database'} "
                   f"to revision {after}")


@db_app.command("current")
def db_current() -> None:
    """Print the schema revision of the catalog database and the one this code needs;
    exit 1 when they differ (no schema, or behind: run `catalogstore db upgrade`; or a
    revision this code does not know: a newer catalogstore wrote it)."""
    with _database() as (engine, shown):
        current = _revision(engine)
    head = head_revision()
    if current == head:
        state = "up to date"
    elif current is not None and current not in known_revisions():
        state = "the database is newer than this code: upgrade catalogstore"
    else:
        state = "behind: run `catalogstore db upgrade`"
    typer.echo(f"catalog:  {shown}")
    typer.echo(f"database: {current or 'no schema'}")
    typer.echo(f"code:     {head} ({state})")
    if current != head:  # scripts can check before they write (issue 12)
        raise typer.Exit(1)
