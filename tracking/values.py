"""Reading the values people and machines type into query strings and forms: booleans, days, moments.
A value that cannot be read is ``Refused`` under its name, with code ``bad_request``."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from tracking.errors import Refused


def parse_bool(name: str, raw: str | None) -> bool | None:
    if raw is None or raw == "":
        return None
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise Refused(name, "must be true or false", "bad_request")


def parse_moment(name: str, raw: str | None, zone: str, *, end_of_day: bool = False) -> dt.datetime | None:
    """An ISO 8601 time with its zone, or a date meaning the start of that day in ``zone`` (with
    ``end_of_day``, the start of the next, so a date is an inclusive end)."""
    if not raw:
        return None
    try:
        if len(raw) == 10:
            day = dt.date.fromisoformat(raw) + dt.timedelta(days=1 if end_of_day else 0)
            return dt.datetime.combine(day, dt.time(), ZoneInfo(zone)).astimezone(dt.UTC)
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise Refused(
            name, "must be a date (YYYY-MM-DD) or an ISO 8601 time with zone", "bad_request"
        ) from None
    if value.tzinfo is None:
        raise Refused(name, "must carry a time zone", "bad_request")
    return value.astimezone(dt.UTC)


def parse_date(name: str, raw: str | None, default: dt.date) -> dt.date:
    if not raw:
        return default
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise Refused(name, "must be a date, YYYY-MM-DD", "bad_request") from None
