"""lineage: runs and what each read and made (issue 16)

``runs`` holds one row per execution of a stage (explicit ``catalogstore.run(...)`` or
implicit per process or task); ``run_edges`` its inputs and outputs, each an artifact
version or an object store generation kept in cluster memory, with no foreign key to
``artifact_versions`` so that an edge outlives a version retention removed. Existing
catalogs get empty tables: nothing recorded who made what before. Two views serve
plain SQL: ``run_inputs`` and ``run_outputs``.

Revision ID: a4c8e2f61b37
Revises: 7d2f4a6c8e10
Create Date: 2026-12-09 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a4c8e2f61b37"
down_revision: str | None = "7d2f4a6c8e10"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_NOW = sa.DateTime(timezone=True)

# Plain SQL that SQLite and PostgreSQL both accept. ``state``: whether the version (or
# the generation) an edge names is still there.
_EDGE_VIEW = """
    CREATE VIEW run_{direction}s AS
    SELECT e.run_id, r.name AS run_name, r.status AS run_status, r.started_at, r.ended_at,
           e.namespace, e.name, e.artifact_id, e.version, e.generation, e.node,
           CASE WHEN e.artifact_id IS NOT NULL THEN
                CASE WHEN EXISTS (SELECT 1 FROM artifact_versions v
                                  WHERE v.artifact_id = e.artifact_id
                                    AND v.version = e.version)
                     THEN 'kept' ELSE 'removed' END
                WHEN EXISTS (SELECT 1 FROM objects o WHERE o.generation = e.generation)
                THEN 'current' ELSE 'replaced' END AS state,
           e.created_at
    FROM run_edges e
    JOIN runs r ON r.id = e.run_id
    WHERE e.direction = '{direction}'
"""
VIEWS = {f"run_{d}s": _EDGE_VIEW.format(direction=d) for d in ("input", "output")}


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("params_json", sa.Text(), server_default="{}", nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", _NOW, nullable=False),
        sa.Column("ended_at", _NOW, nullable=True),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.String(length=255), nullable=True),
        sa.Column("parent_id", sa.String(length=32), nullable=True),
        sa.Column("metadata_json", sa.Text(), server_default="{}", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    op.create_index("ix_runs_name_started_at", "runs", ["name", "started_at"])
    op.create_table(
        "run_edges",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("node", sa.String(length=80), nullable=False),
        sa.Column("namespace", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("artifact_id", _ID, nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("generation", sa.String(length=32), nullable=True),
        sa.Column("created_at", _NOW, nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_run_edges_run_id_runs"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_edges")),
    )
    op.create_index("ix_run_edges_run_id", "run_edges", ["run_id", "direction"])
    op.create_index("ix_run_edges_node", "run_edges", ["node", "direction"])
    for create in VIEWS.values():
        op.execute(create)


def downgrade() -> None:
    for view in reversed(VIEWS):
        op.execute(f"DROP VIEW {view}")
    op.drop_index("ix_run_edges_node", table_name="run_edges")
    op.drop_index("ix_run_edges_run_id", table_name="run_edges")
    op.drop_table("run_edges")
    op.drop_index("ix_runs_name_started_at", table_name="runs")
    op.drop_table("runs")
