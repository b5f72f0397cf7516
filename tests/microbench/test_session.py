"""The sans-I/O session's handling of the two commonest frames: a chat message (decode,
rate bucket, Execute) and a heartbeat (answered without decoding)."""

from __future__ import annotations

import itertools

import orjson

from imhub.protocol.frames import SendMessage
from imhub.protocol.session import Execute, Limits, Reply, Session

CHAT = b'{"cmd":10,"dstid":2,"media":1,"content":"hello there, how are you?","cid":"a1b2c3d4-17"}'
# No rate limit in the way: thousands of rounds would otherwise drain the bucket and
# time the refusal instead.
UNLIMITED = Limits(send_rate=1e12, send_burst=1e12)


def _clock() -> itertools.count[float]:
    return itertools.count(1000.0, 0.001)


def test_session_chat_frame(benchmark) -> None:
    session = Session(user_id=1, limits=UNLIMITED, now=999.0)
    clock = _clock()
    actions = benchmark(lambda: session.receive(CHAT, next(clock)))
    assert len(actions) == 1 and isinstance(actions[0], Execute)
    req = actions[0].request
    assert isinstance(req, SendMessage) and req.draft.conv == "p1_2" and req.draft.cid == "a1b2c3d4-17"
    assert not session.closed


def test_session_heartbeat(benchmark) -> None:
    session = Session(user_id=1, limits=Limits(), now=999.0)
    clock = _clock()
    actions = benchmark(lambda: session.receive(b'{"cmd":0}', next(clock)))
    assert len(actions) == 1 and isinstance(actions[0], Reply)
    assert orjson.loads(actions[0].data)["cmd"] == 0
    assert session.last_seen >= 1000.0


def test_session_heartbeat_as_str(benchmark) -> None:
    """aiohttp hands text frames over as str."""
    session = Session(user_id=1, limits=Limits(), now=999.0)
    clock = _clock()
    actions = benchmark(lambda: session.receive('{"cmd":0}', next(clock)))
    assert len(actions) == 1 and isinstance(actions[0], Reply)
    assert orjson.loads(actions[0].data)["cmd"] == 0
