"""The ``otkuda`` command."""

from __future__ import annotations

import logging

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


@main.command()
def scheduler() -> None:
    """Run the job scheduler (deliveries, pulls, token refresh); only one runs at a time."""
    import signal

    from jobs.outbox import install
    from jobs.runtime import Runtime
    from jobs.scheduler import SchedulerProcess

    config = load_config()
    logging.basicConfig(
        level=config.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    install()
    proc = SchedulerProcess(Runtime.from_config(config), echo=lambda m: click.echo(m, err=True))
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: proc.stop())
    proc.run()


@main.command()
@click.argument("connector")
@click.option(
    "--since", type=click.DateTime(formats=["%Y-%m-%d"]), required=True, help="First day, YYYY-MM-DD."
)
@click.option(
    "--until", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, help="Last day (default today)."
)
@click.option("--connection", "connection_id", type=int, default=None, help="Only this connection.")
@click.option("--chunk-days", default=7, show_default=True)
def sync(connector: str, since, until, connection_id: int | None, chunk_days: int) -> None:  # type: ignore[no-untyped-def]
    """Backfill spend and deals of CONNECTOR from --since on."""
    from jobs.sync import backfill

    failures = backfill(
        load_config(), connector, since.date(), until.date() if until else None, connection_id, chunk_days
    )
    if failures:
        raise click.ClickException(f"{failures} part(s) failed; see the sync history")


if __name__ == "__main__":
    main()
