"""typed metadata: the JSON type of each value, and each artifact's metadata document

- Metadata values are JSON values (issue 14). ``artifact_metadata`` keeps ``value``
  (a string itself; any other value its compact JSON text) and ``number``, and
  gains ``type``: string, number, boolean, null, array or object. Every existing
  row holds a string (catalogstore stored every value as text until now), so the
  column's server default types them all, and plain SQL that inserts a row
  without it inserts a string. The view ``artifact_search`` shows the type.
- ``artifacts.metadata_json``: the artifact's whole metadata as one JSON object,
  keys in insertion order (the rows' id order), filled here from the rows: a
  listing reads an artifact and its metadata in one row (issue 11).

No row is lost and no value changes; ``downgrade`` drops both columns (values that
were not strings keep their JSON text in ``value``).

Revision ID: 5b7e2c9d1a43
Revises: f5787ce2ec30
Create Date: 2026-12-07 13:00:00
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5b7e2c9d1a43"
down_revision: str | None = "f5787ce2ec30"
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


_BATCH = 5000


def _fill_documents(bind: sa.Connection) -> None:
    """Each artifact's metadata document from its rows (all strings at this revision),
    written as catalogstore writes it: compact, keys in id order, non-ASCII as is."""
    meta = sa.table("artifact_metadata", sa.column("id"), sa.column("artifact_id"),
                    sa.column("key"), sa.column("value"))
    artifacts = sa.table("artifacts", sa.column("id"), sa.column("metadata_json"))
    update = sa.update(artifacts).where(artifacts.c.id == sa.bindparam("a")).values(
        metadata_json=sa.bindparam("doc"))
    last = -1
    while True:
        # A batch of artifacts that have metadata, then all their rows.
        ids = list(bind.execute(sa.select(meta.c.artifact_id).distinct()
                                .where(meta.c.artifact_id > last)
                                .order_by(meta.c.artifact_id).limit(_BATCH)).scalars())
        if not ids:
            return
        last = ids[-1]
        documents: dict[int, dict[str, str]] = {i: {} for i in ids}
        for artifact_id, key, value in bind.execute(
                sa.select(meta.c.artifact_id, meta.c.key, meta.c.value)
                .where(meta.c.artifact_id.between(ids[0], last)).order_by(meta.c.id)):
            documents[artifact_id][key] = value
        bind.execute(update, [{"a": a, "doc": json.dumps(d, ensure_ascii=False,
                                                         separators=(",", ":"))}
                              for a, d in documents.items()])


def upgrade() -> None:
    # SQLite refuses to alter a table a view names only when the table is rebuilt;
    # adding a column is not, but the view is replaced to show the type.
    op.execute("DROP VIEW artifact_search")
    op.add_column("artifact_metadata", sa.Column(
        "type", sa.String(7), server_default="string", nullable=False))
    op.add_column("artifacts", sa.Column(
        "metadata_json", sa.Text(), server_default="{}", nullable=False))
    _fill_documents(op.get_bind())
    op.execute(_SEARCH_VIEW.format(type=" m.type,"))


def downgrade() -> None:
    op.execute("DROP VIEW artifact_search")
    # ALTER TABLE ... DROP COLUMN, not alembic's batch mode: on SQLite (3.35 or later)
    # it keeps the table, so no ON DELETE CASCADE empties the files and metadata and
    # the index on expressions of f919e649af58 stays.
    op.execute("ALTER TABLE artifact_metadata DROP COLUMN type")
    op.execute("ALTER TABLE artifacts DROP COLUMN metadata_json")
    op.execute(_SEARCH_VIEW.format(type=""))
