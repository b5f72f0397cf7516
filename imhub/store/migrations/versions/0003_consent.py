"""consent and membership: friend requests, blocks, privacy, group roles, join
policies, history visibility, bans, invites, join requests

Existing data keeps working as before: every existing group gets join policy
``open`` and history visibility ``shared`` (the column defaults), every existing
friendship and membership stays, and each group's owner row becomes role ``owner``.
Operators tighten old groups afterwards (README "Upgrading to the consent model").

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column(
        "communities", sa.Column("join_policy", sa.String(length=12), server_default="open", nullable=False)
    )
    op.add_column(
        "communities",
        sa.Column("history_visibility", sa.String(length=12), server_default="shared", nullable=False),
    )
    op.add_column("members", sa.Column("role", sa.String(length=8), server_default="member", nullable=False))
    op.add_column("members", sa.Column("join_seq", sa.BigInteger(), server_default="0", nullable=False))
    op.execute(
        "UPDATE members SET role = 'owner' WHERE EXISTS ("
        " SELECT 1 FROM communities c WHERE c.id = members.group_id AND c.ownerid = members.user_id)"
    )

    op.create_table(
        "past_members",
        sa.Column("group_id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("join_seq", sa.BigInteger(), nullable=False),
        sa.Column("leave_seq", sa.BigInteger(), nullable=False),
        sa.Column("left_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"], ["communities.id"], name=op.f("fk_past_members_group_id_communities"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_past_members_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("group_id", "user_id", name=op.f("pk_past_members")),
    )
    op.create_table(
        "group_bans",
        sa.Column("group_id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("by_id", BigId, nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"], ["communities.id"], name=op.f("fk_group_bans_group_id_communities"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_group_bans_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("group_id", "user_id", name=op.f("pk_group_bans")),
    )
    op.create_table(
        "group_invites",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("group_id", BigId, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=True),
        sa.Column("invitee_id", BigId, nullable=True),
        sa.Column("created_by", BigId, nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("expires", sa.BigInteger(), nullable=False),
        sa.Column("revoked", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("uses", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"], ["communities.id"], name=op.f("fk_group_invites_group_id_communities"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["invitee_id"], ["users.id"], name=op.f("fk_group_invites_invitee_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_group_invites")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_group_invites_token_hash")),
    )
    op.create_index(op.f("ix_group_invites_group_id"), "group_invites", ["group_id"])
    op.create_index(op.f("ix_group_invites_invitee_id"), "group_invites", ["invitee_id"])
    op.create_table(
        "join_requests",
        sa.Column("group_id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"], ["communities.id"], name=op.f("fk_join_requests_group_id_communities"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_join_requests_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("group_id", "user_id", name=op.f("pk_join_requests")),
    )
    op.create_table(
        "friend_requests",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("from_id", BigId, nullable=False),
        sa.Column("to_id", BigId, nullable=False),
        sa.Column("status", sa.String(length=12), server_default="pending", nullable=False),
        sa.Column("memo", sa.String(length=128), server_default="", nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("expires", sa.BigInteger(), nullable=False),
        sa.Column("decided", sa.BigInteger(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["from_id"], ["users.id"], name=op.f("fk_friend_requests_from_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["to_id"], ["users.id"], name=op.f("fk_friend_requests_to_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_friend_requests")),
    )
    op.create_index("ix_friend_requests_to", "friend_requests", ["to_id", "status"])
    op.create_index("ix_friend_requests_from", "friend_requests", ["from_id", "to_id"])
    op.create_table(
        "blocks",
        sa.Column("owner_id", BigId, nullable=False),
        sa.Column("dst_id", BigId, nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_blocks_owner_id_users"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["dst_id"], ["users.id"], name=op.f("fk_blocks_dst_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("owner_id", "dst_id", name=op.f("pk_blocks")),
    )
    op.create_index("ix_blocks_dst", "blocks", ["dst_id"])
    op.create_table(
        "privacy",
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("add_policy", sa.String(length=8), server_default="nobody", nullable=False),
        sa.Column("findable_by_mobile", sa.Boolean(), server_default="1", nullable=False),
        sa.Column("show_mobile", sa.Boolean(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_privacy_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_privacy")),
    )


def downgrade() -> None:
    tables = ("privacy", "blocks", "friend_requests", "join_requests", "group_invites", "group_bans", "past_members")
    for table in tables:
        op.drop_table(table)
    with op.batch_alter_table("members") as batch:
        batch.drop_column("join_seq")
        batch.drop_column("role")
    with op.batch_alter_table("communities") as batch:
        batch.drop_column("history_visibility")
        batch.drop_column("join_policy")
