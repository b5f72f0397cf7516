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
import dataclasses
import math
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import structlog

from imhub import metrics
from imhub.bus.base import KICK, Bus, BusMessage, Delivery, Membership, Revoke, Unfriended
from imhub.clock import now_ms
from imhub.config import Settings
from imhub.domain.model import SILENT_MEDIA, Cmd, Draft, Media, Message, group_conv, parse_conv, self_conv
from imhub.errors import ErrorCode, RateLimited, Refused
from imhub.protocol.frames import encode, encode_message, mention_ids, quote_dict
from imhub.protocol.wsframe import text_frame
from imhub.ratelimit import SlidingWindowLimiter
from imhub.services.authz import Authorizer
from imhub.services.batch import BatchWriter, Committed, not_stored_error
from imhub.services.social import GroupChange, SocialService
from imhub.store.messages import Change, MessageStore

log = structlog.get_logger("imhub.messaging")

# Read receipts are broadcast live to groups up to this size; in larger groups members
# ask for the counts (cmd 26) when they look, instead of N² receipt traffic.
RECEIPT_BROADCAST_MAX_MEMBERS = 200
# Clients hide a typing indicator this long after the last typing event.
TYPING_TTL_MS = 6000
# Reactions to one message within this long go out as one update (no storm when a
# group piles on), carrying all of the message's reactions as they are then.
REACTION_BATCH_SECONDS = 0.3
# Different emoji one user may put on one message.
MAX_REACTIONS_PER_USER = 3
# Pinned messages per conversation.
MAX_PINS = 20
# Changes (edits, reactions, pins, deletions for oneself, conversation settings, and each
# forwarded message) one user may make per minute in a process, whichever way they come
# (the socket's request allowance also applies to the socket).
CHANGES_PER_MINUTE = 120


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
        # message id -> (message, the last user whose reaction changed it): reactions
        # waiting for their batched update.
        self._reacted: dict[int, tuple[Message, int]] = {}
        self._changes = SlidingWindowLimiter(CHANGES_PER_MINUTE, 60.0)
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
        if draft.reply_to:
            await self._check_reply(draft)
        if draft.mentions:
            draft = await self._check_mentions(draft)
        if self._before_send is not None:
            draft = await self._before_send.check(draft)
        self._writer.enqueue_to(draft, (sink, time.perf_counter()))

    def send_now(self, sink: AckSink, draft: Draft) -> bool:
        """:meth:`send` without a task or an await, for the common message: no reply,
        no mentions, no before-send hook, and a cached answer that its sender may send
        there. Returns False (nothing queued) for anything else: then call :meth:`send`."""
        if (
            draft.reply_to or draft.mentions or self._before_send is not None
            or not self._authz.may_send_cached(draft)
        ):
            return False
        self._writer.enqueue_to(draft, (sink, time.perf_counter()))
        return True

    async def _check_mentions(self, draft: Draft) -> Draft:
        """``@all`` is for the group's owner and admins; mentions of users who are not
        members are dropped."""
        if draft.mentions == "all":
            if await self._social.groups_store.role_of(draft.dstid, draft.userid) not in ("owner", "admin"):
                raise Refused(ErrorCode.ROLE_REQUIRED, "only the group's owner and admins may mention all",
                              cid=draft.cid)
            return draft
        members = set(await self._social.member_ids(draft.dstid))
        kept = ",".join(str(u) for u in mention_ids(draft.mentions) if u in members and u != draft.userid)
        return draft if kept == draft.mentions else dataclasses.replace(draft, mentions=kept)

    async def _check_reply(self, draft: Draft) -> None:
        """A reply quotes a message of the same conversation that its sender can see."""
        target = await self._store.get(draft.reply_to)
        visible = target is not None and target.conv == draft.conv and target.media not in SILENT_MEDIA
        if visible and target is not None and draft.cmd == Cmd.GROUP:
            rng = (await self._social.visible_ranges([draft.dstid], draft.userid)).get(draft.dstid)
            visible = rng is not None and target.seq in rng
        if not visible:
            raise Refused(
                ErrorCode.UNKNOWN_MESSAGE, f"no message {draft.reply_to} in this conversation", cid=draft.cid
            )

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
            await self.publish(message, 0, (await self._quotes([message])).get(message.reply_to))
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
        quotes = await self._quotes([m for m, _ in private] + [m for m, _ in groups])
        for message, origin in private:
            await self.publish(message, origin, quotes.get(message.reply_to))
        if groups:
            await asyncio.sleep(0)  # let the sockets write the acks first
            for message, origin in groups:
                await self.publish(message, origin, quotes.get(message.reply_to))

    async def _quotes(self, msgs: list[Message]) -> dict[int, dict[str, Any]]:
        """What the replies among ``msgs`` quote, by quoted message id."""
        ids = sorted({m.reply_to for m in msgs if m.reply_to})
        if not ids:
            return {}
        try:
            return {q.id: quote_dict(q) for q in await self._store.get_many(ids)}
        except Exception:
            log.warning("reading quoted messages failed; replies go out without their quote")
            return {}

    async def publish(self, m: Message, origin: int = 0, quote: dict[str, Any] | None = None) -> None:
        for listener in self.stored_listeners:
            _tell(listener, m)
        frame = text_frame(encode_message(m, quote))
        if m.conv[0] == "u":  # the user's own stream: their devices only
            delivery = Delivery(frame, (m.userid,), 0, m.conv, m.seq, origin, self._node, 0, m.ts)
        elif m.cmd == Cmd.GROUP:
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
        await self._control(Membership(user_id, group_id, joined, now_ms()), "membership")

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

    # --- changes to earlier messages (updates, media 11) ---------------------------

    async def _target(self, user_id: int, message_id: int) -> tuple[Message, tuple[int, ...], int]:
        """The message ``user_id`` acts on, with the conversation's audience; refused
        unless it exists and the user is in its conversation (and, 1:1, still friends
        with the other side: a change reaches them like a message)."""
        m = await self._store.get(message_id)
        if m is None or m.media in SILENT_MEDIA:
            raise Refused(ErrorCode.UNKNOWN_MESSAGE, f"no message {message_id}")
        users, group = await self._authz.audience(user_id, m.conv)
        if group:
            rng = (await self._social.visible_ranges([group], user_id)).get(group)
            if rng is None or m.seq not in rng:
                raise Refused(ErrorCode.UNKNOWN_MESSAGE, f"no message {message_id}")
        elif not await self._social.are_friends(*users):
            raise Refused(ErrorCode.NOT_FRIEND, "you can only message friends")
        return m, users, group

    def _count_change(self, user_id: int, n: int = 1) -> None:
        """Refused (rate_limited) past the user's changes per minute."""
        wait = self._changes.retry_after(user_id)
        if wait > 0 or n > CHANGES_PER_MINUTE:
            raise RateLimited("too many changes, slow down", retry_after=max(1, math.ceil(wait)))
        for _ in range(n):
            self._changes.hit(user_id)

    def _update_dstid(self, m: Message, user_id: int, users: tuple[int, ...], group: int) -> int:
        """An update's ``dstid``: the group, or (1:1) the other side of its author."""
        return group or next((u for u in users if u != user_id), user_id)

    async def edit(self, user_id: int, message_id: int, text: str, origin: int = 0) -> Message:
        """The sender replaces the text of their text message within the edit window;
        stored as an update (``edited``) that every device learns of, live or by sync."""
        self._count_change(user_id)
        m, users, group = await self._target(user_id, message_id)
        if m.userid != user_id:
            raise Refused(ErrorCode.NOT_YOURS, "you can only edit your own messages")
        if m.media != Media.TEXT or m.recalled:
            raise Refused(ErrorCode.NOT_EDITABLE, "only text messages that were not recalled can be edited")
        window = self._settings.edit_window_seconds
        if now_ms() - m.ts > window * 1000:
            raise Refused(ErrorCode.EDIT_EXPIRED, f"messages can be edited for {window} s")
        dstid = self._update_dstid(m, user_id, users, group)
        update = await self._store.append_update(
            (m.conv, m.cmd), user_id, dstid, "edited", m.id, self._store.edit_change(m, text)
        )
        if update is None:  # recalled meanwhile
            raise Refused(ErrorCode.NOT_EDITABLE, "only text messages that were not recalled can be edited")
        await self.publish(update, origin)
        return update

    async def react(self, user_id: int, message_id: int, emoji: str, add: bool) -> list[dict[str, Any]]:
        """Add or remove the user's reaction; the message's audience (every device of
        every member, the user's too) gets the reactions in a batched update. Returns
        the message's reactions now."""
        self._count_change(user_id)
        m, _users, _group = await self._target(user_id, message_id)
        if m.recalled:
            raise Refused(ErrorCode.UNKNOWN_MESSAGE, f"message {message_id} was recalled")
        if await self._store.react(m.id, user_id, emoji, add, MAX_REACTIONS_PER_USER):
            if not self._reacted:
                self.spawn(self._publish_reactions())
            self._reacted[m.id] = (m, user_id)
        return (await self._store.reactions_of([m.id])).get(m.id, [])

    async def _publish_reactions(self) -> None:
        """After the batch window, one update per message whose reactions changed."""
        await asyncio.sleep(REACTION_BATCH_SECONDS)
        batch, self._reacted = self._reacted, {}
        for m, actor in batch.values():
            try:
                dstid = m.dstid if m.cmd == Cmd.GROUP else (m.userid if actor != m.userid else m.dstid)
                update = await self._store.append_update(
                    (m.conv, m.cmd), actor, dstid, "reactions", m.id, self._store.reactions_change(m)
                )
                if update is not None:
                    await self.publish(update)
            except Exception:
                log.exception("storing a reactions update failed", message=m.id)

    async def pin(self, user_id: int, message_id: int, pinned: bool, origin: int = 0) -> Message | None:
        """Pin (or unpin) a message for everyone in its conversation: in a group only
        its owner and admins may, in a 1:1 chat either side. The update (None if
        nothing changed) reaches every device."""
        self._count_change(user_id)
        m, users, group = await self._target(user_id, message_id)
        if group and await self._social.groups_store.role_of(group, user_id) not in ("owner", "admin"):
            raise Refused(ErrorCode.ROLE_REQUIRED, "only the group's owner and admins may pin messages")
        if m.recalled and pinned:
            raise Refused(ErrorCode.UNKNOWN_MESSAGE, f"message {message_id} was recalled")
        dstid = self._update_dstid(m, user_id, users, group)
        update = await self._store.append_update(
            (m.conv, m.cmd), user_id, dstid, "pinned" if pinned else "unpinned", m.id,
            self._store.pin_change(m, user_id, pinned, MAX_PINS),
        )
        if update is not None:
            await self.publish(update, origin)
        return update

    async def conv_settings(
        self, user_id: int, conv: str, pinned: bool | None, muted: bool | None, origin: int = 0
    ) -> Message:
        """Pin a conversation to the top of the user's list or mute it, on all their
        devices (the update goes into their own stream)."""
        self._count_change(user_id)
        await self._readable(user_id, conv)
        return await self._to_self(user_id, "conv", self._store.prefs_change(user_id, conv, pinned, muted), origin)

    async def forward(
        self, user_id: int, message_ids: tuple[int, ...], targets: tuple[str, ...], origin: int = 0
    ) -> list[Message]:
        """Copy messages the user can read into conversations they can post to, kind and
        media kept (media by reference: the same URLs), marked forwarded. All are
        checked before any is stored; stored and published like sends, in order."""
        self._count_change(user_id, len(message_ids) * len(targets))
        found = {m.id: m for m in await self._store.get_many(list(message_ids))}
        sources = [found[i] for i in message_ids if i in found]
        if len(sources) != len(message_ids) or any(
            m.media in SILENT_MEDIA or m.media == Media.EVENT or m.recalled for m in sources
        ):
            raise Refused(ErrorCode.UNKNOWN_MESSAGE, "only messages that exist and were not recalled can be forwarded")
        for conv in {m.conv for m in sources}:
            await self._readable(user_id, conv)
            ref = parse_conv(conv)
            if ref is not None and ref.cmd == Cmd.GROUP:
                rng = (await self._social.visible_ranges([ref.a], user_id))[ref.a]
                if any(m.seq not in rng for m in sources if m.conv == conv):
                    raise Refused(ErrorCode.UNKNOWN_MESSAGE, "no such message")
        drafts = []
        for conv in targets:
            ref = parse_conv(conv)
            if ref is None or (ref.cmd == Cmd.PRIVATE and not ref.includes_user(user_id)):
                raise Refused(ErrorCode.NOT_IN_CONVERSATION, f"you are not in conversation {conv}")
            cmd, dstid = (ref.cmd, ref.peer_of(user_id) if ref.cmd == Cmd.PRIVATE else ref.a)
            for m in sources:
                drafts.append(Draft(
                    userid=user_id, cmd=cmd, dstid=dstid, media=m.media, content=m.content, pic=m.pic, url=m.url,
                    memo=m.memo, amount=m.amount, forwarded=True,
                ))
            await self._authz.may_send(drafts[-1])
        # Queued together (in order), so they commit in as few batches as they fit.
        stored = [m for m, _ in await asyncio.gather(*(self._writer.submit(d) for d in drafts))]
        for message in stored:
            await self.publish(message, origin)
        return stored

    async def _to_self(
        self, user_id: int, kind: str, change: Change, origin: int
    ) -> Message:
        """Store an update in the user's own stream; their other devices get it."""
        update = await self._store.append_update((self_conv(user_id), Cmd.PRIVATE), user_id, user_id, kind, 0, change)
        assert update is not None
        await self.publish(update, origin)
        return update

    async def hide(self, user_id: int, message_ids: tuple[int, ...], origin: int = 0) -> Message:
        """Delete for me: hide these messages from the user's own devices only."""
        self._count_change(user_id)
        found = await self._store.get_many(sorted(set(message_ids)))
        if len(found) != len(set(message_ids)) or any(m.media in SILENT_MEDIA for m in found):
            raise Refused(ErrorCode.UNKNOWN_MESSAGE, "no such message")
        for conv in {m.conv for m in found}:
            await self._readable(user_id, conv)
        return await self._to_self(user_id, "hidden", self._store.hide_change(user_id, found), origin)

    async def clear(self, user_id: int, conv: str, origin: int = 0) -> Message:
        """Delete for me, a whole conversation: everything in it so far."""
        self._count_change(user_id)
        await self._readable(user_id, conv)
        return await self._to_self(user_id, "cleared", self._store.clear_change(user_id, conv), origin)

    async def _readable(self, user_id: int, conv: str) -> None:
        """Refused unless ``user_id`` is in ``conv`` (or, a group, was: a former member
        still reads it up to their leave)."""
        ref = parse_conv(conv)
        if ref is not None and ref.cmd == Cmd.GROUP:
            if ref.a in await self._social.visible_ranges([ref.a], user_id):
                return
            raise Refused(ErrorCode.NOT_IN_CONVERSATION, f"you are not in conversation {conv}")
        await self._authz.audience(user_id, conv)

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
