"""The bus's RESP2 reply reader (imhub.bus.resp, hiredis underneath): the replies a
subscriber and a publisher get, whole or cut anywhere across reads, come out as
redis-py gives them."""

from __future__ import annotations

from typing import Any

import pytest

from imhub.bus.resp import Replies, ReplyError

PAYLOAD = bytes(range(256)) + b"\r\n$3\r\n*2\r\n"  # binary, with RESP-looking bytes inside
STREAM: list[tuple[bytes, Any]] = [
    (b"*3\r\n$9\r\nsubscribe\r\n$9\r\nimhub:u:1\r\n:1\r\n", [b"subscribe", b"imhub:u:1", 1]),
    (b"*3\r\n$7\r\nmessage\r\n$9\r\nimhub:u:1\r\n$" + str(len(PAYLOAD)).encode() + b"\r\n" + PAYLOAD + b"\r\n",
     [b"message", b"imhub:u:1", PAYLOAD]),
    (b"*3\r\n$7\r\nmessage\r\n$9\r\nimhub:g:2\r\n$0\r\n\r\n", [b"message", b"imhub:g:2", b""]),
    (b"*2\r\n$4\r\npong\r\n$11\r\nimhub-ready\r\n", [b"pong", b"imhub-ready"]),
    (b"$15\r\nimhub-keepalive\r\n", b"imhub-keepalive"),
    (b"+OK\r\n", b"OK"),
    (b":42\r\n", 42),
    (b":-3\r\n", -3),
    (b"$-1\r\n", None),
    (b"*-1\r\n", None),
    (b"*0\r\n", []),
    (b"*2\r\n*1\r\n:1\r\n$1\r\nx\r\n", [[1], b"x"]),
    (b"*3\r\n$11\r\nunsubscribe\r\n$9\r\nimhub:u:1\r\n:0\r\n", [b"unsubscribe", b"imhub:u:1", 0]),
]
WIRE = b"".join(raw for raw, _ in STREAM)
EXPECTED = [value for _, value in STREAM]


def test_each_reply_alone() -> None:
    for raw, value in STREAM:
        assert Replies().feed(raw) == [value]


def test_a_stream_in_one_read() -> None:
    replies = Replies()
    assert replies.feed(WIRE) == EXPECTED
    assert replies.feed(b"") == []


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 16, 100])
def test_a_stream_cut_into_reads_of_any_size(size: int) -> None:
    replies = Replies()
    got: list[Any] = []
    for i in range(0, len(WIRE), size):
        got += replies.feed(WIRE[i : i + size])
    assert got == EXPECTED


def test_every_cut_point_in_two_reads() -> None:
    for cut in range(len(WIRE) + 1):
        replies = Replies()
        assert replies.feed(WIRE[:cut]) + replies.feed(WIRE[cut:]) == EXPECTED, cut


def test_an_incomplete_reply_waits_for_the_rest() -> None:
    replies = Replies()
    head = b"*3\r\n$7\r\nmessage\r\n$9\r\nimhub:u:1\r\n$5\r\nhel"
    assert replies.feed(head) == []
    assert replies.feed(b"lo\r\n:1\r\n") == [[b"message", b"imhub:u:1", b"hello"], 1]


def test_an_error_reply_is_a_value() -> None:
    replies = Replies()
    got = replies.feed(b"-ERR unknown command 'FOO'\r\n:1\r\n")
    assert isinstance(got[0], ReplyError) and str(got[0]) == "ERR unknown command 'FOO'"
    assert got[1] == 1


@pytest.mark.parametrize("junk", [b"!oops\r\n", b"*1\r\n?x\r\n", b"$x\r\n"])
def test_not_resp_is_an_error(junk: bytes) -> None:
    with pytest.raises(ValueError):
        Replies().feed(junk)
