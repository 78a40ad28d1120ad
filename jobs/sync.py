"""``otkuda sync``: backfill spend and deals for one connector, with a progress bar."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import click

from jobs.outbox import install
from jobs.providers import capabilities
from jobs.pulls import days, pull_deals, pull_spend, sources
from jobs.runtime import Runtime
from tracking.db import utcnow


def backfill(
    config: Mapping[str, Any],
    connector: str,
    since: dt.date,
    until: dt.date | None = None,
    connection_id: int | None = None,
    chunk_days: int = 7,
) -> int:
    """Pull [since, until] in chunks; returns how many chunks failed (each is in the sync history)."""
    caps = capabilities(connector)
    if caps is None:
        raise click.ClickException(f"unknown or unavailable connector {connector!r}")
    until = until or utcnow().date()
    if since > until:
        raise click.ClickException("--since is after --until")
    install()  # won deals found by the backfill queue their deliveries like any other
    rt = Runtime.from_config(config)
    if not [
        s
        for s in sources(rt, "spend", connector) + sources(rt, "deals", connector)
        if connection_id is None or s[0] == connection_id
    ]:
        raise click.ClickException(f"no active connection feeds {connector}")
    failures = 0
    if "spend" in caps:
        chunks = list(days(since, until, max(1, chunk_days)))
        with click.progressbar(
            chunks, label=f"{connector} spend", item_show_func=lambda c: c and str(c[0])
        ) as bar:
            for start, end in bar:
                for tally in pull_spend(rt, start, end, connector=connector, connection_id=connection_id):
                    failures += bool(tally.errors)
    if "deals" in caps:
        start = dt.datetime.combine(since, dt.time(), dt.UTC)
        with click.progressbar(length=1, label=f"{connector} deals") as bar:
            for tally in pull_deals(rt, since=start, connector=connector, connection_id=connection_id):
                failures += bool(tally.errors)
            bar.update(1)
    rt.engine.dispose()
    return failures
