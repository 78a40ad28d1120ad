"""Direct spend against the local fake Reports API (real HTTP, offline queue, TSV, errors)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests

from connectors import registry
from connectors.base import AccountContext, AuthRevoked, TokenExpired
from connectors.yandex_direct import DirectError, YandexDirectConnector, match_campaign, suggest_mapping
from connectors.yandex_direct.mapping import report_body
from tests.fakes.yandex_direct import Queued, Stat
from tests.fakes.yandex_server import FakeYandex, running_yandex

AGENCY_TOKEN = "agency-token"
OWN_TOKEN = "advertiser-token"
D1, D2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)


def stat(day: dt.date, campaign: int, group: int | None, criterion: int | None, cost: str, **kw: Any) -> Stat:
    return Stat(
        day=day,
        campaign_id=campaign,
        campaign_name=kw.get("name", f"Campaign {campaign}"),
        ad_group_id=group,
        ad_group_name=f"Group {group}" if group else None,
        criterion_id=criterion,
        criterion=kw.get("criterion", f"keyword {criterion}" if criterion else None),
        impressions=kw.get("impressions", 100),
        clicks=kw.get("clicks", 10),
        cost=Decimal(cost),
    )


@pytest.fixture
def yandex() -> Iterator[FakeYandex]:
    with running_yandex() as fake:
        fake.tokens.add(AGENCY_TOKEN, "agency")
        fake.tokens.add(OWN_TOKEN, "shop-direct")
        fake.direct.agencies["agency"] = {"client-a"}
        fake.direct.stats["client-a"] = [
            stat(D1, 111, 21, 31, "100.00"),
            stat(D1, 111, 21, 32, "50.50", clicks=4),
            stat(D2, 111, 21, 31, "10.00"),
            stat(D2, 222, 22, None, "7.25", name="Retargeting"),  # no keyword (audience)
            stat(dt.date(2026, 10, 31), 111, 21, 31, "999.00"),  # outside the range
        ]
        fake.direct.stats["shop-direct"] = [stat(D1, 333, 23, 33, "42.00")]
        yield fake


def context(fake: FakeYandex, token: str = AGENCY_TOKEN, client_login: str = "client-a", **settings: Any):
    return AccountContext(
        connection_id=2,
        provider="yandex",
        api_base=fake.base_url,
        account={"client_login": client_login} if client_login else {},
        settings=settings,
        access_token=lambda: token,
        currency="RUB",
    )


def direct(ctx: AccountContext, sleeps: list[float] | None = None, on_sleep=None) -> YandexDirectConnector:
    def sleep(seconds: float) -> None:
        if sleeps is not None:
            sleeps.append(seconds)
        if on_sleep is not None:
            on_sleep()

    return YandexDirectConnector(ctx, sleep=sleep)


def keyed(rows):
    return {(r.day, r.campaign_id, r.ad_group_id, r.keyword_id): r for r in rows}


def test_spend_per_day_campaign_group_keyword_through_the_offline_queue(yandex: FakeYandex) -> None:
    yandex.direct.polls_to_ready = 3
    yandex.direct.retry_in = 2
    sleeps: list[float] = []
    rows = keyed(direct(context(yandex), sleeps).pull_spend(D1, D2))

    assert set(rows) == {
        (D1, "111", "21", "31"),
        (D1, "111", "21", "32"),
        (D2, "111", "21", "31"),
        (D2, "222", "22", ""),
    }
    kw = rows[(D1, "111", "21", "32")]
    assert kw.cost == Decimal("60.60")  # VAT included by default
    assert (kw.currency, kw.impressions, kw.clicks) == ("RUB", 100, 4)
    assert (kw.campaign_name, kw.ad_group_name, kw.keyword) == ("Campaign 111", "Group 21", "keyword 32")
    audience = rows[(D2, "222", "22", "")]
    assert audience.keyword == "" and audience.campaign_name == "Retargeting"

    # 201, 202, 202, then 200: each poll was the identical request, after retryIn.
    assert len(yandex.direct.requests) == 4
    assert all(r["params"] == yandex.direct.requests[0]["params"] for r in yandex.direct.requests)
    assert sleeps == [2.0, 2.0, 2.0]
    headers = yandex.direct.requests[0]["headers"]
    assert headers["Authorization"] == f"Bearer {AGENCY_TOKEN}"
    assert headers["Client-Login"] == "client-a"
    assert headers["Returnmoneyinmicros"] == "false"


def test_vat_setting_and_own_account_without_client_login(yandex: FakeYandex) -> None:
    ctx = context(yandex, token=OWN_TOKEN, client_login="", include_vat=False)
    [row] = registry.load("yandex_direct").make_connector(ctx).pull_spend(D1, D2)
    assert (row.campaign_id, row.cost) == ("333", Decimal("42.00"))
    assert yandex.direct.requests[0]["params"]["IncludeVAT"] == "NO"
    assert "Client-Login" not in yandex.direct.requests[0]["headers"]


def test_a_repull_gives_the_same_keys_and_duplicates_are_summed(yandex: FakeYandex) -> None:
    # Direct may split one key over several lines (e.g. by a dimension we did not ask for).
    yandex.direct.stats["client-a"].append(stat(D1, 111, 21, 31, "1.00", impressions=5, clicks=1))
    first = direct(context(yandex)).pull_spend(D1, D1)
    second = direct(context(yandex)).pull_spend(D1, D1)
    assert first == second
    assert len(first) == len(keyed(first)) == 2
    merged = keyed(first)[(D1, "111", "21", "31")]
    assert (merged.cost, merged.impressions, merged.clicks) == (Decimal("121.20"), 105, 11)


def test_queue_limit_waits_for_a_free_slot(yandex: FakeYandex) -> None:
    yandex.direct.polls_to_ready = 1
    others = [("client-a", f"other {n}") for n in range(5)]  # five reports of this advertiser queued
    for key in others:
        yandex.direct.queue[key] = Queued(params={}, polls_left=1)

    def others_finish() -> None:
        for key in others:
            yandex.direct.queue.pop(key, None)

    sleeps: list[float] = []
    rows = direct(context(yandex), sleeps, on_sleep=others_finish).pull_spend(D1, D2)
    assert len(rows) == 4
    assert yandex.direct.answers == [(400, 9000), (201, 0), (200, 0)]
    assert len(sleeps) == 2


def test_transient_server_errors_are_retried(yandex: FakeYandex) -> None:
    yandex.direct.fail_next(500, 1000, "Internal server error")
    yandex.direct.fail_next(502, 1000, "Timeout")
    rows = direct(context(yandex)).pull_spend(D1, D2)
    assert len(rows) == 4
    assert [status for status, _ in yandex.direct.answers] == [500, 502, 201, 202, 200]


@pytest.mark.parametrize(("status", "code"), [(400, 52), (200, 1000), (400, 1001), (503, 1002), (400, 1002)])
def test_unavailable_codes_are_retried_whatever_the_status(
    yandex: FakeYandex, status: int, code: int
) -> None:
    yandex.direct.fail_next(status, code, "Service temporarily unavailable")
    sleeps: list[float] = []
    rows = direct(context(yandex), sleeps).pull_spend(D1, D2)
    assert len(rows) == 4
    assert yandex.direct.answers[0] == (status, code) and yandex.direct.answers[-1] == (200, 0)
    assert sleeps  # it waited before asking again


def test_permanent_errors_raise(yandex: FakeYandex) -> None:
    yandex.direct.fail_next(
        400,
        8000,
        "Invalid request",
    )
    with pytest.raises(DirectError) as info:
        direct(context(yandex)).pull_spend(D1, D2)
    assert not info.value.transient and info.value.code == 8000

    with pytest.raises(DirectError, match="DateTo is before DateFrom"):
        direct(context(yandex)).pull_spend(D2, D1)


def test_auth_errors(yandex: FakeYandex) -> None:
    with pytest.raises(TokenExpired):
        direct(context(yandex, token="stale")).pull_spend(D1, D2)
    with pytest.raises(AuthRevoked):  # 513: the agency does not serve this login
        direct(context(yandex, client_login="client-b")).pull_spend(D1, D2)


def test_report_not_ready_within_budget_is_a_transient_error(yandex: FakeYandex) -> None:
    yandex.direct.polls_to_ready = 100
    yandex.direct.retry_in = 60
    with pytest.raises(DirectError) as info:
        direct(context(yandex, report_timeout_seconds=5)).pull_spend(D1, D2)
    assert info.value.transient
    assert len(yandex.direct.requests) == 1


def test_campaign_matching() -> None:
    campaigns = {"70001234": "Brand search", "70005678": "Retargeting", "70009999": "retargeting "}
    edits = {"spring_sale": "70005678"}
    assert match_campaign("70001234", None, mapping=edits, campaigns=campaigns).via == "id"
    assert match_campaign("spring_sale", None, mapping=edits, campaigns=campaigns).campaign_id == "70005678"
    assert match_campaign("brand  SEARCH", None, mapping={}, campaigns=campaigns).campaign_id == "70001234"
    # Two campaigns share the name: no guess, but the yclid still says it was Direct.
    ambiguous = match_campaign("Retargeting", "123", mapping={}, campaigns=campaigns)
    assert (ambiguous.campaign_id, ambiguous.via) == ("", "yclid")
    assert match_campaign("Retargeting", None, mapping={}, campaigns=campaigns) is None
    assert match_campaign(None, None, mapping={}, campaigns=campaigns) is None
    assert suggest_mapping(["Brand search", "70005678", "Retargeting", "x"], campaigns) == {
        "Brand search": "70001234"
    }


def test_the_fake_reports_service_refuses_what_direct_refuses(yandex: FakeYandex) -> None:
    url = f"{yandex.base_url}/json/v5/reports"
    auth = {"Authorization": f"Bearer {OWN_TOKEN}", "processingMode": "online"}
    good = report_body(D1, D2, include_vat=True)
    params = good["params"]

    def send(body: object, **headers: str) -> requests.Response:
        return requests.post(url, json=body, headers={**auth, **headers}, timeout=10)

    assert send(good).status_code == 200
    refused = [
        send({"method": "get", "params": params}),  # the other services' shape, not Reports'
        send({"params": {**params, "Colour": "red"}}),
        send({"params": {**params, "FieldNames": [*params["FieldNames"], "Spend"]}}),
        send({"params": {**params, "ReportType": "CAMPAIGN_PERFORMANCE_REPORT"}}),  # has no Criterion
        send({"params": {**params, "DateRangeType": "LAST_WEEK"}}),  # dates go with CUSTOM_DATE only
        send({"params": {**params, "OrderBy": [{"Field": "Date", "SortOrder": "UP"}]}}),
        send(good, processingMode="fast"),
        send(good, returnMoneyInMicros="no"),
        send(good, skipReportHeader="1"),
        send(good, skipColumnHeader="false"),  # only "true" is documented; absent means "false"
    ]
    for answer in refused:
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert error["error_code"] in (8000, 4000) and error["error_string"] and error["error_detail"]
    elsewhere = requests.post(f"{yandex.base_url}/json/v5/campaigns", json=good, headers=auth, timeout=10)
    assert elsewhere.status_code == 404 and elsewhere.json()["error"]["error_code"] == 8000
    assert requests.get(url, headers=auth, timeout=10).status_code == 405
    # The connector's own request, headers and all, is what the fake takes.
    rows = direct(context(yandex, token=OWN_TOKEN, client_login="")).pull_spend(D1, D2)
    assert len(rows) == 1
