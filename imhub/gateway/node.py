"""This process as a gateway node: the connection side of messaging.

It owns the hub (who is connected here), the sequencer (deliveries back in seq order)
and the bus subscription: deliveries go sequencer -> hub -> sockets, controls change
the routing and the authorization caches, an outage ends with every socket told to
sync. It registers and unregisters connections (bus interest, presence announcements,
the delivered cursors), sends 'delivered' receipts for 1:1 messages that reached a
socket here, and pushes the offline backlog to old clients.

The message path reads one way: socket -> session -> services -> store -> bus -> this
node -> sockets. Services never call into the gateway; they publish.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from imhub.bus.base import Bus, Control, Delivery, Membership, Missed, Revoke, Unfriended
from imhub.bus.presence import Presence
from imhub.clock import now_ms
from imhub.domain.model import Cmd, group_conv
from imhub.gateway.connection import Connection
from imhub.gateway.hub import Hub
from imhub.gateway.sequencer import Sequencer
from imhub.protocol.frames import encode, encode_message
from imhub.protocol.seed import seed_message_frame
from imhub.protocol.wsframe import text_frame
from imhub.services.authz import Authorizer
from imhub.services.conversations import ConversationService
from imhub.services.messaging import MessagingService
from imhub.services.social import SocialService
from imhub.store.handshake import Opening
from imhub.store.messages import MessageStore
from imhub.store.users import UserStore

log = structlog.get_logger("imhub.gateway")

# How often delivered cursors (and last-seen times) are saved. A crash loses at most
# this much of them, which only means an old client may be shown a few messages twice
# (and a user's "last seen" may be a second early).
CURSOR_FLUSH_SECONDS = 1.0
# Membership changes remembered (by time) to recognise late copies from Redis shards.
MEMBERSHIP_TS_MAX = 100_000
# How often a catch-up looks whether the socket has room for its next page.
BACKLOG_DRAIN_POLL_SECONDS = 0.005


class GatewayNode:
    def __init__(
        self,
        node_id: str,
        bus: Bus,
        presence: Presence,
        authz: Authorizer,
        social: SocialService,
        users: UserStore,
        store: MessageStore,
        messaging: MessagingService,
        conversations: ConversationService,
        *,
        page_size: int = 200,
        seed_group_events: bool = False,
    ) -> None:
        self.node_id = node_id
        self.hub = Hub(node_id, seed_group_events)
        self._page_size = page_size
        # One process: deliveries come in commit order, no baseline lookups needed (they
        # cost every conversation's first message a store read: chat p99 at 5,000/s went
        # from 15 to 135 ms, all of it in the first second).
        self.sequencer = Sequencer(self._fan_out, None if bus.in_process else self._settled_seqs)
        self._bus = bus
        self._presence = presence
        self._authz = authz
        self._social = social
        self._users = users
        self._store = store
        self._messaging = messaging
        self._conversations = conversations
        self._receipts: list[tuple[int, bytes]] = []  # (sender, frame), published next turn
        self._tasks: set[asyncio.Task[None]] = set()
        self._flusher: asyncio.Task[None] | None = None
        self._cursor_lock = asyncio.Lock()
        # user -> when they went offline (ms), saved with the cursors: one UPDATE for
        # all of them, not one write transaction per disconnect (a reconnect storm
        # disconnects every user at once).
        self._last_seen: dict[int, int] = {}
        # Told when a user comes online (first connection anywhere) or goes offline
        # (last one): (user id, online, when in ms). Must not block (webhooks queue it).
        self.presence_listeners: list[Callable[[int, bool, int], None]] = []
        # (group, user) -> ts of the last membership change applied
        self._membership_ts: dict[tuple[int, int], int] = {}

    # --- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        await self._bus.start(self.sequencer.submit, self.on_control, self._bus_reconnected)
        self._flusher = asyncio.create_task(self._flush_cursors_forever(), name="imhub-cursor-flush")

    async def stop(self) -> None:
        """After the messaging service stopped: finish the node's own work, save the
        delivered cursors, leave the bus."""
        if self._receipts:
            await self._publish_receipts()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._flusher:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self.flush_cursors()
        await self.flush_last_seen()
        await self._bus.close()

    def users_here(self) -> list[int]:
        return list(self.hub.users)

    def counts(self) -> dict[str, int]:
        hub = self.hub
        return {"connections_here": hub.connection_count(), "users_here": len(hub.users),
                "groups_here": len(hub.groups)}

    def pending_work(self) -> int:
        """Presence updates and receipts still running."""
        return len(self._tasks)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush_cursors_forever(self) -> None:
        while True:
            await asyncio.sleep(CURSOR_FLUSH_SECONDS)
            try:
                await self.flush_cursors()
            except Exception:
                log.exception("saving delivered cursors failed; will retry")
            try:
                await self.flush_last_seen()
            except Exception:
                log.exception("saving last-seen times failed; will retry")

    async def flush_last_seen(self) -> None:
        """Save the last-seen times of the users who went offline since the last save."""
        seen, self._last_seen = self._last_seen, {}
        if not seen:
            return
        try:
            await self._users.touch_last_seen(seen)
        except BaseException:
            for uid, when in seen.items():  # retried with the next save
                self._last_seen.setdefault(uid, when)
            raise

    async def flush_cursors(self) -> None:
        """Save the delivered marks. One save at a time: a catch-up that starts while
        another save is in flight must read the cursors after it (taking no marks, it
        would read the old cursor and push again what the last socket already got)."""
        async with self._cursor_lock:
            marks = self.hub.take_delivered()
            if marks:
                await self._store.advance_delivered(marks)

    # --- connections ---------------------------------------------------------------

    async def connect(self, conn: Connection, opening: Opening) -> None:
        """Register ``conn``, with the user's groups and friends (the handshake read
        them together with the token: imhub.store.handshake)."""
        uid = conn.user_id
        for gid in opening.group_ids:
            self._authz.member_joined(gid, uid)
            self._bus.watch_group(gid)
        self._authz.trust_friends(uid, opening.friend_ids)
        if self.hub.add(conn, opening.group_ids):
            self._bus.watch_user(uid)
        if await self._presence.connected(uid):
            await self._announce_presence(uid, online=True, last_seen=now_ms(), friends=opening.friend_ids)

    def disconnect(self, conn: Connection) -> None:
        """Unregister ``conn``. Synchronous on purpose: it runs in the socket handler's
        ``finally``, which aiohttp may be cancelling; the follow-up I/O (last seen,
        presence to friends) runs as a task of its own."""
        groups = set(self.hub.groups_of(conn.user_id))
        if self.hub.remove(conn):
            self._bus.unwatch_user(conn.user_id)
            for gid in groups:
                if gid not in self.hub.groups:
                    self._bus.unwatch_group(gid)
                    self.sequencer.forget(group_conv(gid))
        self._spawn(self._went_offline(conn.user_id, now_ms()))

    async def _went_offline(self, user_id: int, when: int) -> None:
        try:
            if not await self._presence.disconnected(user_id):
                return
            # Announced first: waiting for the write let a reconnect's 'online' overtake
            # it. Clients drop a presence event older (by last_seen) than one applied.
            await self._announce_presence(user_id, online=False, last_seen=when)
            self._last_seen[user_id] = when  # saved by the next flush
        except Exception:
            log.exception("presence update failed", user=user_id)

    async def _announce_presence(
        self, user_id: int, *, online: bool, last_seen: int, friends: list[int] | None = None
    ) -> None:
        for listener in self.presence_listeners:
            try:
                listener(user_id, online, last_seen)
            except Exception:
                log.exception("presence listener failed", user=user_id)
        if friends is None:
            friends = await self._social.friend_ids(user_id)
        if friends:
            frame = encode(Cmd.PRESENCE, userid=user_id, online=online, last_seen=last_seen)
            await self._messaging.publish_event(tuple(friends), 0, frame)

    async def push_backlog(self, conn: Connection) -> None:
        """Autosync: push every message the user missed, oldest first per conversation,
        page by page (memory stays bounded by a page and the socket's buffer), before
        anything live. The connection holds live messages meanwhile; at the end it
        writes those the backlog did not contain. The delivered cursor (and a 1:1
        sender's 'delivered' receipt) moves only for what was written to the socket."""
        conn.catching_up = True
        try:
            while not conn.closed:
                await self.flush_cursors()  # what this process delivered must count first
                for conv, after in await self._conversations.backlog_plan(conn.user_id):
                    await self._push_conversation(conn, conv, after)
                if not conn.held_overflow:
                    break
                conn.restart_catch_up()  # the held frames are stored: read them too
        except Exception:
            log.exception("backlog failed", user=conn.user_id)
            if not conn.seed:
                conn.push(text_frame(encode(Cmd.RESYNC, reason="backlog_failed")))
        for conv, seq, sender in conn.finish_catch_up():
            self.hub.note_delivered(conn.user_id, conv, seq)
            if sender and sender != conn.user_id:
                self._receipt(conn.user_id, sender, conv, seq)

    async def _push_conversation(self, conn: Connection, conv: str, after: int) -> None:
        page_size = self._page_size
        while not conn.closed:
            page = await self._conversations.backlog_page(conn.user_id, conv, after, page_size)
            if not page:
                return
            quotes = await self._conversations.quotes(page)
            if conn.seed:
                events = self.hub.seed_group_events
                frames = [
                    f for m in page if (f := seed_message_frame(m, events, quotes.get(m.reply_to))) is not None
                ]
            else:
                frames = [text_frame(encode_message(m, quotes.get(m.reply_to))) for m in page]
            after = page[-1].seq
            conn.write_backlog(frames, conv, after)
            if conn.closed:
                return
            self.hub.note_delivered(conn.user_id, conv, after)
            for m in page:
                if m.cmd == Cmd.PRIVATE and m.userid != conn.user_id:
                    self._receipt(conn.user_id, m.userid, conv, m.seq)
            if len(page) < page_size:
                return
            # The transport has no awaitable drain for us; its buffer size is all we see.
            while not conn.backlog_room() and not conn.closed:  # noqa: ASYNC110
                await asyncio.sleep(BACKLOG_DRAIN_POLL_SECONDS)

    # --- from the bus --------------------------------------------------------------

    async def _settled_seqs(self, wanted: list[tuple[str, int]]) -> dict[str, int]:
        """The sequencer's baselines for conversations it sees first."""
        return await self._store.settled_seqs(wanted)

    def _fan_out(self, d: Delivery) -> None:
        """Sequencer output: to the sockets; 1:1 messages that reached their recipient
        here send the sender a 'delivered' receipt."""
        for recipient in self.hub.deliver(d):
            self._receipt(recipient, d.sender, d.conv, d.seq)

    def _receipt(self, recipient: int, sender: int, conv: str, seq: int) -> None:
        """Tell the sender's devices that ``recipient`` got ``seq`` (published in bulk
        on the next loop turn)."""
        frame = encode(Cmd.RECEIPT, conv=conv, userid=recipient, delivered_seq=seq)
        self._receipts.append((sender, frame))
        if len(self._receipts) == 1:
            asyncio.get_running_loop().call_soon(self._flush_receipts)

    def _flush_receipts(self) -> None:
        if self._receipts:
            self._spawn(self._publish_receipts())

    async def _publish_receipts(self) -> None:
        receipts, self._receipts = self._receipts, []
        for sender, frame in receipts:
            await self._messaging.publish_event((sender,), 0, frame)

    def on_control(self, control: Control) -> None:
        if isinstance(control, Revoke):
            self.hub.revoke(control)
        elif isinstance(control, Membership):
            self._apply_membership(control)
        elif isinstance(control, Unfriended):
            self._authz.forget_friendship(control.a, control.b)

    def _apply_membership(self, m: Membership) -> None:
        """Start or stop routing a group to a user connected here. A change older than
        the last one applied for the user and group is a late copy (Redis shards) and
        changes nothing."""
        if m.ts:
            seen = self._membership_ts
            key = (m.group, m.user)
            if m.ts < seen.get(key, 0):
                return
            if len(seen) >= MEMBERSHIP_TS_MAX and key not in seen:
                seen.clear()  # bounded; a late copy is late by a shard outage, not days
            seen[key] = m.ts
        if m.joined:
            self._authz.member_joined(m.group, m.user)
            if self.hub.join(m.group, m.user):
                self._bus.watch_group(m.group)
        else:
            self._authz.member_left(m.group, m.user)
            if self.hub.leave(m.group, m.user):
                self._bus.unwatch_group(m.group)
                self.sequencer.forget(group_conv(m.group))

    def _bus_reconnected(self, missed: Missed | None) -> None:
        """The bus (or, with several Redis shards, one shard: ``missed`` names its users
        and groups) was down: whatever it carried meanwhile is lost, so the local
        clients it carried sync (the database has it all); seed clients cannot, so they
        are caught up again from their delivered cursors. A lost leave or unfriending
        may concern anyone (they travel on every shard's ``all`` channel), so every
        cached authorization is read again."""
        self._authz.forget_all()
        users: set[int] | None = None
        if missed is not None:
            users = set(missed.users)
            for gid in missed.groups:
                users.update(self.hub.groups.get(gid, ()))
        for conn in self.hub.broadcast(text_frame(encode(Cmd.RESYNC, reason="bus_reconnected")), users):
            if not conn.catching_up:
                conn.catching_up = True  # hold live frames from now on
                self._spawn(self.push_backlog(conn))
