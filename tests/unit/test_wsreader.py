"""The client frame reader (imhub.protocol.wsreader): RFC 6455 framing as the gateway
reads it since the socket is taken from aiohttp."""

from __future__ import annotations

import os
import struct

import pytest

from imhub.protocol.wsreader import (
    HEARTBEAT,
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameReader,
    WsError,
    close_payload,
    parse_close,
    unmask,
)


def frame(payload: bytes, opcode: int = OP_TEXT, *, fin: bool = True, masked: bool = True, rsv: int = 0) -> bytes:
    n = len(payload)
    b0 = (0x80 if fin else 0) | rsv | opcode
    bit = 0x80 if masked else 0
    if n < 126:
        head = bytes((b0, bit | n))
    elif n < 65536:
        head = struct.pack("!BBH", b0, bit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, bit | 127, n)
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def test_unmask_round_trips_every_length() -> None:
    key = b"\x01\x80\xff\x10"
    for n in range(0, 70):
        data = os.urandom(n)
        masked = bytes(b ^ key[i % 4] for i, b in enumerate(data))
        assert unmask(key, masked) == data


def test_messages_of_every_size_and_split_anywhere() -> None:
    texts = ["é" * 10, "x" * 125, "y" * 126, "z" * 70_000, '{"cmd":1}']
    stream = b"".join(frame(t.encode()) for t in texts) + frame(HEARTBEAT) + frame(b"\x00\xff", OP_BINARY)
    for step in (1, 3, 7, 1000, len(stream)):
        reader = FrameReader(max_size=1 << 20)
        got = []
        for i in range(0, len(stream), step):
            got.extend(reader.feed(stream[i : i + step]))
        assert got == [(OP_TEXT, t) for t in texts] + [(OP_TEXT, HEARTBEAT), (OP_BINARY, b"\x00\xff")]
        assert reader.error is None


def test_fragments_are_joined_and_control_frames_may_come_between() -> None:
    reader = FrameReader(max_size=100)
    stream = frame(b"ab", fin=False) + frame(b"x", OP_PING) + frame(b"cd", 0, fin=False) + frame(b"e", 0)
    assert reader.feed(stream) == [(OP_PING, b"x"), (OP_TEXT, "abcde")]
    assert reader.feed(frame(b"", OP_PONG)) == [(OP_PONG, b"")]


@pytest.mark.parametrize(
    ("stream", "code"),
    [
        (frame(b"hi", masked=False), 1002),
        (frame(b"hi", rsv=0x40), 1002),  # no extension negotiated (no permessage-deflate)
        (frame(b"hi", 0x3), 1002),
        (frame(b"hi", 0xB), 1002),
        (frame(b"x" * 126, OP_PING), 1002),
        (frame(b"x", OP_PING, fin=False), 1002),
        (frame(b"x", 0), 1002),  # continuation of nothing
        (frame(b"a", fin=False) + frame(b"b"), 1002),  # a new message inside a fragmented one
        (frame(b"\xff\xfe"), 1007),
        (frame(b"x" * 101), 1009),
        (frame(b"x" * 60, fin=False) + frame(b"x" * 60, 0), 1009),
    ],
)
def test_violations_give_the_close_code(stream: bytes, code: int) -> None:
    reader = FrameReader(max_size=100)
    assert reader.feed(frame(b"ok") + stream) == [(OP_TEXT, "ok")]  # what came before is read
    assert reader.error is not None and reader.error.code == code
    assert reader.feed(frame(b"later")) == []  # nothing after it


def test_an_oversize_message_is_refused_from_its_header() -> None:
    reader = FrameReader(max_size=1000)
    header = struct.pack("!BBQ", 0x81, 0x80 | 127, 1 << 40)
    assert reader.feed(header) == []
    assert reader.error is not None and reader.error.code == 1009


def test_close_payloads() -> None:
    assert parse_close(b"") == (None, "")
    assert parse_close(close_payload(4000, "idle timeout")) == (4000, "idle timeout")
    assert parse_close(close_payload(1000)) == (1000, "")
    for bad, code in (
        (b"\x03", 1002),
        (struct.pack("!H", 1005), 1002),
        (struct.pack("!H", 999), 1002),
        (struct.pack("!H", 1000) + b"\xff", 1007),
    ):
        with pytest.raises(WsError) as err:
            parse_close(bad)
        assert err.value.code == code
    assert len(close_payload(1000, "é" * 100)) <= 125
    reader = FrameReader(max_size=10)
    assert reader.feed(frame(close_payload(1001, "bye"), OP_CLOSE)) == [(OP_CLOSE, close_payload(1001, "bye"))]


def test_a_lone_heartbeat_is_recognised_only_between_messages() -> None:
    reader = FrameReader(max_size=100)
    hb = frame(HEARTBEAT)
    assert reader.is_heartbeat(hb)
    assert not reader.is_heartbeat(frame(b'{"cmd":1}'))
    assert not reader.is_heartbeat(frame(HEARTBEAT, masked=False) + b"\x00" * 4)
    assert not reader.is_heartbeat(hb + hb)
    assert reader.feed(frame(b"a", fin=False)) == []  # inside a fragmented message
    assert not reader.is_heartbeat(hb)
    reader = FrameReader(max_size=100)
    assert reader.feed(hb[:3]) == []  # a frame begun in an earlier read
    assert not reader.is_heartbeat(hb)
