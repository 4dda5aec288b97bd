"""case check: an index on (lower(namespace), lower(name)) of artifacts

New artifact names and namespaces are refused when they differ only by case
from existing ones (``catalogstore/catalog/collisions.py``). Without this index
that check read every artifact of the namespace, and for a new namespace the
whole table; with it, both are lookups of the lower-cased spelling.

SQLite cannot reflect an index on expressions: alembic's batch mode (which
rebuilds a table from its reflection) would leave it out. A later migration
that batch-alters ``artifacts`` must create it again afterwards (and, with
foreign keys on, must not drop ``artifacts`` while files and metadata refer to
it: ON DELETE CASCADE would empty them).

Revision ID: f919e649af58
Revises: 01feb417d31a
Create Date: 2026-11-28 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f919e649af58"
down_revision: str | None = "01feb417d31a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_artifacts_lower_namespace_name", "artifacts",
                    [sa.text("lower(namespace)"), sa.text("lower(name)")])


def downgrade() -> None:
    op.drop_index("ix_artifacts_lower_namespace_name", table_name="artifacts")
