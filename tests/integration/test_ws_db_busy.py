"""A database read that times out while answering one frame (the read pool exhausted
under load: perf7-loss.md) fails that frame with 5030 ``overloaded``, not the socket:
closing it made the client reconnect and resync everything, and a client that did not
missed messages (the bench counted them lost)."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import exc as sa_exc

from imhub.web.context import SERVICES
from tests.integration.chatkit import connect, make_user


def fail_next_reads(client: TestClient, monkeypatch: Any, n: int = 1) -> list[int]:
    """The next ``n`` reads of the store raise what SQLAlchemy's pool raises when no
    connection came in time."""
    db = client.app[SERVICES].db
    failed: list[int] = []

    def failing(real: Any) -> Any:
        async def read(*args: Any) -> Any:
            if len(failed) < n:
                failed.append(1)
                raise sa_exc.TimeoutError("QueuePool limit of size 10 overflow 10 reached, connection timed out")
            return await real(*args)
        return read

    monkeypatch.setattr(db, "read", failing(db.read))
    monkeypatch.setattr(db, "read_rows", failing(db.read_rows))
    return failed


async def test_a_read_timeout_in_the_friend_check_fails_the_message_not_the_socket(
    client: TestClient, monkeypatch: Any
) -> None:
    a, b = await make_user(client), await make_user(client)
    sock = await connect(client, a, autosync=0)
    failed = fail_next_reads(client, monkeypatch)
    await sock.send(cmd=10, dstid=b.id, media=1, content="hi", cid="c1")
    err = await sock.reply()
    assert failed == [1]
    assert (err["cmd"], err["code"], err["cid"]) == (2, 5030, "c1") and err["retry_after"] >= 1
    await sock.send(cmd=10, dstid=b.id, media=1, content="hi", cid="c1")  # the resend: answered
    assert (await sock.reply())["code"] == 4030  # not friends (the store answered this time)
    await sock.close()


async def test_a_read_timeout_in_a_request_fails_the_request_not_the_socket(
    client: TestClient, monkeypatch: Any
) -> None:
    a = await make_user(client)
    sock = await connect(client, a, autosync=0)
    fail_next_reads(client, monkeypatch)
    await sock.send(cmd=21, rid="r1")
    err = await sock.reply()
    assert (err["cmd"], err["code"], err["rid"]) == (2, 5030, "r1")
    await sock.send(cmd=21, rid="r2")
    again = await sock.recv_until(lambda f: f.get("rid") == "r2")
    assert again["cmd"] != 2
    await sock.close()
