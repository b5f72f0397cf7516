"""Slowloris (issue #16 item 7): sockets that trickle a request head, or complete the
WebSocket upgrade and then never complete a frame, are closed after a bound instead
of being held (an hour, before: aiohttp's own keep-alive default), and the server
answers others meanwhile. Raw sockets against a real ``imhub serve``."""

from __future__ import annotations

import base64
import json
import os
import socket
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest

from tests.serverproc import ServerProcess

HEAD_TIMEOUT = 2.0
IDLE_TIMEOUT = 2.0
# Generous: the bound is what matters, not its precision (close handshake wait: 5 s).
MARGIN = 8.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        tmp_path_factory.mktemp("slowloris"), IMHUB_LOG_LEVEL="warning",
        IMHUB_HTTP_HEAD_TIMEOUT_SECONDS=str(HEAD_TIMEOUT), IMHUB_IDLE_TIMEOUT_SECONDS=str(IDLE_TIMEOUT),
        IMHUB_PING_INTERVAL_SECONDS="1",
    ).start()
    try:
        yield proc
    finally:
        proc.stop()


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server has closed (EOF or reset); drains whatever it sent."""
    sock.setblocking(False)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def trickle_until_closed(socks: list[socket.socket], drip: bytes, deadline: float) -> list[socket.socket]:
    """Send ``drip`` on every open socket every 0.3 s until each is closed or the
    deadline passes; returns the ones still open."""
    open_ = list(socks)
    while open_ and time.monotonic() < deadline:
        for s in list(open_):
            if closed_by_server(s):
                open_.remove(s)
                continue
            try:
                s.sendall(drip)
            except OSError:
                open_.remove(s)
        time.sleep(0.3)
    return open_


def healthy(server: ServerProcess) -> bool:
    with urllib.request.urlopen(server.url + "/healthz", timeout=5) as resp:
        return bool(resp.status == 200)


def test_trickled_request_heads_are_closed(server: ServerProcess) -> None:
    socks = []
    for _ in range(30):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        socks.append(s)
    try:
        assert healthy(server)  # others are served meanwhile
        still_open = trickle_until_closed(socks, b"X-Slow: 1\r\n", time.monotonic() + HEAD_TIMEOUT + MARGIN)
        assert not still_open, f"{len(still_open)} of 30 trickling sockets still open"
        assert healthy(server)
    finally:
        for s in socks:
            s.close()


def test_keep_alive_connection_trickling_its_next_head_is_closed(server: ServerProcess) -> None:
    s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert s.recv(65536).startswith(b"HTTP/1.1 200")
        s.sendall(b"GET /healthz HTTP/1.1\r\n")
        assert not trickle_until_closed([s], b"X-Slow: 1\r\n", time.monotonic() + HEAD_TIMEOUT + MARGIN)
    finally:
        s.close()


def _token(server: ServerProcess) -> tuple[int, str]:
    def post(path: str, **data: str) -> dict[str, object]:
        body = urllib.parse.urlencode(data).encode()
        with urllib.request.urlopen(urllib.request.Request(server.url + path, data=body), timeout=10) as resp:
            result: dict[str, object] = json.loads(resp.read())
            return result

    post("/user/register", mobile="13412345678", passwd="secret12")
    user = post("/user/login", mobile="13412345678", passwd="secret12")["data"]
    assert isinstance(user, dict)
    return int(user["id"]), str(user["token"])


def test_upgrade_whose_first_frame_never_completes_is_closed(server: ServerProcess) -> None:
    user_id, token = _token(server)
    s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall(
            f"GET /chat?id={user_id}&token={token}&autosync=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        assert s.recv(4096).startswith(b"HTTP/1.1 101")
        # A masked text frame announcing 1000 bytes, then a byte at a time: never complete.
        s.sendall(bytes((0x81, 0x80 | 126)) + (1000).to_bytes(2, "big") + os.urandom(4))
        assert not trickle_until_closed([s], b"x", time.monotonic() + IDLE_TIMEOUT + MARGIN)
    finally:
        s.close()
