"""The relational schema, as SQLAlchemy Core tables.

Alembic migrations under ``migrations/versions`` create exactly this; a test compares
the two so they cannot drift. Times are integer milliseconds since the epoch (UTC),
which is portable between SQLite and PostgreSQL and cheap to compare.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

# SQLite only auto-increments an "INTEGER PRIMARY KEY"; PostgreSQL wants BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

users = Table(
    "users",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("mobile", String(20), nullable=False, unique=True),
    Column("passwd", String(200), nullable=False),  # argon2id encoded hash (salt inside)
    Column("nickname", String(64), nullable=False, server_default=""),
    Column("avatar", String(512), nullable=False, server_default=""),
    Column("sex", String(1), nullable=False, server_default="U"),
    Column("memo", String(512), nullable=False, server_default=""),
    Column("createat", BigInteger, nullable=False),
    Column("last_seen", BigInteger, nullable=False, server_default="0"),
    Column("banned", Boolean, nullable=False, server_default="0"),
)

tokens = Table(
    "tokens",
    metadata,
    # sha256 of the opaque token; the token itself is never stored.
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("created", BigInteger, nullable=False),
    Column("expires", BigInteger, nullable=False),
)

# One row per direction: a friendship is two rows, written in one transaction.
contacts = Table(
    "contacts",
    metadata,
    Column("owner_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("dst_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("created", BigInteger, nullable=False),
)

communities = Table(
    "communities",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False),
    Column("ownerid", BigId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("icon", String(512), nullable=False, server_default=""),
    Column("cate", Integer, nullable=False, server_default="0"),
    Column("memo", String(512), nullable=False, server_default=""),
    Column("createat", BigInteger, nullable=False),
    # open | approval | invite. The server defaults are what groups made before the
    # consent model (migration 0003) get: the seed's behaviour; new groups are given
    # their policy explicitly by the service.
    Column("join_policy", String(12), nullable=False, server_default="open"),
    # joined (members see from their join on) | shared (members see everything).
    Column("history_visibility", String(12), nullable=False, server_default="shared"),
)

members = Table(
    "members",
    metadata,
    Column("group_id", BigId, ForeignKey("communities.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("joined", BigInteger, nullable=False),
    # owner | admin | member
    Column("role", String(8), nullable=False, server_default="member"),
    # The group conversation's last seq when the member joined: under history
    # visibility "joined" they see seqs after it.
    Column("join_seq", BigInteger, nullable=False, server_default="0"),
    Index("ix_members_user", "user_id"),
)

# Former members: what they may still read (seqs join_seq < seq <= leave_seq). A rejoin
# deletes the row (the new membership's join_seq applies).
past_members = Table(
    "past_members",
    metadata,
    Column("group_id", BigId, ForeignKey("communities.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("join_seq", BigInteger, nullable=False),
    Column("leave_seq", BigInteger, nullable=False),
    Column("left_at", BigInteger, nullable=False),
)

# A removed member may not rejoin (by any route) until an owner or admin lifts the ban.
group_bans = Table(
    "group_bans",
    metadata,
    Column("group_id", BigId, ForeignKey("communities.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("by_id", BigId, nullable=False),
    Column("created", BigInteger, nullable=False),
)

# Invitations: to one user (invitee_id, no token) or a link (token_hash of a random
# token shown once to its creator; the token itself is never stored).
group_invites = Table(
    "group_invites",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", BigId, ForeignKey("communities.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("token_hash", String(64), nullable=True, unique=True),
    Column("invitee_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), nullable=True, index=True),
    Column("created_by", BigId, nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("expires", BigInteger, nullable=False),
    Column("revoked", Boolean, nullable=False, server_default="0"),
    Column("uses", Integer, nullable=False, server_default="0"),
)

# Pending requests to join an "approval" group; approval or decline deletes the row.
join_requests = Table(
    "join_requests",
    metadata,
    Column("group_id", BigId, ForeignKey("communities.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("created", BigInteger, nullable=False),
)

# Friend requests and their outcome: pending | accepted | declined | cancelled
# (expired = pending past ``expires``, decided lazily). Declined rows stay so that
# re-requesting can be rate-limited.
friend_requests = Table(
    "friend_requests",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("from_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("to_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(12), nullable=False, server_default="pending"),
    Column("memo", String(128), nullable=False, server_default=""),
    Column("created", BigInteger, nullable=False),
    Column("expires", BigInteger, nullable=False),
    Column("decided", BigInteger, nullable=False, server_default="0"),
    Index("ix_friend_requests_to", "to_id", "status"),
    Index("ix_friend_requests_from", "from_id", "to_id"),
)

# owner blocked dst: nothing flows from dst to owner (docs/security.md).
blocks = Table(
    "blocks",
    metadata,
    Column("owner_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("dst_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("created", BigInteger, nullable=False),
    Index("ix_blocks_dst", "dst_id"),
)

# Per-user privacy; a user without a row has the defaults below.
privacy = Table(
    "privacy",
    metadata,
    Column("user_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    # Who may make me a friend without a request: nobody | anyone.
    Column("add_policy", String(8), nullable=False, server_default="nobody"),
    Column("findable_by_mobile", Boolean, nullable=False, server_default="1"),
    Column("show_mobile", Boolean, nullable=False, server_default="0"),
)

# One row per conversation ("p<lo>_<hi>" for a 1:1 pair, "g<id>" for a group) holding
# the last allocated seq; allocation is "UPDATE ... SET last_seq = last_seq + 1
# RETURNING last_seq", which row-locks on PostgreSQL and is serialised on SQLite.
conversations = Table(
    "conversations",
    metadata,
    Column("conv", String(48), primary_key=True),
    Column("last_seq", BigInteger, nullable=False, server_default="0"),
    # The last seq of an @all message (every member is mentioned by it).
    Column("mention_all_seq", BigInteger, nullable=False, server_default="0"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("conv", String(48), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("userid", BigId, nullable=False),
    Column("cmd", Integer, nullable=False),
    Column("dstid", BigId, nullable=False),
    Column("media", Integer, nullable=False),
    Column("content", Text, nullable=False, server_default=""),
    Column("pic", String(1024), nullable=False, server_default=""),
    Column("url", String(1024), nullable=False, server_default=""),
    Column("memo", String(1024), nullable=False, server_default=""),
    Column("amount", BigInteger, nullable=False, server_default="0"),
    Column("cid", String(64), nullable=True),
    Column("ts", BigInteger, nullable=False),
    Column("recalled", Boolean, nullable=False, server_default="0"),
    # Migration 0005: replies, mentions, forwards, edits (docs/protocol.md).
    Column("reply_to", BigInteger, nullable=False, server_default="0"),
    Column("mentions", String(512), nullable=False, server_default=""),
    Column("forwarded", Boolean, nullable=False, server_default="0"),
    Column("edited_at", BigInteger, nullable=False, server_default="0"),
    UniqueConstraint("conv", "seq", name="uq_messages_conv_seq"),
    # Idempotent retry: one message per (sender, client id). NULL cids never collide.
    UniqueConstraint("userid", "cid", name="uq_messages_userid_cid"),
)

# Per member per conversation: how far messages were delivered to / read by the user.
cursors = Table(
    "cursors",
    metadata,
    Column("user_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("conv", String(48), primary_key=True),
    Column("delivered_seq", BigInteger, nullable=False, server_default="0"),
    Column("read_seq", BigInteger, nullable=False, server_default="0"),
    # The last seq of a message that mentions the user (flag: mention_seq > read_seq).
    Column("mention_seq", BigInteger, nullable=False, server_default="0"),
)

# Emoji reactions: a bounded set per message per user (imhub.services.messaging).
reactions = Table(
    "reactions",
    metadata,
    Column("message_id", BigInteger, primary_key=True),
    Column("user_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("emoji", String(32), primary_key=True),
    Column("created", BigInteger, nullable=False),
)

# Messages pinned in a conversation, for everyone in it.
pinned_messages = Table(
    "pinned_messages",
    metadata,
    Column("conv", String(48), primary_key=True),
    Column("message_id", BigInteger, primary_key=True),
    Column("by_id", BigId, nullable=False),
    Column("created", BigInteger, nullable=False),
)

# "Delete for me": messages one user hid from their own devices.
hidden_messages = Table(
    "hidden_messages",
    metadata,
    Column("user_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("message_id", BigInteger, primary_key=True),
    Column("conv", String(48), nullable=False),
    Column("created", BigInteger, nullable=False),
)

# One user's settings of one conversation: pinned to the top, muted, and cleared (hidden
# for them) up to a seq.
conv_prefs = Table(
    "conv_prefs",
    metadata,
    Column("user_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("conv", String(48), primary_key=True),
    Column("pinned", Boolean, nullable=False, server_default="0"),
    Column("muted", Boolean, nullable=False, server_default="0"),
    Column("cleared_seq", BigInteger, nullable=False, server_default="0"),
    Column("updated", BigInteger, nullable=False, server_default="0"),
)

# Every stored upload, for per-user storage quotas and to sweep unused avatars uploaded
# before registration (owner_id NULL until a registration claims them). ``name`` is the
# original's generated name; ``size`` counts its thumbnail too. No foreign key on
# owner_id: a deleted user's files stay referenced by messages, and must not turn into
# "unclaimed" rows the sweeper would delete.
media_objects = Table(
    "media_objects",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("owner_id", BigId, nullable=True),
    Column("thumb", String(64), nullable=True),
    Column("size", BigInteger, nullable=False),
    Column("created", BigInteger, nullable=False),
    Index("ix_media_objects_owner", "owner_id"),
    Index("ix_media_objects_created", "created"),
)

# --- integration (docs/server-api.md) --------------------------------------------

# Users provisioned through the server API by the embedding product's own id for them.
# They have no password (users.passwd is not a hash, users.mobile a placeholder no login
# form accepts).
ext_users = Table(
    "ext_users",
    metadata,
    Column("ext_id", String(128), primary_key=True),
    Column("user_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, unique=True),
    Column("created", BigInteger, nullable=False),
)

# Server API keys: only the sha256 of the key is stored (256 random bits, so a plain
# hash is enough); ``prefix`` (its first characters) names it in listings.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("scopes", String(128), nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("revoked", BigInteger, nullable=False, server_default="0"),  # when (ms), 0: live
)

# Webhook endpoints registered by the operator. The secret signs deliveries, so it is
# kept as given (shown once when added, never logged or listed).
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("url", String(512), nullable=False),
    Column("secret", String(128), nullable=False),
    Column("events", String(256), nullable=False),  # comma-separated event types
    Column("created", BigInteger, nullable=False),
    Column("removed", BigInteger, nullable=False, server_default="0"),  # when (ms), 0: active
)

# The outbox: one row per (event, endpoint), delivered in (pos, id) order per (endpoint,
# okey) (okey: the conversation, or the group, user or request the event is about).
# state: pending | done | failed (gave up after IMHUB_WEBHOOK_RETRY_SECONDS).
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("endpoint_id", BigId, ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", String(40), nullable=False),
    Column("event", String(32), nullable=False),
    Column("okey", String(64), nullable=False),
    Column("pos", BigInteger, nullable=False, server_default="0"),  # order within okey: the seq of a message
    Column("body", Text, nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_at", BigInteger, nullable=False),
    Column("state", String(8), nullable=False, server_default="pending"),
    Column("last_error", String(200), nullable=False, server_default=""),
    UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_deliveries_endpoint_event"),
    Index("ix_webhook_deliveries_pending", "state", "endpoint_id", "okey", "pos", "id"),
)

# Leases: the holder of the "webhooks" row (until ``expires``) is the one process
# draining the outbox, whatever the number of workers and nodes.
leases = Table(
    "leases",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires", BigInteger, nullable=False),
)

# How far the webhook drainer has checked the messages table for message.stored events
# the live path did not enqueue (a crash between a commit and its outbox write).
webhook_cursor = Table(
    "webhook_cursor",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("last_id", BigInteger, nullable=False),
)

# Web Push subscriptions of users' browsers (the PushSubscription JSON of the Push API).
# ``endpoint`` is the push service's URL for one browser: unique, a browser that logs in
# as another user moves its subscription. Removed when the push service answers 404/410.
push_subscriptions = Table(
    "push_subscriptions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("user_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("endpoint", String(1024), nullable=False, unique=True),
    Column("p256dh", String(128), nullable=False),
    Column("auth", String(64), nullable=False),
    Column("created", BigInteger, nullable=False),
)
