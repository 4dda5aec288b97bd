"""typed metadata: the JSON type of each metadata value

Metadata values are JSON values (issue 14). ``artifact_metadata`` keeps ``value``
(a string itself; any other value its compact JSON text) and ``number``, and gains
``type``: string, number, boolean, null, array or object. Every existing row
holds a string (catalogstore stored every value as text until now), so the
column's server default types them all, and plain SQL that inserts a row without
it inserts a string. The view ``artifact_search`` shows the type.

No row is rewritten and none is lost; ``downgrade`` drops the column (values that
were not strings keep their JSON text in ``value``).

Revision ID: 5b7e2c9d1a43
Revises: f919e649af58
Create Date: 2026-12-07 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5b7e2c9d1a43"
down_revision: str | None = "f919e649af58"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Plain SQL that SQLite and PostgreSQL both accept (the view of 01feb417d31a, and the
# same with the type).
_SEARCH_VIEW = """
    CREATE VIEW artifact_search AS
    SELECT s.id AS artifact_id, s.namespace, s.name, m.key, m.value, m.number,{type}
           s.files, s.size, s.created_at, s.updated_at
    FROM artifact_metadata m
    JOIN artifact_summary s ON s.id = m.artifact_id
"""


def upgrade() -> None:
    # SQLite refuses to alter a table a view names only when the table is rebuilt;
    # adding a column is not, but the view is replaced to show it.
    op.execute("DROP VIEW artifact_search")
    op.add_column("artifact_metadata", sa.Column(
        "type", sa.String(7), server_default="string", nullable=False))
    op.execute(_SEARCH_VIEW.format(type=" m.type,"))


def downgrade() -> None:
    op.execute("DROP VIEW artifact_search")
    with op.batch_alter_table("artifact_metadata") as batch:
        batch.drop_column("type")
    op.execute(_SEARCH_VIEW.format(type=""))
