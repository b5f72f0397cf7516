"""The ``imhub`` command: serve, migrate, user admin."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click

from imhub.config import Settings, settings_or_exit
from imhub.instance import InstanceError


def _settings(**overrides: Any) -> Settings:
    return settings_or_exit(**overrides)


@click.group()
def main() -> None:
    """imhub — self-hosted web instant messaging."""


@main.command()
@click.option("--host", default=None, help="Listen address (IMHUB_HOST).")
@click.option("--port", type=int, default=None, help="Listen port (IMHUB_PORT).")
@click.option("--workers", type=int, default=None, help="Worker processes (IMHUB_WORKERS).")
@click.option("--no-migrate", is_flag=True, help="Do not upgrade the database schema at start.")
def serve(host: str | None, port: int | None, workers: int | None, no_migrate: bool) -> None:
    """Run the server."""
    from imhub.server import run
    from imhub.supervisor import SupervisorError

    settings = _settings(host=host, port=port, workers=workers)
    try:
        run(settings, migrate_first=not no_migrate)
    except (SupervisorError, InstanceError) as exc:
        click.echo(f"imhub: {exc}", err=True)
        sys.exit(2)


@main.command()
def migrate() -> None:
    """Create or upgrade the database schema."""
    from imhub.store.migrate import migrate as do_migrate

    settings = _settings()
    asyncio.run(do_migrate(settings.effective_database_url))
    click.echo(f"database at {settings.effective_database_url} is up to date")


@main.group()
def user() -> None:
    """Manage accounts."""


@user.command("create")
@click.option("--mobile", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--nickname", default="")
def user_create(mobile: str, password: str, nickname: str) -> None:
    """Create an account."""
    from imhub.app import build_services
    from imhub.errors import ApiError

    async def go() -> None:
        svc = build_services(_settings())
        try:
            u = await svc.accounts.register(mobile=mobile, passwd=password, nickname=nickname)
            click.echo(f"created user {u.id} ({u.mobile})")
        except ApiError as exc:
            click.echo(f"imhub: {exc.msg}", err=True)
            sys.exit(1)
        finally:
            await svc.db.dispose()

    asyncio.run(go())


@main.group()
@click.option("--url", default=None, help="Server base URL (default http://IMHUB_HOST:IMHUB_PORT).")
@click.pass_context
def admin(ctx: click.Context, url: str | None) -> None:
    """Operate a running server (needs IMHUB_ADMIN_TOKEN, the server's own)."""
    from imhub.admin import AdminClient

    settings = _settings()
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host  # noqa: S104
    ctx.obj = AdminClient(url or f"http://{host}:{settings.port}", settings.admin_token.get_secret_value())


def _admin_call(ctx: click.Context, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    from imhub.admin import AdminError

    try:
        return ctx.obj.call(method, path, body)
    except AdminError as exc:
        click.echo(f"imhub admin: {exc}", err=True)
        sys.exit(1)


@admin.command("online")
@click.pass_context
def admin_online(ctx: click.Context) -> None:
    """List the users online on any worker or node."""
    data = _admin_call(ctx, "GET", "/admin/online")
    for uid in data["users"]:
        click.echo(uid)
    click.echo(f"{data['count']} online", err=True)


@admin.command("kick")
@click.argument("user_id", type=int)
@click.pass_context
def admin_kick(ctx: click.Context, user_id: int) -> None:
    """Close a user's connections everywhere (they may reconnect)."""
    data = _admin_call(ctx, "POST", f"/admin/users/{user_id}/kick")
    click.echo(f"user {user_id}: connections closed" if data["was_online"] else f"user {user_id} was not online")


@admin.command("ban")
@click.argument("user_id", type=int)
@click.pass_context
def admin_ban(ctx: click.Context, user_id: int) -> None:
    """Ban an account: no login, every token revoked, every socket closed."""
    _admin_call(ctx, "POST", f"/admin/users/{user_id}/ban")
    click.echo(f"user {user_id} banned")


@admin.command("unban")
@click.argument("user_id", type=int)
@click.pass_context
def admin_unban(ctx: click.Context, user_id: int) -> None:
    """Lift a ban (the user logs in again)."""
    _admin_call(ctx, "POST", f"/admin/users/{user_id}/unban")
    click.echo(f"user {user_id} unbanned")


@admin.command("notice")
@click.option("--user", "user_id", type=int, default=None, help="Send to this user's connections (live, not stored).")
@click.option("--group", "group_id", type=int, default=None, help="Store in this group's stream (media 10).")
@click.argument("text")
@click.pass_context
def admin_notice(ctx: click.Context, user_id: int | None, group_id: int | None, text: str) -> None:
    """Send a system message to a user or a group."""
    if (user_id is None) == (group_id is None):
        click.echo("imhub admin: give exactly one of --user or --group", err=True)
        sys.exit(1)
    if user_id is not None:
        data = _admin_call(ctx, "POST", f"/admin/users/{user_id}/notice", {"text": text})
        if not data["delivered"]:
            click.echo(f"imhub admin: user {user_id} is not online; the notice was not delivered", err=True)
            sys.exit(1)
        click.echo(f"notice sent to user {user_id}")
    else:
        _admin_call(ctx, "POST", f"/admin/groups/{group_id}/notice", {"text": text})
        click.echo(f"notice stored in group {group_id}")


@admin.command("stats")
@click.pass_context
def admin_stats(ctx: click.Context) -> None:
    """Show the answering worker's figures and cluster-wide counts."""
    data = _admin_call(ctx, "GET", "/admin/stats")
    width = max(len(k) for k in data)
    for key, value in data.items():
        click.echo(f"{key:<{width}}  {value}")


def _add_bench_commands() -> None:
    from imhub.bench.cli import bench, user_seed

    user.add_command(user_seed, "seed")
    main.add_command(bench, "bench")


_add_bench_commands()

if __name__ == "__main__":
    main()
