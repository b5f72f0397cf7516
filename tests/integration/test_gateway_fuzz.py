"""Arbitrary frames thrown at the live gateway: every one gets a reply or an error,
the connection stays usable, and another user's chat is unaffected."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.chatkit import befriend, connect, is_msg, make_user

json_scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(
    max_size=30
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)
frames = st.one_of(
    st.text(max_size=200),
    st.fixed_dictionaries(
        {"cmd": st.sampled_from([0, 10, 11, 20, 21, 22, 23, 24, 25, 26, 27, 99, "10", None])},
        optional={k: json_values for k in ("dstid", "media", "content", "cid", "userid", "conv", "seq", "id", "q",
                                          "after", "before", "limit", "rid")},
    ).map(json.dumps),
)


async def test_arbitrary_frames_keep_the_gateway_serving(client) -> None:
    a, b, c = await make_user(client), await make_user(client), await make_user(client)
    await befriend(client, b, c)
    fuzzed = await connect(client, a, autosync=0)
    sb, sc = await connect(client, b), await connect(client, c)
    sent = 0

    # Hypothesis generates the frames (a sync test body); they are then sent in order on
    # this event loop, each followed by a heartbeat round trip.
    examples: list[str] = []

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(frames)
    def collect(raw: str) -> None:
        examples.append(raw)

    collect()
    for raw in examples:
        await fuzzed.ws.send_str(raw)
        await fuzzed.send(cmd=0)
        await fuzzed.recv_until(lambda f: f.get("cmd") == 0 and "ts" in f)
        assert not fuzzed.ws.closed
        if sent < 5:  # meanwhile others chat normally
            await sb.send(cmd=10, dstid=c.id, media=1, content=f"ok{sent}", cid=f"ok{sent}")
            assert (await sb.reply())["cmd"] == 1
            assert (await sc.recv_until(is_msg))["content"] == f"ok{sent}"
            sent += 1
    assert sent == 5 and len(examples) >= 100
