"""The ``imhub`` command: serve, migrate, user admin."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click

from imhub.config import Settings, SettingsError, load_settings


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as exc:
        click.echo(f"imhub: {exc}", err=True)
        sys.exit(2)


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
    except SupervisorError as exc:
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
            await svc.engine.dispose()

    asyncio.run(go())


def _add_bench_commands() -> None:
    from imhub.bench.cli import bench, user_seed

    user.add_command(user_seed, "seed")
    main.add_command(bench, "bench")


_add_bench_commands()

if __name__ == "__main__":
    main()
