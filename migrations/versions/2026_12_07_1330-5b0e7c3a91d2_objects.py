"""objects: the current generation of each object store key (issues 12 and 13)

One row per key: the tier holding its current value, the artifact (cascade on
delete), the serializer and the digest of pickled bytes, and whether the store
wrote it (``put``) or a user adopted it (``catalogstore adopt``). ``reindex``
never writes it, so an object found in the storage is not trusted until adopted.

Revision ID: 5b0e7c3a91d2
Revises: 5b7e2c9d1a43
Create Date: 2026-12-07 12:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5b0e7c3a91d2"
down_revision: str | None = "5b7e2c9d1a43"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "objects",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=True, nullable=False),
        sa.Column("namespace", sa.String(length=128), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("generation", sa.String(length=32), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("location", sa.String(length=255), nullable=True),
        sa.Column("artifact_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  nullable=True),
        sa.Column("serializer", sa.String(length=64), nullable=True),
        sa.Column("digest", sa.String(length=80), nullable=True),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["artifact_id"], ["artifacts.id"],
                                name=op.f("fk_objects_artifact_id_artifacts"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_objects")),
        sa.UniqueConstraint("namespace", "key", name=op.f("uq_objects_namespace_key")),
    )
    op.create_index(op.f("ix_objects_artifact_id"), "objects", ["artifact_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_objects_artifact_id"), table_name="objects")
    op.drop_table("objects")
