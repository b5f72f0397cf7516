"""Consistent hashing: which Redis shard holds a channel or key.

A hash ring with virtual nodes (as Centrifugo spreads channels over its Redis shards):
each shard puts :data:`VNODES` points on a 64-bit ring, at the hashes of
``"<name>#<i>"``; a key belongs to the first point at or after its own hash. So:

- **stable**: the mapping depends only on the shards' names and the key, never on the
  order the shards are listed in or on the process, so every process and node agrees
  (the hash is BLAKE2b, fixed here: changing it remaps everything, like resharding);
- **even**: 256 points per shard keep each shard within about 10 % of its share;
- **minimal movement**: adding a shard moves only the keys that now fall on its points
  (about 1/n of them), all to the new shard; removing one moves only its own keys.

Pure and synchronous: no I/O, no imhub imports.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Sequence

VNODES = 256


def ring_hash(data: bytes) -> int:
    """A 64-bit point on the ring."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


class HashRing:
    """``index(key)``: the position in ``names`` of the shard that owns ``key``."""

    __slots__ = ("_owners", "_points", "names")

    def __init__(self, names: Sequence[str], vnodes: int = VNODES) -> None:
        if not names:
            raise ValueError("a hash ring needs at least one shard")
        if len(set(names)) != len(names):
            raise ValueError("shard names must be distinct")
        if vnodes < 1:
            raise ValueError("vnodes must be at least 1")
        self.names = tuple(names)
        # Sorted by (point, name): a collision between two shards' points is settled by
        # the names, not by the order they were listed in.
        ring = sorted((ring_hash(f"{name}#{i}".encode()), name, pos)
                      for pos, name in enumerate(self.names) for i in range(vnodes))
        self._points = [point for point, _, _ in ring]
        self._owners = [pos for _, _, pos in ring]

    def __len__(self) -> int:
        return len(self.names)

    def index(self, key: bytes) -> int:
        if len(self.names) == 1:
            return 0
        at = bisect.bisect_left(self._points, ring_hash(key))
        return self._owners[at if at < len(self._points) else 0]

    def name(self, key: bytes) -> str:
        return self.names[self.index(key)]


__all__ = ["VNODES", "HashRing", "ring_hash"]
