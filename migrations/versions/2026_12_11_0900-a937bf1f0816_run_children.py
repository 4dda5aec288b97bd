"""run children: an index on runs.parent_id, so a run's nested runs are index lookups

``catalogstore ui``'s run page (and ``catalogstore.catalog.lineage.child_runs``) lists
the runs whose ``parent_id`` is the run, the first ones by start time, and counts them:
(``parent_id``, ``started_at``, ``id``) answers both from the index, in order, without
reading or sorting ``runs``. No row changes.

Revision ID: a937bf1f0816
Revises: c3f8a1d6e9b4
Create Date: 2026-12-11 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "a937bf1f0816"
down_revision: str | None = "c3f8a1d6e9b4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_runs_parent_id_started_at", "runs", ["parent_id", "started_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_runs_parent_id_started_at", table_name="runs")
