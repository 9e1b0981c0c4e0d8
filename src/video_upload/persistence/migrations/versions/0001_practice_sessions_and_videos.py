"""practice sessions and videos

Revision ID: 0001
Revises:
Create Date: 2026-11-24 07:25:34.227226
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "practice_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_practice_sessions")),
    )
    with op.batch_alter_table("practice_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_practice_sessions_user_id"), ["user_id"], unique=False)

    op.create_table(
        "videos",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=True),
        sa.Column("upload_id", sa.String(length=100), nullable=False),
        sa.Column("upload_offset", sa.BigInteger(), nullable=False),
        sa.Column("upload_length", sa.BigInteger(), nullable=True),
        sa.Column("upload_completed", sa.Boolean(), nullable=False),
        sa.Column("upload_metadata", sa.JSON(), nullable=False),
        sa.Column("upload_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tus_metadata", sa.Text(), nullable=True),
        sa.Column("concat", sa.String(length=16), nullable=True),
        sa.Column("concat_parts", sa.JSON(), nullable=True),
        sa.Column("storage_key", sa.String(length=255), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("declared_duration_seconds", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["practice_sessions.id"],
            name=op.f("fk_videos_session_id_practice_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_videos")),
        sa.UniqueConstraint("upload_id", name=op.f("uq_videos_upload_id")),
    )
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.create_index(
            "ix_videos_expiry", ["upload_completed", "upload_expires_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_videos_session_id"), ["session_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_videos_user_id"), ["user_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_videos_user_id"))
        batch_op.drop_index(batch_op.f("ix_videos_session_id"))
        batch_op.drop_index("ix_videos_expiry")

    op.drop_table("videos")
    with op.batch_alter_table("practice_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_practice_sessions_user_id"))

    op.drop_table("practice_sessions")
