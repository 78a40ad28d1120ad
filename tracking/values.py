"""Reading the values people and machines type into query strings and forms: booleans, days, moments.
A value that cannot be read is ``Refused`` under its name, with code ``bad_request``."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TypeVar
from zoneinfo import ZoneInfo

from tracking.errors import Refused

D = TypeVar("D", dt.date, dt.datetime)

# The largest amount of money the hub stores (NUMERIC(14, 2)); anything above is a provider's nonsense.
MAX_AMOUNT = Decimal("999999999999.99")

# The database's integer columns: a larger number is refused before it reaches the database.
INT_MIN, INT_MAX = -(2**31), 2**31 - 1

# Dates a report, filter or spend period can mean; others (year 1, year 9999) overflow date arithmetic.
EARLIEST_DATE, LATEST_DATE = dt.date(2000, 1, 1), dt.date(2100, 12, 31)


def plausible_date(name: str, value: D) -> D:
    """``value`` if it lies in the years the hub reports on, else ``Refused`` naming ``name``."""
    day = value.date() if isinstance(value, dt.datetime) else value
    if not EARLIEST_DATE <= day <= LATEST_DATE:
        raise Refused(name, f"must be between {EARLIEST_DATE} and {LATEST_DATE}", "bad_request")
    return value


def id_arg(raw: str) -> int | None:
    """An id typed in a query or form (ASCII digits in the database's range), or None. ``isdigit()`` alone
    lets "²" and other Unicode digits through to ``int()``, which refuses them."""
    if raw.isascii() and raw.isdigit() and int(raw) <= INT_MAX:
        return int(raw)
    return None


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
            day = plausible_date(name, dt.date.fromisoformat(raw)) + dt.timedelta(days=1 if end_of_day else 0)
            return dt.datetime.combine(day, dt.time(), ZoneInfo(zone)).astimezone(dt.UTC)
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise Refused(
            name, "must be a date (YYYY-MM-DD) or an ISO 8601 time with zone", "bad_request"
        ) from None
    if value.tzinfo is None:
        raise Refused(name, "must carry a time zone", "bad_request")
    return plausible_date(name, value).astimezone(dt.UTC)


def parse_date(name: str, raw: str | None, default: dt.date) -> dt.date:
    if not raw:
        return default
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        raise Refused(name, "must be a date, YYYY-MM-DD", "bad_request") from None
    return plausible_date(name, day)
