"""Pure data and rules of the messaging domain: conversation ids, media kinds,
commands and the limits of a message body. No I/O, no asyncio."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Cmd(IntEnum):
    """Frame commands (docs/protocol.md). 10/11/0 are the seed's own."""

    HEARTBEAT = 0
    ACK = 1
    ERROR = 2
    PRIVATE = 10
    GROUP = 11
    # client -> server requests
    SYNC = 20
    CONVERSATIONS = 21
    HISTORY = 22
    READ = 23
    TYPING = 24
    RECALL = 25
    RECEIPTS = 26
    SEARCH = 27
    EDIT = 50
    REACT = 51
    HIDE = 52
    PIN = 53
    CONV_SETTINGS = 54
    FORWARD = 55
    # server -> client
    SYNC_PAGE = 30
    CONVERSATION_LIST = 31
    HISTORY_PAGE = 32
    RECEIPT = 33
    TYPING_EVENT = 34
    PRESENCE = 35
    RECALLED = 36
    RESYNC = 37
    RECEIPT_LIST = 38
    SEARCH_RESULTS = 39
    # 40: operators' notice (imhub.admin)
    FRIEND_REQUEST_EVENT = 41
    GROUP_REQUEST_EVENT = 42
    DONE = 43  # the answer to cmd 50-55
    PROFILE_EVENT = 44  # a user's nickname or avatar changed


class Media(IntEnum):
    TEXT = 1
    NEWS = 2
    VOICE = 3
    IMAGE = 4
    RED_PACKET = 5
    EMOJI = 6
    LINK = 7
    VIDEO = 8
    CONTACT = 9
    # Server-made only: a group event (joined, left, removed, renamed) in the stream.
    EVENT = 10
    # Server-made only: a change to an earlier message or to the conversation (an edit,
    # reactions, a pin), stored in the stream so that sync carries it; ``memo`` names
    # it, ``amount`` is the message concerned, ``content`` a JSON object.
    UPDATE = 11
    # content = file name, url = the uploaded file, amount = size in bytes, memo = MIME type
    FILE = 12


CLIENT_MEDIA = frozenset(int(m) for m in Media if m not in (Media.EVENT, Media.UPDATE))
# Media that are not a message of their own: not unread, never a conversation's "last".
SILENT_MEDIA = frozenset({int(Media.UPDATE)})


# Field limits of a message body. The frame limit bounds the total; these keep any
# one field sane for storage (the columns are sized to match).
MAX_CONTENT_CHARS = 8000
MAX_LINK_CHARS = 1024
MAX_CID_CHARS = 64
MAX_FILE_NAME_CHARS = 255  # a file message's name (content)


def private_conv(a: int, b: int) -> str:
    """The conversation of a 1:1 pair, the same whichever side sends."""
    lo, hi = (a, b) if a < b else (b, a)
    return f"p{lo}_{hi}"


def group_conv(group_id: int) -> str:
    return f"g{group_id}"


def self_conv(user_id: int) -> str:
    """The user's own stream: changes only their devices see (what they deleted for
    themselves, their conversation settings), synced like a conversation."""
    return f"u{user_id}"


@dataclass(frozen=True, slots=True)
class ConvRef:
    """A parsed conversation id: ``cmd`` 10 with the two users, or 11 with the group."""

    cmd: int
    a: int
    b: int = 0

    def peer_of(self, user_id: int) -> int:
        return self.b if self.a == user_id else self.a

    def includes_user(self, user_id: int) -> bool:
        return self.cmd == Cmd.PRIVATE and user_id in (self.a, self.b)


def parse_conv(conv: str) -> ConvRef | None:
    """Parse ``p<lo>_<hi>`` / ``g<id>``; None if malformed."""
    try:
        if conv.startswith("p"):
            lo_s, hi_s = conv[1:].split("_", 1)
            lo, hi = int(lo_s), int(hi_s)
            if 0 < lo < hi and conv == private_conv(lo, hi):
                return ConvRef(Cmd.PRIVATE, lo, hi)
        elif conv.startswith("g"):
            gid = int(conv[1:])
            if gid > 0 and conv == group_conv(gid):
                return ConvRef(Cmd.GROUP, gid)
    except ValueError:
        return None
    return None


@dataclass(frozen=True, slots=True)
class Draft:
    """A validated message from a client, before it is stored."""

    userid: int
    cmd: int
    dstid: int
    media: int
    content: str = ""
    pic: str = ""
    url: str = ""
    memo: str = ""
    amount: int = 0
    cid: str | None = None
    # The message this one replies to (its server id, same conversation), 0 if none.
    reply_to: int = 0
    # Mentioned members: "" (none), "all", or user ids joined by commas ("3,7").
    mentions: str = ""
    forwarded: bool = False

    @property
    def conv(self) -> str:
        return private_conv(self.userid, self.dstid) if self.cmd == Cmd.PRIVATE else group_conv(self.dstid)


@dataclass(frozen=True, slots=True)
class Message:
    """A stored message: the draft plus what the server assigned."""

    id: int
    conv: str
    seq: int
    ts: int
    userid: int
    cmd: int
    dstid: int
    media: int
    content: str = ""
    pic: str = ""
    url: str = ""
    memo: str = ""
    amount: int = 0
    cid: str | None = None
    recalled: bool = False
    reply_to: int = 0
    mentions: str = ""
    forwarded: bool = False
    edited_at: int = 0
