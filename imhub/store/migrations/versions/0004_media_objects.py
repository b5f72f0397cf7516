"""media_objects: per-user upload accounting and pending (pre-registration) avatars

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "media_objects",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("owner_id", BigId, nullable=True),
        sa.Column("thumb", sa.String(64), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_media_objects"),
    )
    op.create_index("ix_media_objects_owner", "media_objects", ["owner_id"])
    op.create_index("ix_media_objects_created", "media_objects", ["created"])


def downgrade() -> None:
    op.drop_table("media_objects")
