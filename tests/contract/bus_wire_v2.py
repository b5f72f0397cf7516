"""The Redis bus wire format of imhub 0.1 (version 2), frozen as it shipped (copied
from imhub/bus/redis.py before the typed bus messages), so the rolling-upgrade tests
can talk to an "old node" byte for byte. Do not modify: it stands for deployed code."""

from __future__ import annotations

import struct
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Envelope:
    users: tuple[int, ...]
    group: int
    frame: bytes
    conv: str = ""
    seq: int = 0
    origin: int = 0
    node: str = ""
    sender: int = 0
    revoke: str = ""
    membership: int = 0
    unfriended: bool = False


WIRE_VERSION = 2  # 2: + membership
_HEADER = struct.Struct("!BBHHHQQqqIq")  # the 5th field (once reserved, 0) holds _FLAG_* bits
_FLAG_UNFRIENDED = 1
_BUS_ID_LEN = 8


def encode(env: Envelope, bus_id: bytes, users: tuple[int, ...] | None = None) -> bytes:
    """One envelope as bytes; ``users`` overrides ``env.users`` (per-user narrowing)."""
    targets = env.users if users is None else users
    node = env.node.encode()
    conv = env.conv.encode()
    revoke = env.revoke.encode()
    header = _HEADER.pack(
        WIRE_VERSION, len(node), len(conv), len(revoke), _FLAG_UNFRIENDED if env.unfriended else 0,
        env.origin, env.seq, env.sender, env.group, len(targets), env.membership,
    )
    return b"".join(
        (header, bus_id, node, conv, revoke, struct.pack(f"!{len(targets)}q", *targets), env.frame)
    )


def decode(data: bytes) -> tuple[bytes, Envelope]:
    """``(bus id, envelope)``; ValueError for anything malformed or of another version."""
    if len(data) < _HEADER.size + _BUS_ID_LEN:
        raise ValueError("envelope too short")
    version, n_node, n_conv, n_revoke, flags, origin, seq, sender, group, n_users, membership = (
        _HEADER.unpack_from(data)
    )
    if version != WIRE_VERSION:
        raise ValueError(f"unknown envelope version {version}")
    pos = _HEADER.size
    bus_id = data[pos : pos + _BUS_ID_LEN]
    pos += _BUS_ID_LEN
    node = data[pos : pos + n_node].decode()
    pos += n_node
    conv = data[pos : pos + n_conv].decode()
    pos += n_conv
    revoke = data[pos : pos + n_revoke].decode()
    pos += n_revoke
    end_users = pos + 8 * n_users
    if end_users > len(data):
        raise ValueError("envelope truncated")
    users = struct.unpack_from(f"!{n_users}q", data, pos)
    env = Envelope(
        users=users, group=group, frame=data[end_users:], conv=conv, seq=seq, origin=origin, node=node,
        sender=sender, revoke=revoke, membership=membership, unfriended=bool(flags & _FLAG_UNFRIENDED),
    )
    return bus_id, env
