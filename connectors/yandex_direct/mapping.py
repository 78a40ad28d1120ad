"""Direct reports ↔ our spend rows, and sessions ↔ Direct campaigns."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.base import PulledSpend

FIELDS = (
    "Date",
    "CampaignId",
    "CampaignName",
    "AdGroupId",
    "AdGroupName",
    "CriterionId",
    "Criterion",
    "Impressions",
    "Clicks",
    "Cost",
)
EMPTY = "--"  # how Direct writes a missing value in TSV


def report_body(start: dt.date, end: dt.date, *, include_vat: bool) -> dict[str, Any]:
    """The Reports request for spend per day × campaign × ad group × criterion.

    The report name is derived from the parameters: Direct polls a queued report by its identical
    request, and a name reused with other parameters is refused.
    """
    params: dict[str, Any] = {
        "SelectionCriteria": {"DateFrom": start.isoformat(), "DateTo": end.isoformat()},
        "FieldNames": list(FIELDS),
        "OrderBy": [{"Field": "Date", "SortOrder": "ASCENDING"}],
        "ReportType": "CUSTOM_REPORT",
        "DateRangeType": "CUSTOM_DATE",
        "Format": "TSV",
        "IncludeVAT": "YES" if include_vat else "NO",
    }
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    params["ReportName"] = f"otkuda spend {start.isoformat()} {end.isoformat()} {digest}"
    return {"params": params}


def _value(row: Mapping[str, str], name: str) -> str:
    value = (row.get(name) or "").strip()
    return "" if value == EMPTY else value


def _int(row: Mapping[str, str], name: str) -> int:
    value = _value(row, name)
    return int(value) if value else 0


def _money(row: Mapping[str, str], name: str) -> Decimal:
    value = _value(row, name)
    try:
        return Decimal(value) if value else Decimal("0")
    except InvalidOperation:
        raise ValueError(f"{name} {value!r} is not a number") from None


def parse_report(text: str, currency: str) -> list[PulledSpend]:
    """TSV (column header first, no report header or summary) to spend rows, one per key.

    Rows that share a key are summed, so a re-pull stored with replace-by-key never doubles.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    reader = csv.DictReader(io.StringIO("\n".join(lines)), delimiter="\t", quoting=csv.QUOTE_NONE)
    missing = set(FIELDS) - set(reader.fieldnames or ())
    if missing:
        raise ValueError(f"report lacks columns {sorted(missing)}")
    merged: dict[tuple[str, ...], PulledSpend] = {}
    for row in reader:
        spend = PulledSpend(
            day=dt.date.fromisoformat(_value(row, "Date")),
            campaign_id=_value(row, "CampaignId"),
            campaign_name=_value(row, "CampaignName"),
            cost=_money(row, "Cost"),
            currency=currency,
            impressions=_int(row, "Impressions"),
            clicks=_int(row, "Clicks"),
            ad_group_id=_value(row, "AdGroupId"),
            ad_group_name=_value(row, "AdGroupName"),
            keyword_id=_value(row, "CriterionId"),
            keyword=_value(row, "Criterion"),
        )
        key = (spend.day.isoformat(), spend.campaign_id, spend.ad_group_id, spend.keyword_id)
        if key in merged:
            before = merged[key]
            spend = PulledSpend(
                **{
                    **spend.__dict__,
                    "cost": before.cost + spend.cost,
                    "impressions": before.impressions + spend.impressions,
                    "clicks": before.clicks + spend.clicks,
                }
            )
        merged[key] = spend
    return list(merged.values())


# --- Sessions to campaigns -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignMatch:
    """``campaign_id`` is empty when only the platform is known (a yclid with an unmapped utm_campaign)."""

    campaign_id: str
    via: str  # "mapping" (edited by hand), "id" (the {campaign_id} macro), "name", or "yclid"


_ID = re.compile(r"^\d{5,20}$")


def _norm(value: str) -> str:
    return " ".join(value.split()).casefold()


def campaigns_of(rows: Iterable[PulledSpend]) -> dict[str, str]:
    """Campaign id -> name, as last seen in spend rows."""
    return {row.campaign_id: row.campaign_name for row in rows if row.campaign_id}


def match_campaign(
    utm_campaign: str | None,
    yclid: str | None,
    *,
    mapping: Mapping[str, str],
    campaigns: Mapping[str, str],
) -> CampaignMatch | None:
    """Which Direct campaign a session came from.

    ``mapping`` is the client's editable table (utm_campaign value -> campaign id) and wins over any
    inference; ``campaigns`` is id -> name from the account's spend. A bare number is taken as the
    ``{campaign_id}`` macro; a name must match exactly one campaign (case and spacing ignored).
    """
    value = (utm_campaign or "").strip()
    if value:
        if value in mapping:
            return CampaignMatch(str(mapping[value]), "mapping")
        if _ID.match(value):
            return CampaignMatch(value, "id")
        by_name = [cid for cid, name in campaigns.items() if _norm(name) == _norm(value)]
        if len(by_name) == 1:
            return CampaignMatch(by_name[0], "name")
    if (yclid or "").strip():
        return CampaignMatch("", "yclid")
    return None


def suggest_mapping(utm_values: Iterable[str], campaigns: Mapping[str, str]) -> dict[str, str]:
    """Proposals for the editable table: utm_campaign values that are names of exactly one campaign.

    Values that are already ids, and ambiguous names, are left out; the user edits the rest by hand.
    """
    proposals: dict[str, str] = {}
    for value in utm_values:
        match = match_campaign(value, None, mapping={}, campaigns=campaigns)
        if match is not None and match.via == "name":
            proposals[value] = match.campaign_id
    return proposals
