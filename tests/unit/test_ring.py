"""The consistent-hash ring that spreads bus channels and presence keys over Redis
shards (imhub.bus.ring): stable, even, and moving little when a shard is added."""

from __future__ import annotations

from collections import Counter

import pytest

from imhub.bus.ring import HashRing, ring_hash

SHARDS = ["redis://10.0.0.1:6379/0", "redis://10.0.0.2:6379/0", "redis://10.0.0.3:6379/0"]
KEYS = [f"imhub:u:{i}".encode() for i in range(30_000)] + [f"imhub:g:{i}".encode() for i in range(3_000)]


def test_one_shard_owns_everything() -> None:
    ring = HashRing(["redis://127.0.0.1:6379/0"])
    assert {ring.index(k) for k in KEYS[:1000]} == {0}


def test_mapping_is_pinned() -> None:
    """Every process and node, of every version, must agree: the hash and the ring's
    layout are part of the deployment's contract (changing them reshards everything)."""
    assert ring_hash(b"imhub:u:1") == 0xFE0EB9A12F79C356
    ring = HashRing(SHARDS)
    assert [ring.index(f"imhub:u:{i}".encode()) for i in range(12)] == [0, 1, 1, 0, 0, 2, 0, 1, 2, 2, 1, 0]


def test_order_of_the_list_does_not_matter() -> None:
    a, b = HashRing(SHARDS), HashRing(list(reversed(SHARDS)))
    assert all(a.name(k) == b.name(k) for k in KEYS)


def test_even_spread() -> None:
    ring = HashRing(SHARDS)
    counts = Counter(ring.index(k) for k in KEYS)
    share = len(KEYS) / len(SHARDS)
    assert set(counts) == {0, 1, 2}
    for n in counts.values():
        assert abs(n - share) / share < 0.15, counts


def test_adding_a_shard_moves_only_its_share_and_only_to_it() -> None:
    before = HashRing(SHARDS)
    new = "redis://10.0.0.4:6379/0"
    after = HashRing([*SHARDS, new])
    moved = [k for k in KEYS if before.name(k) != after.name(k)]
    assert all(after.name(k) == new for k in moved)  # nothing moves between old shards
    assert 0.18 < len(moved) / len(KEYS) < 0.32  # about 1/4


def test_removing_a_shard_moves_only_its_keys() -> None:
    full, less = HashRing(SHARDS), HashRing(SHARDS[:2])
    for k in KEYS:
        if full.name(k) != SHARDS[2]:
            assert less.name(k) == full.name(k)


def test_bad_rings() -> None:
    with pytest.raises(ValueError):
        HashRing([])
    with pytest.raises(ValueError):
        HashRing(["a", "a"])
    with pytest.raises(ValueError):
        HashRing(["a"], vnodes=0)
