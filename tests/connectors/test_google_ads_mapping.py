"""The pure parts of the Google Ads connector: formats Google insists on, and how spend levels add up."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from connectors.base import DeliveryOutcome
from connectors.google_ads import mapping
from connectors.google_ads.mapping import RowError


def test_datetime_in_account_zone_with_colon_offset() -> None:
    moment = dt.datetime(2026, 7, 1, 3, 4, 5, 987654, tzinfo=dt.UTC)
    assert mapping.google_datetime(moment, "America/Los_Angeles") == "2026-06-30 20:04:05-07:00"
    assert mapping.google_datetime("2026-01-15T10:00:00+00:00", "Asia/Kolkata") == "2026-01-15 15:30:00+05:30"
    assert mapping.google_datetime("2026-01-15T10:00:00Z", "UTC") == "2026-01-15 10:00:00+00:00"
    with pytest.raises(ValueError, match="naive"):
        mapping.google_datetime("2026-01-15T10:00:00", "UTC")


def test_ids_and_phone_numbers() -> None:
    assert mapping.customer_id("123-456-7890") == "1234567890"
    with pytest.raises(ValueError):
        mapping.customer_id("--")
    assert mapping.conversion_action("1234567890", 42) == "customers/1234567890/conversionActions/42"
    assert (
        mapping.conversion_action("1", "customers/9/conversionActions/5") == "customers/9/conversionActions/5"
    )
    assert mapping.e164("8 (999) 123-45-67") == "+79991234567"
    assert mapping.e164("+1 650-253-1234") == "+16502531234"
    assert mapping.e164("anonymous") is None and mapping.e164(None) is None


def test_row_outcomes() -> None:
    recent = RowError("conversion_upload_error", "TOO_RECENT_EVENT", "less than 6 hours ago", 0)
    assert mapping.row_outcome([recent]) == (DeliveryOutcome.RETRY, 6 * 3600.0)
    hinted = RowError("conversion_upload_error", "TOO_RECENT_CALL", "Try uploading again in 9 hours.", 0)
    assert mapping.row_outcome([hinted]) == (DeliveryOutcome.RETRY, 9 * 3600.0)
    silent = RowError("conversion_upload_error", "TOO_RECENT_CALL", "", 0)
    assert mapping.row_outcome([silent]) == (DeliveryOutcome.RETRY, 6 * 3600.0)  # the API's own text
    expired = RowError("conversion_upload_error", "EXPIRED_EVENT", "too old", 0)
    assert mapping.row_outcome([expired]) == (DeliveryOutcome.DEAD, None)
    assert mapping.row_outcome([recent, expired]) == (DeliveryOutcome.DEAD, None)
    again = RowError("conversion_upload_error", "ORDER_ID_ALREADY_IN_USE", "", 0)
    assert mapping.row_outcome([again])[0] == DeliveryOutcome.DONE
    assert mapping.row_outcome([RowError("internal_error", "TRANSIENT_ERROR", "", 0)]) == (
        DeliveryOutcome.RETRY,
        None,
    )


def test_spend_levels_do_not_double_count() -> None:
    day = "2026-11-01"
    campaigns = [
        {"segments.date": day, "customer.currency_code": "USD", "campaign.id": 1, "campaign.name": "A",
         "metrics.cost_micros": 10_000_000, "metrics.clicks": 10, "metrics.impressions": 100},
    ]  # fmt: skip
    groups = [
        {"segments.date": day, "campaign.id": 1, "ad_group.id": 11, "ad_group.name": "G",
         "metrics.cost_micros": 6_000_000, "metrics.clicks": 6, "metrics.impressions": 60},
    ]  # fmt: skip
    keywords = [
        {"segments.date": day, "campaign.id": 1, "ad_group.id": 11, "ad_group_criterion.criterion_id": 111,
         "ad_group_criterion.keyword.text": "kw", "metrics.cost_micros": 6_000_000, "metrics.clicks": 6,
         "metrics.impressions": 60},
    ]  # fmt: skip
    rows = mapping.spend_rows(campaigns, groups, keywords, "RUB")
    assert [(r.ad_group_id, r.keyword_id, r.cost, r.clicks, r.currency) for r in rows] == [
        ("11", "111", Decimal(6), 6, "USD"),
        ("", "", Decimal(4), 4, "USD"),
    ]
    assert sum(r.cost for r in rows) == Decimal(10)
