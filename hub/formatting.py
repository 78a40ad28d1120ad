"""How the web UI writes values for people: one module of Jinja filters, one rule per kind of value.

Times: on a client's pages in the client's time zone (the zone is named on the page); elsewhere in UTC.
Minutes, never microseconds. Money: thousands separated, the currency after the amount. Missing values:
a dash, never "None". Enum and key names: words, never snake_case. Words (labels, units, days and months
written out) are in the page's language (hub/i18n.py); numbers and ISO times read the same in both.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, g, has_app_context, has_request_context
from flask_babel import format_date, gettext
from flask_babel import lazy_gettext as _l

DASH = "—"
NBSP = "\u00a0"
CURRENCY_SIGNS = {"RUB": "₽", "USD": "$", "EUR": "€", "KZT": "₸", "BYN": "Br", "UAH": "₴", "GBP": "£"}

# Words for the names the domain keeps as identifiers (enum values, job and connector names, keys), in the UI
# language; anything not listed: "some_key" -> "Some key".
LABELS = {
    # attribution models
    "last_non_direct": _l("Last non-direct touch"),
    "last_touch": _l("Last touch"),
    "first_touch": _l("First touch"),
    # call statuses
    "in_progress": _l("In progress"),
    "answered": _l("Answered"),
    "missed": _l("Missed"),
    "busy": _l("Busy"),
    "failed": _l("Failed"),
    # telephony events of a call
    "start": _l("Start"),
    "answer": _l("Answer"),
    "end": _l("End"),
    "record": _l("Recording"),
    # how a call found its channel
    "static": _l("Static number"),
    "dynamic": _l("Pool number held by a visit"),
    "dynamic_unidentified": _l("Pool number nobody held"),
    "overflow": _l("Fallback number (pool full)"),
    "promo": _l("Promo code"),
    "manual": _l("Set by hand"),
    "unmatched": _l("Unknown number"),
    "unattributed": _l("Not attributed"),
    # deals
    "open": _l("Open"),
    "won": _l("Won"),
    "lost": _l("Lost"),
    # connections, numbers, deliveries
    "active": _l("Active"),
    "disabled": _l("Disabled"),
    "needs_reauth": _l("Needs signing in again"),
    "quarantined": _l("Quarantined"),
    "retired": _l("Retired"),
    "pending": _l("Pending"),
    "in_flight": _l("Sending"),
    "done": _l("Done"),
    "retry": _l("Retrying"),
    "dead": _l("Gave up"),
    "skipped": _l("Skipped"),
    "problems": _l("Problems"),
    "failing": _l("Failing"),
    # roles
    "admin": _l("Admin"),
    "manager": _l("Manager"),
    "viewer": _l("Viewer"),
    # jobs of the sync history
    "tokens": _l("Token refresh"),
    "pool_stats": _l("Pool statistics"),
    "romi_rollup": _l("ROMI roll-up"),
    "notify": _l("Notifications"),
    "deliver": _l("Delivery"),
    "resolve": _l("Outcome check"),
    "spend": _l("Spend"),
    "deals": _l("Deals"),
    # connectors and providers (names of products read the same in every language)
    "amocrm": _l("amoCRM"),
    "metrika": _l("Yandex Metrika"),
    "yandex_direct": _l("Yandex Direct"),
    "google_ads": _l("Google Ads"),
    "webhook": _l("Webhook"),
    "ga4": _l("Google Analytics 4"),
    "email": _l("E-mail"),
    "telegram": _l("Telegram"),
    "yandex": _l("Yandex"),
    "google": _l("Google"),
    # telephony providers
    "generic": _l("Generic PBX"),
    "twilio": _l("Twilio"),
    "zadarma": _l("Zadarma"),
    "novofon": _l("Novofon"),
    "mango": _l("Mango Office"),
    # Webhook names and the secrets and settings the telephony providers declare.
    "voice": _l("Voice URL"),
    "status_callback": _l("Status callback URL"),
    "base": _l("API address for events"),
    "secret": _l("Secret"),
    "auth_token": _l("Auth token"),
    "shared_key_secret": _l("Shared key secret"),
    "api_key": _l("API key"),
    "api_secret": _l("API secret"),
    "api_salt": _l("API salt (signing key)"),
    "timezone": _l("Time zone"),
    # choices of connector settings
    "tracking": _l("Tracking number"),
    "caller": _l("Caller's number"),
    "unsorted": _l("Incoming (unsorted) leads"),
    "lead": _l("Deals in a pipeline"),
    "test": _l("Test"),
    "explorer": _l("Explorer"),
    "basic": _l("Basic"),
    "standard": _l("Standard"),
    # devices
    "desktop": _l("Desktop"),
    "mobile": _l("Mobile"),
    "tablet": _l("Tablet"),
    # report rows and keys of a visit or an account
    "deals_without_call": _l("Deals without a call"),
    "spend_without_channel": _l("Spend without a channel"),
    "landing_url": _l("Landing page"),
    "referrer": _l("Referrer"),
    "utm_source": _l("UTM source"),
    "utm_medium": _l("UTM medium"),
    "utm_campaign": _l("UTM campaign"),
    "utm_content": _l("UTM content"),
    "utm_term": _l("UTM term"),
    "gclid": _l("Google click id"),
    "yclid": _l("Yandex click id"),
    "ym_client_id": _l("Metrika client id"),
    "ga_client_id": _l("Google Analytics client id"),
    "device": _l("Device"),
    "channel": _l("Channel"),
    "campaign": _l("Campaign"),
    "ad_group": _l("Ad group"),
    "keyword": _l("Keyword"),
    "host": _l("Host"),
    "url": _l("URL"),
    "chat_id": _l("Chat id"),
    "measurement_id": _l("Measurement id"),
    "platform": _l("Platform"),
    "account_id": _l("Account id"),
    "counter_id": _l("Counter"),
    "customer_id": _l("Customer id"),
    "login_customer_id": _l("Manager account id"),
    "client_login": _l("Client login"),
    "property_id": _l("Property id"),
    # fields a refusal may name (tracking.errors.Refused.field)
    "status": _l("Status"),
    "code": _l("Promo code"),
    "tags": _l("Tags"),
    "tag": _l("Tag"),
    "notes": _l("Notes"),
    "reason": _l("Reason"),
    "events": _l("Events"),
    "channel_id": _l("Channel"),
    "first_time": _l("First-time only"),
    "target": _l("Target only"),
    "from": _l("From"),
    "to": _l("to"),
    "period_start": _l("Start of the period"),
    "period_end": _l("End of the period"),
    "model": _l("Model"),
    "level": _l("Level"),
    "amount": _l("Amount"),
    "settings": _l("Settings"),
    "mode": _l("New calls become"),
    "pipeline_id": _l("Pipeline id"),
    "status_id": _l("Status id"),
    "responsible_user_id": _l("Responsible user id"),
    "field": _l("Field"),
    "action": _l("Action"),
    # report periods
    "this_month": _l("This month"),
    "last_month": _l("Last month"),
    "last_30": _l("Last 30 days"),
    "this_year": _l("This year"),
}

# The notification events a person subscribes to (keys of jobs.notify.EVENTS), in words of the UI.
EVENT_LABELS = {
    "missed_call": _l("A call was missed"),
    "target_call": _l("A target call"),
    "daily_digest": _l("The day's digest"),
    "pool_exhausted": _l("A number pool is running out"),
    "reauth_needed": _l("A connection needs re-authorisation"),
    "deliveries_dead": _l("Deliveries gave up"),
}


def event_label(key: str) -> str:
    """A notification event in words; an event this table does not know yet keeps its key in words."""
    return str(EVENT_LABELS[key]) if key in EVENT_LABELS else label(key)


# The names ROMI gives a row without one (tracking.romi.NONE_LABEL), in words of the UI.
NO_NAME = {
    "(no campaign)": _l("(no campaign)"),
    "(no ad group)": _l("(no ad group)"),
    "(no keyword)": _l("(no keyword)"),
}


def dimension(value: str | None) -> str:
    """A channel, campaign, ad group or keyword name as ROMI gives it; its "(no …)" rows in words."""
    if value is None or value == "":
        return DASH
    return str(NO_NAME[value]) if value in NO_NAME else value


# What connectors declare in English for the API (their titles, their settings' descriptions), in words of
# the UI; anything not listed is shown as declared.
DECLARED_WORDS = {
    "amoCRM": _l("amoCRM"),
    "Kommo": _l("Kommo"),
    "amoCRM / Kommo": _l("amoCRM / Kommo"),
    "Google Ads": _l("Google Ads"),
    "Yandex (Metrika, Direct)": _l("Yandex (Metrika, Direct)"),
    "Goal identifier that won deals are sent as": _l("Goal identifier that won deals are sent as"),
    "Send only target calls": _l("Send only target calls"),
    "Incoming (unsorted) SIP leads, or deals": _l("Incoming (unsorted) SIP leads, or deals"),
    "Pipeline of new deals (required for mode lead)": _l("Pipeline of new deals (required for mode lead)"),
    "Our field -> amoCRM custom field id or code": _l("Our field -> amoCRM custom field id or code"),
    "Numbers shown in call assets": _l("Numbers shown in call assets"),
}


def declared(value: str | None) -> str:
    """A connector's title or a setting's description in words of the page."""
    if not value:
        return ""
    return str(DECLARED_WORDS[value]) if value in DECLARED_WORDS else value


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


def account_key(value: str) -> str:
    """A key of a connection's account in words: an e-mail's "to" is its address."""
    return gettext("Address") if value == "to" else label(value)


def label(value: Any) -> str:
    """A snake_case key or an enum member as words."""
    if value is None or value == "":
        return DASH
    key = str(getattr(value, "value", value))
    if key in LABELS:
        return str(LABELS[key])
    return key.replace("_", " ").replace("-", " ").strip().capitalize()


def or_dash(value: Any) -> Any:
    """The value, or a dash when there is none (never the word "None")."""
    return DASH if value is None or value == "" else value


def duration(seconds: int | None) -> str:
    """``3 min 05 s``."""
    if seconds is None:
        return DASH
    minutes, secs = divmod(int(seconds), 60)
    # The units are words of the page's language: "3 min 05 s", "3 мин 05 с".
    minute, second = gettext("min"), gettext("s")
    if minutes:
        return f"{minutes}{NBSP}{minute} {secs:02d}{NBSP}{second}"
    return f"{secs}{NBSP}{second}"


def reasons(value: dict[str, Any] | None) -> str:
    """Why attribution weighed a candidate visit as it did, in words."""
    if not value:
        return DASH
    parts = []
    gap = value.get("seconds_since_activity")
    if gap is not None:
        parts.append(gettext("last active %(gap)s before the call", gap=duration(gap)))
    if "page_alive" in value:
        parts.append(gettext("page still open") if value["page_alive"] else gettext("page closed"))
    if "within_hold" in value:
        parts.append(
            gettext("number still held for it")
            if value["within_hold"]
            else gettext("number in its grace period")
        )
    if value.get("returning_caller"):
        parts.append(gettext("the caller's earlier calls came from this visitor"))
    if value.get("device"):
        parts.append(gettext("on %(device)s", device=label(value["device"]).lower()))
    known = {"seconds_since_activity", "page_alive", "within_hold", "returning_caller", "device"}
    parts += [f"{label(k).lower()}: {v}" for k, v in value.items() if k not in known and v not in (None, "")]
    return "; ".join(parts) or DASH


def actor(value: str | None) -> str:
    """Who changed something: a person's e-mail as it is, the hub itself in words."""
    if value is None or value == "":
        return DASH
    return gettext("the hub") if value == "system" else value


# Why a call's attribution or target rules changed, as the domain records it (English, for the API) -> words.
_CHANGE_REASONS: list[tuple[re.Pattern[str], Any]] = [
    (re.compile(p), msg)
    for p, msg in (
        (r"automatic", _l("automatic")),
        (r"manual", _l("set by hand")),
        (r"tags changed", _l("tags changed")),
        (r"promo code (?P<code>.+)", _l("promo code %(code)s")),
        (r"call event: (?P<event>.+)", _l("call event: %(event)s")),
        (r"rule (?P<rule>.+) added", _l("rule %(rule)s added")),
        (r"rule (?P<rule>.+) changed", _l("rule %(rule)s changed")),
        (r"rule (?P<rule>.+) removed", _l("rule %(rule)s removed")),
    )
]


def change_reason(value: str | None) -> str:
    """A recorded reason in words of the page; a reason a person typed is shown as typed."""
    if value is None or value == "":
        return DASH
    for pattern, translated in _CHANGE_REASONS:
        found = pattern.fullmatch(value)
        if found:
            words = {k: label(v).lower() if k == "event" else v for k, v in found.groupdict().items()}
            text = str(translated)
            return text % words if words else text
    return value


def long_date(value: dt.date | dt.datetime | None, with_year: bool = True) -> str:
    """A day written out in the page's language: ``30 November 2026`` / ``30 ноября 2026 г.``."""
    if value is None:
        return DASH
    if not has_request_context():
        return value.isoformat()[:10]
    return format_date(value, "long" if with_year else "d MMMM")


def month_name(value: dt.date | dt.datetime | None) -> str:
    """A month in the page's language: ``November 2026`` / ``ноябрь 2026``."""
    if value is None:
        return DASH
    if not has_request_context():
        return value.strftime("%Y-%m")
    return format_date(value, "LLLL yyyy")


FILTERS = {
    "account_key": account_key,
    "declared": declared,
    "dimension": dimension,
    "actor": actor,
    "change_reason": change_reason,
    "event_label": event_label,
    "long_date": long_date,
    "month_name": month_name,
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
