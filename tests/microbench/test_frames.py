"""Frame decode (every client frame) and encode (every stored message, once per
message; the same bytes go to every recipient)."""

from __future__ import annotations

import orjson

from imhub.domain.model import Cmd, Message
from imhub.protocol.frames import Heartbeat, SendMessage, SyncRequest, decode, encode_ack, encode_message
from imhub.protocol.wsframe import text_frame

CHAT = b'{"cmd":10,"dstid":2,"media":1,"content":"hello there, how are you?","cid":"a1b2c3d4-17"}'
GROUP = b'{"cmd":11,"dstid":7,"media":1,"content":"meeting at 10","cid":"a1b2c3d4-18","userid":1}'
SYNC = b'{"cmd":20,"rid":"r1","after":{"p1_2":17,"g7":1024,"p1_9":3},"limit":100}'
MESSAGE = Message(id=123456, conv="p1_2", seq=4711, ts=1_764_000_000_000, userid=1, cmd=Cmd.PRIVATE, dstid=2,
                  media=1, content="hello there, how are you?", cid="a1b2c3d4-17")


def test_decode_chat_frame(benchmark) -> None:
    req = benchmark(decode, CHAT, 1, max_page=200)
    assert isinstance(req, SendMessage)
    d = req.draft
    assert (d.userid, d.cmd, d.dstid, d.content, d.cid, d.conv) == (
        1, 10, 2, "hello there, how are you?", "a1b2c3d4-17", "p1_2")


def test_decode_group_frame(benchmark) -> None:
    req = benchmark(decode, GROUP, 1, max_page=200)
    assert isinstance(req, SendMessage) and req.draft.conv == "g7"


def test_decode_heartbeat_frame(benchmark) -> None:
    # The decoder's path; the session answers the usual spelling before decoding.
    assert isinstance(benchmark(decode, b'{"cmd":0}', 1, max_page=200), Heartbeat)


def test_decode_sync_frame(benchmark) -> None:
    req = benchmark(decode, SYNC, 1, max_page=200)
    assert isinstance(req, SyncRequest) and req.after == {"p1_2": 17, "g7": 1024, "p1_9": 3} and req.limit == 100


def test_encode_message(benchmark) -> None:
    data = benchmark(encode_message, MESSAGE)
    obj = orjson.loads(data)
    assert (obj["id"], obj["conv"], obj["seq"], obj["content"], obj["cid"]) == (
        123456, "p1_2", 4711, "hello there, how are you?", "a1b2c3d4-17")


def test_encode_ack(benchmark) -> None:
    ack = orjson.loads(benchmark(encode_ack, MESSAGE, False))
    assert ack == {"cmd": Cmd.ACK, "cid": "a1b2c3d4-17", "id": 123456, "seq": 4711, "conv": "p1_2",
                   "ts": 1_764_000_000_000}


def test_encode_message_as_websocket_frame(benchmark) -> None:
    """What a publish builds once per message: JSON, then the WebSocket frame."""
    frame = benchmark(lambda: text_frame(encode_message(MESSAGE)))
    payload = encode_message(MESSAGE)
    n = len(payload)
    head = bytes((0x81, n)) if n < 126 else bytes((0x81, 126)) + n.to_bytes(2, "big")
    assert frame == head + payload
