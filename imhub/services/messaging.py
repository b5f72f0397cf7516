"""The write side of messaging: authorize -> store (seq, idempotency) -> publish, and
the conversation events (read markers, typing, recall, group events) and controls
(revocations, memberships, unfriendings) that go out on the bus.

The database is the truth. The bus is a doorbell: a delivery lost in an outage only
delays it until the client syncs (or, for an old client, reconnects). Whoever submits
a message learns its outcome through an :class:`AckSink`; this module never touches a
socket.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import structlog

from imhub import metrics
from imhub.bus.base import KICK, Bus, BusMessage, Delivery, Membership, Revoke, Unfriended
from imhub.clock import now_ms
from imhub.config import Settings
from imhub.domain.model import Cmd, Draft, Media, Message, group_conv
from imhub.errors import ErrorCode, Refused
from imhub.protocol.frames import encode, encode_message
from imhub.protocol.wsframe import text_frame
from imhub.services.authz import Authorizer
from imhub.services.batch import BatchWriter, Committed, not_stored_error
from imhub.services.social import GroupChange, SocialService
from imhub.store.messages import MessageStore

log = structlog.get_logger("imhub.messaging")

# Read receipts are broadcast live to groups up to this size; in larger groups members
# ask for the counts (cmd 26) when they look, instead of N² receipt traffic.
RECEIPT_BROADCAST_MAX_MEMBERS = 200
# Clients hide a typing indicator this long after the last typing event.
TYPING_TTL_MS = 6000


class AckSink(Protocol):
    """Where a submitted message's outcome goes (a client connection). ``id`` is the
    origin of its deliveries: that connection gets the ack instead of a copy."""

    @property
    def id(self) -> int: ...

    def acked(self, message: Message, duplicate: bool) -> None: ...

    def failed(self, error: Refused) -> None: ...


class BeforeSend(Protocol):
    """A check every message sent on a socket passes before it is queued (the
    before-send webhook): returns the draft, rewritten or not, or raises Refused."""

    async def check(self, draft: Draft) -> Draft: ...


class MessagingService:
    def __init__(
        self,
        settings: Settings,
        store: MessageStore,
        social: SocialService,
        authz: Authorizer,
        bus: Bus,
        node_id: str,
        before_send: BeforeSend | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._social = social
        self._authz = authz
        self._bus = bus
        self._node = node_id
        self._writer = BatchWriter(store, settings.db_batch_max, self._committed)
        self._tasks: set[asyncio.Task[None]] = set()
        self._before_send = before_send
        # Told of every message once stored (not of duplicates), and of every recall,
        # synchronously and in commit order: they must not block (webhooks queue them).
        self.stored_listeners: list[Callable[[Message], None]] = []
        self.recall_listeners: list[Callable[[Message], None]] = []

    # --- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        self._writer.start()

    async def stop(self) -> None:
        """Commit what was submitted, then wait for its acks and publishes."""
        await self._writer.stop()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def pending_work(self) -> int:
        """Messages waiting for their commit, and acks, publishes and events still
        running: a draining worker waits for this to reach 0."""
        return len(self._tasks) + self._writer.pending

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a task this service keeps (and awaits at stop)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- sending -------------------------------------------------------------------

    async def send(self, sink: AckSink, draft: Draft) -> None:
        """Authorize ``draft`` and queue it for the next commit without waiting for it,
        so the socket goes on reading (a burst from one client is committed in one
        batch). After the commit ``sink`` learns the outcome, then the message is
        published. A client's messages are committed, acked and published in the
        order they came.

        Raises :class:`Refused` if the sender may not send there (nothing queued)."""
        await self._authz.may_send(draft)
        if self._before_send is not None:
            draft = await self._before_send.check(draft)
        self._writer.enqueue_to(draft, (sink, time.perf_counter()))

    async def store(self, draft: Draft) -> Message:
        """Store and publish ``draft`` (no authorization: for the server's own messages,
        such as group events and admin notices)."""
        message, _ = await self.store_once(draft)
        return message

    async def store_once(self, draft: Draft) -> tuple[Message, bool]:
        """:meth:`store`, also saying whether ``draft``'s ``cid`` was stored already
        (then nothing is published again)."""
        message, duplicate = await self._writer.submit(draft)
        if not duplicate:
            await self.publish(message)
        return message, duplicate

    def _committed(self, done: Committed) -> None:
        """Writer callback, once per commit: ack and publish, in one task per batch.
        Batches publish in commit order: no publish waits for the bus (a Redis bus
        queues what it cannot send yet), so each task runs through in its turn."""
        self.spawn(self._after_commit(done))

    async def _after_commit(self, done: Committed) -> None:
        """Acks first (their sockets write them at the end of this loop turn, together
        with whatever else they get in it: with the in-process bus, the 1:1 deliveries),
        then the 1:1 messages, then — one loop turn later, so the acks are written
        before it — the group messages, whose fan-out may be large."""
        now = time.perf_counter()
        waited: list[float] = []
        private: list[tuple[Message, int]] = []
        groups: list[tuple[Message, int]] = []
        for draft, (sink, started), outcome in done:
            if isinstance(outcome, BaseException):
                sink.failed(not_stored_error(outcome, draft.cid))
                continue
            message, duplicate = outcome
            sink.acked(message, duplicate)
            waited.append(now - started)
            if not duplicate:
                (groups if message.cmd == Cmd.GROUP else private).append((message, sink.id))
        metrics.observe_many(metrics.send_ack_seconds, waited)
        for message, origin in private:
            await self.publish(message, origin)
        if groups:
            await asyncio.sleep(0)  # let the sockets write the acks first
            for message, origin in groups:
                await self.publish(message, origin)

    async def publish(self, m: Message, origin: int = 0) -> None:
        for listener in self.stored_listeners:
            _tell(listener, m)
        frame = text_frame(encode_message(m))
        if m.cmd == Cmd.GROUP:
            delivery = Delivery(frame, group=m.dstid, conv=m.conv, seq=m.seq, origin=origin, node=self._node, ts=m.ts)
        else:
            delivery = Delivery(frame, (m.dstid, m.userid), 0, m.conv, m.seq, origin, self._node, m.userid, m.ts)
        try:
            await self._bus.publish(delivery)
        except Exception:
            # Stored already: recipients get it by sync. Never fail the sender for this.
            metrics.bus_publish_failures.inc()
            log.warning("bus publish failed; recipients will get it on sync", conv=m.conv, seq=m.seq)

    # --- events and controls -------------------------------------------------------

    async def publish_event(self, users: tuple[int, ...], group: int, payload: bytes, origin: int = 0) -> None:
        """Publish a non-message event (receipt, typing, presence, recall)."""
        try:
            await self._bus.publish(Delivery(text_frame(payload), users, group, origin=origin, node=self._node))
        except Exception:
            log.warning("bus publish failed for an event", users=len(users), group=group)

    async def on_social_event(self, users: tuple[int, ...], cmd: int, body: dict[str, Any]) -> None:
        """A friend-request or group-request event (cmd 41/42) for these users' sockets."""
        await self.publish_event(users, 0, encode(Cmd(cmd), **body))

    async def _control(self, control: BusMessage, what: str) -> None:
        """Publish a control; if the bus fails, this process still applies it (the bus
        hands every message to the local handlers before it can fail)."""
        try:
            await self._bus.publish(control)
        except Exception:
            log.warning("bus publish failed for a control; applied on this process only", control=what)

    async def revoke_sessions(self, user_id: int, which: str) -> None:
        """Close the user's sockets opened with token hash ``which`` (``*``: all), on
        every process. Called when tokens are revoked (logout, password change, ban)."""
        await self._control(Revoke((user_id,), which), "revoke")

    async def kick(self, user_id: int) -> None:
        """Close the user's sockets on every process (4002); no token is revoked."""
        await self._control(Revoke((user_id,), KICK), "kick")

    async def on_membership_change(self, group_id: int, user_id: int, joined: bool) -> None:
        """A membership change committed (on this process): place a joiner's cursors,
        then tell every process with the user's sockets (this one included) to route
        the group to them, or stop."""
        if joined:
            await self._store.start_cursor(user_id, group_conv(group_id))
        await self._control(Membership(user_id, group_id, joined), "membership")

    async def on_friendship_change(self, a: int, b: int, added: bool) -> None:
        """An unfriending committed (on this process): every process holding a socket
        of either user (this one included) forgets the friendship."""
        if not added:
            await self._control(Unfriended(a, b), "unfriended")

    async def on_group_change(self, change: GroupChange) -> None:
        """Group events are messages in the group's stream (media 10), so every client
        sees the same history after sync: content = kind, amount = subject, memo = name."""
        await self.store(
            Draft(
                userid=change.actor, cmd=Cmd.GROUP, dstid=change.group_id, media=Media.EVENT,
                content=change.kind, amount=change.subject, memo=change.name,
            )
        )

    async def mark_read(self, user_id: int, conv: str, seq: int, origin: int = 0) -> tuple[int, int]:
        """Move the user's read marker; tells their other devices and the other side."""
        users, group = await self._authz.audience(user_id, conv)
        last = (await self._store.last_seqs([conv])).get(conv, 0)
        if seq > last:
            raise Refused(ErrorCode.SEQ_BEYOND_END, f"seq {seq} is beyond the last message ({last})")
        delivered, read = await self._store.advance_read(user_id, conv, seq)
        frame = encode(Cmd.RECEIPT, conv=conv, userid=user_id, delivered_seq=delivered, read_seq=read)
        if group and len(await self._social.member_ids(group)) > RECEIPT_BROADCAST_MAX_MEMBERS:
            users, group = (user_id,), 0
        await self.publish_event(users, group, frame, origin)
        return delivered, read

    async def typing(self, user_id: int, conv: str, origin: int = 0) -> None:
        users, group = await self._authz.audience(user_id, conv)
        # Typing is live contact: only between friends (a former friend, or someone
        # who blocked the typist, gets nothing), like messages.
        if not group and not await self._social.are_friends(*users):
            raise Refused(ErrorCode.NOT_FRIEND, "you can only message friends")
        frame = encode(Cmd.TYPING_EVENT, conv=conv, userid=user_id, ttl=TYPING_TTL_MS)
        await self.publish_event(users, group, frame, origin)

    async def recall(self, user_id: int, message_id: int, origin: int = 0) -> Message:
        """Recall one's own message within the window: content erased everywhere."""
        m = await self._store.get(message_id)
        if m is None:
            raise Refused(ErrorCode.UNKNOWN_MESSAGE, f"no message {message_id}")
        users, group = await self._authz.audience(user_id, m.conv)
        if m.userid != user_id:
            raise Refused(ErrorCode.NOT_YOURS, "you can only recall your own messages")
        if m.recalled:
            return m
        if now_ms() - m.ts > self._settings.recall_window_seconds * 1000:
            raise Refused(
                ErrorCode.RECALL_EXPIRED, f"messages can be recalled for {self._settings.recall_window_seconds} s"
            )
        recalled = await self._store.recall(message_id) or m
        for listener in self.recall_listeners:
            _tell(listener, recalled)
        frame = encode(Cmd.RECALLED, conv=m.conv, id=m.id, seq=m.seq, userid=user_id)
        await self.publish_event(users, group, frame, origin)
        return recalled


def _tell(listener: Callable[[Message], None], m: Message) -> None:
    try:
        listener(m)
    except Exception:
        log.exception("message listener failed", conv=m.conv, seq=m.seq)
