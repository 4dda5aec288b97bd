"""initial catalog: artifacts, their files and metadata, and the storage journal

Revision ID: ccd3b4222f35
Revises:
Create Date: 2026-11-26 03:27:20
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ccd3b4222f35"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 64-bit ids on PostgreSQL; SQLite only auto-increments an INTEGER PRIMARY KEY.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "artifacts",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("namespace", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_artifacts")),
        sa.UniqueConstraint("namespace", "name", name=op.f("uq_artifacts_namespace_name")),
    )
    op.create_table(
        "catalog_journal",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("namespace", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_journal")),
    )
    op.create_table(
        "artifact_files",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("artifact_id", Id, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("checksum", sa.String(length=80), nullable=False),
        sa.Column("encoding", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["artifact_id"], ["artifacts.id"],
            name=op.f("fk_artifact_files_artifact_id_artifacts"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_artifact_files")),
        sa.UniqueConstraint("artifact_id", "name", name=op.f("uq_artifact_files_artifact_id_name")),
    )
    op.create_table(
        "artifact_metadata",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("artifact_id", Id, nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["artifact_id"], ["artifacts.id"],
            name=op.f("fk_artifact_metadata_artifact_id_artifacts"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_artifact_metadata")),
        sa.UniqueConstraint(
            "artifact_id", "key", name=op.f("uq_artifact_metadata_artifact_id_key")
        ),
    )
    op.create_index("ix_artifact_metadata_key_value", "artifact_metadata", ["key", "value"])


def downgrade() -> None:
    op.drop_index("ix_artifact_metadata_key_value", table_name="artifact_metadata")
    op.drop_table("artifact_metadata")
    op.drop_table("artifact_files")
    op.drop_table("catalog_journal")
    op.drop_table("artifacts")
