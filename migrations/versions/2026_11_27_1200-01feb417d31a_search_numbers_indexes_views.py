"""search: metadata numbers, indexes for the common queries, two views for plain SQL

- ``artifact_metadata.number``: the value as a number when it is one (else NULL),
  filled here for existing rows, so numeric comparisons never cast text in SQL.
- Metadata indexes: on SQLite a covering (key, value, artifact_id) B-tree; on
  PostgreSQL, whose B-tree entries must fit in ~2700 bytes (a long value would
  make every INSERT of it fail), a hash index on value instead; on both a
  (key, number, artifact_id) B-tree for numeric ranges and lookups by key.
- Artifact indexes: name (prefixes across namespaces), (created_at, id) and
  (updated_at, id) for newest-first pages.
- Views ``artifact_summary`` (one row per artifact with its file count and
  total size) and ``artifact_search`` (one row per artifact and metadata key).

SQLite rebuilds a table to alter it (alembic's batch mode) and refuses to
rename a table while a view names a missing one: a later migration that
batch-alters these tables must drop the views first and create them again.

Revision ID: 01feb417d31a
Revises: ccd3b4222f35
Create Date: 2026-11-27 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from catalogstore.record import value_number

revision: str = "01feb417d31a"
down_revision: str | None = "ccd3b4222f35"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Plain SQL that SQLite and PostgreSQL both accept.
VIEWS = {
    "artifact_summary": """
        CREATE VIEW artifact_summary AS
        SELECT a.id, a.namespace, a.name, a.created_at, a.updated_at,
               (SELECT COUNT(*) FROM artifact_files f WHERE f.artifact_id = a.id) AS files,
               (SELECT CAST(COALESCE(SUM(f.size), 0) AS BIGINT)
                  FROM artifact_files f WHERE f.artifact_id = a.id) AS size
        FROM artifacts a
    """,
    "artifact_search": """
        CREATE VIEW artifact_search AS
        SELECT s.id AS artifact_id, s.namespace, s.name, m.key, m.value, m.number,
               s.files, s.size, s.created_at, s.updated_at
        FROM artifact_metadata m
        JOIN artifact_summary s ON s.id = m.artifact_id
    """,
}
_BATCH = 5000


def _fill_numbers(bind: sa.Connection) -> None:
    """Set ``number`` of the existing rows, by the rule the catalog writes it with."""
    meta = sa.table("artifact_metadata", sa.column("id"), sa.column("value"),
                    sa.column("number"))
    update = sa.update(meta).where(meta.c.id == sa.bindparam("row")).values(
        number=sa.bindparam("num"))
    last = 0
    while True:
        rows = bind.execute(sa.select(meta.c.id, meta.c.value).where(meta.c.id > last)
                            .order_by(meta.c.id).limit(_BATCH)).all()
        if not rows:
            return
        last = rows[-1].id
        numbers = [{"row": row.id, "num": number} for row in rows
                   if (number := value_number(row.value)) is not None]
        if numbers:
            bind.execute(update, numbers)


def upgrade() -> None:
    bind = op.get_bind()
    op.add_column("artifact_metadata", sa.Column("number", sa.Double(), nullable=True))
    _fill_numbers(bind)
    op.drop_index("ix_artifact_metadata_key_value", table_name="artifact_metadata")
    if bind.dialect.name == "postgresql":
        op.create_index("ix_artifact_metadata_value", "artifact_metadata", ["value"],
                        postgresql_using="hash")
    else:
        op.create_index("ix_artifact_metadata_key_value", "artifact_metadata",
                        ["key", "value", "artifact_id"])
    op.create_index("ix_artifact_metadata_key_number", "artifact_metadata",
                    ["key", "number", "artifact_id"])
    op.create_index("ix_artifacts_name", "artifacts", ["name"],
                    postgresql_ops={"name": "text_pattern_ops"})
    op.create_index("ix_artifacts_created_at", "artifacts", ["created_at", "id"])
    op.create_index("ix_artifacts_updated_at", "artifacts", ["updated_at", "id"])
    for create in VIEWS.values():
        op.execute(create)


def downgrade() -> None:
    bind = op.get_bind()
    for view in reversed(VIEWS):
        op.execute(f"DROP VIEW {view}")
    op.drop_index("ix_artifacts_updated_at", table_name="artifacts")
    op.drop_index("ix_artifacts_created_at", table_name="artifacts")
    op.drop_index("ix_artifacts_name", table_name="artifacts")
    op.drop_index("ix_artifact_metadata_key_number", table_name="artifact_metadata")
    if bind.dialect.name == "postgresql":
        op.drop_index("ix_artifact_metadata_value", table_name="artifact_metadata")
    else:
        op.drop_index("ix_artifact_metadata_key_value", table_name="artifact_metadata")
    # The revision before knew no long values on PostgreSQL: this fails if one was stored.
    op.create_index("ix_artifact_metadata_key_value", "artifact_metadata", ["key", "value"])
    with op.batch_alter_table("artifact_metadata") as batch:
        batch.drop_column("number")
