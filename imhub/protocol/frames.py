"""Decoding client frames and encoding server frames (docs/protocol.md).

Decoding validates everything a client controls and raises
:class:`~imhub.errors.Refused` with a stable code. Encoding returns bytes: a message frame is encoded once and the same
bytes go to every recipient.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from imhub.domain.model import (
    CLIENT_MEDIA,
    MAX_CID_CHARS,
    MAX_CONTENT_CHARS,
    MAX_FILE_NAME_CHARS,
    MAX_LINK_CHARS,
    Cmd,
    Draft,
    Media,
    Message,
)
from imhub.domain.ngrams import MAX_QUERY_CHARS
from imhub.domain.urls import DEFAULT_MEDIA_BASE, link_problem, media_ref_problem
from imhub.errors import ErrorCode, Refused

# --- requests a client can make -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Heartbeat:
    rid: str | None = None


@dataclass(frozen=True, slots=True)
class SendMessage:
    draft: Draft


@dataclass(frozen=True, slots=True)
class SyncRequest:
    rid: str | None
    after: dict[str, int]
    limit: int


@dataclass(frozen=True, slots=True)
class ConversationsRequest:
    rid: str | None


@dataclass(frozen=True, slots=True)
class HistoryRequest:
    rid: str | None
    conv: str
    before: int
    limit: int


@dataclass(frozen=True, slots=True)
class ReadRequest:
    conv: str
    seq: int


@dataclass(frozen=True, slots=True)
class TypingRequest:
    conv: str


@dataclass(frozen=True, slots=True)
class RecallRequest:
    rid: str | None
    id: int


@dataclass(frozen=True, slots=True)
class ReceiptsRequest:
    rid: str | None
    conv: str


@dataclass(frozen=True, slots=True)
class SearchRequest:
    rid: str | None
    q: str
    before: int
    limit: int
    first: bool = False  # no ``before``: the first page (friends and groups come with it)


@dataclass(frozen=True, slots=True)
class EditRequest:
    rid: str | None
    id: int
    content: str


@dataclass(frozen=True, slots=True)
class ReactRequest:
    rid: str | None
    id: int
    emoji: str
    add: bool


@dataclass(frozen=True, slots=True)
class PinRequest:
    rid: str | None
    id: int
    pinned: bool


@dataclass(frozen=True, slots=True)
class ConvSettingsRequest:
    """Per-user settings of a conversation; None leaves one as it is."""

    rid: str | None
    conv: str
    pinned: bool | None
    muted: bool | None


@dataclass(frozen=True, slots=True)
class ForwardRequest:
    rid: str | None
    ids: tuple[int, ...]
    to: tuple[str, ...]

    @property
    def messages(self) -> int:
        """How many messages it makes."""
        return len(self.ids) * len(self.to)


@dataclass(frozen=True, slots=True)
class HideRequest:
    """Delete for me: ``ids`` (messages), or everything of ``conv`` so far."""

    rid: str | None
    ids: tuple[int, ...]
    conv: str | None


Request = (
    Heartbeat
    | SendMessage
    | SyncRequest
    | ConversationsRequest
    | HistoryRequest
    | ReadRequest
    | TypingRequest
    | RecallRequest
    | ReceiptsRequest
    | SearchRequest
    | EditRequest
    | HideRequest
    | ReactRequest
    | PinRequest
    | ConvSettingsRequest
    | ForwardRequest
)

_SENDABLE = (Cmd.PRIVATE, Cmd.GROUP)
_MAX_ID = 2**63 - 1


def _int(obj: dict[str, Any], name: str, *, default: int | None = None, lo: int = 0, hi: int = _MAX_ID) -> int:
    value = obj.get(name, default)
    if value is None:
        raise Refused(ErrorCode.BAD_FRAME, f"{name} is required")
    # Accept numeric strings: the seed's form-minded clients sometimes send "12".
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Refused(ErrorCode.BAD_FRAME, f"{name} must be an integer")
    if not lo <= value <= hi:
        raise Refused(ErrorCode.BAD_FRAME, f"{name} is out of range")
    return value


def _str(obj: dict[str, Any], name: str, max_len: int) -> str:
    value = obj.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Refused(ErrorCode.BAD_FRAME, f"{name} must be a string")
    if len(value) > max_len:
        raise Refused(ErrorCode.BAD_FRAME, f"{name} is too long (at most {max_len} characters)")
    return value


def _limit(obj: dict[str, Any], default: int, cap: int) -> int:
    """A page size: at least 1; above ``cap`` it is capped (as the HTTP twins do)."""
    return min(_int(obj, "limit", default=default, lo=1), cap)


def _echo_rid(obj: dict[str, Any]) -> str | None:
    """The frame's ``rid`` for an error reply, if it is a usable one."""
    rid = obj.get("rid")
    if isinstance(rid, (str, int)) and not isinstance(rid, bool) and len(str(rid)) <= 64:
        return str(rid)
    return None


def _rid(obj: dict[str, Any]) -> str | None:
    rid = obj.get("rid")
    if rid is None:
        return None
    if not isinstance(rid, (str, int)) or isinstance(rid, bool) or len(str(rid)) > 64:
        raise Refused(ErrorCode.BAD_FRAME, "rid must be a short string")
    return str(rid)


def decode(data: str | bytes, user_id: int, *, max_page: int, media_base: str = DEFAULT_MEDIA_BASE) -> Request:
    """Parse and validate one client frame for the connection of ``user_id``;
    ``media_base`` is this server's media URL base (IMHUB_MEDIA_BASE_URL)."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise Refused(ErrorCode.BAD_JSON, "frame is not valid JSON") from None
    if not isinstance(obj, dict):
        raise Refused(ErrorCode.BAD_JSON, "frame must be a JSON object")
    cmd = obj.get("cmd")
    if type(cmd) is int and cmd in _SENDABLE:
        draft = _plain_draft(obj, cmd, user_id)
        if draft is not None:
            return SendMessage(draft)
    cid = obj.get("cid")
    if cid is not None and (not isinstance(cid, str) or not 0 < len(cid) <= MAX_CID_CHARS):
        raise Refused(ErrorCode.BAD_FRAME, f"cid must be a string of 1-{MAX_CID_CHARS} characters")
    try:
        cmd = _int(obj, "cmd", default=0, hi=1000)
        if cmd == Cmd.HEARTBEAT:
            return Heartbeat(_rid(obj))
        if cmd in _SENDABLE:
            return SendMessage(_draft(obj, cmd, user_id, cid, media_base))
        if cmd == Cmd.SYNC:
            return SyncRequest(_rid(obj), _after_map(obj), _limit(obj, max_page, max_page))
        if cmd == Cmd.CONVERSATIONS:
            return ConversationsRequest(_rid(obj))
        if cmd == Cmd.HISTORY:
            return HistoryRequest(
                _rid(obj), _conv(obj), _int(obj, "before", default=_MAX_ID, lo=1),
                _limit(obj, max_page // 4 or 1, max_page),
            )
        if cmd == Cmd.READ:
            return ReadRequest(_conv(obj), _int(obj, "seq", lo=0))
        if cmd == Cmd.TYPING:
            return TypingRequest(_conv(obj))
        if cmd == Cmd.RECALL:
            return RecallRequest(_rid(obj), _int(obj, "id", lo=1))
        if cmd == Cmd.RECEIPTS:
            return ReceiptsRequest(_rid(obj), _conv(obj))
        if cmd == Cmd.SEARCH:
            return SearchRequest(
                _rid(obj), _query(obj), _int(obj, "before", default=_MAX_ID, lo=1),
                _limit(obj, 20, 100), first=obj.get("before") is None,
            )
        if cmd == Cmd.EDIT:
            content = _str(obj, "content", MAX_CONTENT_CHARS)
            if not content.strip():
                raise Refused(ErrorCode.BAD_FRAME, "an edit needs content")
            return EditRequest(_rid(obj), _int(obj, "id", lo=1), content)
        if cmd == Cmd.REACT:
            return ReactRequest(_rid(obj), _int(obj, "id", lo=1), emoji(obj.get("emoji")), _flag(obj, "add", True))
        if cmd == Cmd.PIN:
            return PinRequest(_rid(obj), _int(obj, "id", lo=1), _flag(obj, "pinned", True))
        if cmd == Cmd.CONV_SETTINGS:
            pinned = _flag(obj, "pinned", False) if "pinned" in obj else None
            muted = _flag(obj, "muted", False) if "muted" in obj else None
            if pinned is None and muted is None:
                raise Refused(ErrorCode.BAD_FRAME, "give pinned and/or muted")
            return ConvSettingsRequest(_rid(obj), _conv(obj), pinned, muted)
        if cmd == Cmd.FORWARD:
            return ForwardRequest(_rid(obj), _ids(obj, "ids", MAX_FORWARD_IDS), _convs(obj, "to", MAX_FORWARD_TO))
        if cmd == Cmd.HIDE:
            if "conv" in obj:
                return HideRequest(_rid(obj), (), _conv(obj))
            return HideRequest(_rid(obj), _ids(obj, "ids", MAX_IDS), None)
    except Refused as exc:
        exc.cid = exc.cid or cid
        exc.rid = exc.rid or _echo_rid(obj)
        raise
    raise Refused(ErrorCode.UNKNOWN_CMD, f"unknown cmd {cmd}", cid=cid, rid=_echo_rid(obj))


_TEXT_FIELDS = (
    ("content", MAX_CONTENT_CHARS), ("pic", MAX_LINK_CHARS), ("url", MAX_LINK_CHARS), ("memo", MAX_LINK_CHARS)
)


def _plain_draft(obj: dict[str, Any], cmd: int, user_id: int) -> Draft | None:
    """The common send frame, checked in one pass: plain ints and strings within their
    limits. Anything unusual (numeric strings, a wrong type, a bad value) returns None
    and goes through the full validation below, which accepts or refuses it exactly as
    before."""
    get = obj.get
    cid = get("cid")
    if cid is not None and (type(cid) is not str or not 0 < len(cid) <= MAX_CID_CHARS):
        return None
    claimed = get("userid")
    if claimed is not None and claimed != user_id:
        return None
    media = get("media", 1)
    dstid = get("dstid")
    amount = get("amount", 0)
    if type(media) is not int or media not in CLIENT_MEDIA:
        return None
    if type(dstid) is not int or not 1 <= dstid <= _MAX_ID or (cmd == Cmd.PRIVATE and dstid == user_id):
        return None
    if type(amount) is not int or not -_MAX_ID <= amount <= _MAX_ID:
        return None
    texts = []
    for name, limit in _TEXT_FIELDS:
        value = get(name)
        if value is None:
            value = ""
        elif type(value) is not str or len(value) > limit:
            return None
        texts.append(value)
    content, pic, url, memo = texts
    if "reply_to" in obj or "mentions" in obj:
        return None  # checked by the full validation
    if media == Media.TEXT and not content.strip():
        return None
    if pic or url or media == Media.FILE:
        return None  # URLs and file messages are checked by the full validation
    return Draft(userid=user_id, cmd=int(cmd), dstid=dstid, media=media, content=content, pic=pic, url=url,
                 memo=memo, amount=amount, cid=cid)


# Media whose ``url`` clients load by themselves (play, draw): only this server's media.
# For the others ``url`` is a link the user clicks: any http(s) URL. ``pic`` is always
# drawn (image, video poster, card picture, contact avatar): only this server's media.
_LOADED_URL_MEDIA = frozenset({Media.VOICE, Media.IMAGE, Media.EMOJI, Media.VIDEO, Media.FILE})
# A file message's MIME type (memo): what the upload reply said, e.g. application/pdf.
_MIME = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}$")


def _check_urls(draft: Draft, media_base: str) -> None:
    url_rule = media_ref_problem if draft.media in _LOADED_URL_MEDIA else link_problem
    problem = media_ref_problem(draft.pic, "pic", media_base) or url_rule(draft.url, "url", media_base)
    if problem:
        raise Refused(ErrorCode.BAD_URL, problem)


def _draft(obj: dict[str, Any], cmd: int, user_id: int, cid: str | None, media_base: str) -> Draft:
    claimed = obj.get("userid")
    if claimed not in (None, 0, "", user_id, str(user_id)):
        raise Refused(ErrorCode.FORGED_USERID, "userid is not the connected user")
    media = _int(obj, "media", default=1, hi=1000)
    if media not in CLIENT_MEDIA:
        raise Refused(ErrorCode.UNKNOWN_MEDIA, f"unknown media {media}")
    draft = Draft(
        userid=user_id,
        cmd=cmd,
        dstid=_int(obj, "dstid", lo=1),
        media=media,
        content=_str(obj, "content", MAX_CONTENT_CHARS),
        pic=_str(obj, "pic", MAX_LINK_CHARS),
        url=_str(obj, "url", MAX_LINK_CHARS),
        memo=_str(obj, "memo", MAX_LINK_CHARS),
        amount=_int(obj, "amount", default=0, lo=-_MAX_ID),
        cid=cid,
        reply_to=_int(obj, "reply_to", default=0),
        mentions=_mentions(obj, cmd),
    )
    if cmd == Cmd.PRIVATE and draft.dstid == user_id:
        raise Refused(ErrorCode.BAD_FRAME, "cannot send a private message to yourself")
    if media == Media.TEXT and not draft.content.strip():
        raise Refused(ErrorCode.BAD_FRAME, "a text message needs content")
    if media == Media.FILE:
        _check_file(draft)
    _check_urls(draft, media_base)
    return draft


MAX_MENTIONS = 50
# Messages one request may name (delete for me, forward).
MAX_IDS = 100


MAX_EMOJI_CHARS = 16
# Forwarding: messages, and conversations, per request.
MAX_FORWARD_IDS = 20
MAX_FORWARD_TO = 10


def _convs(obj: dict[str, Any], name: str, most: int) -> tuple[str, ...]:
    value = obj.get(name)
    if not isinstance(value, list) or not 0 < len(value) <= most:
        raise Refused(ErrorCode.BAD_FRAME, f"{name} must be a list of 1-{most} conversation ids")
    return tuple(dict.fromkeys(_conv({"conv": v}) for v in value))


def emoji(value: object) -> str:
    """A reaction: 1-16 characters (an emoji with its modifiers), no spaces or controls."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_EMOJI_CHARS:
        raise Refused(ErrorCode.BAD_FRAME, f"emoji must be 1-{MAX_EMOJI_CHARS} characters")
    if any(c.isspace() or ord(c) < 32 or c in "<>&\"'" for c in value):
        raise Refused(ErrorCode.BAD_FRAME, "emoji must not contain spaces, controls or markup")
    return value


def _flag(obj: dict[str, Any], name: str, default: bool) -> bool:
    value = obj.get(name, default)
    if not isinstance(value, bool):
        raise Refused(ErrorCode.BAD_FRAME, f"{name} must be true or false")
    return value


def _ids(obj: dict[str, Any], name: str, most: int) -> tuple[int, ...]:
    value = obj.get(name)
    if not isinstance(value, list) or not 0 < len(value) <= most:
        raise Refused(ErrorCode.BAD_FRAME, f"{name} must be a list of 1-{most} ids")
    if any(isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= _MAX_ID for v in value):
        raise Refused(ErrorCode.BAD_FRAME, f"{name} must be a list of ids")
    return tuple(dict.fromkeys(value))


def _mentions(obj: dict[str, Any], cmd: int) -> str:
    """``mentions``: a list of user ids, or ``"all"``; stored as ``"3,7"`` / ``"all"``."""
    value = obj.get("mentions")
    if value is None or value == []:
        return ""
    if cmd != Cmd.GROUP:
        raise Refused(ErrorCode.BAD_FRAME, "mentions are for group messages")
    if value == "all":
        return "all"
    if not isinstance(value, list) or len(value) > MAX_MENTIONS:
        raise Refused(ErrorCode.BAD_FRAME, f"mentions must be \"all\" or a list of at most {MAX_MENTIONS} user ids")
    ids: list[int] = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= _MAX_ID:
            raise Refused(ErrorCode.BAD_FRAME, "mentions must be user ids")
        if v not in ids:
            ids.append(v)
    return ",".join(map(str, ids))


def mention_ids(mentions: str) -> list[int]:
    """The user ids of a stored ``mentions`` value (none for ``"all"``)."""
    return [int(v) for v in mentions.split(",")] if mentions and mentions != "all" else []


def _check_file(draft: Draft) -> None:
    """A file message (media 12): a name, our URL, a size and (optionally) a MIME type."""
    name = draft.content
    if not name.strip() or len(name) > MAX_FILE_NAME_CHARS or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise Refused(
            ErrorCode.BAD_FRAME,
            f"a file message needs content: the file name (1-{MAX_FILE_NAME_CHARS} characters, no control characters)",
        )
    if not draft.url:
        raise Refused(ErrorCode.BAD_FRAME, "a file message needs url: the uploaded file (upload it first)")
    if draft.amount < 0:
        raise Refused(ErrorCode.BAD_FRAME, "amount (the file size in bytes) must not be negative")
    if draft.memo and not _MIME.match(draft.memo):
        raise Refused(ErrorCode.BAD_FRAME, "memo must be the file's MIME type, like application/pdf")


def _conv(obj: dict[str, Any]) -> str:
    conv = obj.get("conv")
    if not isinstance(conv, str) or not 1 < len(conv) <= 48:
        raise Refused(ErrorCode.BAD_FRAME, "conv must be a conversation id like p1_2 or g3")
    return conv


def _query(obj: dict[str, Any]) -> str:
    q = obj.get("q")
    if not isinstance(q, str) or not q.strip():
        raise Refused(ErrorCode.BAD_QUERY, "q must be a non-empty search text")
    if len(q) > MAX_QUERY_CHARS:
        raise Refused(ErrorCode.BAD_QUERY, f"q is too long (at most {MAX_QUERY_CHARS} characters)")
    return q.strip()


def _after_map(obj: dict[str, Any]) -> dict[str, int]:
    after = obj.get("after", {})
    if not isinstance(after, dict) or len(after) > 10000:
        raise Refused(ErrorCode.BAD_FRAME, "after must be an object of conversation -> seq")
    out: dict[str, int] = {}
    for conv, seq in after.items():
        if len(conv) > 48 or isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= _MAX_ID:
            raise Refused(ErrorCode.BAD_FRAME, "after must map conversation ids to seqs >= 0")
        out[conv] = seq
    return out


# --- frames the server sends ------------------------------------------------------------


# Characters of the quoted message a reply carries.
EXCERPT_CHARS = 100


def quote_dict(m: Message, deleted: bool = False) -> dict[str, Any]:
    """What a reply shows of the message it quotes (no lookup needed): sender, kind and
    an excerpt; a recalled original (or, for its viewer, a hidden one) says so instead."""
    q: dict[str, Any] = {"id": m.id, "seq": m.seq, "userid": m.userid, "media": m.media}
    if m.recalled:
        q["recalled"] = True
        q["excerpt"] = ""
    elif deleted:
        q["deleted"] = True
        q["excerpt"] = ""
    else:
        q["excerpt"] = (m.content or m.memo)[:EXCERPT_CHARS]
    return q


def message_dict(m: Message, quote: dict[str, Any] | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": m.id, "userid": m.userid, "cmd": m.cmd, "dstid": m.dstid, "media": m.media,
        "content": m.content, "pic": m.pic, "url": m.url, "memo": m.memo, "amount": m.amount,
        "conv": m.conv, "seq": m.seq, "ts": m.ts,
    }
    if m.cid:
        d["cid"] = m.cid
    if m.recalled:
        d["recalled"] = True
    if m.reply_to or m.mentions or m.forwarded or m.edited_at or m.media == _UPDATE:
        _extras(m, d, quote)
    return d


_UPDATE = int(Media.UPDATE)  # compared as a plain int on the hot path


def _extras(m: Message, d: dict[str, Any], quote: dict[str, Any] | None) -> None:
    """The fields of issue #19, on the few messages that have any."""
    if m.reply_to:
        d["reply_to"] = m.reply_to
        if quote is not None:
            d["reply"] = quote
    if m.mentions:
        d["mentions"] = "all" if m.mentions == "all" else mention_ids(m.mentions)
    if m.forwarded:
        d["forwarded"] = True
    if m.edited_at:
        d["edited_at"] = m.edited_at
    if m.media == _UPDATE:
        d["content"] = ""
        d["update"] = orjson.loads(m.content) if m.content else {}


def encode_message(m: Message, quote: dict[str, Any] | None = None) -> bytes:
    return orjson.dumps(message_dict(m, quote))


def stored_ref(m: Message) -> dict[str, Any]:
    """Where a message was stored (as in an ack)."""
    return {"id": m.id, "conv": m.conv, "seq": m.seq, "ts": m.ts}


def encode_ack(m: Message, duplicate: bool) -> bytes:
    ack: dict[str, Any] = {"cmd": Cmd.ACK, "cid": m.cid, "id": m.id, "seq": m.seq, "conv": m.conv, "ts": m.ts}
    if duplicate:
        ack["dup"] = True
    return orjson.dumps(ack)


def encode_error(err: Refused) -> bytes:
    frame: dict[str, Any] = {"cmd": Cmd.ERROR, "code": err.code.number, "error": err.code.label, "msg": err.msg}
    if err.cid:
        frame["cid"] = err.cid
    if err.rid:
        frame["rid"] = err.rid
    if "retry_after" in err.extra:
        frame["retry_after"] = err.extra["retry_after"]
    return orjson.dumps(frame)


def encode(cmd: Cmd, **fields: Any) -> bytes:
    return orjson.dumps({"cmd": int(cmd), **fields})
