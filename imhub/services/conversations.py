"""The read side of messaging: sync, history, search, the conversation list, receipts
and the offline backlog. Reads only; every answer is checked against the caller's
conversations first, and in groups against the one history-visibility rule
(:meth:`SocialService.visible_ranges`: from the join under ``joined``, up to the
leave for a former member)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from imhub.config import Settings
from imhub.domain.model import SILENT_MEDIA, Cmd, Message, group_conv, parse_conv, private_conv, self_conv
from imhub.domain.ngrams import query_phrases, snippet
from imhub.errors import ErrorCode, Refused
from imhub.protocol.frames import message_dict, quote_dict
from imhub.services.authz import Authorizer
from imhub.services.social import SocialService
from imhub.store.groups import SeqRange
from imhub.store.messages import ConvPrefs, MessageStore
from imhub.store.search import searchable_text

NO_PREFS = ConvPrefs()

# Search pages are filled past hits the caller may not see, at most this many times.
SEARCH_REFILLS = 8


@dataclass(frozen=True, slots=True)
class SyncPage:
    messages: list[Message]
    after: dict[str, int]
    more: bool
    denied: list[str]


def readable(user_id: int, conv: str, groups: set[int]) -> bool:
    """May ``user_id``, who may read the groups ``groups`` (some of it), read ``conv``?"""
    if conv == self_conv(user_id):
        return True
    ref = parse_conv(conv)
    if ref is None:
        return False
    if ref.cmd == Cmd.PRIVATE:
        return ref.includes_user(user_id)
    return ref.a in groups


def _group_ids(convs: list[str]) -> list[int]:
    refs = (parse_conv(c) for c in convs)
    return [r.a for r in refs if r is not None and r.cmd == Cmd.GROUP]


def _range_of(conv: str, ranges: dict[int, SeqRange]) -> SeqRange | None:
    """The visible range of a group conversation (None: a 1:1 one, all of it)."""
    ref = parse_conv(conv)
    return ranges.get(ref.a) if ref is not None and ref.cmd == Cmd.GROUP else None


def _visible(m: Message, ranges: dict[int, SeqRange]) -> bool:
    rng = _range_of(m.conv, ranges)
    return rng is None or m.seq in rng


class ConversationService:
    def __init__(self, settings: Settings, store: MessageStore, social: SocialService, authz: Authorizer) -> None:
        self._settings = settings
        self._store = store
        self._social = social
        self._authz = authz

    async def view(self, user_id: int, msgs: list[Message]) -> list[dict[str, Any]]:
        """``msgs`` as ``user_id`` sees them (JSON fields): without those they deleted for
        themselves, each reply with its quote."""
        if not msgs:
            return []
        quoted = sorted({m.reply_to for m in msgs if m.reply_to})
        quotes = {q.id: q for q in await self._store.get_many(quoted)} if quoted else {}
        hidden = await self._store.hidden_among(user_id, sorted({m.id for m in msgs} | set(quotes)))
        cleared = {c: p.cleared_seq for c, p in (await self._store.prefs_of(user_id)).items() if p.cleared_seq}

        def gone(m: Message) -> bool:
            return m.id in hidden or m.seq <= cleared.get(m.conv, 0)

        shown = [m for m in msgs if not gone(m)]
        reactions = await self._store.reactions_of(
            [m.id for m in shown if m.media not in SILENT_MEDIA and not m.recalled]
        )
        pins = await self._store.pins_of(sorted({m.conv for m in shown}))
        pinned = {i for ids in pins.values() for i in ids}
        out = []
        for m in shown:
            q = quotes.get(m.reply_to) if m.reply_to else None
            d = message_dict(m, quote_dict(q, gone(q)) if q is not None else None)
            if m.id in reactions:
                d["reactions"] = reactions[m.id]
            if m.id in pinned:
                d["pinned"] = True
            out.append(d)
        return out

    async def quotes(self, msgs: list[Message]) -> dict[int, dict[str, Any]]:
        """What the replies among ``msgs`` quote, by quoted id (no query if none is one)."""
        quoted = sorted({m.reply_to for m in msgs if m.reply_to})
        return {q.id: quote_dict(q) for q in await self._store.get_many(quoted)} if quoted else {}

    async def own_stream(self, user_id: int) -> dict[str, Any]:
        """The user's own stream (what only their devices see): its id and last seq."""
        conv = self_conv(user_id)
        return {"conv": conv, "last_seq": (await self._store.last_seqs([conv])).get(conv, 0)}

    async def conversation_ids(self, user_id: int) -> list[str]:
        friends = await self._social.friend_ids(user_id)
        groups = await self._social.group_ids_of(user_id)
        return [private_conv(user_id, f) for f in friends] + [group_conv(g) for g in groups]

    async def sync(self, user_id: int, after: dict[str, int], limit: int) -> SyncPage:
        """Up to ``limit`` messages after the given seq of each conversation, in
        conversation then seq order; ``more`` if any conversation has more.
        Conversations the user is not in are refused before any query, and one query
        finds those with anything new: only they are read."""
        ranges = await self._social.visible_ranges(_group_ids(list(after)), user_id)
        cursor = dict(after)
        denied = [conv for conv in after if not readable(user_id, conv, set(ranges))]
        for conv in denied:
            del cursor[conv]
        last = await self._store.last_seqs(list(cursor)) if cursor else {}
        out: list[Message] = []
        more = False
        for conv, seq in cursor.items():
            if last.get(conv, 0) <= seq:
                continue
            room = limit - len(out)
            if room <= 0:
                more = True
                break
            rng = _range_of(conv, ranges)
            if rng is None:
                batch = await self._store.after(conv, seq, room + 1)
            else:
                batch = [m for m in await self._store.after(conv, max(seq, rng.lo), room + 1) if m.seq <= rng.hi]
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
        ranges = await self._social.visible_ranges(_group_ids(convs), user_id)
        last = await self._store.last_seqs(convs)
        cursors = await self._store.cursors_of(user_id)
        prefs = await self._store.prefs_of(user_id)
        last_msgs = {m.conv: m for m in await self._store.by_conv_seq((c, s) for c, s in last.items() if s)}
        for conv, newest in list(last_msgs.items()):
            if newest.media in SILENT_MEDIA:  # an update is no message of its own: the one before
                spoken = await self._store.last_spoken(conv, newest.seq)
                if spoken is None:
                    del last_msgs[conv]
                else:
                    last_msgs[conv] = spoken
        reads: dict[str, int] = {}
        for conv in convs:
            # Deleted for oneself up to a seq: nothing before it is unread.
            read = max(cursors.get(conv, (0, 0))[1], prefs.get(conv, NO_PREFS).cleared_seq)
            rng = _range_of(conv, ranges)
            if rng is not None:  # nothing from before the join: not as last message, not as unread
                read = max(read, min(rng.lo, last.get(conv, 0)))
            reads[conv] = read
        silent = await self._store.silent_after({c: r for c, r in reads.items() if last.get(c, 0) > r})
        pins = await self._store.pins_of(convs)
        mentions = await self._store.mentions_of(user_id, convs)
        out: list[dict[str, Any]] = []
        for conv in convs:
            ref = parse_conv(conv)
            assert ref is not None
            last_seq = last.get(conv, 0)
            delivered = cursors.get(conv, (0, 0))[0]
            read = reads[conv]
            lm = last_msgs.get(conv)
            rng = _range_of(conv, ranges)
            cleared = prefs.get(conv, NO_PREFS).cleared_seq
            if lm is not None and ((rng is not None and lm.seq not in rng) or lm.seq <= cleared):
                lm = None
            out.append(
                {
                    "conv": conv,
                    "cmd": ref.cmd,
                    "dstid": ref.peer_of(user_id) if ref.cmd == Cmd.PRIVATE else ref.a,
                    "last_seq": last_seq,
                    "read_seq": read,
                    "delivered_seq": delivered,
                    "unread": max(0, last_seq - read - silent.get(conv, 0)),
                    "last": message_dict(lm) if lm else None,
                    "pinned": prefs.get(conv, NO_PREFS).pinned,
                    "muted": prefs.get(conv, NO_PREFS).muted,
                    "mentioned": mentions.get(conv, 0) > max(read, cleared),
                    "pins": pins.get(conv, []),
                }
            )
        # Pinned conversations first, then the most recent.
        out.sort(key=lambda c: (c["pinned"], c["last"]["ts"] if c["last"] else 0), reverse=True)
        return out

    async def backlog_plan(self, user_id: int) -> list[tuple[str, int]]:
        """What the user missed while offline: ``(conv, after seq)`` for each of their
        conversations with messages after the delivered cursor. The caller saves the
        delivered cursors it holds first, so they count."""
        convs = await self.conversation_ids(user_id)
        ranges = await self._social.visible_ranges(_group_ids(convs), user_id)
        last = await self._store.last_seqs(convs)
        cursors = await self._store.cursors_of(user_id)
        plan = []
        for conv, last_seq in last.items():
            rng = _range_of(conv, ranges)  # nothing from before the join
            delivered = max(cursors.get(conv, (0, 0))[0], rng.lo if rng else 0)
            if last_seq > delivered:
                plan.append((conv, delivered))
        return plan

    async def backlog_page(self, user_id: int, conv: str, after: int, limit: int) -> list[Message]:
        """The next page of a :meth:`backlog_plan` entry, oldest first."""
        return await self._store.after(conv, after, limit)

    async def history(self, user_id: int, conv: str, before: int, limit: int) -> tuple[list[Message], bool]:
        """Up to ``limit`` messages before seq ``before``, ascending; ``more`` if older exist."""
        ref = parse_conv(conv)
        if ref is not None and ref.cmd == Cmd.GROUP:
            # Members and former members: what the visibility rule allows.
            rng = (await self._social.visible_ranges([ref.a], user_id)).get(ref.a)
            if rng is None:
                raise Refused(ErrorCode.NOT_IN_CONVERSATION, f"you are not in conversation {conv}")
            msgs = [m for m in await self._store.before(conv, min(before, rng.hi + 1), limit + 1) if m.seq > rng.lo]
        else:
            await self._authz.audience(user_id, conv)
            msgs = await self._store.before(conv, before, limit + 1)
        more = len(msgs) > limit
        return (msgs[1:] if more else msgs), more

    async def receipts(self, user_id: int, conv: str) -> list[dict[str, int]]:
        """Every member's delivered/read marker in ``conv`` (for 'read by N')."""
        users, group = await self._authz.audience(user_id, conv)
        members = await self._social.member_ids(group) if group else list(users)
        cursors = await self._store.cursors_in(conv)
        return [
            {"userid": u, "delivered_seq": cursors.get(u, (0, 0))[0], "read_seq": cursors.get(u, (0, 0))[1]}
            for u in members
        ]

    async def search(self, user_id: int, q: str, before: int, limit: int) -> tuple[list[dict[str, Any]], bool]:
        """Messages matching ``q`` in the user's conversations, newest first, each with
        its ``snippet`` around the match and the ``marks`` of the match in it."""
        hits, more = await self._search_messages(user_id, q, before, limit)
        texts = {m.id: searchable_text(m) for m in hits}
        shown = await self.view(user_id, hits)  # without what the user deleted for themselves
        for hit in shown:
            text, marks = snippet(texts[hit["id"]], q)
            hit["snippet"], hit["marks"] = text, [list(span) for span in marks]
        return shown, more

    async def _search_messages(self, user_id: int, q: str, before: int, limit: int) -> tuple[list[Message], bool]:
        phrases = query_phrases(q)
        if not phrases:
            raise Refused(ErrorCode.BAD_QUERY, "the query has no searchable words")
        convs = await self.conversation_ids(user_id)
        ranges = await self._social.visible_ranges(_group_ids(convs), user_id)
        hits: list[Message] = []
        for _ in range(SEARCH_REFILLS):
            found = await self._store.search(convs, phrases, before, limit + 1)
            hits.extend(m for m in found if _visible(m, ranges))
            if len(found) <= limit or len(hits) > limit:
                return hits[:limit], len(hits) > limit
            before = found[-1].id  # a page of hidden hits: look further back
        return hits[:limit], True
