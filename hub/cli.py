"""The ``otkuda`` command."""

from __future__ import annotations

import click

from hub.app import create_app
from hub.config import load_config


@click.group()
def main() -> None:
    """Otkuda: call tracking and marketing analytics hub."""


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION."""
    from tracking.migrate import upgrade

    url = load_config()["DATABASE_URL"]
    upgrade(url, revision)
    click.echo(f"database at {revision}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
def serve(host: str, port: int) -> None:
    """Run the hub with the built-in server (for trying it out; use gunicorn wsgi:app in production)."""
    create_app().run(host=host, port=port)


if __name__ == "__main__":
    main()
