"""versions: every committed change of an artifact kept as a version, aliases, retention
(issue 15)

``artifacts.version`` is the current version's number; ``artifact_versions`` and
``artifact_version_files`` keep each version's metadata and files (their bytes, when
not current, under ``.catalogstore/versions/{artifact id}/``); ``artifact_aliases``
names versions; ``retention_policies`` says what ``gc`` may remove. Every existing
artifact becomes version 1, with its files and metadata as they are, in the one
transaction of the upgrade. Two views serve plain SQL: ``version_summary`` (a row per
version, with its files and bytes and whether it is current) and ``alias_summary``.

Revision ID: 7d2f4a6c8e10
Revises: 3c9a1e7d5b20
Create Date: 2026-12-08 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7d2f4a6c8e10"
down_revision: str | None = "3c9a1e7d5b20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_NOW = sa.DateTime(timezone=True)

# Plain SQL that SQLite and PostgreSQL both accept.
VIEWS = {
    "version_summary": """
        CREATE VIEW version_summary AS
        SELECT a.namespace, a.name, v.artifact_id, v.version, v.created_at,
               CASE WHEN v.version = a.version THEN 1 ELSE 0 END AS is_current,
               CASE WHEN v.pinned THEN 1 ELSE 0 END AS pinned,
               (SELECT COUNT(*) FROM artifact_version_files f
                 WHERE f.artifact_id = v.artifact_id AND f.version = v.version) AS files,
               (SELECT CAST(COALESCE(SUM(f.size), 0) AS BIGINT) FROM artifact_version_files f
                 WHERE f.artifact_id = v.artifact_id AND f.version = v.version) AS size,
               v.metadata_json
        FROM artifact_versions v
        JOIN artifacts a ON a.id = v.artifact_id
    """,
    "alias_summary": """
        CREATE VIEW alias_summary AS
        SELECT a.namespace, a.name, l.artifact_id, l.alias, l.version, l.updated_at,
               v.metadata_json
        FROM artifact_aliases l
        JOIN artifacts a ON a.id = l.artifact_id
        JOIN artifact_versions v ON v.artifact_id = l.artifact_id AND v.version = l.version
    """,
}


def _of_a_version(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["artifact_id", "version"], ["artifact_versions.artifact_id", "artifact_versions.version"],
        name=op.f(f"fk_{table}_artifact_id_artifact_versions"), ondelete="CASCADE")


def upgrade() -> None:
    op.add_column("artifacts", sa.Column("version", sa.Integer(), server_default="1",
                                         nullable=False))
    op.create_table(
        "artifact_versions",
        sa.Column("artifact_id", _ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", _NOW, nullable=False),
        sa.Column("metadata_json", sa.Text(), server_default="{}", nullable=False),
        sa.Column("pinned", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("object_serializer", sa.String(length=64), nullable=True),
        sa.Column("object_digest", sa.String(length=80), nullable=True),
        sa.ForeignKeyConstraint(["artifact_id"], ["artifacts.id"],
                                name=op.f("fk_artifact_versions_artifact_id_artifacts"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("artifact_id", "version", name=op.f("pk_artifact_versions")),
    )
    op.create_table(
        "artifact_version_files",
        sa.Column("artifact_id", _ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("checksum", sa.String(length=80), nullable=False),
        sa.Column("encoding", sa.String(length=32), nullable=True),
        sa.Column("updated_at", _NOW, nullable=False),
        _of_a_version("artifact_version_files"),
        sa.PrimaryKeyConstraint("artifact_id", "version", "name",
                                name=op.f("pk_artifact_version_files")),
    )
    op.create_index("ix_artifact_version_files_checksum", "artifact_version_files",
                    ["artifact_id", "checksum"])
    op.create_table(
        "artifact_aliases",
        sa.Column("artifact_id", _ID, nullable=False),
        sa.Column("alias", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", _NOW, nullable=False),
        _of_a_version("artifact_aliases"),
        sa.PrimaryKeyConstraint("artifact_id", "alias", name=op.f("pk_artifact_aliases")),
    )
    op.create_index("ix_artifact_aliases_alias", "artifact_aliases", ["alias", "artifact_id"])
    op.create_table(
        "retention_policies",
        sa.Column("namespace", sa.String(length=128), nullable=False),
        sa.Column("keep_last", sa.Integer(), nullable=True),
        sa.Column("keep_days", sa.Double(), nullable=True),
        sa.Column("updated_at", _NOW, nullable=False),
        sa.PrimaryKeyConstraint("namespace", name=op.f("pk_retention_policies")),
    )
    # Every artifact as it is becomes its version 1 (an object's with its record's
    # serializer and digest), server side: no row crosses the wire.
    op.execute("""
        INSERT INTO artifact_versions (artifact_id, version, created_at, metadata_json,
                                       pinned, object_serializer, object_digest)
        SELECT a.id, 1, a.updated_at, a.metadata_json, false, o.serializer, o.digest
        FROM artifacts a LEFT JOIN objects o ON o.artifact_id = a.id
    """)
    op.execute("""
        INSERT INTO artifact_version_files (artifact_id, version, name, size, checksum,
                                            encoding, updated_at)
        SELECT artifact_id, 1, name, size, checksum, encoding, updated_at
        FROM artifact_files
    """)
    for create in VIEWS.values():
        op.execute(create)


def downgrade() -> None:
    for view in reversed(VIEWS):
        op.execute(f"DROP VIEW {view}")
    op.drop_table("retention_policies")
    op.drop_index("ix_artifact_aliases_alias", table_name="artifact_aliases")
    op.drop_table("artifact_aliases")
    op.drop_index("ix_artifact_version_files_checksum", table_name="artifact_version_files")
    op.drop_table("artifact_version_files")
    op.drop_table("artifact_versions")
    op.drop_column("artifacts", "version")  # SQLite 3.35+: in place, the views stay valid
