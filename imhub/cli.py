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
def apikey() -> None:
    """Manage the server API's keys (/server/v1/, docs/server-api.md)."""


def _with_database(fn: Any) -> Any:
    """Run ``fn(settings, Database)`` against the configured database, then close it."""
    from imhub.store.db import Database

    settings = _settings()

    async def go() -> Any:
        db = Database(settings.effective_database_url)
        try:
            return await fn(settings, db)
        finally:
            await db.dispose()

    return asyncio.run(go())


def _with_keys(fn: Any) -> Any:
    """Run ``fn(ApiKeyService)`` against the configured database."""
    from imhub.services.apikeys import ApiKeyService
    from imhub.store.integration import IntegrationStore

    return _with_database(lambda settings, db: fn(ApiKeyService(settings, IntegrationStore(db))))


def _refused(exc: Exception) -> None:
    click.echo(f"imhub: {getattr(exc, 'msg', exc)}", err=True)
    sys.exit(1)


@apikey.command("create")
@click.option("--name", required=True, help="What the key is for (shown in listings and the audit log).")
@click.option("--scopes", default="users,messages,groups,read", show_default=True,
              help="Comma-separated: users, messages, groups, read.")
def apikey_create(name: str, scopes: str) -> None:
    """Create a key; it is printed once and never shown again."""
    from imhub.errors import Refused

    try:
        row, key = _with_keys(lambda keys: keys.create(name, scopes))
    except Refused as exc:
        _refused(exc)
        return
    click.echo(f"created API key {row.id} ({row.name}, scopes {','.join(sorted(row.scopes))})", err=True)
    click.echo("store it now, it is not shown again:", err=True)
    click.echo(key)


@apikey.command("list")
def apikey_list() -> None:
    """List the keys (id, name, prefix, scopes, state); never the keys themselves."""
    for row in _with_keys(lambda keys: keys.keys()):
        state = "revoked" if row.revoked else "live"
        click.echo(f"{row.id}\t{row.name}\t{row.prefix}…\t{','.join(sorted(row.scopes))}\t{state}")


@apikey.command("revoke")
@click.argument("key_id", type=int)
def apikey_revoke(key_id: int) -> None:
    """Revoke a key: calls with it are refused from now on."""
    from imhub.errors import Refused

    try:
        _with_keys(lambda keys: keys.revoke(key_id))
    except Refused as exc:
        _refused(exc)
    click.echo(f"API key {key_id} revoked")


@main.group()
def webhook() -> None:
    """Manage webhook endpoints (docs/server-api.md "Webhooks")."""


def _with_webhooks(fn: Any) -> Any:
    """Run ``fn(WebhookService)`` against the configured database."""
    from imhub.services.webhooks import WebhookService
    from imhub.store.webhooks import WebhookStore

    return _with_database(lambda settings, db: fn(WebhookService(settings, WebhookStore(db), "cli")))


@webhook.command("add")
@click.argument("url")
@click.option("--events", default="*", show_default=True,
              help="Comma-separated: message.stored, message.recalled, user.online, user.offline, "
              "friend.request, group.member; * for all.")
@click.option("--secret", default="", help="Signing secret (16-128 characters); default: a random one.")
def webhook_add(url: str, events: str, secret: str) -> None:
    """Register an endpoint; its signing secret is printed once."""
    from imhub.errors import Refused

    try:
        endpoint, secret = _with_webhooks(lambda hooks: hooks.add(url, events, secret))
    except Refused as exc:
        _refused(exc)
        return
    click.echo(f"webhook {endpoint.id}: {endpoint.url} ({','.join(sorted(endpoint.events))})", err=True)
    click.echo("signing secret, store it now, it is not shown again:", err=True)
    click.echo(secret)


@webhook.command("list")
def webhook_list() -> None:
    """List the endpoints (id, URL, events); never their secrets."""
    for ep in _with_webhooks(lambda hooks: hooks.endpoints()):
        click.echo(f"{ep.id}\t{ep.url}\t{','.join(sorted(ep.events))}")


@webhook.command("remove")
@click.argument("endpoint_id", type=int)
def webhook_remove(endpoint_id: int) -> None:
    """Stop sending to an endpoint (what it had pending is dropped)."""
    from imhub.errors import Refused

    try:
        _with_webhooks(lambda hooks: hooks.remove(endpoint_id))
    except Refused as exc:
        _refused(exc)
    click.echo(f"webhook {endpoint_id} removed")


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
