"""deploy/nginx.conf with a real nginx in front of two imhub nodes (one data directory,
one Redis bus): wss chat through it, /asset/ and /mnt/ served by nginx itself (they
still answer with every node stopped), HTTP/2 over TLS, upload size and headers.

nginx runs as a non-daemon child with a temporary prefix; only ports and paths of the
shipped config are substituted (see ``render``)."""

from __future__ import annotations

import asyncio
import io
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import REDIS_URL, port_open, service_unavailable
from tests.integration.chatkit import Socket, befriend, connect, is_msg, make_user
from tests.media.media_samples import PDF, colour_video
from tests.serverproc import ServerProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "deploy" / "nginx.conf"
STATIC = ROOT / "imhub" / "web" / "static" / "app"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

pytestmark = pytest.mark.slow


def render(conf: str, *, prefix: Path, https: int, http: int, upstreams: list[int], static: Path, media: Path,
           cert: Path, key: Path) -> str:
    """The shipped config with this test's ports and paths. Each substitution must hit,
    so the test notices when deploy/nginx.conf changes shape."""

    def sub(pattern: str, repl: str, text: str, count: int = 0) -> str:
        out, n = re.subn(pattern, repl, text, count=count, flags=re.M)
        assert n, f"deploy/nginx.conf no longer matches {pattern!r}"
        return out

    user = "user root;" if os.geteuid() == 0 else ""
    conf = sub(r"^user .*;$", user, conf)
    conf = sub(r"^worker_processes .*;$", "worker_processes 1;", conf)
    conf = sub(r"^worker_rlimit_nofile .*;$", "worker_rlimit_nofile 4096;", conf)
    conf = sub(r"worker_connections \d+;", "worker_connections 1024;", conf)
    conf = sub(r"^pid .*;$", f"pid {prefix}/nginx.pid;", conf)
    conf = sub(r"^error_log .*;$", f"error_log {prefix}/error.log info;", conf)
    conf = sub(r"access_log \S+ imhub;", f"access_log {prefix}/access.log imhub;", conf)
    conf = sub(r"^http \{$", "http {\n" + "".join(
        f"    {d}_temp_path {prefix}/{d};\n" for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")), conf)
    conf = sub(r"^(\s*)upstream imhub \{\n(?:\s*(?:least_conn;|server .*)\n)+", "\\1upstream imhub {\n    least_conn;\n"
               + "".join(f"        server 127.0.0.1:{p} max_fails=3 fail_timeout=10s;\n" for p in upstreams), conf)
    conf = sub(r"^\s*listen \[::\].*\n", "", conf)
    conf = sub(r"listen 80;", f"listen 127.0.0.1:{http};", conf)
    conf = sub(r"listen 443 ssl http2;", f"listen 127.0.0.1:{https} ssl http2;", conf)
    conf = sub(r"ssl_certificate .*;", f"ssl_certificate {cert};", conf)
    conf = sub(r"ssl_certificate_key .*;", f"ssl_certificate_key {key};", conf)
    conf = sub(r"alias /opt/imhub/\S+/static/app/;", f"alias {static}/;", conf)
    conf = sub(r"alias /var/lib/imhub/media/", f"alias {media}/", conf)
    return conf


def self_signed(dirpath: Path) -> tuple[Path, Path]:
    cert, key = dirpath / "cert.pem", dirpath / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


def wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nginx exited with {proc.returncode}:\n{log.read_text() if log.exists() else ''}")
        if port_open("127.0.0.1", port):
            return
        time.sleep(0.05)
    raise RuntimeError("nginx did not listen")


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    host_port = REDIS_URL.split("//", 1)[1].split("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    if not port_open(host, int(port)):
        service_unavailable("Redis", f"nothing listens on {host_port}")
    data = tmp_path / "data"  # shared: one SQLite database and one media directory
    # Behind nginx as deploy/systemd/imhub.env.example runs it: the proxy's X-Real-IP and
    # X-Forwarded-Proto are trusted (the browser's https Origin matches the https it used).
    env = {"IMHUB_BUS": "redis", "IMHUB_REDIS_URL": REDIS_URL, "IMHUB_REDIS_PREFIX": f"t{uuid.uuid4().hex[:10]}",
           "IMHUB_TRUST_X_REAL_IP": "true", "IMHUB_MEDIA_FILE_KINDS": "pdf"}
    started: list[ServerProcess] = []
    try:
        for _ in range(2):
            started.append(ServerProcess(data, **env).start())
        yield started
    finally:
        for n in started:
            n.stop()


@pytest.fixture
def static_dir(tmp_path: Path) -> Path:
    """The built web client when present, else a stand-in with one hashed file."""
    if any(STATIC.glob("assets/*.js")):
        return STATIC
    d = tmp_path / "static"
    (d / "assets").mkdir(parents=True)
    (d / "assets" / "index-Ab12Cd34.js").write_text("console.log('imhub')\n")
    return d


def png_bytes() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


async def test_nginx_in_front_of_two_nodes(tmp_path: Path, nodes: list[ServerProcess], static_dir: Path) -> None:
    if not Path(NGINX).exists():
        service_unavailable("nginx", f"{NGINX} not installed (make test installs it)")
    if shutil.which("openssl") is None:
        service_unavailable("openssl", "not installed")
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    cert, key = self_signed(prefix)
    https, http = free_port(), free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(render(CONF.read_text(), prefix=prefix, https=https, http=http,
                           upstreams=[n.port for n in nodes], static=static_dir,
                           media=nodes[0].data_dir / "media", cert=cert, key=key))
    log = prefix / "error.log"
    check = subprocess.run([NGINX, "-t", "-p", str(prefix), "-c", str(conf)], capture_output=True, timeout=30,
                           check=False)
    assert check.returncode == 0, check.stderr.decode()
    proc = subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_port(https, proc, log)
        base = f"https://127.0.0.1:{https}"
        insecure = aiohttp.TCPConnector(ssl=False)
        async with aiohttp.ClientSession(base_url=base, connector=insecure) as web:
            # --- the API and a wss chat through nginx, users spread over both nodes ------
            a, b = await make_user(web), await make_user(web)  # type: ignore[arg-type]
            await befriend(web, a, b)  # type: ignore[arg-type]
            sa = await connect(web, a, autosync=0)  # type: ignore[arg-type]
            sb = await connect(web, b, autosync=0)  # type: ignore[arg-type]
            await sa.send(cmd=10, dstid=b.id, media=1, content="through nginx", cid="n1")
            assert (await sa.reply())["cmd"] == 1
            assert (await sb.recv_until(is_msg))["content"] == "through nginx"
            await sa.close()
            await sb.close()
            # A browser's Origin matches: nginx passes Host with its port.
            ws = await web.ws_connect("/chat", params={"id": str(a.id), "token": a.token, "autosync": "0", "v": "2"},
                                      headers={"Origin": base})
            await Socket(ws).ready()  # a heartbeat round trip: the socket is open and served
            await ws.close()
            async with web.get("/chat", params={"id": str(a.id), "token": a.token},
                               headers={"Origin": "https://evil.example", "Upgrade": "websocket",
                                        "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
                                        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}) as r:
                assert r.status == 403
            # nginx logged those /chat requests without the query string's token.
            access = (prefix / "access.log").read_text()
            assert "/chat" in access and a.token not in access

            # --- an upload through nginx (body above nginx's 1 MiB default) ---------------
            form = aiohttp.FormData()
            form.add_field("file", png_bytes() + b"", filename="x.png", content_type="image/png")
            async with web.post("/attach/upload", data=form, headers=a.auth) as r:
                body = await r.json()
            assert body["code"] == 0, body
            media_path = body["data"]
            assert media_path.startswith("/mnt/")
            uploaded = {}
            for name, data in (("a.pdf", PDF), ("clip.mp4", colour_video(seconds=0.5))):
                form = aiohttp.FormData()
                form.add_field("file", data, filename=name)
                async with web.post("/attach/upload", data=form, headers=a.auth) as r:
                    body = await r.json()
                assert body["code"] == 0, body
                uploaded[name] = body["data"]
            # A download under the file message's name: nginx hands it to the app.
            async with web.get(uploaded["a.pdf"], params={"name": "季度.pdf"}) as r:
                assert r.status == 200 and await r.read() == PDF
                named = "attachment; filename=\"__.pdf\"; filename*=UTF-8''%E5%AD%A3%E5%BA%A6.pdf"
                assert r.headers["Content-Disposition"] == named
                assert r.headers["X-Content-Type-Options"] == "nosniff"
            big = aiohttp.FormData()
            big.add_field("file", os.urandom(2 * 1024 * 1024), filename="x.bin")
            async with web.post("/attach/upload", data=big, headers=a.auth) as r:
                assert r.status != 413 or "nginx" not in (await r.text()), "client_max_body_size below the app's caps"

            asset = next(p for p in static_dir.glob("assets/*") if p.is_file())
            asset_path = "/asset/" + asset.relative_to(static_dir).as_posix()

            # --- /metrics is for this host only: another address (127.0.0.2) gets a 403 ---
            async with web.get("/metrics") as r:
                assert r.status == 200 and "imhub_" in await r.text()
            elsewhere = aiohttp.TCPConnector(ssl=False, local_addr=("127.0.0.2", 0))
            async with aiohttp.ClientSession(base_url=base, connector=elsewhere) as other:
                async with other.get("/metrics") as r:
                    assert r.status == 403
                async with other.get("/healthz") as r:
                    assert r.status == 200

        # --- static and media come from nginx itself: stop every node first --------------
        for n in nodes:
            n.stop()
        async with aiohttp.ClientSession(base_url=base, connector=aiohttp.TCPConnector(ssl=False)) as web:
            async with web.get(asset_path) as r:
                assert r.status == 200
                assert await r.read() == asset.read_bytes()
                assert r.headers["Server"] == "nginx"
                assert r.headers["X-Content-Type-Options"] == "nosniff"
                assert "immutable" in r.headers["Cache-Control"]
            async with web.get("/asset/index.html") as r:
                assert r.status == 404
            async with web.get(media_path) as r:
                assert r.status == 200
                assert r.headers["Content-Type"] == "image/png"
                assert r.headers["X-Content-Type-Options"] == "nosniff"
                assert "sandbox" in r.headers["Content-Security-Policy"]
                assert (await r.read())[:8] == b"\x89PNG\r\n\x1a\n"
            async with web.get(uploaded["clip.mp4"]) as r:  # video plays inline
                assert r.status == 200 and r.headers["Content-Type"] == "video/mp4"
                assert "Content-Disposition" not in r.headers and "sandbox" in r.headers["Content-Security-Policy"]
            async with web.get(uploaded["a.pdf"]) as r:  # a file without ?name=: nginx, stored name
                stored = uploaded["a.pdf"].rsplit("/", 1)[1]
                assert r.status == 200 and r.headers["Server"] == "nginx" and await r.read() == PDF
                assert r.headers["Content-Disposition"] == f'attachment; filename="{stored}"'
                assert r.headers["Content-Type"] == "application/pdf"
                assert r.headers["X-Content-Type-Options"] == "nosniff"
            async with web.get("/mnt/imhub.db") as r:
                assert r.status == 404  # only generated media names, never another file
            async with web.get("/mnt/" + "0" * 32 + ".png") as r:
                assert r.status == 404
            async with web.get("/openapi.json") as r:
                assert r.status == 502  # the app really is down

        # --- HTTP/2 on the client side ---------------------------------------------------
        if shutil.which("curl"):
            out = subprocess.run(["curl", "--http2", "-k", "-sS", "-o", "/dev/null", "-w", "%{http_version}",
                                  base + asset_path], capture_output=True, text=True, timeout=30, check=False)
            assert out.stdout == "2", out.stderr
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        with socket.create_connection(("127.0.0.1", https), timeout=5) as raw, \
                ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.selected_alpn_protocol() == "h2"
        # Plain HTTP redirects to HTTPS.
        async with aiohttp.ClientSession() as plain, plain.get(f"http://127.0.0.1:{http}/", allow_redirects=False) as r:
            assert r.status == 301
            assert r.headers["Location"].startswith("https://")
    finally:
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        await asyncio.sleep(0)
