"""The message path: authorize -> store (seq, idempotency) -> publish -> ack, plus
sync, the conversation list and the offline backlog.

The database is the truth. The bus is a doorbell: an envelope lost in an outage only
delays delivery until the client syncs (or, for an old client, reconnects).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import structlog

from imhub import metrics
from imhub.bus.base import Bus, Envelope
from imhub.clock import now_ms
from imhub.config import Settings
from imhub.domain.model import Cmd, Draft, Media, Message, group_conv, parse_conv, private_conv
from imhub.domain.ngrams import query_phrases
from imhub.gateway.connection import Connection, flush_now
from imhub.gateway.hub import Hub
from imhub.gateway.sequencer import Sequencer
from imhub.gateway.wsframe import text_frame
from imhub.protocol.frames import (
    ErrorCode,
    FrameError,
    encode,
    encode_ack,
    encode_error,
    encode_message,
    message_dict,
)
from imhub.services.batch import BatchWriter, Committed
from imhub.services.presence import Presence
from imhub.services.social import GroupChange, SocialService
from imhub.store.messages import MessageStore
from imhub.store.users import UserStore

log = structlog.get_logger("imhub.messaging")

# Read receipts are broadcast live to groups up to this size; in larger groups members
# ask for the counts (cmd 26) when they look, instead of N² receipt traffic.
RECEIPT_BROADCAST_MAX_MEMBERS = 200
# Clients hide a typing indicator this long after the last typing event.
TYPING_TTL_MS = 6000

# How long a checked friendship is trusted for sending, and how many are kept. An
# unfriending made on another node takes effect here within this time.
FRIEND_CACHE_SECONDS = 30.0
FRIEND_CACHE_MAX = 100_000


def friend_cache_expiry(now: float) -> float:
    """Spread over the second half of the lifetime: pairs cached together (every friend
    of a user at their handshake) must not all be read again in the same instant."""
    return now + FRIEND_CACHE_SECONDS * random.uniform(0.5, 1.0)

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
        presence: Presence,
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
        # Bus -> sequencer (each conversation back in seq order) -> hub fan-out.
        self.sequencer = Sequencer(hub.deliver)
        self._writer = BatchWriter(store, settings.db_batch_max, self._committed)
        # The last after-commit task: the next one publishes only after it, so
        # messages reach the bus in commit order even when a publish has to wait.
        self._publishing: asyncio.Task[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        # Positive authorization caches. Memberships that end are evicted on every
        # node by the membership envelope, friendships by the unfriended one.
        # pair -> monotonic time until which the friendship is trusted without asking
        # the database (bounded too: should an unfriended envelope be lost in a bus
        # outage, the pair is asked about again within FRIEND_CACHE_SECONDS).
        self._friends: dict[tuple[int, int], float] = {}
        self._members: set[tuple[int, int]] = set()
        self._receipts: list[tuple[int, bytes]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        social.membership_listeners.append(self.on_membership_change)
        social.group_change_listeners.append(self.on_group_change)
        social.friendship_listeners.append(self.on_friendship_change)
        hub.on_delivered = self.delivered_to
        hub.on_membership = self.apply_membership
        hub.on_unfriended = self.forget_friendship

    # --- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        await self._bus.start(self.sequencer.submit, self._bus_reconnected)
        self._writer.start()
        self._flusher = asyncio.create_task(self._flush_cursors_forever(), name="imhub-cursor-flush")

    async def stop(self) -> None:
        await self._writer.stop()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
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

    async def connect(self, conn: Connection, group_ids: list[int], friend_ids: list[int]) -> None:
        """Register ``conn``, with the user's groups and friends (the handshake read
        them together with the token: imhub.store.handshake)."""
        for gid in group_ids:
            self._members.add((gid, conn.user_id))
            self._bus.watch_group(gid)
        # The handshake read the friends: their first messages need no friendship query
        # (which made the first second of a chat burst ~300 ms slow: one read per pair).
        uid = conn.user_id
        self._trust_friendships([(min(uid, f), max(uid, f)) for f in friend_ids], time.monotonic())
        if self.hub.add(conn, group_ids):
            self._bus.watch_user(conn.user_id)
        if await self._presence.connected(conn.user_id):
            await self._announce_presence(conn.user_id, online=True, last_seen=now_ms(), friends=friend_ids)

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
        self.spawn(self._went_offline(conn.user_id, now_ms()))

    async def _went_offline(self, user_id: int, when: int) -> None:
        try:
            if not await self._presence.disconnected(user_id):
                return
            await self._users.touch_last_seen(user_id, when)
            await self._announce_presence(user_id, online=False, last_seen=when)
        except Exception:
            log.exception("presence update failed", user=user_id)

    def _bus_reconnected(self) -> None:
        """The bus was down: whatever it carried meanwhile is lost, so every local
        client syncs (the database has it all)."""
        self.hub.broadcast(text_frame(encode(Cmd.RESYNC, reason="bus_reconnected")))

    def pending_work(self) -> int:
        """Background work still running (messages waiting for their commit, acks and
        fan-outs, presence and receipts): a draining worker waits for this to reach 0."""
        return len(self._tasks) + self._writer.pending

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a task this service keeps (and awaits at stop)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def revoke_sessions(self, user_id: int, which: str) -> None:
        """Close the user's sockets opened with token hash ``which`` (``*``: all), on
        every process. Called when tokens are revoked (logout, password change, ban)."""
        env = Envelope(users=(user_id,), group=0, frame=b"", node=self.hub.node_id, revoke=which)
        try:
            await self._bus.publish(env)
        except Exception:
            log.warning("bus publish failed for a revocation; closing local sockets only", user=user_id)
            self.hub.deliver(env)

    async def _announce_presence(
        self, user_id: int, *, online: bool, last_seen: int, friends: list[int] | None = None
    ) -> None:
        if friends is None:
            friends = await self._social.friend_ids(user_id)
        if friends:
            frame = encode(Cmd.PRESENCE, userid=user_id, online=online, last_seen=last_seen)
            await self._publish_event(tuple(friends), 0, frame)

    async def _publish_event(self, users: tuple[int, ...], group: int, payload: bytes, origin: int = 0) -> None:
        """Publish a non-message event (receipt, typing, presence, recall)."""
        env = Envelope(users=users, group=group, frame=text_frame(payload), origin=origin, node=self.hub.node_id)
        try:
            await self._bus.publish(env)
        except Exception:
            log.warning("bus publish failed for an event", users=len(users), group=group)

    async def on_membership_change(self, group_id: int, user_id: int, joined: bool) -> None:
        """A membership change committed (on this process): place a joiner's cursors,
        then tell every process with the user's sockets (this one included) to route
        the group to them, or stop."""
        if joined:
            await self._store.start_cursor(user_id, group_conv(group_id))
        signed = group_id if joined else -group_id
        env = Envelope(users=(user_id,), group=0, frame=b"", node=self.hub.node_id, membership=signed)
        try:
            await self._bus.publish(env)
        except Exception:
            log.warning("bus publish failed for a membership change; applying locally", user=user_id)
            self.apply_membership((user_id,), signed)

    def apply_membership(self, users: tuple[int, ...], signed_group: int) -> None:
        """Hub callback: start (positive id) or stop routing a group to these users."""
        group_id = abs(signed_group)
        for user_id in users:
            if signed_group > 0:
                self._members.add((group_id, user_id))
                if self.hub.join(group_id, user_id):
                    self._bus.watch_group(group_id)
            else:
                self._members.discard((group_id, user_id))
                if self.hub.leave(group_id, user_id):
                    self._bus.unwatch_group(group_id)
                    self.sequencer.forget(group_conv(group_id))

    async def on_group_change(self, change: GroupChange) -> None:
        """Group events are messages in the group's stream (media 10), so every client
        sees the same history after sync: content = kind, amount = subject, memo = name."""
        draft = Draft(
            userid=change.actor, cmd=Cmd.GROUP, dstid=change.group_id, media=Media.EVENT,
            content=change.kind, amount=change.subject, memo=change.name,
        )
        message, _ = await self._writer.submit(draft)
        await self.publish(message)

    async def on_friendship_change(self, a: int, b: int, added: bool) -> None:
        """An unfriending committed (on this process): every process holding a socket
        of either user (this one included) forgets the friendship."""
        if added:
            return
        conv = private_conv(a, b)
        env = Envelope(users=(a, b), group=0, frame=b"", conv=conv, node=self.hub.node_id, unfriended=True)
        try:
            await self._bus.publish(env)
        except Exception:
            log.warning("bus publish failed for an unfriending; applying locally", users=(a, b))
            self.forget_friendship(conv)

    def _trust_friendships(self, pairs: list[tuple[int, int]], now: float) -> None:
        """Cache these (low id, high id) pairs as friends; the cache is bounded by
        starting over when full."""
        if len(self._friends) + len(pairs) > FRIEND_CACHE_MAX:
            self._friends.clear()
        for pair in pairs:
            self._friends[pair] = friend_cache_expiry(now)

    def forget_friendship(self, conv: str) -> None:
        """Hub callback: the two users of this 1:1 conversation are no longer friends."""
        ref = parse_conv(conv)
        if ref is not None and ref.cmd == Cmd.PRIVATE:
            self._friends.pop((min(ref.a, ref.b), max(ref.a, ref.b)), None)

    # --- sending -------------------------------------------------------------------

    async def send(self, draft: Draft, origin: int = 0) -> tuple[Message, bool]:
        """Authorize, store and publish ``draft``; returns ``(message, duplicate)``.

        Raises :class:`FrameError` (not a friend / not a member / unknown target /
        store failure). A duplicate (same cid resent) is not published again.
        """
        message, duplicate = await self.committed(await self.submit(draft), draft)
        if not duplicate:
            await self.publish(message, origin)
        return message, duplicate

    async def send_from(self, conn: Connection, draft: Draft) -> None:
        """The chat path: authorize ``draft`` and queue it for the next commit without
        waiting for it, so the socket goes on reading (a burst from one client is
        committed in one batch). After the commit the ack — or error ``internal`` —
        is pushed to ``conn``, then the message is published. A client's messages are
        committed, acked and published in the order they came.

        Raises :class:`FrameError` if the sender may not send there (nothing queued)."""
        await self._authorize(draft)
        self._writer.enqueue_to(draft, (conn, time.perf_counter()))

    def _committed(self, done: Committed) -> None:
        """Writer callback, once per commit: ack and publish, in one task per batch."""
        previous = self._publishing
        task = asyncio.get_running_loop().create_task(self._after_commit(done, previous))
        self._publishing = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _after_commit(self, done: Committed, previous: asyncio.Task[None] | None) -> None:
        """Acks first (pushed now; written together with whatever else these sockets get
        in this loop turn: with the in-process bus that is the 1:1 deliveries and their
        'delivered' receipts, so the sender gets ack + receipt in one write), then the
        1:1 messages and the receipts they caused, a flush, then group messages (whose
        fan-out may be large: nothing above waits behind it)."""
        now = time.perf_counter()
        waited: list[float] = []
        private: list[tuple[Message, int]] = []
        groups: list[tuple[Message, int]] = []
        for draft, (conn, started), outcome in done:
            if isinstance(outcome, BaseException):
                err = FrameError(ErrorCode.INTERNAL, "message not stored; retry with the same cid", cid=draft.cid)
                conn.push(text_frame(encode_error(err)))
                continue
            message, duplicate = outcome
            conn.push(text_frame(encode_ack(message, duplicate)))
            waited.append(now - started)
            if not duplicate:
                (groups if message.cmd == Cmd.GROUP else private).append((message, conn.id))
        metrics.observe_many(metrics.send_ack_seconds, waited)
        if previous is not None and not previous.done():
            # Publish in commit order (only a bus that can block, e.g. Redis, gets here).
            await asyncio.wait([previous])
        for message, origin in private:
            await self.publish(message, origin)
        if self._receipts:
            await self._publish_receipts(self._take_receipts())
        if groups:
            flush_now()
            for message, origin in groups:
                await self.publish(message, origin)

    async def submit(self, draft: Draft) -> asyncio.Future[tuple[Message, bool]]:
        """Authorize ``draft`` and queue it for the next commit, without waiting for
        it: a client's messages are pipelined (and batched) in the order they came.
        Raises :class:`FrameError` if the sender may not send there."""
        await self._authorize(draft)
        return self._writer.enqueue(draft)

    @staticmethod
    async def committed(future: asyncio.Future[tuple[Message, bool]], draft: Draft) -> tuple[Message, bool]:
        """Wait for a submitted draft's commit: ``(message, duplicate)``, or
        :class:`FrameError` ``internal`` if it could not be stored."""
        try:
            return await future
        except Exception:
            raise FrameError(ErrorCode.INTERNAL, "message not stored; retry with the same cid", cid=draft.cid) from None

    async def publish(self, m: Message, origin: int = 0) -> None:
        frame = text_frame(encode_message(m))
        if m.cmd == Cmd.GROUP:
            env = Envelope(users=(), group=m.dstid, frame=frame, conv=m.conv, seq=m.seq, origin=origin,
                           node=self.hub.node_id)
        else:
            env = Envelope(users=(m.dstid, m.userid), group=0, frame=frame, conv=m.conv, seq=m.seq, origin=origin,
                           node=self.hub.node_id, sender=m.userid)
        try:
            await self._bus.publish(env)
        except Exception:
            # Stored already: recipients get it by sync. Never fail the sender for this.
            metrics.bus_publish_failures.inc()
            log.warning("bus publish failed; recipients will get it on sync", conv=m.conv, seq=m.seq)

    async def _authorize(self, d: Draft) -> None:
        if d.cmd == Cmd.PRIVATE:
            pair = (min(d.userid, d.dstid), max(d.userid, d.dstid))
            # Not the loop's clock: asyncio.get_running_loop() costs a getpid() syscall.
            now = time.monotonic()
            if self._friends.get(pair, 0.0) > now:
                return
            if await self._social.are_friends(d.userid, d.dstid):
                self._trust_friendships([pair], now)
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

    # --- conversation features -----------------------------------------------------

    async def _audience(self, user_id: int, conv: str) -> tuple[tuple[int, ...], int]:
        """Who sees events of ``conv`` (users, group), after checking ``user_id`` is in it."""
        ref = parse_conv(conv)
        if ref is not None and ref.cmd == Cmd.PRIVATE and ref.includes_user(user_id):
            return (ref.a, ref.b), 0
        if ref is not None and ref.cmd == Cmd.GROUP:
            if (ref.a, user_id) in self._members or await self._social.is_member(ref.a, user_id):
                return (), ref.a
        raise FrameError(ErrorCode.NOT_IN_CONVERSATION, f"you are not in conversation {conv}")

    async def history(self, user_id: int, conv: str, before: int, limit: int) -> tuple[list[Message], bool]:
        """Up to ``limit`` messages before seq ``before``, ascending; ``more`` if older exist."""
        await self._audience(user_id, conv)
        msgs = await self._store.before(conv, before, limit + 1)
        more = len(msgs) > limit
        return (msgs[1:] if more else msgs), more

    async def mark_read(self, user_id: int, conv: str, seq: int, origin: int = 0) -> tuple[int, int]:
        """Move the user's read marker; tells their other devices and the other side."""
        users, group = await self._audience(user_id, conv)
        last = (await self._store.last_seqs([conv])).get(conv, 0)
        if seq > last:
            raise FrameError(ErrorCode.SEQ_BEYOND_END, f"seq {seq} is beyond the last message ({last})")
        delivered, read = await self._store.advance_read(user_id, conv, seq)
        frame = encode(Cmd.RECEIPT, conv=conv, userid=user_id, delivered_seq=delivered, read_seq=read)
        if group and len(await self._social.member_ids(group)) > RECEIPT_BROADCAST_MAX_MEMBERS:
            users, group = (user_id,), 0
        await self._publish_event(users, group, frame, origin)
        return delivered, read

    def delivered_to(self, recipient: int, sender: int, conv: str, seq: int) -> None:
        """Hub callback: a 1:1 message reached one of the recipient's sockets; the
        sender's devices show 'delivered'. Published on the next loop turn, in bulk."""
        frame = encode(Cmd.RECEIPT, conv=conv, userid=recipient, delivered_seq=seq)
        self._receipts.append((sender, frame))
        if len(self._receipts) == 1:
            asyncio.get_running_loop().call_soon(self._flush_receipts)

    def _take_receipts(self) -> list[tuple[int, bytes]]:
        receipts, self._receipts = self._receipts, []
        return receipts

    def _flush_receipts(self) -> None:
        # The after-commit task usually published them already, in the same loop turn.
        if self._receipts:
            self.spawn(self._publish_receipts(self._take_receipts()))

    async def _publish_receipts(self, receipts: list[tuple[int, bytes]]) -> None:
        for sender, frame in receipts:
            await self._publish_event((sender,), 0, frame)

    async def receipts(self, user_id: int, conv: str) -> list[dict[str, int]]:
        """Every member's delivered/read marker in ``conv`` (for 'read by N')."""
        users, group = await self._audience(user_id, conv)
        members = await self._social.member_ids(group) if group else list(users)
        cursors = await self._store.cursors_in(conv)
        return [
            {"userid": u, "delivered_seq": cursors.get(u, (0, 0))[0], "read_seq": cursors.get(u, (0, 0))[1]}
            for u in members
        ]

    async def typing(self, user_id: int, conv: str, origin: int = 0) -> None:
        users, group = await self._audience(user_id, conv)
        frame = encode(Cmd.TYPING_EVENT, conv=conv, userid=user_id, ttl=TYPING_TTL_MS)
        await self._publish_event(users, group, frame, origin)

    async def recall(self, user_id: int, message_id: int, origin: int = 0) -> Message:
        """Recall one's own message within the window: content erased everywhere."""
        m = await self._store.get(message_id)
        if m is None:
            raise FrameError(ErrorCode.UNKNOWN_MESSAGE, f"no message {message_id}")
        users, group = await self._audience(user_id, m.conv)
        if m.userid != user_id:
            raise FrameError(ErrorCode.NOT_YOURS, "you can only recall your own messages")
        if m.recalled:
            return m
        if now_ms() - m.ts > self._settings.recall_window_seconds * 1000:
            raise FrameError(
                ErrorCode.RECALL_EXPIRED, f"messages can be recalled for {self._settings.recall_window_seconds} s"
            )
        recalled = await self._store.recall(message_id) or m
        frame = encode(Cmd.RECALLED, conv=m.conv, id=m.id, seq=m.seq, userid=user_id)
        await self._publish_event(users, group, frame, origin)
        return recalled

    async def search(self, user_id: int, q: str, before: int, limit: int) -> tuple[list[Message], bool]:
        """Messages matching ``q`` in the user's conversations, newest first."""
        phrases = query_phrases(q)
        if not phrases:
            raise FrameError(ErrorCode.BAD_QUERY, "the query has no searchable words")
        convs = await self.conversation_ids(user_id)
        hits = await self._store.search(convs, phrases, before, limit + 1)
        return hits[:limit], len(hits) > limit
