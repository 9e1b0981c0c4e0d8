"""staged pieces: an S3 upload's remainders smaller than a part, kept in the database

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staged_pieces",
        sa.Column("object_key", sa.String(length=1024), nullable=False),
        sa.Column("start", sa.BigInteger(), nullable=False),
        sa.Column("tag", sa.String(length=32), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("object_key", "start", name=op.f("pk_staged_pieces")),
    )
    if op.get_bind().dialect.name == "postgresql":
        # video bytes do not compress: keep PostgreSQL from trying on every piece
        op.execute("ALTER TABLE staged_pieces ALTER COLUMN data SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.drop_table("staged_pieces")
