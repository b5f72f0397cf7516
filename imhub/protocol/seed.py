"""What a seed client is sent (docs/protocol.md "Seed clients").

The seed's own browser client takes every frame it receives for a chat message and
draws only text (media 1), voice (3) and images (4); anything else becomes an empty
bubble, and every frame clears the user's draft (../shared/seed/CLIENT.md). So a
connection that declared no capabilities gets chat messages only, each in a form that
client can draw: richer kinds become a readable text, group events a text only when the
operator asks for them, recalled messages a notice.
"""

from __future__ import annotations

from typing import Any

import orjson

from imhub.domain.model import Media, Message
from imhub.protocol.frames import message_dict
from imhub.protocol.wsframe import payload_of, text_frame

DRAWABLE = frozenset({Media.TEXT, Media.VOICE, Media.IMAGE})

_LABELS: dict[int, str] = {
    Media.NEWS: "[news]", Media.RED_PACKET: "[red packet]", Media.EMOJI: "[sticker]",
    Media.LINK: "[link]", Media.VIDEO: "[video]", Media.CONTACT: "[contact card]", Media.FILE: "[file]",
}
_EVENT_TEXT = {
    "created": "created the group",
    "joined": "user {subject} joined the group",
    "left": "user {subject} left the group",
    "removed": "user {subject} was removed from the group",
    "renamed": "the group was renamed to {name}",
}


def _join(*parts: object) -> str:
    return " ".join(str(p) for p in parts if p not in ("", None, 0))


def seed_message(msg: dict[str, Any], group_events: bool) -> dict[str, Any] | None:
    """``msg`` (a message's JSON fields) as a seed client should get it, or None when
    it should get nothing."""
    media = msg.get("media")
    if msg.get("recalled"):
        return _as_text(msg, "[message recalled]")
    if media == Media.UPDATE:
        return None  # an edit, reactions, a pin: nothing the seed client can show
    if media == Media.TEXT and isinstance(msg.get("reply"), dict):
        return _as_text(msg, f"{_quoted(msg['reply'])} {msg.get('content', '')}")
    if media in DRAWABLE:
        return msg
    content, url, memo = msg.get("content", ""), msg.get("url", ""), msg.get("memo", "")
    if media == Media.EVENT:
        if not group_events:
            return None
        kind = str(content)
        template = _EVENT_TEXT.get(kind)
        text = template.format(subject=msg.get("amount", ""), name=memo) if template else memo or kind
        return _as_text(msg, f"[group] {text}")
    if media == Media.EMOJI and url:
        return {**msg, "media": int(Media.IMAGE)}  # a sticker is an image to the seed
    label = _LABELS.get(media, "[message]") if isinstance(media, int) else "[message]"
    if media == Media.CONTACT:  # content is the person's id, memo their name
        return _as_text(msg, _join(label, memo or content))
    if media in (Media.FILE, Media.VIDEO):  # memo is a MIME type or the video's size: not for people
        return _as_text(msg, _join(label, content, url))
    return _as_text(msg, _join(label, content or memo, url))


def _quoted(q: dict[str, Any]) -> str:
    """A reply's quoted message as a text prefix."""
    if q.get("recalled"):
        return "[reply to a recalled message]"
    label = {Media.VOICE: "[voice]", Media.IMAGE: "[image]", **_LABELS}.get(q.get("media", 0), "")
    if q.get("media") == Media.TEXT:
        label = ""
    excerpt = _join(label, q.get("excerpt", ""))
    return f'[reply to user {q.get("userid", "")}: "{excerpt}"]'


def _as_text(msg: dict[str, Any], text: str) -> dict[str, Any]:
    out = {k: v for k, v in msg.items() if k not in ("pic", "url", "memo", "amount")}
    out["media"] = int(Media.TEXT)
    out["content"] = text
    return out


def seed_message_frame(m: Message, group_events: bool, quote: dict[str, Any] | None = None) -> bytes | None:
    """The complete WebSocket frame of stored message ``m`` (a reply: with ``quote``)
    for a seed client."""
    view = seed_message(message_dict(m, quote), group_events)
    return None if view is None else text_frame(orjson.dumps(view))


def seed_frame(frame: bytes, group_events: bool) -> bytes | None:
    """A message frame as built for modern clients, as a seed client should get it
    (the same bytes when it can draw it as it is)."""
    try:
        msg = orjson.loads(payload_of(frame))
    except orjson.JSONDecodeError:
        return None
    if not isinstance(msg, dict):
        return None
    view = seed_message(msg, group_events)
    if view is None:
        return None
    return frame if view is msg else text_frame(orjson.dumps(view))
