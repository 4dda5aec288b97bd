"""lineage producer: each input edge names the run that made what it read (issue 16)

``run_edges.producer_id`` holds, on an input edge, the run whose output edge names the
same node (NULL: none recorded, e.g. a version made with lineage off), written with
the input; a partial index on (``producer_id``, ``run_id``) of the inputs lets the
lineage walk take one index lookup per step both ways (upstream: a run's inputs and
their producers; downstream: the inputs whose producer is the run). Edges recorded
before this revision get their producer in the upgrade. The views are made again:
``run_inputs`` shows ``producer_id``, and a generation's ``state`` is looked up by the
object's key (its unique index) instead of a scan of ``objects``.

Revision ID: c3f8a1d6e9b4
Revises: 9e4b1c7a2d53
Create Date: 2026-12-10 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c3f8a1d6e9b4"
down_revision: str | None = "9e4b1c7a2d53"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INPUTS_ONLY = sa.text("direction = 'input'")

# The views as revision a4c8e2f61b37 made them (for the downgrade), and as they are now.
_EDGE_VIEW = """
    CREATE VIEW run_{direction}s AS
    SELECT e.run_id, r.name AS run_name, r.status AS run_status, r.started_at, r.ended_at,
           e.namespace, e.name, e.artifact_id, e.version, e.generation, e.node,
           CASE WHEN e.artifact_id IS NOT NULL THEN
                CASE WHEN EXISTS (SELECT 1 FROM artifact_versions v
                                  WHERE v.artifact_id = e.artifact_id
                                    AND v.version = e.version)
                     THEN 'kept' ELSE 'removed' END
                WHEN EXISTS ({current})
                THEN 'current' ELSE 'replaced' END AS state,
           e.created_at{producer}
    FROM run_edges e
    JOIN runs r ON r.id = e.run_id
    WHERE e.direction = '{direction}'
"""
_OLD_CURRENT = "SELECT 1 FROM objects o WHERE o.generation = e.generation"
_CURRENT = ("SELECT 1 FROM objects o WHERE o.namespace = e.namespace AND o.key = e.name "
            "AND o.generation = e.generation")
OLD_VIEWS = {f"run_{d}s": _EDGE_VIEW.format(direction=d, current=_OLD_CURRENT, producer="")
             for d in ("input", "output")}
VIEWS = {f"run_{d}s": _EDGE_VIEW.format(direction=d, current=_CURRENT,
                                        producer=", e.producer_id" if d == "input" else "")
         for d in ("input", "output")}


def _drop_views() -> None:
    for view in reversed(VIEWS):
        op.execute(f"DROP VIEW {view}")


def upgrade() -> None:
    _drop_views()
    op.add_column("run_edges", sa.Column("producer_id", sa.String(length=32), nullable=True))
    # The first run that recorded the node as an output, as the write path picks it.
    op.execute("""
        UPDATE run_edges SET producer_id = (
            SELECT o.run_id FROM run_edges o
            WHERE o.node = run_edges.node AND o.direction = 'output'
            ORDER BY o.id LIMIT 1)
        WHERE direction = 'input'
    """)
    op.create_index("ix_run_edges_producer_id", "run_edges", ["producer_id", "run_id"],
                    sqlite_where=_INPUTS_ONLY, postgresql_where=_INPUTS_ONLY)
    for create in VIEWS.values():
        op.execute(create)


def downgrade() -> None:
    _drop_views()
    op.drop_index("ix_run_edges_producer_id", table_name="run_edges")
    op.drop_column("run_edges", "producer_id")  # SQLite 3.35+: in place
    for create in OLD_VIEWS.values():
        op.execute(create)
