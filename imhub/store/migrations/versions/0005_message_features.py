"""message features: replies, mentions, forwards, edits, reactions, pins, delete for me,
per-user conversation settings (issue #19)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("messages", sa.Column("reply_to", sa.BigInteger(), server_default="0", nullable=False))
    op.add_column("messages", sa.Column("mentions", sa.String(512), server_default="", nullable=False))
    op.add_column("messages", sa.Column("forwarded", sa.Boolean(), server_default="0", nullable=False))
    op.add_column("messages", sa.Column("edited_at", sa.BigInteger(), server_default="0", nullable=False))
    op.add_column("conversations", sa.Column("mention_all_seq", sa.BigInteger(), server_default="0", nullable=False))
    op.add_column("cursors", sa.Column("mention_seq", sa.BigInteger(), server_default="0", nullable=False))
    op.create_table(
        "reactions",
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("emoji", sa.String(32), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_reactions_user_id_users", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("message_id", "user_id", "emoji", name="pk_reactions"),
    )
    op.create_table(
        "pinned_messages",
        sa.Column("conv", sa.String(48), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("by_id", BigId, nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("conv", "message_id", name="pk_pinned_messages"),
    )
    op.create_table(
        "hidden_messages",
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("conv", sa.String(48), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_hidden_messages_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "message_id", name="pk_hidden_messages"),
    )
    op.create_table(
        "conv_prefs",
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("conv", sa.String(48), nullable=False),
        sa.Column("pinned", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("muted", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("cleared_seq", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("updated", sa.BigInteger(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_conv_prefs_user_id_users", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "conv", name="pk_conv_prefs"),
    )


def downgrade() -> None:
    for table in ("conv_prefs", "hidden_messages", "pinned_messages", "reactions"):
        op.drop_table(table)
    with op.batch_alter_table("cursors") as batch:
        batch.drop_column("mention_seq")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("mention_all_seq")
    with op.batch_alter_table("messages") as batch:
        for column in ("edited_at", "forwarded", "mentions", "reply_to"):
            batch.drop_column(column)
