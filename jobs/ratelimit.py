"""Rate limits per destination, kept in the database so that every worker, on any host, keeps to them.

The limit is the generic cell rate algorithm (a token bucket with one number of state): a destination's
``ready_at`` is the earliest instant its next request may go. Only the worker holding the destination
moves it, so reading and writing it needs no lock of its own.
"""

from __future__ import annotations

import datetime as dt

from connectors.base import RateLimit


def admit(ready_at: dt.datetime | None, now: dt.datetime, limit: RateLimit) -> tuple[float, dt.datetime]:
    """(seconds to wait, the new ``ready_at``): 0 means one request may go now and the state moves on."""
    interval = dt.timedelta(seconds=1 / max(limit.per_second, 1e-6))
    tolerance = interval * (max(1, limit.burst) - 1)  # how far ahead a burst may run
    ready = ready_at if ready_at is not None else now - tolerance
    if ready > now:
        return (ready - now).total_seconds(), ready
    arrival = max(ready + tolerance, now) + interval
    return 0.0, arrival - tolerance
