"""Schema revisions with alembic, driven from code (no dependency on the CWD).

An embedded SQLite catalog is created or upgraded on first use, under a file
lock so that many processes starting at once migrate it exactly once. A shared
PostgreSQL catalog is upgraded only by ``catalogstore db upgrade`` (under a
``pg_advisory_lock``); until then it is refused with :class:`SchemaVersionError`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

from catalogstore.catalog.engine import PG_LOCK_CLASS, DatabaseLock
from catalogstore.errors import SchemaVersionError
from catalogstore.settings import redact_url

if TYPE_CHECKING:
    from alembic.config import Config

SCHEMA_HEAD = "a937bf1f0816"
"""The newest revision in ``migrations/versions`` (a test keeps it equal to alembic's head).

Knowing it without alembic lets a process with an up-to-date catalog skip
importing alembic, which is a tenth of a second for every fresh worker.
"""

# Fixed key of the migration lock (artifact locks hash names into other keys).
_MIGRATION_LOCK_KEY = 0


def script_location() -> str:
    """The ``migrations`` folder: beside the package in a checkout, inside it in a wheel."""
    checkout = Path(__file__).resolve().parents[2] / "migrations"
    if (checkout / "env.py").is_file():
        return str(checkout)
    return str(resources.files("catalogstore") / "_migrations")


def alembic_config(connection: Connection | None = None) -> Config:
    """An alembic configuration; ``connection`` is handed to ``env.py`` when given."""
    import sys

    from alembic.config import Config

    # Explicitly: alembic's default is the sys.stdout of the moment alembic was first
    # imported, which may be a stream that is closed by now (a CLI runner's capture).
    config = Config(stdout=sys.stdout)
    config.set_main_option("script_location", script_location())
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {rev.revision for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def current_revision(connection: Connection) -> str | None:
    """The revision recorded in the database (``None`` for an empty one), read with SQL."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


@contextlib.contextmanager
def migration_lock(engine: Engine) -> Iterator[Connection]:
    """A connection holding the database's migration lock."""
    if engine.dialect.name == "sqlite":
        with DatabaseLock(engine.url).held(), engine.connect() as conn:
            yield conn
        return
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:c, :k)"),
                     {"c": PG_LOCK_CLASS, "k": _MIGRATION_LOCK_KEY})
        conn.commit()
        try:
            yield conn
        finally:
            conn.rollback()
            conn.execute(text("SELECT pg_advisory_unlock(:c, :k)"),
                         {"c": PG_LOCK_CLASS, "k": _MIGRATION_LOCK_KEY})
            conn.commit()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (idempotent, safe to run concurrently)."""
    from alembic import command

    with migration_lock(engine) as conn:
        command.upgrade(alembic_config(conn), revision)
        conn.commit()


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    with migration_lock(engine) as conn:
        command.downgrade(alembic_config(conn), revision)
        conn.commit()


def ensure_schema(engine: Engine) -> None:
    """Check the schema revision; create or upgrade it when the catalog is SQLite.

    Raises
    ------
    SchemaVersionError
        for a shared database that is not at the code's revision.
    """
    with engine.connect() as conn:
        current = current_revision(conn)
    if current == SCHEMA_HEAD:
        return
    head = head_revision()
    where = redact_url(engine.url)
    if current is not None and current not in known_revisions():
        raise SchemaVersionError(
            f"the catalog database {where} is at schema revision {current}, which this "
            "catalogstore does not know; upgrade catalogstore"
        )
    if engine.dialect.name == "sqlite":
        upgrade(engine)
        return
    if current is None:
        raise SchemaVersionError(
            f"the catalog database {where} has no catalogstore schema; "
            "create it with `catalogstore db upgrade`"
        )
    raise SchemaVersionError(
        f"the catalog database {where} is at schema revision {current}, this code needs "
        f"{head}; run `catalogstore db upgrade` (or install the catalogstore that matches it)"
    )
