"""what the probe on completion found: real duration, codecs, picture, thumbnail, rejection

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("duration_seconds", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("container_format", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("video_codec", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("audio_codec", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("width", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("height", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("frame_rate", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("duration_mismatch", sa.Boolean(), nullable=True))
        batch_op.add_column(
            sa.Column("has_thumbnail", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("rejection_code", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("rejection_reason", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.drop_column("rejection_reason")
        batch_op.drop_column("rejection_code")
        batch_op.drop_column("has_thumbnail")
        batch_op.drop_column("duration_mismatch")
        batch_op.drop_column("frame_rate")
        batch_op.drop_column("height")
        batch_op.drop_column("width")
        batch_op.drop_column("audio_codec")
        batch_op.drop_column("video_codec")
        batch_op.drop_column("container_format")
        batch_op.drop_column("duration_seconds")
