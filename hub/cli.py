"""The ``otkuda`` command."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
from sqlalchemy.orm import Session

from hub.app import create_app
from hub.config import load_config

T = TypeVar("T")


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
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, help="The hub's port.")
@click.option("--landing-port", default=5001, show_default=True, help="The demo landing page's port.")
@click.option("--seed-only", is_flag=True, help="Create the demo data and exit without serving.")
def demo(host: str, port: int, landing_port: int, seed_only: bool) -> None:
    """Re-create the demo agency up to now and serve the hub beside a demo landing page with the snippet."""
    import time

    from hub.demo import landing_app, landing_page, seed, serve_in_thread
    from tracking.migrate import upgrade

    hub_url = f"http://{host}:{port}"
    app = create_app({"BASE_URL": hub_url})
    upgrade(app.config["DATABASE_URL"])
    origins = [f"{host}:{landing_port}", f"localhost:{landing_port}", f"127.0.0.1:{landing_port}"]
    with app.app_context():
        from hub.extensions import session_factory

        with session_factory()() as session:
            info = seed(session, dict.fromkeys(origins))
    click.echo(
        ("Re-created" if info.replaced else "Created") + " the demo agency, its data laid out up to now."
    )
    if seed_only:
        return
    serve_in_thread(landing_app(lambda: landing_page(hub_url, info.site_key)), host, landing_port)
    click.echo(f"  Hub:          {hub_url}/  (log in as {info.email} / {info.password})")
    click.echo(f"  Client page:  {hub_url}/clients/{info.client_id}")
    click.echo(f"  Demo landing: http://{host}:{landing_port}/  (its phone number is swapped per visitor)")
    click.echo("Press Ctrl+C to stop.")
    hub_server = serve_in_thread(app, host, port)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        hub_server.shutdown()


def _run_until_signalled(make: Callable[[Any, Callable[[str], None]], Any]) -> None:
    """Configure logging and the outbox, then run a long-lived process until SIGTERM or SIGINT."""
    import signal

    from jobs.outbox import install
    from jobs.runtime import Runtime

    config = load_config()
    logging.basicConfig(level=config["LOG_LEVEL"], format="%(asctime)s %(levelname)s %(name)s %(message)s")
    install()
    proc = make(Runtime.from_config(config), lambda m: click.echo(m, err=True))
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: proc.stop())
    proc.run()


@main.command()
def scheduler() -> None:
    """Run the periodic jobs (pulls, token refresh, statistics); one runs at a time, others stand by."""
    from jobs.scheduler import SchedulerProcess

    _run_until_signalled(lambda rt, echo: SchedulerProcess(rt, echo=echo))


@main.command()
@click.option("--threads", type=int, default=None, help="Destinations served at once [WORKER_THREADS, 8].")
def worker(threads: int | None) -> None:
    """Push queued deliveries to their destinations; run as many as needed, on any host."""
    from jobs.worker import WorkerProcess

    _run_until_signalled(lambda rt, echo: WorkerProcess(rt, threads=threads, echo=echo))


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
def sync(connector: str, since, until, connection_id: int | None, chunk_days: int) -> None:
    """Backfill spend and deals of CONNECTOR from --since on."""
    from jobs.sync import backfill

    failures = backfill(
        load_config(), connector, since.date(), until.date() if until else None, connection_id, chunk_days
    )
    if failures:
        raise click.ClickException(f"{failures} part(s) failed; see the sync history")


@main.command("pool-advice")
@click.option("--client", "client_id", type=int, required=True, help="client id")
@click.option("--days", default=14, show_default=True, help="days of observed traffic to fit")
@click.option("--target", "targets", multiple=True, type=float, default=(0.95, 0.99), show_default=True)
@click.option("--max-size", default=400, show_default=True)
def pool_advice(client_id: int, days: int, targets: tuple[float, ...], max_size: int) -> None:
    """Recommend a pool size for a client from its observed traffic."""
    from tracking.db import make_engine, make_session_factory
    from tracking.pool_advice import pool_advice as advise

    engine = make_engine(load_config()["DATABASE_URL"])
    with make_session_factory(engine)() as session:
        report = advise(session, client_id, tuple(targets), days, max_size)
    engine.dispose()
    t = report.traffic
    click.echo(
        f"observed over {days} days: {report.observed_sessions} sessions ({t.sessions_per_day:.0f}/day), "
        f"{report.observed_calls} pool calls, {report.visitors_last_3_days} visitors in the last 3 days"
    )
    click.echo(
        f"call timing: {'observed' if t.call_delays else 'default'}; hold {report.hold_seconds} s, "
        f"grace {report.grace_seconds} s"
    )
    click.echo(
        "accuracy targets are relative to the best any pool can do (late callers cannot be told apart)"
    )
    rows = [(f"target {a.target:.0%}", a.size, a.result) for a in report.advice]
    rows.append(("rule of thumb (3-day visitors / 3 / 100)", report.rule_of_thumb_size, report.rule_of_thumb))
    if report.current_size:
        rows.append(("current pool", report.current_size, report.current))
    click.echo(
        f"{'':<42}{'numbers':>8}{'session acc':>13}{'channel acc':>13}{'fallback':>10}{'utilisation':>13}"
    )
    for label, size, r in rows:
        if size is None or r is None:
            click.echo(f"{label:<42}{'not reached within --max-size':>30}")
            continue
        click.echo(
            f"{label:<42}{size:>8}{r.session_accuracy:>13.1%}{r.channel_accuracy:>13.1%}"
            f"{r.fallback_rate:>10.1%}{r.utilisation:>13.0%}"
        )


@contextmanager
def _session() -> Iterator[Session]:
    app = create_app()
    with app.app_context():
        from hub.extensions import session_factory

        with session_factory()() as session:
            yield session


def _commit_or_fail(session: Session, make: Callable[[], T]) -> T:
    from tracking.accounts import InvalidAccount

    try:
        made = make()
        session.commit()
    except InvalidAccount as exc:
        session.rollback()
        raise click.UsageError(str(exc)) from None
    return made


@main.group()
def agency() -> None:
    """Agencies (each is walled off from the others)."""


@agency.command("create")
@click.argument("name")
@click.option("--admin-email", required=True, help="The agency's first admin.")
@click.password_option(envvar="OTKUDA_ADMIN_PASSWORD", help="Asked for when not given.")
def agency_create(name: str, admin_email: str, password: str) -> None:
    """Create agency NAME with its first admin user."""
    from tracking.accounts import create_agency

    with _session() as session:
        user = _commit_or_fail(session, lambda: create_agency(session, name, admin_email, password))
        click.echo(f"agency {user.agency_id} created; admin {user.email} can log in")


@main.group()
def user() -> None:
    """Users of an agency."""


@user.command("add")
@click.argument("email")
@click.option("--agency-id", type=int, required=True)
@click.option("--role", type=click.Choice(["admin", "manager", "viewer"]), required=True)
@click.option("--client-id", type=int, help="The one client a viewer sees.")
@click.option("--name", default="")
@click.password_option(envvar="OTKUDA_USER_PASSWORD", help="Asked for when not given.")
def user_add(email: str, agency_id: int, role: str, client_id: int | None, name: str, password: str) -> None:
    """Add user EMAIL to an agency with a role."""
    from tracking.accounts import add_user
    from tracking.models import Agency, Client, Role

    with _session() as session:
        found = session.get(Agency, agency_id)
        if found is None:
            raise click.UsageError(f"no agency {agency_id}")
        client = session.get(Client, client_id) if client_id is not None else None
        if client_id is not None and client is None:
            raise click.UsageError(f"no client {client_id}")

        def make() -> object:
            return add_user(session, found, email, password, Role(role), client=client, name=name)

        _commit_or_fail(session, make)
        click.echo(f"user {email.strip().lower()} added as {role}")


@main.group()
def token() -> None:
    """API tokens."""


@token.command("issue")
@click.argument("email")
@click.option("--name", default="", help="What the token is for, shown in the hub.")
@click.option("--agency-id", type=int, help="Needed when EMAIL has accounts in several agencies.")
def token_issue(email: str, name: str, agency_id: int | None) -> None:
    """Issue an API token for user EMAIL and print it (only its hash is kept)."""
    from sqlalchemy import select

    from tracking.accounts import issue_api_token
    from tracking.models import User

    with _session() as session:
        query = select(User).where(User.email == email.strip().lower())
        if agency_id is not None:
            query = query.where(User.agency_id == agency_id)
        found = session.scalars(query.limit(2)).all()
        if not found:
            raise click.UsageError(f"no user {email}")
        if len(found) > 1:
            raise click.UsageError(f"{email} has accounts in several agencies; name one with --agency-id")
        click.echo(issue_api_token(session, found[0], name))
        session.commit()


if __name__ == "__main__":
    main(prog_name="otkuda")
