"""Model-based test: random sequences of send, resend-with-the-same-cid, disconnect,
sync and recall against a live server, checked against an in-memory model of what
each client must see (every acked message exactly once, gapless seq, recalls applied).
Hypothesis generates the operation lists; they run in order on the test's event loop."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.chatkit import Socket, befriend, connect, make_group, make_user

USERS = 2
op = st.one_of(
    st.tuples(st.just("send"), st.integers(0, USERS - 1), st.sampled_from(["p", "g"]), st.integers(0, 6)),
    st.tuples(st.just("reconnect"), st.integers(0, USERS - 1)),
    st.tuples(st.just("sync"), st.integers(0, USERS - 1)),
    st.tuples(st.just("recall"), st.integers(0, USERS - 1), st.integers(0, 20)),
)


@dataclass
class Model:
    """What the server must have stored: per conversation, seq -> (cid, sender, content, recalled)."""

    convs: dict[str, dict[int, list]] = field(default_factory=dict)
    by_cid: dict[tuple[int, str], tuple[str, int, int]] = field(default_factory=dict)  # -> (conv, seq, id)
    sent_by: dict[int, list[tuple[str, int, int]]] = field(default_factory=dict)


async def run_sequence(client, ops: list[tuple]) -> None:
    users = [await make_user(client) for _ in range(USERS)]
    await befriend(client, users[0], users[1])
    # shared: the model expects every member to sync the whole stream from seq 1.
    gid = await make_group(client, users[0], users[1], visibility="shared")
    pconv = f"p{min(u.id for u in users)}_{max(u.id for u in users)}"
    gconv = f"g{gid}"
    socks: list[Socket] = [await connect(client, u, autosync=0) for u in users]
    model = Model()
    for conv in (pconv, gconv):
        model.convs[conv] = {}
    # The group's "created"/"joined" events occupy its first seqs.
    await socks[0].send(cmd=21, rid="init")
    convs = (await socks[0].recv_until(lambda f: f.get("rid") == "init"))["convs"]
    events = {c["conv"]: c["last_seq"] for c in convs}
    for seq in range(1, events.get(gconv, 0) + 1):
        model.convs[gconv][seq] = ["event", 0, None, False]

    for step, o in enumerate(ops):
        if o[0] == "send":
            _, who, kind, k = o
            sender, sock = users[who], socks[who]
            conv, dst, cmd = (pconv, users[1 - who].id, 10) if kind == "p" else (gconv, gid, 11)
            cid = f"k{k}-{kind}"
            content = f"{who}:{kind}:{k}:{step}"
            await sock.send(cmd=cmd, dstid=dst, media=1, content=content, cid=cid)
            ack = await sock.reply()
            assert ack["cmd"] == 1, ack
            key = (sender.id, cid)
            if key in model.by_cid:
                assert ack.get("dup") is True and (ack["conv"], ack["seq"], ack["id"]) == model.by_cid[key]
            else:
                seq = len(model.convs[conv]) + 1
                assert (ack["conv"], ack["seq"]) == (conv, seq) and not ack.get("dup")
                model.convs[conv][seq] = [cid, sender.id, content, False]
                model.by_cid[key] = (conv, seq, ack["id"])
                model.sent_by.setdefault(who, []).append((conv, seq, ack["id"]))
        elif o[0] == "reconnect":
            await socks[o[1]].close()
            socks[o[1]] = await connect(client, users[o[1]], autosync=0)
        elif o[0] == "recall":
            _, who, idx = o
            mine = model.sent_by.get(who, [])
            if not mine:
                continue
            conv, seq, mid = mine[idx % len(mine)]
            await socks[who].send(cmd=25, rid=f"r{step}", id=mid)
            reply = await socks[who].recv_until(lambda f, s=step: f.get("rid") == f"r{s}")
            assert reply["cmd"] == 36 and reply["id"] == mid
            model.convs[conv][seq][3] = True
        else:
            await check_sync(socks[o[1]], model, (pconv, gconv), f"s{step}")
    for i, sock in enumerate(socks):
        await check_sync(sock, model, (pconv, gconv), f"final{i}")
        await sock.close()


async def check_sync(sock: Socket, model: Model, convs: tuple[str, ...], rid: str) -> None:
    after = dict.fromkeys(convs, 0)
    got: dict[str, list[dict]] = {c: [] for c in convs}
    while True:
        await sock.send(cmd=20, rid=rid, after=after, limit=7)
        page = await sock.recv_until(lambda f: f.get("rid") == rid)
        for m in page["msgs"]:
            got[m["conv"]].append(m)
        after = page["after"]
        if not page["more"]:
            break
    for conv in convs:
        expected = model.convs[conv]
        assert [m["seq"] for m in got[conv]] == list(range(1, len(expected) + 1)), conv
        for m in got[conv]:
            cid, sender, content, recalled = expected[m["seq"]]
            if cid == "event":
                continue
            assert m["userid"] == sender and m.get("recalled", False) == recalled
            assert m["content"] == ("" if recalled else content)


async def test_random_operation_sequences_match_the_model(client) -> None:
    sequences: list[list[tuple]] = []

    @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(st.lists(op, min_size=5, max_size=30))
    def collect(ops: list[tuple]) -> None:
        sequences.append(ops)

    collect()
    assert len(sequences) >= 5
    for ops in sequences:
        await run_sequence(client, ops)
