"""The sans-I/O session: frames in, actions out. No event loop, no sockets."""

from __future__ import annotations

import json
import time

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from imhub.protocol.frames import ConversationsRequest, Heartbeat, SendMessage, SyncRequest
from imhub.protocol.session import (
    CLOSE_IDLE,
    CLOSE_POLICY,
    CLOSE_TOO_BIG,
    Close,
    Execute,
    Limits,
    Ping,
    Reply,
    Session,
)

LIMITS = Limits(max_frame_bytes=1024, ping_interval=10, idle_timeout=30, max_page=50, send_rate=2, send_burst=3)


def new_session(now: float = 0.0) -> Session:
    return Session(user_id=7, limits=LIMITS, now=now)


def error_of(actions: list) -> dict:
    (action,) = actions
    assert isinstance(action, Reply)
    frame = orjson.loads(action.data)
    assert frame["cmd"] == 2
    return frame


def test_text_message_becomes_execute_with_stamped_user() -> None:
    s = new_session()
    (action,) = s.receive(b'{"cmd":10,"userid":7,"dstid":9,"media":1,"content":"hi","cid":"a"}', 1.0)
    assert isinstance(action, Execute) and isinstance(action.request, SendMessage)
    d = action.request.draft
    assert (d.userid, d.dstid, d.cmd, d.content, d.cid, d.conv) == (7, 9, 10, "hi", "a", "p7_9")


def test_userid_missing_is_stamped_and_forged_refused() -> None:
    s = new_session()
    (action,) = s.receive('{"cmd":11,"dstid":3,"media":6,"url":"/mnt/x.png"}', 1.0)
    assert isinstance(action, Execute) and action.request.draft.userid == 7  # type: ignore[union-attr]
    assert error_of(s.receive('{"cmd":10,"userid":8,"dstid":9,"media":1,"content":"x"}', 1.0))["code"] == 4005


def test_heartbeat_answered_with_epoch_ms_and_the_rid() -> None:
    s = new_session()
    before = int(time.time() * 1000)
    (action,) = s.receive('{"cmd":0}', 2.5)
    reply = orjson.loads(action.data)  # type: ignore[union-attr]
    assert isinstance(action, Reply) and reply["cmd"] == 0 and not action.answers_request
    assert before <= reply["ts"] <= int(time.time() * 1000)  # the epoch clock, not the loop's
    (echoed,) = s.receive('{"cmd":0,"rid":"hb-1"}', 3.0)
    assert isinstance(echoed, Reply) and echoed.answers_request
    assert orjson.loads(echoed.data)["rid"] == "hb-1"


def test_errors_echo_the_rid_of_any_request() -> None:
    s = new_session()
    for frame in ('{"cmd":22,"rid":"h","conv":5}', '{"cmd":99,"rid":"u"}', '{"cmd":26,"rid":7}'):
        err = error_of(s.receive(frame, 0))
        assert err["rid"] == str(orjson.loads(frame)["rid"]), frame


def test_sync_and_conversation_requests() -> None:
    s = new_session()
    (a,) = s.receive('{"cmd":20,"rid":"r","after":{"p1_7":3}}', 0)
    assert isinstance(a, Execute) and a.request == SyncRequest("r", {"p1_7": 3}, 50)
    (b,) = s.receive('{"cmd":21,"rid":"x"}', 0)
    assert isinstance(b, Execute) and b.request == ConversationsRequest("x")
    (capped,) = s.receive('{"cmd":20,"limit":51}', 0)  # capped at the page size, as over HTTP
    assert isinstance(capped, Execute) and capped.request.limit == LIMITS.max_page  # type: ignore[union-attr]
    assert error_of(s.receive('{"cmd":20,"after":{"p1_7":-1}}', 0))["error"] == "bad_frame"


def test_error_codes() -> None:
    s = new_session()
    cases = {
        "{": 4000,
        "[]": 4000,
        '{"cmd":5}': 4002,
        '{"cmd":10,"dstid":1,"media":42,"content":"x"}': 4003,
        '{"cmd":10,"dstid":7,"media":1,"content":"me"}': 4001,
        '{"cmd":10,"dstid":1,"media":1,"content":""}': 4001,
        '{"cmd":10,"dstid":true,"media":1,"content":"x"}': 4001,
        '{"cmd":10,"dstid":1,"media":1,"content":5}': 4001,
        '{"cmd":10,"dstid":1,"media":1,"content":"x","cid":""}': 4001,
    }
    for raw, code in cases.items():
        assert error_of(s.receive(raw, 0))["code"] == code, raw


def test_oversize_strikes_then_close() -> None:
    s = new_session()
    big = "x" * 2000
    assert error_of(s.receive(big, 0))["error"] == "frame_too_large"
    assert error_of(s.receive(big, 0))["error"] == "frame_too_large"
    assert s.receive(big, 0) == [Close(CLOSE_TOO_BIG, "repeated oversize frames")]
    assert s.receive('{"cmd":0}', 0) == []  # closed: nothing more


def test_rate_limit_refuses_then_recovers() -> None:
    s = new_session()
    frame = '{"cmd":10,"dstid":1,"media":1,"content":"x","cid":"c"}'
    assert all(isinstance(s.receive(frame, 0)[0], Execute) for _ in range(3))
    err = error_of(s.receive(frame, 0))
    assert err["error"] == "rate_limited" and err["cid"] == "c"
    assert isinstance(s.receive(frame, 1.0)[0], Execute)  # 2 tokens/s refill


def test_error_streak_closes_abusive_client() -> None:
    s = Session(user_id=1, limits=Limits(max_error_streak=5), now=0)
    for _ in range(4):
        assert isinstance(s.receive("nope", 0)[0], Reply)
    assert s.receive("nope", 0) == [Close(CLOSE_POLICY, "too many refused frames")]


def test_ping_when_quiet_and_close_when_silent() -> None:
    s = new_session()
    assert s.tick(5) == []
    assert s.tick(10) == [Ping()]
    assert s.tick(12) == []  # already pinged recently
    s.activity(13)  # pong arrived
    assert s.tick(20) == []  # pinged at 10, pong at 13: quiet only since 13
    assert s.tick(25) == [Ping()]
    assert s.tick(43) == [Close(CLOSE_IDLE, "idle timeout")]
    assert s.tick(50) == []


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300)))
def test_arbitrary_bytes_never_raise(data: bytes | str) -> None:
    s = new_session()
    for action in s.receive(data, 0):
        assert isinstance(action, (Reply, Execute, Close))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
frame_dicts = st.fixed_dictionaries(
    {},
    optional={
        "cmd": st.sampled_from([0, 10, 11, 20, 21, 99, -1, "10", None, 1.5]),
        "userid": json_values,
        "dstid": json_values,
        "media": json_values,
        "content": json_values,
        "cid": json_values,
        "amount": json_values,
        "after": json_values,
        "limit": json_values,
        "rid": json_values,
    },
)


@settings(max_examples=500, deadline=None)
@given(frame_dicts)
def test_arbitrary_frames_get_execute_or_error(frame: dict) -> None:
    s = new_session()
    (action,) = s.receive(json.dumps(frame), 0)
    if isinstance(action, Execute):
        req = action.request
        assert isinstance(req, (Heartbeat, SendMessage, SyncRequest, ConversationsRequest))
        if isinstance(req, SendMessage):
            assert req.draft.userid == 7 and req.draft.dstid >= 1 and 1 <= req.draft.media <= 9
    else:
        assert isinstance(action, Reply)
        body = orjson.loads(action.data)
        assert body["cmd"] in (0, 2)


def test_requests_spend_a_shared_allowance_heavier_ones_more() -> None:
    """Issue #16 (5): only sends were limited; a 56 KB cmd 20 naming 4,400
    conversations could be sent again and again."""
    limits = Limits(request_rate=1.0, request_burst=10.0, max_frame_bytes=1 << 20)
    s = Session(user_id=7, limits=limits, now=0)
    other_tab = Session(user_id=7, limits=limits, now=0, allowance=s.allowance)
    after = {f"g{n}": 0 for n in range(400)}  # 1 + 400/50 = 9 units
    frame = orjson.dumps({"cmd": 20, "rid": "big", "after": after})
    (first,) = s.receive(frame, 0.0)
    assert isinstance(first, Execute)
    err = error_of(other_tab.receive(frame, 0.1))  # the same user's other tab shares it
    assert (err["error"], err["rid"]) == ("rate_limited", "big")
    assert isinstance(s.receive('{"cmd":21,"rid":"x"}', 0.2)[0], Reply)  # 2 units: 1 left
    (later,) = s.receive('{"cmd":21,"rid":"y"}', 3.0)  # refilled at 1 unit/s
    assert isinstance(later, Execute)


def test_forwarding_pays_for_each_message_it_makes_from_the_sends() -> None:
    s = new_session()
    # 2 messages x 2 conversations = 4 > the burst of 3.
    big = {"cmd": 55, "rid": "f", "ids": [1, 2], "to": ["p1_7", "g3"]}
    err = error_of(s.receive(json.dumps(big), 0.0))
    assert (err["error"], err["rid"]) == ("rate_limited", "f")
    (action,) = s.receive(json.dumps({**big, "ids": [1]}), 0.0)
    assert isinstance(action, Execute)
    # That took 2 of the 3 sends.
    assert isinstance(s.receive(json.dumps({"cmd": 10, "dstid": 1, "content": "x"}), 0.0)[0], Execute)
    assert error_of(s.receive(json.dumps({"cmd": 10, "dstid": 1, "content": "y"}), 0.0))["error"] == "rate_limited"


def test_recognised_heartbeat_is_answered_like_a_received_one() -> None:
    s = new_session()
    reply = s.heartbeat(5.0)
    assert reply is not None and s.last_seen == 5.0
    assert json.loads(reply).keys() == {"cmd", "ts"}
    (action,) = s.receive('{"cmd":0}', 6.0)
    assert isinstance(action, Reply) and json.loads(action.data).keys() == {"cmd", "ts"}
    s.tick(100.0)  # idle: closed
    assert s.heartbeat(101.0) is None
