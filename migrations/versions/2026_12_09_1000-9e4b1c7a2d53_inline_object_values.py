"""inline object values: small object store values kept in the catalog (issue 19)

``object_values`` holds the bytes of an object store value whose serialized form is
small, per artifact and checksum, written in the commit that records the key's
generation; ``mirrored`` says whether the file in the Flowdapt layout holds them yet.
Existing objects keep their files: nothing to move.

Revision ID: 9e4b1c7a2d53
Revises: a4c8e2f61b37
Create Date: 2026-12-09 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9e4b1c7a2d53"
down_revision: str | None = "a4c8e2f61b37"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "object_values",
        sa.Column("artifact_id", _ID, nullable=False),
        sa.Column("checksum", sa.String(length=80), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("mirrored", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["artifact_id"], ["artifacts.id"],
                                name=op.f("fk_object_values_artifact_id_artifacts"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("artifact_id", "checksum", name=op.f("pk_object_values")),
    )
    op.create_index("ix_object_values_mirrored", "object_values", ["mirrored"])


def downgrade() -> None:
    op.drop_index("ix_object_values_mirrored", table_name="object_values")
    op.drop_table("object_values")
