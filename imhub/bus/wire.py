"""The Redis bus's wire format: bus messages as bytes, versioned.

Version 3 (current), all integers big-endian::

    header  !B B B B H H Q Q q q q I   version, kind, flags, len(node), len(conv),
                                       len(which), origin, seq, sender, group, ts,
                                       number of users
    bus id  8 bytes                    the publishing bus instance (echo suppression)
    node, conv, which                  UTF-8
    users   q * n
    frame   the rest                   the complete WebSocket frame, as published

``kind`` says which bus message it is (:data:`KIND_DELIVERY` …); ``flags`` bit 0 is a
membership's ``joined``. ``ts`` (a message's server time, ms) gives the bus lag metric
without parsing the frame; on a membership it is the change's time, sent only by a
bus with several Redis shards (0 otherwise, as before).

Version 2 (imhub before the typed bus messages) is still decoded, and can be encoded
(``version=2``), so a rolling upgrade works: new nodes first run with
``IMHUB_BUS_WIRE_VERSION=2`` until no old node is left, then with the default 3
(docs/operations.md). Version 2 had no kind: a revocation was a non-empty ``revoke``
string, a membership a signed group id, an unfriending a flag with the pair's ``conv``.
"""

from __future__ import annotations

import struct

from imhub.bus.base import BusMessage, Delivery, Membership, Revoke, Unfriended
from imhub.domain.model import Cmd, parse_conv, private_conv

BUS_ID_LEN = 8
WIRE_VERSIONS = (2, 3)
CURRENT_VERSION = 3

KIND_DELIVERY = 1
KIND_REVOKE = 2
KIND_MEMBERSHIP = 3
KIND_UNFRIENDED = 4
_FLAG_JOINED = 1
# Set on the copies of a leave or an unfriending sent on user and group channels by a
# bus that also sends it on every process's ``<prefix>:all`` channel: such a process
# drops them (the copy on ``all`` brings it once); older processes ignore the bit.
_FLAG_ALSO_TO_ALL = 2

_V3 = struct.Struct("!BBBBHHQQqqqI")
_V2 = struct.Struct("!BBHHHQQqqIq")  # version, node, conv, revoke, flags, origin, seq, sender, group, n, membership
_V2_FLAG_UNFRIENDED = 1


def narrowed(message: BusMessage, user_id: int) -> BusMessage:
    """``message`` as sent on one user's channel: a process hosting several of the
    targets gets one copy per target, never the full list twice."""
    if isinstance(message, Delivery):
        return Delivery(message.frame, (user_id,), message.group, message.conv, message.seq, message.origin,
                        message.node, message.sender, message.ts)
    if isinstance(message, Revoke):
        return Revoke((user_id,), message.which, message.frame)
    return message


def encode(
    message: BusMessage, bus_id: bytes, version: int = CURRENT_VERSION, *, also_to_all: bool = False,
    to: int | None = None,
) -> bytes:
    """``also_to_all``: mark a control copy as also sent on the ``all`` channel
    (version 3 only; version 2 has no room for it, and receivers then get it twice).
    ``to``: the bytes of ``narrowed(message, to)``, without building that copy (the
    publisher does this for every user channel of every message)."""
    if version == 2:
        return _encode_v2(message if to is None else narrowed(message, to), bus_id)
    node = conv = which = b""
    frame = b""
    origin = seq = sender = group = ts = flags = 0
    users: tuple[int, ...]
    if isinstance(message, Delivery):
        kind, users, frame, group = KIND_DELIVERY, message.users, message.frame, message.group
        node, conv = message.node.encode(), message.conv.encode()
        origin, seq, sender, ts = message.origin, message.seq, message.sender, message.ts
        if to is not None:
            users = (to,)
    elif isinstance(message, Revoke):
        kind, users, which, frame = KIND_REVOKE, message.users, message.which.encode(), message.frame
        if to is not None:
            users = (to,)
    elif isinstance(message, Membership):
        kind, users, group, ts = KIND_MEMBERSHIP, (message.user,), message.group, message.ts
        flags = _FLAG_JOINED if message.joined else 0
    else:
        kind, users = KIND_UNFRIENDED, (message.a, message.b)
    if also_to_all:
        flags |= _FLAG_ALSO_TO_ALL
    header = _V3.pack(CURRENT_VERSION, kind, flags, len(node), len(conv), len(which), origin, seq, sender, group,
                      ts, len(users))
    return b"".join((header, bus_id, node, conv, which, struct.pack(f"!{len(users)}q", *users), frame))


def also_to_all(data: bytes) -> bool:
    """The bytes are a copy of a control also sent on the ``all`` channel."""
    return len(data) > 2 and data[0] == CURRENT_VERSION and bool(data[2] & _FLAG_ALSO_TO_ALL)


def decode(data: bytes) -> tuple[bytes, BusMessage]:
    """``(bus id, message)``; ValueError for anything malformed or of an unknown version."""
    if not data:
        raise ValueError("empty bus message")
    if data[0] == 2:
        return _decode_v2(data)
    if data[0] != CURRENT_VERSION:
        raise ValueError(f"unknown bus wire version {data[0]}")
    if len(data) < _V3.size + BUS_ID_LEN:
        raise ValueError("bus message too short")
    _, kind, flags, n_node, n_conv, n_which, origin, seq, sender, group, ts, n_users = _V3.unpack_from(data)
    pos = _V3.size
    bus_id = data[pos : pos + BUS_ID_LEN]
    pos += BUS_ID_LEN
    node, pos = _text(data, pos, n_node)
    conv, pos = _text(data, pos, n_conv)
    which, pos = _text(data, pos, n_which)
    users, pos = _users(data, pos, n_users)
    frame = data[pos:]
    if kind == KIND_DELIVERY:
        return bus_id, Delivery(frame, users, group, conv, seq, origin, node, sender, ts)
    if kind == KIND_REVOKE:
        return bus_id, Revoke(users, which, frame)
    if kind == KIND_MEMBERSHIP and len(users) == 1:
        return bus_id, Membership(users[0], group, bool(flags & _FLAG_JOINED), ts)
    if kind == KIND_UNFRIENDED and len(users) == 2:
        return bus_id, Unfriended(users[0], users[1])
    raise ValueError(f"malformed bus message of kind {kind}")


def _text(data: bytes, pos: int, n: int) -> tuple[str, int]:
    end = pos + n
    if end > len(data):
        raise ValueError("bus message truncated")
    return data[pos:end].decode(), end


def _users(data: bytes, pos: int, n: int) -> tuple[tuple[int, ...], int]:
    end = pos + 8 * n
    if end > len(data):
        raise ValueError("bus message truncated")
    return struct.unpack_from(f"!{n}q", data, pos), end


# --- version 2 -------------------------------------------------------------------------


def _encode_v2(message: BusMessage, bus_id: bytes) -> bytes:
    node = conv = revoke = b""
    frame = b""
    origin = seq = sender = group = membership = flags = 0
    users: tuple[int, ...]
    if isinstance(message, Delivery):
        users, frame, group = message.users, message.frame, message.group
        node, conv = message.node.encode(), message.conv.encode()
        origin, seq, sender = message.origin, message.seq, message.sender
    elif isinstance(message, Revoke):
        users, revoke, frame = message.users, message.which.encode(), message.frame
    elif isinstance(message, Membership):
        users, membership = (message.user,), message.group if message.joined else -message.group
    else:
        users, conv, flags = (message.a, message.b), private_conv(message.a, message.b).encode(), _V2_FLAG_UNFRIENDED
    header = _V2.pack(2, len(node), len(conv), len(revoke), flags, origin, seq, sender, group, len(users), membership)
    return b"".join((header, bus_id, node, conv, revoke, struct.pack(f"!{len(users)}q", *users), frame))


def _decode_v2(data: bytes) -> tuple[bytes, BusMessage]:
    if len(data) < _V2.size + BUS_ID_LEN:
        raise ValueError("bus message too short")
    _, n_node, n_conv, n_revoke, flags, origin, seq, sender, group, n_users, membership = _V2.unpack_from(data)
    pos = _V2.size
    bus_id = data[pos : pos + BUS_ID_LEN]
    pos += BUS_ID_LEN
    node, pos = _text(data, pos, n_node)
    conv, pos = _text(data, pos, n_conv)
    revoke, pos = _text(data, pos, n_revoke)
    users, pos = _users(data, pos, n_users)
    frame = data[pos:]
    if revoke:
        return bus_id, Revoke(users, revoke, frame)
    if membership:
        if len(users) != 1:
            raise ValueError("a version 2 membership names one user")
        return bus_id, Membership(users[0], abs(membership), membership > 0)
    if flags & _V2_FLAG_UNFRIENDED:
        ref = parse_conv(conv)
        if ref is None or ref.cmd != Cmd.PRIVATE:
            raise ValueError("a version 2 unfriending needs its pair's conversation")
        return bus_id, Unfriended(ref.a, ref.b)
    return bus_id, Delivery(frame, users, group, conv, seq, origin, node, sender)
