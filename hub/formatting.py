"""How the web UI writes values for people: one module of Jinja filters, one rule per kind of value.

Times: on a client's pages in the client's time zone (the zone is named on the page); elsewhere in UTC.
Minutes, never microseconds. Money: thousands separated, the currency after the amount. Missing values:
a dash, never "None". Enum and key names: words, never snake_case.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, g, has_app_context

DASH = "—"
NBSP = "\u00a0"
CURRENCY_SIGNS = {"RUB": "₽", "USD": "$", "EUR": "€", "KZT": "₸", "BYN": "Br", "UAH": "₴", "GBP": "£"}

# Words for the names the domain keeps as identifiers; anything not listed: "some_key" -> "Some key".
LABELS = {
    "last_non_direct": "Last non-direct touch",
    "last_touch": "Last touch",
    "first_touch": "First touch",
    "in_progress": "In progress",
    "static": "Static number",
    "dynamic": "Pool number held by a visit",
    "dynamic_unidentified": "Pool number nobody held",
    "overflow": "Fallback number (pool full)",
    "promo": "Promo code",
    "manual": "Set by hand",
    "unmatched": "Unknown number",
    "unattributed": "Not attributed",
    "needs_reauth": "Needs signing in again",
    "in_flight": "Sending",
    "deals_without_call": "Deals without a call",
    "spend_without_channel": "Spend without a channel",
    "utm_source": "UTM source",
    "utm_medium": "UTM medium",
    "utm_campaign": "UTM campaign",
    "utm_content": "UTM content",
    "utm_term": "UTM term",
    "ad_group": "Ad group",
}


def _zone(tz: str | ZoneInfo | None) -> ZoneInfo:
    if isinstance(tz, ZoneInfo):
        return tz
    if tz:
        return ZoneInfo(tz)
    # A client page sets g.ui_timezone (see use_client_zone); everywhere else the UI speaks UTC.
    zone = g.get("ui_timezone") if has_app_context() else None
    return ZoneInfo(zone or "UTC")


def use_client_zone(timezone: str) -> None:
    """Make the client's zone the zone of every time on the page being rendered."""
    g.ui_timezone = timezone


def zone_name(tz: str | None = None) -> str:
    """The zone the page's times are written in, for the page to say so."""
    return str(_zone(tz).key)


def local_time(
    value: dt.datetime | str | None, tz: str | ZoneInfo | None = None, seconds: bool = False
) -> str:
    """``2026-11-30 21:05`` in the page's zone (a naive value is UTC, as the database stores it; a string is
    the API's ISO form)."""
    if value is None or value == "":
        return DASH
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(_zone(tz)).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def money(value: Decimal | float | int | str | None, currency: str | None = None) -> str:
    """``1 234 567 ₽`` (kopecks shown only when there are some); a dash for no value."""
    if value is None or value == "":
        return DASH
    amount = Decimal(str(value))
    whole = amount == amount.to_integral_value()
    text = f"{amount:,.0f}" if whole else f"{amount:,.2f}"
    text = text.replace(",", NBSP)
    if currency:
        text += NBSP + CURRENCY_SIGNS.get(currency.upper(), currency.upper())
    return text


def number(value: int | float | Decimal | None) -> str:
    """A count with thousands separated."""
    if value is None:
        return DASH
    return f"{value:,.0f}".replace(",", NBSP)


def percent(value: float | Decimal | None, digits: int = 0) -> str:
    """A share (0.25) as ``25 %``; signed changes keep their sign."""
    if value is None:
        return DASH
    return f"{float(value) * 100:.{digits}f}{NBSP}%"


def change(value: float | Decimal | None) -> str:
    """A change against the previous period: ``+12 %``, ``−5 %``, or a dash when there was nothing before."""
    if value is None:
        return DASH
    pct = float(value) * 100
    sign = "+" if pct > 0 else "−" if pct < 0 else "±"
    return f"{sign}{abs(pct):.0f}{NBSP}%"


def label(value: Any) -> str:
    """A snake_case key or an enum member as words."""
    if value is None or value == "":
        return DASH
    key = str(getattr(value, "value", value))
    if key in LABELS:
        return LABELS[key]
    return key.replace("_", " ").replace("-", " ").strip().capitalize()


def or_dash(value: Any) -> Any:
    """The value, or a dash when there is none (never the word "None")."""
    return DASH if value is None or value == "" else value


def duration(seconds: int | None) -> str:
    """``3 min 05 s``."""
    if seconds is None:
        return DASH
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}{NBSP}min {secs:02d}{NBSP}s" if minutes else f"{secs}{NBSP}s"


def reasons(value: dict[str, Any] | None) -> str:
    """Why attribution weighed a candidate visit as it did, in words."""
    if not value:
        return DASH
    parts = []
    gap = value.get("seconds_since_activity")
    if gap is not None:
        parts.append(f"last active {duration(gap)} before the call")
    if "page_alive" in value:
        parts.append("page still open" if value["page_alive"] else "page closed")
    if "within_hold" in value:
        parts.append("number still held for it" if value["within_hold"] else "number in its grace period")
    if value.get("returning_caller"):
        parts.append("the caller's earlier calls came from this visitor")
    if value.get("device"):
        parts.append(f"on {value['device']}")
    known = {"seconds_since_activity", "page_alive", "within_hold", "returning_caller", "device"}
    parts += [f"{label(k).lower()}: {v}" for k, v in value.items() if k not in known and v not in (None, "")]
    return "; ".join(parts) or DASH


FILTERS = {
    "reasons": reasons,
    "local_time": local_time,
    "money": money,
    "number": number,
    "percent": percent,
    "change": change,
    "label": label,
    "or_dash": or_dash,
    "duration": duration,
}


def init_formatting(app: Flask) -> None:
    app.jinja_env.filters.update(FILTERS)
    app.jinja_env.globals["zone_name"] = zone_name
