"""The message path: authorize -> store (seq, idempotency) -> publish -> ack, plus
sync, the conversation list and the offline backlog.

The database is the truth. The bus is a doorbell: an envelope lost in an outage only
delays delivery until the client syncs (or, for an old client, reconnects).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import structlog

from imhub.bus.base import Bus, Envelope
from imhub.config import Settings
from imhub.domain.model import Cmd, Draft, Message, group_conv, parse_conv, private_conv
from imhub.gateway.connection import Connection
from imhub.gateway.hub import Hub
from imhub.gateway.wsframe import text_frame
from imhub.protocol.frames import ErrorCode, FrameError, encode_message, message_dict
from imhub.services.batch import BatchWriter
from imhub.services.presence import LocalPresence
from imhub.services.social import SocialService
from imhub.store.messages import MessageStore
from imhub.store.users import UserStore

log = structlog.get_logger("imhub.messaging")

# How often delivered cursors are saved. A crash loses at most this much of them,
# which only means an old client may be shown a few messages twice.
CURSOR_FLUSH_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class SyncPage:
    messages: list[Message]
    after: dict[str, int]
    more: bool
    denied: list[str]


class MessagingService:
    def __init__(
        self,
        settings: Settings,
        store: MessageStore,
        users: UserStore,
        social: SocialService,
        presence: LocalPresence,
        bus: Bus,
        hub: Hub,
    ) -> None:
        self._settings = settings
        self._store = store
        self._users = users
        self._social = social
        self._presence = presence
        self._bus = bus
        self.hub = hub
        self._writer = BatchWriter(store, settings.db_batch_max)
        self._flusher: asyncio.Task[None] | None = None
        # Positive authorization cache: friendships are only ever added; memberships
        # that end are evicted by the membership listener.
        self._friends: set[tuple[int, int]] = set()
        self._members: set[tuple[int, int]] = set()
        social.membership_listeners.append(self.on_membership_change)

    # --- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        await self._bus.start(self.hub.deliver)
        self._writer.start()
        self._flusher = asyncio.create_task(self._flush_cursors_forever(), name="imhub-cursor-flush")

    async def stop(self) -> None:
        await self._writer.stop()
        if self._flusher:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self.flush_cursors()
        await self._bus.close()

    async def _flush_cursors_forever(self) -> None:
        while True:
            await asyncio.sleep(CURSOR_FLUSH_SECONDS)
            try:
                await self.flush_cursors()
            except Exception:
                log.exception("saving delivered cursors failed; will retry")

    async def flush_cursors(self) -> None:
        marks = self.hub.take_delivered()
        if marks:
            await self._store.advance_delivered(marks)

    # --- connections ---------------------------------------------------------------

    async def connect(self, conn: Connection) -> None:
        group_ids = await self._social.group_ids_of(conn.user_id)
        for gid in group_ids:
            self._members.add((gid, conn.user_id))
            self._bus.watch_group(gid)
        if self.hub.add(conn, group_ids):
            self._bus.watch_user(conn.user_id)
        self._presence.connected(conn.user_id)

    async def disconnect(self, conn: Connection) -> None:
        groups = set(self.hub.groups_of(conn.user_id))
        if self.hub.remove(conn):
            self._bus.unwatch_user(conn.user_id)
            for gid in groups:
                if gid not in self.hub.groups:
                    self._bus.unwatch_group(gid)
        self._presence.disconnected(conn.user_id)

    async def on_membership_change(self, group_id: int, user_id: int, joined: bool) -> None:
        if joined:
            await self._store.start_cursor(user_id, group_conv(group_id))
            self._members.add((group_id, user_id))
            if self.hub.join(group_id, user_id):
                self._bus.watch_group(group_id)
        else:
            self._members.discard((group_id, user_id))
            if self.hub.leave(group_id, user_id):
                self._bus.unwatch_group(group_id)

    # --- sending -------------------------------------------------------------------

    async def send(self, draft: Draft, origin: int = 0) -> tuple[Message, bool]:
        """Authorize, store and publish ``draft``; returns ``(message, duplicate)``.

        Raises :class:`FrameError` (not a friend / not a member / unknown target /
        store failure). A duplicate (same cid resent) is not published again.
        """
        await self._authorize(draft)
        try:
            message, duplicate = await self._writer.submit(draft)
        except Exception:
            raise FrameError(ErrorCode.INTERNAL, "message not stored; retry with the same cid", cid=draft.cid) from None
        if not duplicate:
            await self.publish(message, origin)
        return message, duplicate

    async def publish(self, m: Message, origin: int = 0) -> None:
        frame = text_frame(encode_message(m))
        if m.cmd == Cmd.GROUP:
            env = Envelope(users=(), group=m.dstid, frame=frame, conv=m.conv, seq=m.seq, origin=origin,
                           node=self.hub.node_id)
        else:
            env = Envelope(users=(m.dstid, m.userid), group=0, frame=frame, conv=m.conv, seq=m.seq, origin=origin,
                           node=self.hub.node_id)
        try:
            await self._bus.publish(env)
        except Exception:
            # Stored already: recipients get it by sync. Never fail the sender for this.
            log.warning("bus publish failed; recipients will get it on sync", conv=m.conv, seq=m.seq)

    async def _authorize(self, d: Draft) -> None:
        if d.cmd == Cmd.PRIVATE:
            pair = (min(d.userid, d.dstid), max(d.userid, d.dstid))
            if pair in self._friends:
                return
            if await self._social.are_friends(d.userid, d.dstid):
                self._friends.add(pair)
                return
            if await self._users.get(d.dstid) is None:
                raise FrameError(ErrorCode.UNKNOWN_TARGET, f"no user {d.dstid}", cid=d.cid)
            raise FrameError(ErrorCode.NOT_FRIEND, "you can only message friends", cid=d.cid)
        key = (d.dstid, d.userid)
        if key in self._members:
            return
        if await self._social.is_member(d.dstid, d.userid):
            self._members.add(key)
            return
        if await self._social.get_group(d.dstid) is None:
            raise FrameError(ErrorCode.UNKNOWN_TARGET, f"no group {d.dstid}", cid=d.cid)
        raise FrameError(ErrorCode.NOT_MEMBER, "you are not a member of this group", cid=d.cid)

    # --- reading -------------------------------------------------------------------

    async def conversation_ids(self, user_id: int) -> list[str]:
        friends = await self._social.friend_ids(user_id)
        groups = await self._social.group_ids_of(user_id)
        return [private_conv(user_id, f) for f in friends] + [group_conv(g) for g in groups]

    async def _may_read(self, user_id: int, conv: str, groups: set[int]) -> bool:
        ref = parse_conv(conv)
        if ref is None:
            return False
        if ref.cmd == Cmd.PRIVATE:
            return ref.includes_user(user_id)
        return ref.a in groups

    async def sync(self, user_id: int, after: dict[str, int], limit: int) -> SyncPage:
        """Up to ``limit`` messages after the given seq of each conversation, in
        conversation then seq order; ``more`` if any conversation has more."""
        groups = set(await self._social.group_ids_of(user_id))
        out: list[Message] = []
        cursor = dict(after)
        denied: list[str] = []
        more = False
        for conv, seq in after.items():
            if not await self._may_read(user_id, conv, groups):
                denied.append(conv)
                del cursor[conv]
                continue
            room = limit - len(out)
            if room <= 0:
                more = True
                break
            batch = await self._store.after(conv, seq, room + 1)
            if len(batch) > room:
                more = True
                batch = batch[:room]
            out.extend(batch)
            if batch:
                cursor[conv] = batch[-1].seq
        return SyncPage(out, cursor, more, denied)

    async def conversations(self, user_id: int) -> list[dict[str, Any]]:
        """Every conversation of the user: last seq, read seq, unread, last message."""
        convs = await self.conversation_ids(user_id)
        last = await self._store.last_seqs(convs)
        cursors = await self._store.cursors_of(user_id)
        last_msgs = {m.conv: m for m in await self._store.by_conv_seq((c, s) for c, s in last.items() if s)}
        out: list[dict[str, Any]] = []
        for conv in convs:
            ref = parse_conv(conv)
            assert ref is not None
            last_seq = last.get(conv, 0)
            delivered, read = cursors.get(conv, (0, 0))
            lm = last_msgs.get(conv)
            out.append(
                {
                    "conv": conv,
                    "cmd": ref.cmd,
                    "dstid": ref.peer_of(user_id) if ref.cmd == Cmd.PRIVATE else ref.a,
                    "last_seq": last_seq,
                    "read_seq": read,
                    "delivered_seq": delivered,
                    "unread": max(0, last_seq - read),
                    "last": message_dict(lm) if lm else None,
                }
            )
        out.sort(key=lambda c: c["last"]["ts"] if c["last"] else 0, reverse=True)
        return out

    async def backlog(self, user_id: int) -> tuple[list[Message], bool]:
        """What the user missed while offline: messages after the delivered cursor of
        each conversation, oldest first per conversation. ``truncated`` when a
        conversation had more than a sync page (the client should sync for the rest)."""
        await self.flush_cursors()  # what this process delivered must count before we compare
        convs = await self.conversation_ids(user_id)
        last = await self._store.last_seqs(convs)
        cursors = await self._store.cursors_of(user_id)
        page = self._settings.sync_page_size
        out: list[Message] = []
        truncated = False
        for conv, last_seq in last.items():
            delivered = cursors.get(conv, (0, 0))[0]
            if last_seq <= delivered:
                continue
            start = max(delivered, last_seq - page)
            truncated = truncated or start > delivered
            out.extend(await self._store.after(conv, start, page))
        return out, truncated
