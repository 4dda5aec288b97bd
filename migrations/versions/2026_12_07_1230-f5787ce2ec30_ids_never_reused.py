"""ids never reused: AUTOINCREMENT on SQLite for ``artifacts`` and ``catalog_journal``

Without it SQLite gives a new row the largest id in use plus one, so the id of
the newest artifact comes back once that artifact is deleted: a handle that
carries it would see the next artifact's files (issue 13), and the id of an
applied journal row, forgotten lazily by the process that applied it, could
name a newer, unapplied row. PostgreSQL's sequences never hand an id out twice:
nothing to do there.

SQLite adds AUTOINCREMENT only when a table is created, so the two tables are
rebuilt, rows and ids kept. alembic's batch mode is not used: it drops the old
``artifacts`` while ``artifact_files`` and ``artifact_metadata`` refer to it, and
with foreign keys on (the catalog's engine turns them on, and a PRAGMA cannot
turn them off inside the migration's transaction) that DROP deletes their rows
by ON DELETE CASCADE; it would also lose the index on expressions, which SQLite
cannot reflect. Instead each table is copied from its own DDL as the database
holds it: the two children are rebuilt too, referring to the new ``artifacts``
before the old one goes, then every new table takes its old name (SQLite
rewrites the references), and the indexes and views are made again from their
stored SQL.

Revision ID: f5787ce2ec30
Revises: f919e649af58
Create Date: 2026-12-07 12:30:00
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f5787ce2ec30"
down_revision: str | None = "f919e649af58"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Parents before children: each is copied after what it refers to.
TABLES = ("artifacts", "artifact_files", "artifact_metadata", "catalog_journal")
AUTOINCREMENT = ("artifacts", "catalog_journal")
_NEW = "_new_"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(autoincrement=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(autoincrement=False)


def _rebuild(*, autoincrement: bool) -> None:
    bind = op.get_bind()
    # Renames must rewrite the references of the other tables (the default since 3.26).
    bind.exec_driver_sql("PRAGMA legacy_alter_table=OFF")
    master = bind.exec_driver_sql(
        "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY rowid").all()
    tables = {name: sql for kind, name, _, sql in master if kind == "table"}
    views = [(name, sql) for kind, name, _, sql in master if kind == "view"]
    indexes = [sql for kind, _, table, sql in master
               if kind == "index" and table in TABLES and sql is not None]
    for name, _ in reversed(views):  # SQLite refuses to rename beside a broken view
        bind.exec_driver_sql(f"DROP VIEW {name}")
    for table in TABLES:
        ddl = _renamed(tables[table], table)
        if table in AUTOINCREMENT:
            ddl = _with_autoincrement(ddl, table) if autoincrement else \
                _without_autoincrement(ddl, table)
        bind.exec_driver_sql(ddl)
        bind.exec_driver_sql(f"INSERT INTO {_NEW}{table} SELECT * FROM {table}")
    for table in reversed(TABLES):  # children first: no ON DELETE CASCADE fires
        bind.exec_driver_sql(f"DROP TABLE {table}")
    for table in TABLES:
        bind.exec_driver_sql(f"ALTER TABLE {_NEW}{table} RENAME TO {table}")
    for sql in indexes:
        bind.exec_driver_sql(sql)
    for _, sql in views:
        bind.exec_driver_sql(sql)
    if not autoincrement:
        # The counters of tables that no longer have AUTOINCREMENT.
        bind.execute(sa.text("DELETE FROM sqlite_sequence WHERE name IN :names")
                     .bindparams(sa.bindparam("names", expanding=True)),
                     {"names": list(AUTOINCREMENT)})


def _replace_once(ddl: str, pattern: str, replacement: str, table: str) -> str:
    new, count = re.subn(pattern, replacement, ddl, count=1)
    if count != 1:
        raise RuntimeError(f"the DDL of table {table} is not the one this migration expects "
                           f"(no match for {pattern!r}); it was left unchanged: {ddl}")
    return new


def _renamed(ddl: str, table: str) -> str:
    """The DDL of ``table`` creating ``_new_<table>``, referring to ``_new_artifacts``."""
    ddl = _replace_once(ddl, rf'^CREATE TABLE "?{table}"? \(', f"CREATE TABLE {_NEW}{table} (",
                        table)
    return re.sub(r'REFERENCES "?artifacts"? \(', f"REFERENCES {_NEW}artifacts (", ddl)


def _with_autoincrement(ddl: str, table: str) -> str:
    ddl = _replace_once(ddl, r",\s*CONSTRAINT (\w+) PRIMARY KEY \(id\)", "", table)
    return _replace_once(ddl, r"\bid INTEGER NOT NULL,",
                         f"id INTEGER NOT NULL CONSTRAINT pk_{table} PRIMARY KEY AUTOINCREMENT,",
                         table)


def _without_autoincrement(ddl: str, table: str) -> str:
    ddl = _replace_once(ddl, r"\bid INTEGER NOT NULL CONSTRAINT (\w+) PRIMARY KEY "
                        r"AUTOINCREMENT,", "id INTEGER NOT NULL,", table)
    return _replace_once(ddl, r"\n\)$", f", \n\tCONSTRAINT pk_{table} PRIMARY KEY (id)\n)",
                         table)
