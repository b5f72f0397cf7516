"""``imhub user seed``, ``imhub bench connect|fanout|chat|mixed`` and ``imhub bench
report`` (click commands, attached to the main command group by :mod:`imhub.cli`).

Server processes import this module (through :mod:`imhub.cli`): it must stay light,
so the runner, the workers and the report (matplotlib) are imported only when used."""

from __future__ import annotations

import asyncio
import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from imhub.bench.seed import DEFAULT_PASSWORD, DEFAULT_PREFIX
from imhub.bench.summary import summary_lines
from imhub.config import settings_or_exit


@click.command("seed")
@click.option("--count", type=click.IntRange(1, 1_000_000), required=True, help="Users to create.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="JSON-lines file of {id, token, mobile} (+ pairs and groups) for the load generator.")
@click.option("--password", default=DEFAULT_PASSWORD, show_default=True, help="Password of every seeded user.")
@click.option("--prefix", default=DEFAULT_PREFIX, show_default=True, help="Mobile number prefix.")
@click.option("--pairs", is_flag=True, help="Befriend user 2k with user 2k+1.")
@click.option("--group-size", type=click.IntRange(0), default=0, help="Create groups of this many members.")
@click.option("--groups", type=click.IntRange(0), default=None, help="How many groups (default: as many as fit).")
def user_seed(count: int, out: Path, password: str, prefix: str, pairs: bool, group_size: int,
              groups: int | None) -> None:
    """Bulk-create users with tokens (and friend pairs / groups) for benchmarks."""
    from imhub.bench.seed import seed
    from imhub.store.engine import create_engine
    from imhub.store.migrate import migrate

    settings = settings_or_exit()
    url = settings.effective_database_url

    async def go() -> Any:
        await migrate(url)
        engine = create_engine(url, settings.db_pool_size)
        try:
            return await seed(engine, count, password=password, prefix=prefix, pairs=pairs, group_size=group_size,
                              groups=groups, token_ttl_seconds=settings.token_ttl_seconds)
        finally:
            await engine.dispose()

    t = time.monotonic()
    try:
        seeded = asyncio.run(go())
    except ValueError as exc:
        click.echo(f"imhub: {exc}", err=True)
        sys.exit(2)
    seeded.write(out)
    click.echo(f"seeded {len(seeded.users)} users, {len(seeded.pairs)} pairs, {len(seeded.groups)} groups "
               f"in {time.monotonic() - t:.1f}s -> {out}")


def _common(f: Callable[..., Any]) -> Callable[..., Any]:
    opts = [
        click.option("--spawn", is_flag=True, help="Start `imhub serve` with a fresh data dir and seed it."),
        click.option("--url", default="", help="An existing server (loopback only), e.g. http://127.0.0.1:8080."),
        click.option("--server-pid", "server_pids", type=int, multiple=True,
                     help="Pid(s) of the existing server (descendants are counted too)."),
        click.option("--users", "users_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="Seed file from `imhub user seed` (with --url)."),
        click.option("--server-workers", type=click.IntRange(1, 64), default=1, show_default=True,
                     help="--spawn: IMHUB_WORKERS."),
        click.option("--server-nodes", type=click.IntRange(1, 8), default=1, show_default=True,
                     help="--spawn: servers (nodes) on one database and Redis bus; users alternate between them."),
        click.option("--server-env", multiple=True, help="--spawn: extra KEY=VALUE for the server."),
        click.option("--server-log-level", default="warning", show_default=True,
                     type=click.Choice(["debug", "info", "warning", "error"]), help="--spawn: IMHUB_LOG_LEVEL."),
        click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
                     help="--spawn: data directory (default: a new temporary one)."),
        click.option("--workers", type=click.IntRange(0, 64), default=0,
                     help="Client processes (default: one per --per-worker connections)."),
        click.option("--per-worker", type=click.IntRange(1, 19_000), default=15_000, show_default=True),
        click.option("--source-ips", type=int, default=-1,
                     help="Spread clients over 127.0.0.2.. (default: as needed at --per-ip each; 0: off)."),
        click.option("--per-ip", type=click.IntRange(1, 28_000), default=14_000, show_default=True),
        click.option("--connect-rate", type=float, default=2000.0, show_default=True,
                     help="Handshakes started per second (all workers)."),
        click.option("--concurrency", type=click.IntRange(1), default=100, show_default=True,
                     help="Handshakes in flight (all workers)."),
        click.option("--autosync/--no-autosync", default=False, show_default=True,
                     help="Connect with autosync=1 (the backlog push of old clients)."),
        click.option("--heartbeat", type=float, nargs=2, default=(20.0, 25.0), show_default=True,
                     help="Heartbeat (cmd 0) interval range in seconds; 0 0 turns them off."),
        click.option("--hold", type=float, default=0.0, help="Seconds to hold the connections before sending."),
        click.option("--ack-timeout", type=float, default=60.0, show_default=True),
        click.option("--settle-timeout", type=float, default=60.0, show_default=True,
                     help="Most seconds to wait for deliveries after the last ack."),
        click.option("--max-seconds", type=float, default=900.0, show_default=True, help="Hard limit of the run."),
        click.option("--password", default=DEFAULT_PASSWORD, help="--spawn: password of the seeded users."),
        click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path),
                     help="Write the full result here."),
        click.option("--report", "report_out", type=click.Path(dir_okay=False, path_type=Path),
                     help="Write an HTML report with plots here (needs matplotlib: pip install 'imhub[report]')."),
        click.option("--quiet", is_flag=True, help="No live display."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _run(scenario: str, **kw: Any) -> None:
    from imhub.bench.runner import Options, run

    env: dict[str, str] = {}
    for item in kw.pop("server_env", ()):
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--server-env")
        env[key] = value
    kw["server_pids"] = list(kw["server_pids"])
    kw["heartbeat"] = tuple(kw["heartbeat"])
    if "storm_backoff" in kw:
        kw["storm"] = kw["storm"] or ""
        kw["storm_base"], kw["storm_cap"] = kw.pop("storm_backoff")
    report_out: Path | None = kw.pop("report_out", None)
    o = Options(scenario=scenario, server_env=env, **kw)
    if o.spawn and o.url:
        raise click.UsageError("give either --spawn or --url")
    if report_out is not None:
        _check_report_deps()
    result, code = run(o)
    summary = summary_lines(result)
    for line in summary:
        click.echo(line)
    if "error" in result:
        click.echo(f"error: {result['error']}", err=True)
    if report_out is not None:
        from imhub.bench.report import write_report

        try:
            write_report(result, report_out)
        except Exception as exc:  # the run's own outcome still decides below
            click.echo(f"report failed: {exc!r}", err=True)
            code = code or 3
        else:
            click.echo(f"report: {report_out}", err=True)
    # The verification line stays the last line of the output.
    click.echo(result["report"])
    sys.exit(code)


def _check_report_deps() -> None:
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise click.UsageError("--report needs matplotlib: pip install 'imhub[report]'")


@click.group()
def bench() -> None:
    """Load generator and delivery verification (docs/benchmarks.md)."""


def _scenario(name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    def wrap(f: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(f)
        def cmd(**kw: Any) -> None:
            _run(name, **kw)

        return cmd

    return wrap


@bench.command("connect")
@_common
@click.option("--count", "users", type=click.IntRange(1, 500_000), default=1000, show_default=True,
              help="Users online at once.")
@click.option("--storm", type=click.Choice(["drop", "kill"]), default=None,
              help="After the hold, a reconnect storm: every client aborts its socket at once (drop), or the "
                   "server's workers are SIGKILLed (kill); all come back with backoff and jitter.")
@click.option("--storm-backoff", type=float, nargs=2, default=(0.5, 30.0), show_default=True,
              help="Reconnect backoff base and cap in seconds (equal jitter, as docs/protocol.md's clients).")
@click.option("--storm-concurrency", type=click.IntRange(1), default=1000, show_default=True,
              help="Reconnect handshakes in flight at most (all workers).")
@click.option("--storm-timeout", type=float, default=300.0, show_default=True,
              help="Seconds to wait for every client to be back.")
@_scenario("connect")
def connect(**kw: Any) -> None:
    """N users online (ramp, heartbeats, hold); server memory and handshake cost;
    with --storm, how fast all of them come back after losing their sockets at once."""


@bench.command("fanout")
@_common
@click.option("--group-size", type=click.IntRange(2, 200_000), default=1000, show_default=True)
@click.option("--messages", type=click.IntRange(1), default=50, show_default=True,
              help="Messages per sender, back to back (the server allows a burst of 60 per connection).")
@click.option("--senders", type=click.IntRange(1), default=1, show_default=True)
@_scenario("fanout")
def fanout(**kw: Any) -> None:
    """A group of M online members; senders send K messages back to back."""


@bench.command("chat")
@_common
@click.option("--pairs", type=click.IntRange(1, 100_000), default=500, show_default=True)
@click.option("--rate", type=float, default=1000.0, show_default=True, help="Messages per second, all pairs.")
@click.option("--duration", type=float, default=10.0, show_default=True, help="Seconds of sending.")
@click.option("--warmup", type=click.FloatRange(0), default=0.0, show_default=True,
              help="Also report latencies without the messages sent in the first N seconds (all are still "
                   "verified; the plain figures keep every sample).")
@_scenario("chat")
def chat(**kw: Any) -> None:
    """1:1 friend pairs sending at a target rate; ack and send->receive latency."""


@bench.command("mixed")
@_common
@click.option("--count", "users", type=click.IntRange(2, 200_000), default=1000, show_default=True,
              help="Users online at once (heartbeats on).")
@click.option("--chat-fraction", type=click.FloatRange(0, 1), default=0.2, show_default=True,
              help="Share of the online users chatting 1:1, in friend pairs.")
@click.option("--chat-rate", type=click.FloatRange(0), default=100.0, show_default=True,
              help="1:1 messages per second, all pairs.")
@click.option("--groups", type=click.IntRange(0, 10_000), default=2, show_default=True,
              help="Groups receiving messages (members among the online users).")
@click.option("--group-size", type=click.IntRange(2, 200_000), default=100, show_default=True)
@click.option("--group-rate", type=click.FloatRange(0), default=10.0, show_default=True,
              help="Group messages per second, all groups.")
@click.option("--group-senders", type=click.IntRange(1), default=2, show_default=True,
              help="Members of each group who send.")
@click.option("--duration", type=float, default=30.0, show_default=True, help="Seconds of sending.")
@click.option("--warmup", type=click.FloatRange(0), default=0.0, show_default=True,
              help="Also report latencies without the messages sent in the first N seconds (all are still "
                   "verified; the plain figures keep every sample).")
@_scenario("mixed")
def mixed(**kw: Any) -> None:
    """Everything at once: N online with heartbeats, 1:1 pairs and groups at rates."""


@bench.command("report")
@click.argument("result_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The HTML file to write (self-contained: plots embedded as PNG).")
def report(result_file: Path, out: Path) -> None:
    """An HTML report with plots from a result file written by --json."""
    import orjson

    _check_report_deps()
    from imhub.bench.report import write_report

    try:
        result = orjson.loads(result_file.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise click.BadParameter(f"not a JSON result: {exc}", param_hint="RESULT_FILE") from None
    if not isinstance(result, dict) or "scenario" not in result:
        raise click.BadParameter("not an `imhub bench --json` result", param_hint="RESULT_FILE")
    write_report(result, out)
    click.echo(f"report: {out}")
