"""GET /metrics after a short chat: every counter moved by the right amount."""

from __future__ import annotations

import asyncio
import io

import aiohttp
from PIL import Image

from tests.integration.chatkit import befriend, connect, is_msg, make_group, make_user
from tests.ops.promtext import value


async def scrape(client) -> str:  # type: ignore[no-untyped-def]
    r = await client.get("/metrics")
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    return await r.text()


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 10, 10)).save(buf, "PNG")
    return buf.getvalue()


async def test_counters_follow_a_short_chat(client) -> None:
    a, b, c = await make_user(client), await make_user(client), await make_user(client)
    await befriend(client, a, b)
    gid = await make_group(client, a, b, c)
    before = await scrape(client)

    sa, sb, sc = await connect(client, a), await connect(client, b), await connect(client, c)
    # A refused handshake (bad token) is counted by reason.
    r = await client.get("/chat", params={"id": str(a.id), "token": "nope"})
    assert r.status == 401

    n_private, n_group = 5, 3
    for i in range(n_private):
        await sa.send(cmd=10, dstid=b.id, media=1, content=f"hi {i}", cid=f"p{i}")
        assert (await sa.reply())["cmd"] == 1
        await sb.recv_until(is_msg)
    for i in range(n_group):
        await sa.send(cmd=11, dstid=gid, media=1, content=f"all {i}", cid=f"g{i}")
        assert (await sa.reply())["cmd"] == 1
        await sb.recv_until(is_msg)
        await sc.recv_until(is_msg)
    # A resend is a duplicate, not a new message.
    await sa.send(cmd=10, dstid=b.id, media=1, content="hi 0", cid="p0")
    assert (await sa.reply())["dup"] is True
    await sa.ws.send_str("not json")
    assert (await sa.recv_until(lambda f: f["cmd"] == 2))["error"] == "bad_json"

    form = aiohttp.FormData()
    form.add_field("file", png(), filename="red.png")
    up = await client.post("/attach/upload", data=form, headers=a.auth)
    assert (await up.json())["code"] == 0

    mid = await scrape(client)
    d = lambda name, **labels: value(mid, name, **labels) - value(before, name, **labels)  # noqa: E731

    sent = n_private + n_group
    assert value(mid, "imhub_connections_open") - value(before, "imhub_connections_open") == 3
    assert d("imhub_connections_opened_total") == 3
    assert d("imhub_handshakes_refused_total", reason="token") == 1
    assert d("imhub_frames_in_total", cmd="10") == n_private + 1
    assert d("imhub_frames_in_total", cmd="11") == n_group
    assert d("imhub_frames_in_total", cmd="invalid") == 1
    assert d("imhub_frames_in_total", cmd="0") == 3  # each connect() waits on a heartbeat
    assert d("imhub_messages_stored_total") == sent
    assert d("imhub_messages_duplicate_total") == 1
    # Fan-out: each private message to b's socket, each group message to b and c.
    deliveries = n_private + 2 * n_group
    assert d("imhub_deliveries_total") == deliveries
    assert d("imhub_delivery_bytes_total") > 0
    assert d("imhub_sent_bytes_total") >= d("imhub_delivery_bytes_total")
    assert d("imhub_socket_writes_total") >= 1
    assert d("imhub_send_ack_seconds_count") == sent + 1
    assert d("imhub_deliver_seconds_count") == sent
    assert d("imhub_db_commit_batch_size_sum") == sent + 1
    assert d("imhub_db_commit_seconds_count") >= 1
    assert d("imhub_bus_published_total", bus="local") >= sent
    assert d("imhub_uploads_total", kind="image") == 1
    assert d("imhub_upload_bytes_total", kind="image") > 0

    await sb.close()
    await sc.close()
    await sa.close()
    for _ in range(50):
        after = await scrape(client)
        if value(after, "imhub_connections_open") == value(before, "imhub_connections_open"):
            break
        await asyncio.sleep(0.05)
    assert value(after, "imhub_connections_open") == value(before, "imhub_connections_open")
    assert value(after, "imhub_connections_closed_total") - value(before, "imhub_connections_closed_total") == 3


async def test_health_and_readiness(client) -> None:
    r = await client.get("/healthz")
    assert r.status == 200 and (await r.json()) == {"status": "ok"}
    r = await client.get("/readyz")
    assert r.status == 200
    assert await r.json() == {"ready": True, "database": True, "bus": True}


async def test_readiness_fails_when_the_bus_is_down(client) -> None:
    from imhub.app import SERVICES
    from imhub.web.ops import READINESS

    app = client.server.app
    svc = app[SERVICES]

    async def down() -> bool:
        return False

    svc.bus.ping = down  # type: ignore[method-assign]
    app[READINESS].checked = -1e9
    r = await client.get("/readyz")
    assert r.status == 503
    assert (await r.json())["bus"] is False
    # Cached for a second: a burst of probes costs one check.
    calls = 0

    async def counting() -> bool:
        nonlocal calls
        calls += 1
        return True

    svc.bus.ping = counting  # type: ignore[method-assign]
    app[READINESS].checked = -1e9
    for _ in range(5):
        assert (await client.get("/readyz")).status == 200
    assert calls == 1
