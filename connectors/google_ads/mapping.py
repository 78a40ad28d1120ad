"""Our call and deal payloads as Google Ads offline conversions, and Google's answers as our outcomes.

Pure Python (no ``google.ads`` import): conversions are plain dicts with the field names of the v26
``ClickConversion`` / ``CallConversion`` messages, which the client turns into messages.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers

from connectors.base import AccountContext, DeliveryItem, DeliveryOutcome, ItemKind, PulledSpend

MAX_PER_REQUEST = 2000  # ConversionUploadError.TOO_MANY_CONVERSIONS_IN_REQUEST: "fewer than 2001 events"

CLICK = "click"
CALL = "call"

# Daily operations per developer-token access level. Each uploaded conversion is counted as one
# operation: Google counts mutate operations, and a conversion is the unit it validates, so this is the
# conservative reading. ``None`` = no published daily cap.
DAILY_OPERATIONS: dict[str, int | None] = {
    "test": 15_000,
    "explorer": 2_880,
    "basic": 15_000,
    "standard": None,
}

_DEFAULT_TOO_RECENT = {
    "TOO_RECENT_EVENT": 6 * 3600,  # "occurred less than 6 hours ago. Retry after 6 hours"
    "TOO_RECENT_CONVERSION_ACTION": 6 * 3600,  # "Try importing again in 6 hours"
    # The API's own text (errors/types/conversion_upload_error.py, v26): "Can't import calls that occurred
    # less than 6 hours ago. Try uploading again in 6 hours."
    "TOO_RECENT_CALL": 6 * 3600,
}
# Google already holds this conversion: a re-send after a crash, recognised by order_id (clicks) or by
# caller + call time + conversion time (calls).
ALREADY_THERE = frozenset(
    {"ORDER_ID_ALREADY_IN_USE", "CLICK_CONVERSION_ALREADY_EXISTS", "CALL_CONVERSION_ALREADY_EXISTS"}
)
_HOURS = re.compile(r"(\d+)\s*hours?", re.IGNORECASE)


@dataclass(frozen=True)
class Planned:
    """What one delivery item becomes: a conversion to upload through ``service``, or a reason not to."""

    item: DeliveryItem
    service: str | None = None  # CLICK or CALL
    conversion: dict[str, Any] | None = None
    skip_reason: str | None = None
    dead_reason: str | None = None

    @property
    def external_id(self) -> str:
        c = self.conversion or {}
        if self.service == CLICK:
            return str(c["order_id"])
        return f"{c.get('caller_id')}@{c.get('call_start_date_time')}"


@dataclass(frozen=True)
class RowError:
    """One ``GoogleAdsError``: ``category`` is the error_code oneof (e.g. ``conversion_upload_error``)."""

    category: str
    name: str
    message: str
    index: int | None = None  # position in ``conversions`` when the error points at a row

    def __str__(self) -> str:
        return f"{self.name}: {self.message}" if self.message else self.name


def customer_id(raw: str) -> str:
    """Google shows ids as 123-456-7890; the API wants digits only."""
    digits = re.sub(r"\D", "", raw or "")
    if not digits:
        raise ValueError(f"not a Google Ads customer id: {raw!r}")
    return digits


def conversion_action(customer: str, action: str | int) -> str:
    """Accept an action id or a full resource name (as copied from the Google Ads UI or API)."""
    text = str(action).strip()
    if text.startswith("customers/"):
        return text
    return f"customers/{customer}/conversionActions/{int(text)}"


def google_datetime(value: str | dt.datetime, timezone: str) -> str:
    """``yyyy-mm-dd hh:mm:ss+hh:mm`` in the account's zone, as Google requires (seconds, explicit offset)."""
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: payload times are UTC with an offset")
    local = moment.astimezone(ZoneInfo(timezone)).replace(microsecond=0)
    offset = local.strftime("%z")  # +0300
    return local.strftime("%Y-%m-%d %H:%M:%S") + f"{offset[:3]}:{offset[3:]}"


def e164(number: str | None) -> str | None:
    if not number:
        return None
    try:
        parsed = phonenumbers.parse(number, None if number.startswith("+") else "RU")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _click_ids(session: Mapping[str, Any] | None) -> dict[str, str]:
    """gclid wins; gbraid and wbraid are mutually exclusive at Google (GBRAID_WBRAID_BOTH_SET)."""
    if not session:
        return {}
    for key in ("gclid", "gbraid", "wbraid"):
        if session.get(key):
            return {key: str(session[key])}
    return {}


def _call_asset_numbers(settings: Mapping[str, Any]) -> set[str]:
    return {n for n in (e164(x) for x in settings.get("call_asset_numbers") or ()) if n}


def _from_call_asset(call: Mapping[str, Any], settings: Mapping[str, Any]) -> bool:
    """A call to a tracking number placed in a Google call asset (configured per connection)."""
    return e164(call.get("tracking_number")) in _call_asset_numbers(settings)


def plan(item: DeliveryItem, ctx: AccountContext, customer: str) -> Planned:
    if item.kind == ItemKind.CALL:
        return _plan_call(item, ctx, customer)
    if item.kind == ItemKind.DEAL_WON:
        return _plan_deal(item, ctx, customer)
    return Planned(item, skip_reason=f"Google Ads takes no {item.kind!s} items")


def _value(amount: Any, currency: str) -> dict[str, Any]:
    if amount in (None, ""):
        return {}
    return {"conversion_value": float(Decimal(str(amount))), "currency_code": currency}


def _plan_call(item: DeliveryItem, ctx: AccountContext, customer: str) -> Planned:
    call = item.payload
    settings = ctx.settings
    min_talk = int(settings.get("min_talk_seconds") or 0)
    if min_talk and int(call.get("talk_seconds") or 0) < min_talk:
        return Planned(item, skip_reason=f"talk shorter than {min_talk} s")
    value = _value(settings.get("call_value"), str(settings.get("currency") or ctx.currency))
    ids = _click_ids(call.get("session"))
    if ids:
        action = settings.get("call_conversion_action")
        if not action:
            return Planned(item, skip_reason="no conversion action for calls configured")
        conversion = {
            **ids,
            "conversion_action": conversion_action(customer, action),
            "conversion_date_time": google_datetime(call["called_at"], ctx.timezone),
            "order_id": item.key,
            **value,
        }
        return Planned(item, CLICK, conversion)
    if _from_call_asset(call, settings):
        return _plan_call_conversion(item, ctx, customer, call, call.get("ended_at"), value)
    return Planned(item, skip_reason="no Google click id and not a call from a Google call asset")


def _plan_call_conversion(
    item: DeliveryItem,
    ctx: AccountContext,
    customer: str,
    call: Mapping[str, Any],
    converted_at: str | None,
    value: dict[str, Any],
) -> Planned:
    action = ctx.settings.get("call_asset_conversion_action")
    if not action:
        return Planned(item, skip_reason="no conversion action for call-asset calls configured")
    caller = e164(call.get("caller"))
    if not caller:
        return Planned(item, skip_reason="caller id hidden or not a phone number")
    started = dt.datetime.fromisoformat(call["called_at"])
    # Google wants the conversion strictly after the call start.
    converted = dt.datetime.fromisoformat(converted_at) if converted_at else started
    converted = max(converted, started + dt.timedelta(seconds=1))
    conversion = {
        "caller_id": caller,
        "call_start_date_time": google_datetime(started, ctx.timezone),
        "conversion_action": conversion_action(customer, action),
        "conversion_date_time": google_datetime(converted, ctx.timezone),
        **value,
    }
    return Planned(item, CALL, conversion)


def _plan_deal(item: DeliveryItem, ctx: AccountContext, customer: str) -> Planned:
    deal = item.payload
    call = deal.get("call") or {}
    value = _value(deal.get("amount"), str(deal.get("currency") or ctx.currency))
    ids = _click_ids(call.get("session"))
    if ids:
        action = ctx.settings.get("deal_conversion_action")
        if not action:
            return Planned(item, skip_reason="no conversion action for won deals configured")
        conversion = {
            **ids,
            "conversion_action": conversion_action(customer, action),
            "conversion_date_time": google_datetime(deal["won_at"], ctx.timezone),
            "order_id": item.key,
            **value,
        }
        return Planned(item, CLICK, conversion)
    if call and _from_call_asset(call, ctx.settings):
        deal_action = ctx.settings.get("deal_call_asset_conversion_action")
        if not deal_action:
            return Planned(item, skip_reason="no call-import conversion action for won deals configured")
        planned = _plan_call_conversion(
            item,
            ctx,
            customer,
            call,
            deal["won_at"],
            value,
        )
        if planned.conversion is not None:
            planned.conversion["conversion_action"] = conversion_action(customer, deal_action)
        return planned
    return Planned(item, skip_reason="the deal's call has no Google click id")


def row_outcome(errors: list[RowError]) -> tuple[DeliveryOutcome, float | None]:
    """How a row's errors decide its fate: already there → DONE, too recent → RETRY, else DEAD."""
    names = {e.name for e in errors}
    if names & ALREADY_THERE:
        return DeliveryOutcome.DONE, None
    waits = [w for w in (_too_recent_delay(e) for e in errors) if w is not None]
    if waits and len(waits) == len(errors):
        return DeliveryOutcome.RETRY, float(max(waits))
    if all(e.category in ("internal_error", "quota_error") for e in errors):
        return DeliveryOutcome.RETRY, None
    return DeliveryOutcome.DEAD, None


def _too_recent_delay(error: RowError) -> int | None:
    if error.name not in _DEFAULT_TOO_RECENT:
        return None
    hinted = _HOURS.search(error.message or "")
    return int(hinted.group(1)) * 3600 if hinted else _DEFAULT_TOO_RECENT[error.name]


CONVERSION_ACTIONS_QUERY = (
    "SELECT conversion_action.id, conversion_action.name, conversion_action.type "
    "FROM conversion_action WHERE conversion_action.status = 'ENABLED' "
    "AND conversion_action.type IN ('UPLOAD_CLICKS', 'UPLOAD_CALLS')"
)


# --- Spend ------------------------------------------------------------------------------------------------


def spend_queries(start: dt.date, end: dt.date) -> dict[str, str]:
    """Three levels, because keyword_view sees only keyword-targeted ads (not Performance Max, Display,
    dynamic ads): the keyword rows plus what is left over at ad-group and campaign level add up exactly
    to the campaign's cost."""
    when = f"segments.date BETWEEN '{start.isoformat()}' AND '{end.isoformat()}'"
    metrics = "metrics.cost_micros, metrics.clicks, metrics.impressions"
    return {
        "campaign": (
            f"SELECT segments.date, customer.currency_code, campaign.id, campaign.name, {metrics} "
            f"FROM campaign WHERE {when}"
        ),
        "ad_group": (
            f"SELECT segments.date, campaign.id, ad_group.id, ad_group.name, {metrics} "
            f"FROM ad_group WHERE {when}"
        ),
        "keyword": (
            "SELECT segments.date, campaign.id, ad_group.id, ad_group_criterion.criterion_id, "
            f"ad_group_criterion.keyword.text, {metrics} FROM keyword_view WHERE {when}"
        ),
    }


@dataclass
class _Totals:
    micros: int = 0
    clicks: int = 0
    impressions: int = 0

    def add(self, row: Mapping[str, Any]) -> None:
        self.micros += int(row.get("metrics.cost_micros") or 0)
        self.clicks += int(row.get("metrics.clicks") or 0)
        self.impressions += int(row.get("metrics.impressions") or 0)

    def merge(self, other: _Totals) -> None:
        self.micros += other.micros
        self.clicks += other.clicks
        self.impressions += other.impressions

    def minus(self, other: _Totals) -> _Totals:
        return _Totals(
            max(self.micros - other.micros, 0),
            max(self.clicks - other.clicks, 0),
            max(self.impressions - other.impressions, 0),
        )

    def __bool__(self) -> bool:
        return bool(self.micros or self.clicks or self.impressions)


def money(micros: int) -> Decimal:
    """cost_micros is the account currency × 10⁶."""
    return Decimal(micros) / Decimal(1_000_000)


def spend_rows(
    campaigns: Iterable[Mapping[str, Any]],
    ad_groups: Iterable[Mapping[str, Any]],
    keywords: Iterable[Mapping[str, Any]],
    fallback_currency: str,
) -> list[PulledSpend]:
    """Rows keyed by field path (``campaign.id`` …) at three levels → non-overlapping PulledSpend rows."""
    currency = fallback_currency
    camp_total: dict[tuple[str, str], _Totals] = defaultdict(_Totals)
    camp_name: dict[str, str] = {}
    for r in campaigns:
        currency = r.get("customer.currency_code") or currency
        day, cid = str(r["segments.date"]), str(r["campaign.id"])
        camp_total[(day, cid)].add(r)
        camp_name[cid] = r.get("campaign.name") or ""
    group_total: dict[tuple[str, str, str], _Totals] = defaultdict(_Totals)
    group_name: dict[str, str] = {}
    for r in ad_groups:
        day, cid, gid = str(r["segments.date"]), str(r["campaign.id"]), str(r["ad_group.id"])
        group_total[(day, cid, gid)].add(r)
        group_name[gid] = r.get("ad_group.name") or ""
    kw_total: dict[tuple[str, str, str, str], _Totals] = defaultdict(_Totals)
    kw_text: dict[tuple[str, str], str] = {}
    for r in keywords:
        day, cid, gid = str(r["segments.date"]), str(r["campaign.id"]), str(r["ad_group.id"])
        kid = str(r["ad_group_criterion.criterion_id"])
        kw_total[(day, cid, gid, kid)].add(r)
        kw_text[(gid, kid)] = r.get("ad_group_criterion.keyword.text") or ""

    def row(day: str, cid: str, totals: _Totals, gid: str = "", kid: str = "") -> PulledSpend:
        return PulledSpend(
            day=dt.date.fromisoformat(day),
            campaign_id=cid,
            campaign_name=camp_name.get(cid, ""),
            cost=money(totals.micros),
            currency=currency,
            impressions=totals.impressions,
            clicks=totals.clicks,
            ad_group_id=gid,
            ad_group_name=group_name.get(gid, "") if gid else "",
            keyword_id=kid,
            keyword=kw_text.get((gid, kid), "") if kid else "",
        )

    out: list[PulledSpend] = []
    kw_by_group: dict[tuple[str, str, str], _Totals] = defaultdict(_Totals)
    for (day, cid, gid, kid), totals in sorted(kw_total.items()):
        out.append(row(day, cid, totals, gid, kid))
        kw_by_group[(day, cid, gid)].merge(totals)
    groups_by_campaign: dict[tuple[str, str], _Totals] = defaultdict(_Totals)
    for (day, cid, gid), totals in sorted(group_total.items()):
        rest = totals.minus(kw_by_group.get((day, cid, gid), _Totals()))
        if rest:
            out.append(row(day, cid, rest, gid))
        groups_by_campaign[(day, cid)].merge(totals)
    for (day, cid), totals in sorted(camp_total.items()):
        rest = totals.minus(groups_by_campaign.get((day, cid), _Totals()))
        if rest or (day, cid) not in groups_by_campaign:
            out.append(row(day, cid, rest))
    return out
