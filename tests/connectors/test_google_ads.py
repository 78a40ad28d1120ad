"""Google Ads connector against a local TLS gRPC fake of the Ads API and a fake Google token endpoint.

The production client (``GoogleAdsClient`` inside ``connectors.google_ads.client``) is used unchanged; only
the endpoint differs. gRPC reads ``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH`` once, when the process creates its
first secure channel, so the session fixture generates the localhost certificate and sets the variable
before any connector exists; no other test in the suite opens a gRPC channel.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session

from connectors import registry
from connectors.base import (
    AccountContext,
    AuthRevoked,
    DeliveryItem,
    DeliveryOutcome,
    ItemKind,
    TokenExpired,
)
from tests.fakes.google_ads import FakeGoogleAds, SpendFact
from tests.fakes.oauth import GOOGLE, AccessTokens, FakeOAuth
from tests.fakes.tls import TlsFiles, make_localhost_cert

CUSTOMER = "1234567890"
MANAGER = "9998887776"
CALL_ACTION = 111
DEAL_ACTION = 222
CALL_ASSET_ACTION = 333
ASSET_NUMBER = "+74950000001"
# The fake's clock: "too recent" and "expired" depend on it, never on the machine's date.
NOW = dt.datetime(2026, 11, 22, 12, 0, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    files = make_localhost_cert(tmp_path_factory.mktemp("tls"))
    os.environ["GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"] = str(files.cert_path)
    return files


@pytest.fixture
def tokens() -> AccessTokens:
    return AccessTokens()


@pytest.fixture
def oauth(tokens: AccessTokens) -> Iterator[FakeOAuth]:
    server = FakeOAuth(GOOGLE, tokens).start()
    yield server
    server.stop()


@pytest.fixture
def ads(tls: TlsFiles, tokens: AccessTokens) -> Iterator[FakeGoogleAds]:
    server = FakeGoogleAds(tls, tokens, now=lambda: NOW).start()
    customer = server.add_customer(CUSTOMER, manager_id=MANAGER, currency="RUB")
    customer.actions.update({CALL_ACTION: "click", DEAL_ACTION: "click", CALL_ASSET_ACTION: "call"})
    yield server
    server.stop()


class Session:
    """What the pipeline does for a connection: hold a token, refresh it through the provider."""

    def __init__(self, oauth: FakeOAuth) -> None:
        self.oauth = oauth
        provider = registry.load("google_ads").PROVIDER
        self.session = OAuth2Session(
            oauth.dialect.client_id,
            oauth.dialect.client_secret,
            scope=" ".join(provider.scopes),
            redirect_uri="http://127.0.0.1:5000/connections/callback",
            token_endpoint_auth_method=provider.token_endpoint_auth_method,
        )
        self.token_calls = 0

    def connect(self) -> dict[str, Any]:
        provider = registry.load("google_ads").PROVIDER
        url, state = self.session.create_authorization_url(
            self.oauth.url + "/auth", **provider.authorize_params
        )
        consent = requests.get(url, allow_redirects=False, timeout=10)
        assert consent.status_code == 302, consent.text
        return self.session.fetch_token(
            self.oauth.url + "/token",
            authorization_response=consent.headers["Location"],
            state=state,
        )

    def refresh(self) -> dict[str, Any]:
        return self.session.refresh_token(self.oauth.url + "/token")

    def access_token(self) -> str:
        self.token_calls += 1
        return self.session.token["access_token"]


@pytest.fixture
def session(oauth: FakeOAuth) -> Session:
    s = Session(oauth)
    s.connect()
    return s


def make_ctx(ads: FakeGoogleAds, session: Session, **settings: Any) -> AccountContext:
    return AccountContext(
        connection_id=1,
        provider="google",
        api_base=f"https://{ads.endpoint}",
        account={"customer_id": "123-456-7890", "login_customer_id": "999-888-7776"},
        settings={
            "call_conversion_action": CALL_ACTION,
            "deal_conversion_action": f"customers/{CUSTOMER}/conversionActions/{DEAL_ACTION}",
            "call_asset_conversion_action": CALL_ASSET_ACTION,
            "deal_call_asset_conversion_action": CALL_ASSET_ACTION,
            "call_asset_numbers": [ASSET_NUMBER],
            **settings,
        },
        access_token=session.access_token,
        timezone="Europe/Moscow",
        currency="RUB",
        extra={"developer_token": ads.developer_token},
    )


def connector(ads: FakeGoogleAds, session: Session, **settings: Any):
    sleeps: list[float] = []
    from connectors.google_ads.connector import GoogleAdsConnector

    conn = GoogleAdsConnector(make_ctx(ads, session, **settings), sleep=sleeps.append)
    conn.sleeps = sleeps  # type: ignore[attr-defined]
    return conn


def call_item(
    n: int,
    *,
    gclid: str | None = None,
    at: dt.datetime | None = None,
    caller: str | None = "+79991234567",
    tracking: str = "+74950000000",
    **session_ids: str,
) -> DeliveryItem:
    at = at or NOW - dt.timedelta(days=1)
    session = None
    if gclid or session_ids:
        session = {"gclid": gclid, "gbraid": None, "wbraid": None, "utm_source": "google", **session_ids}
    payload = {
        "call_id": n,
        "client_id": 1,
        "key": f"otkuda-call-{n}",
        "caller": caller,
        "tracking_number": tracking,
        "static": session is None,
        "called_at": at.isoformat(),
        "answered_at": (at + dt.timedelta(seconds=5)).isoformat(),
        "ended_at": (at + dt.timedelta(seconds=65)).isoformat(),
        "wait_seconds": 5,
        "talk_seconds": 60,
        "status": "answered",
        "abandoned": False,
        "first_time": True,
        "recording_url": None,
        "call_path": f"/clients/1/calls/{n}",
        "channel": "google",
        "tags": [],
        "timezone": "Europe/Moscow",
        "currency": "RUB",
        "session": session,
    }
    return DeliveryItem(id=n, kind=ItemKind.CALL, key=f"otkuda-call-{n}", payload=payload)


def deal_item(n: int, call: DeliveryItem, amount: str = "12500.00") -> DeliveryItem:
    won = dt.datetime.fromisoformat(call.payload["called_at"]) + dt.timedelta(hours=3)
    payload = {
        "deal_id": n,
        "client_id": 1,
        "key": f"otkuda-deal-{n}",
        "external_id": f"amo-{n}",
        "amount": amount,
        "currency": "RUB",
        "won_at": won.isoformat(),
        "caller": call.payload["caller"],
        "call": call.payload,
        "timezone": "Europe/Moscow",
    }
    return DeliveryItem(id=1000 + n, kind=ItemKind.DEAL_WON, key=f"otkuda-deal-{n}", payload=payload)


def click(ads: FakeGoogleAds, gclid: str, at: dt.datetime) -> None:
    ads.customers[CUSTOMER].clicks[gclid] = at


def by_id(results) -> dict[int, Any]:
    return {r.id: r for r in results}


# --- package surface --------------------------------------------------------------------------------


def test_package_exposes_provider_and_capabilities_without_importing_google_ads() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from connectors import registry; m = registry.load('google_ads'); "
        "print(m.PROVIDER.name, sorted(m.CAPABILITIES), 'google.ads' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["google", "['push_calls',", "'push_deals',", "'spend']", "False"]


# --- OAuth ------------------------------------------------------------------------------------------


def test_oauth_code_exchange_gives_offline_refresh_token_and_refresh_keeps_it(oauth: FakeOAuth) -> None:
    s = Session(oauth)
    token = s.connect()
    assert token["refresh_token"].startswith("1//")
    assert oauth.token_requests[0]["grant_type"] == "authorization_code"
    first_access = token["access_token"]
    refreshed = s.refresh()
    assert refreshed["access_token"] != first_access
    expected = {
        "grant_type": "refresh_token",
        "refresh_token": token["refresh_token"],
        "client_id": oauth.dialect.client_id,
        "client_secret": oauth.dialect.client_secret,
    }
    assert expected.items() <= oauth.token_requests[-1].items()
    # Google does not rotate refresh tokens: the session keeps the original one.
    assert s.session.token["refresh_token"] == token["refresh_token"]
    oauth.revoke_all()
    with pytest.raises(Exception, match="invalid_grant"):
        s.refresh()


# --- push: clicks -----------------------------------------------------------------------------------


def test_call_with_gclid_uploads_click_conversion_with_headers_and_local_time(
    ads: FakeGoogleAds, session: Session
) -> None:
    at = dt.datetime(2026, 11, 20, 9, 30, 15, tzinfo=dt.UTC)
    click(ads, "Cj0KCQ-click-1", at - dt.timedelta(minutes=3))
    results = connector(ads, session).push([call_item(1, gclid="Cj0KCQ-click-1", at=at)])
    assert [(r.id, r.outcome, r.external_id) for r in results] == [(1, DeliveryOutcome.DONE, "otkuda-call-1")]

    [received] = ads.calls_to("UploadClickConversions")
    assert received.metadata["developer-token"] == ads.developer_token
    assert received.metadata["login-customer-id"] == MANAGER
    assert received.metadata["authorization"] == f"Bearer {session.session.token['access_token']}"
    assert received.request.customer_id == CUSTOMER
    assert received.request.partial_failure is True
    [conv] = received.request.conversions
    assert conv.gclid == "Cj0KCQ-click-1"
    assert conv.order_id == "otkuda-call-1"
    assert conv.conversion_action == f"customers/{CUSTOMER}/conversionActions/{CALL_ACTION}"
    assert conv.conversion_date_time == "2026-11-20 12:30:15+03:00"  # Moscow
    assert ads.customers[CUSTOMER].click_conversions[0]["order_id"] == "otkuda-call-1"


def test_gbraid_and_won_deal_with_value_and_currency(ads: FakeGoogleAds, session: Session) -> None:
    at = NOW - dt.timedelta(days=2)
    click(ads, "gbraid-0AAAAA", at - dt.timedelta(minutes=1))
    call = call_item(2, at=at, gbraid="gbraid-0AAAAA")
    deal = deal_item(7, call, amount="12500.50")
    results = by_id(connector(ads, session).push([call, deal]))
    assert results[2].outcome == DeliveryOutcome.DONE
    assert results[1007].outcome == DeliveryOutcome.DONE
    stored = {c["order_id"]: c for c in ads.customers[CUSTOMER].click_conversions}
    assert stored["otkuda-call-2"]["gbraid"] == "gbraid-0AAAAA"
    assert stored["otkuda-deal-7"]["action_id"] == DEAL_ACTION
    assert stored["otkuda-deal-7"]["value"] == 12500.5
    assert stored["otkuda-deal-7"]["currency"] == "RUB"
    # one request carried both: same service, one batch
    assert len(ads.calls_to("UploadClickConversions")) == 1


def test_batches_of_at_most_2000_with_pause_between_requests(ads: FakeGoogleAds, session: Session) -> None:
    at = NOW - dt.timedelta(days=1)
    items = []
    for n in range(1, 2102):
        click(ads, f"gclid-batch-{n:05d}", at - dt.timedelta(minutes=1))
        items.append(call_item(n, gclid=f"gclid-batch-{n:05d}", at=at))
    conn = connector(ads, session, requests_per_second=2)
    results = conn.push(items)
    assert len(results) == 2101 and {r.outcome for r in results} == {DeliveryOutcome.DONE}
    sizes = [len(r.request.conversions) for r in ads.calls_to("UploadClickConversions")]
    assert sizes == [2000, 101]
    assert conn.sleeps == [0.5]
    assert len(ads.customers[CUSTOMER].click_conversions) == 2101


def test_partial_failure_maps_each_row(ads: FakeGoogleAds, session: Session) -> None:
    old = NOW - dt.timedelta(days=200)
    click(ads, "gclid-fine-00", NOW - dt.timedelta(days=1))
    click(ads, "gclid-recent0", NOW - dt.timedelta(hours=1))
    click(ads, "gclid-expired", old - dt.timedelta(days=100))
    items = [
        call_item(1, gclid="gclid-fine-00", at=NOW - dt.timedelta(days=1) + dt.timedelta(minutes=1)),
        call_item(2, gclid="gclid-recent0", at=NOW - dt.timedelta(minutes=30)),
        call_item(3, gclid="gclid-expired", at=old),
        call_item(4, gclid="gclid-unknown"),
        call_item(5, gclid=None),  # no click id, not a call-asset number
    ]
    results = by_id(connector(ads, session).push(items))
    assert results[1].outcome == DeliveryOutcome.DONE
    assert results[2].outcome == DeliveryOutcome.RETRY
    assert results[2].retry_after == 6 * 3600
    assert "TOO_RECENT_EVENT" in results[2].error
    assert results[3].outcome == DeliveryOutcome.DEAD and results[3].error.startswith("EXPIRED_EVENT")
    assert results[4].outcome == DeliveryOutcome.DEAD and "CLICK_NOT_FOUND" in results[4].error
    assert results[5].outcome == DeliveryOutcome.SKIPPED
    assert [c["order_id"] for c in ads.customers[CUSTOMER].click_conversions] == ["otkuda-call-1"]
    # the skipped item was never sent
    assert len(ads.calls_to("UploadClickConversions")[0].request.conversions) == 4


def test_crash_resend_is_deduplicated_by_order_id(ads: FakeGoogleAds, session: Session) -> None:
    click(ads, "gclid-dedupe1", NOW - dt.timedelta(days=1, minutes=5))
    item = call_item(9, gclid="gclid-dedupe1")
    conn = connector(ads, session)
    conn.push([item])  # the pipeline crashed before storing this result
    assert conn.find_delivered([item]) == {}  # Google has no look-up by our id
    [again] = conn.push([item])
    assert again.outcome == DeliveryOutcome.DONE and again.external_id == "otkuda-call-9"
    assert "ORDER_ID_ALREADY_IN_USE" in again.error
    assert len(ads.customers[CUSTOMER].click_conversions) == 1
    assert len(ads.calls_to("UploadClickConversions")) == 2


# --- push: call assets --------------------------------------------------------------------------------


def test_call_asset_call_without_click_id_uploads_call_conversion(
    ads: FakeGoogleAds, session: Session
) -> None:
    at = dt.datetime(2026, 11, 19, 21, 0, 0, tzinfo=dt.UTC)
    ads.customers[CUSTOMER].calls.add(("+79991234567", "2026-11-19 21:00:00"))
    item = call_item(20, tracking=ASSET_NUMBER, caller="8 (999) 123-45-67", at=at)
    conn = connector(ads, session)
    [result] = conn.push([item])
    assert result.outcome == DeliveryOutcome.DONE, result.error
    [received] = ads.calls_to("UploadCallConversions")
    [conv] = received.request.conversions
    assert conv.caller_id == "+79991234567"
    assert conv.call_start_date_time == "2026-11-20 00:00:00+03:00"
    assert conv.conversion_date_time == "2026-11-20 00:01:05+03:00"
    assert conv.conversion_action == f"customers/{CUSTOMER}/conversionActions/{CALL_ASSET_ACTION}"
    # re-sent after a crash: Google recognises the same call conversion
    [again] = conn.push([item])
    assert again.outcome == DeliveryOutcome.DONE and "CALL_CONVERSION_ALREADY_EXISTS" in again.error
    assert len(ads.customers[CUSTOMER].call_conversions) == 1


def test_too_recent_call_waits_the_delay_google_names(ads: FakeGoogleAds, session: Session) -> None:
    at = (NOW - dt.timedelta(hours=2)).replace(microsecond=0)
    ads.customers[CUSTOMER].calls.add(("+79991234567", at.strftime("%Y-%m-%d %H:%M:%S")))
    [result] = connector(ads, session).push([call_item(21, tracking=ASSET_NUMBER, at=at)])
    assert result.outcome == DeliveryOutcome.RETRY
    assert result.retry_after == 6 * 3600
    ads.call_too_recent_hours = 1  # later, the call is old enough
    [result] = connector(ads, session).push([call_item(21, tracking=ASSET_NUMBER, at=at)])
    assert result.outcome == DeliveryOutcome.DONE


def test_anonymous_caller_from_call_asset_is_skipped(ads: FakeGoogleAds, session: Session) -> None:
    [result] = connector(ads, session).push([call_item(22, tracking=ASSET_NUMBER, caller=None)])
    assert result.outcome == DeliveryOutcome.SKIPPED
    assert ads.received == []


# --- whole-request failures -----------------------------------------------------------------------------


def test_expired_token_raises_token_expired_then_refresh_succeeds(
    ads: FakeGoogleAds, session: Session
) -> None:
    click(ads, "gclid-token-1", NOW - dt.timedelta(days=1, minutes=1))
    ads.tokens.expire_all()
    conn = connector(ads, session)
    with pytest.raises(TokenExpired, match="OAUTH_TOKEN_EXPIRED"):
        conn.push([call_item(30, gclid="gclid-token-1")])
    assert ads.customers[CUSTOMER].click_conversions == []
    session.refresh()  # what the pipeline does on TokenExpired
    [result] = conn.push([call_item(30, gclid="gclid-token-1")])
    assert result.outcome == DeliveryOutcome.DONE
    assert (
        ads.calls_to("UploadClickConversions")[-1]
        .metadata["authorization"]
        .endswith(session.session.token["access_token"])
    )


def test_revoked_grant_and_missing_manager_raise_auth_revoked(ads: FakeGoogleAds, session: Session) -> None:
    click(ads, "gclid-revoke1", NOW - dt.timedelta(days=1, minutes=1))
    ads.tokens.revoke_all()
    with pytest.raises(AuthRevoked, match="OAUTH_TOKEN_REVOKED"):
        connector(ads, session).push([call_item(31, gclid="gclid-revoke1")])
    session.refresh()
    ctx = make_ctx(ads, session)
    ctx = AccountContext(**{**ctx.__dict__, "account": {"customer_id": CUSTOMER}})
    from connectors.google_ads import make_connector

    with pytest.raises(AuthRevoked, match="USER_PERMISSION_DENIED"):
        make_connector(ctx).push([call_item(31, gclid="gclid-revoke1")])
    assert ads.customers[CUSTOMER].click_conversions == []


def test_transient_and_permanent_request_failures(ads: FakeGoogleAds, session: Session) -> None:
    click(ads, "gclid-failure", NOW - dt.timedelta(days=1, minutes=1))
    item = call_item(40, gclid="gclid-failure")
    conn = connector(ads, session)
    ads.fail_next("UploadClickConversions", grpc.StatusCode.UNAVAILABLE, with_failure=False)
    [r] = conn.push([item])
    assert r.outcome == DeliveryOutcome.RETRY and "UNAVAILABLE" in r.error
    ads.fail_next(
        "UploadClickConversions",
        grpc.StatusCode.INTERNAL,
        [("internal_error", "TRANSIENT_ERROR", "An internal error has occurred.")],
    )
    [r] = conn.push([item])
    assert r.outcome == DeliveryOutcome.RETRY and "TRANSIENT_ERROR" in r.error
    ads.fail_next(
        "UploadClickConversions",
        grpc.StatusCode.INVALID_ARGUMENT,
        [("request_error", "INVALID_CUSTOMER_ID", "Customer id is invalid.")],
    )
    [r] = conn.push([item])
    assert r.outcome == DeliveryOutcome.DEAD and "INVALID_CUSTOMER_ID" in r.error
    assert ads.customers[CUSTOMER].click_conversions == []
    [r] = conn.push([item])
    assert r.outcome == DeliveryOutcome.DONE


def test_quota_exhausted_retries_after_googles_delay_and_stops_the_push(
    ads: FakeGoogleAds, session: Session
) -> None:
    at = NOW - dt.timedelta(days=1)
    items = []
    for n in range(1, 6):
        click(ads, f"gclid-quota-{n}", at - dt.timedelta(minutes=1))
        items.append(call_item(n, gclid=f"gclid-quota-{n}", at=at))
    ads.daily_operations = 2
    ads.quota_retry_delay = 1800
    conn = connector(ads, session, batch_size=2, access_level="explorer")
    assert conn.rate_limit().daily == 2880
    results = by_id(conn.push(items))
    assert [results[n].outcome for n in range(1, 6)] == [DeliveryOutcome.DONE] * 2 + [
        DeliveryOutcome.RETRY
    ] * 3
    assert {results[n].retry_after for n in (3, 4, 5)} == {1800.0}
    # the third batch was never sent: the quota error stopped the push
    assert len(ads.calls_to("UploadClickConversions")) == 2


def test_rate_limit_reports_daily_operations_by_access_level(ads: FakeGoogleAds, session: Session) -> None:
    assert connector(ads, session).rate_limit().daily == 15_000
    assert connector(ads, session, access_level="standard").rate_limit().daily is None
    assert connector(ads, session, access_level="basic", daily_operations=500).rate_limit().daily == 500
    with pytest.raises(ValueError, match="access level"):
        connector(ads, session, access_level="gold").rate_limit()


def test_whole_request_rejection_of_one_row_resends_the_others(ads: FakeGoogleAds, session: Session) -> None:
    """Without partial failure (here: injected), Google refuses the whole request naming the bad row."""
    at = NOW - dt.timedelta(days=1)
    for n in (1, 2):
        click(ads, f"gclid-whole-{n}", at - dt.timedelta(minutes=1))
    items = [call_item(n, gclid=f"gclid-whole-{n}", at=at) for n in (1, 2)]
    ads.fail_next(
        "UploadClickConversions",
        grpc.StatusCode.INVALID_ARGUMENT,
        [("conversion_upload_error", "UNPARSEABLE_GCLID", "The gclid could not be decoded.", 1)],
    )
    results = by_id(connector(ads, session).push(items))
    assert results[2].outcome == DeliveryOutcome.DEAD and "UNPARSEABLE_GCLID" in results[2].error
    assert results[1].outcome == DeliveryOutcome.DONE
    assert [c["order_id"] for c in ads.customers[CUSTOMER].click_conversions] == ["otkuda-call-1"]


# --- pull ---------------------------------------------------------------------------------------------


def test_pull_spend_per_day_campaign_ad_group_keyword(ads: FakeGoogleAds, session: Session) -> None:
    spend = ads.customers[CUSTOMER].spend
    spend += [
        SpendFact("2026-11-01", 10, "Brand", 1_500_000, 3, 100, 100, "Brand exact", 7001, "otkuda"),
        SpendFact("2026-11-01", 10, "Brand", 500_000, 1, 40, 100, "Brand exact", 7002, "call tracking"),
        SpendFact("2026-11-01", 10, "Brand", 250_000, 1, 10, 100, "Brand exact"),  # dynamic ads: no keyword
        SpendFact("2026-11-01", 20, "PMax", 9_990_000, 12, 900),  # Performance Max: no ad group
        SpendFact("2026-11-02", 10, "Brand", 2_000_000, 4, 80, 100, "Brand exact", 7001, "otkuda"),
        SpendFact("2026-11-05", 10, "Brand", 7_000_000, 9, 99, 100, "Brand exact", 7001, "otkuda"),  # outside
    ]
    rows = list(connector(ads, session).pull_spend(dt.date(2026, 11, 1), dt.date(2026, 11, 2)))
    got = {(str(r.day), r.campaign_id, r.ad_group_id, r.keyword_id): r for r in rows}
    assert set(got) == {
        ("2026-11-01", "10", "100", "7001"),
        ("2026-11-01", "10", "100", "7002"),
        ("2026-11-01", "10", "100", ""),
        ("2026-11-01", "20", "", ""),
        ("2026-11-02", "10", "100", "7001"),
    }
    kw = got[("2026-11-01", "10", "100", "7001")]
    assert (kw.cost, kw.clicks, kw.impressions, kw.keyword, kw.ad_group_name, kw.campaign_name) == (
        Decimal("1.5"),
        3,
        100,
        "otkuda",
        "Brand exact",
        "Brand",
    )
    assert got[("2026-11-01", "10", "100", "")].cost == Decimal("0.25")
    assert got[("2026-11-01", "20", "", "")].cost == Decimal("9.99")
    assert {r.currency for r in rows} == {"RUB"}
    # totals add up to the campaign's spend for the day, nothing counted twice
    assert sum(r.cost for r in rows if str(r.day) == "2026-11-01" and r.campaign_id == "10") == Decimal(
        "2.25"
    )
    queries = [r.request.query for r in ads.calls_to("SearchStream")]
    assert len(queries) == 3 and all("BETWEEN '2026-11-01' AND '2026-11-02'" in q for q in queries)


def test_pull_spend_again_gives_the_same_rows(ads: FakeGoogleAds, session: Session) -> None:
    ads.customers[CUSTOMER].spend.append(
        SpendFact("2026-11-03", 30, "Search", 1_234_567, 2, 20, 300, "G", 1, "kw")
    )
    conn = connector(ads, session)
    first = list(conn.pull_spend(dt.date(2026, 11, 3), dt.date(2026, 11, 3)))
    second = list(conn.pull_spend(dt.date(2026, 11, 3), dt.date(2026, 11, 3)))
    assert first == second and [r.cost for r in first] == [Decimal("1.234567")]


def test_pull_spend_expired_token_raises(ads: FakeGoogleAds, session: Session) -> None:
    ads.tokens.expire_all()
    with pytest.raises(TokenExpired):
        list(connector(ads, session).pull_spend(dt.date(2026, 11, 1), dt.date(2026, 11, 1)))


def test_pull_deals_is_empty(ads: FakeGoogleAds, session: Session) -> None:
    assert list(connector(ads, session).pull_deals(NOW)) == []


def test_deal_from_call_asset_call_uploads_call_conversion_with_value(
    ads: FakeGoogleAds, session: Session
) -> None:
    at = dt.datetime(2026, 11, 18, 8, 0, 0, tzinfo=dt.UTC)
    ads.customers[CUSTOMER].calls.add(("+79991234567", "2026-11-18 08:00:00"))
    deal = deal_item(5, call_item(50, tracking=ASSET_NUMBER, at=at), amount="99000")
    [result] = connector(ads, session).push([deal])
    assert result.outcome == DeliveryOutcome.DONE, result.error
    [stored] = ads.customers[CUSTOMER].call_conversions
    assert stored["conversion_date_time"] == "2026-11-18 14:00:00+03:00"  # won three hours after the call
    assert (stored["value"], stored["currency"], stored["action_id"]) == (99000.0, "RUB", CALL_ASSET_ACTION)


def test_token_refused_between_batches_keeps_the_first_batch_result(
    ads: FakeGoogleAds, session: Session
) -> None:
    at = NOW - dt.timedelta(days=1)
    items = []
    for n in range(1, 5):
        click(ads, f"gclid-midway-{n}", at - dt.timedelta(minutes=1))
        items.append(call_item(n, gclid=f"gclid-midway-{n}", at=at))
    ads.fail_next(
        "UploadClickConversions",
        grpc.StatusCode.UNAUTHENTICATED,
        [("authentication_error", "OAUTH_TOKEN_EXPIRED", "Authentication token expired.")],
        after=1,
    )
    results = by_id(connector(ads, session, batch_size=2).push(items))
    assert [results[n].outcome for n in (1, 2)] == [DeliveryOutcome.DONE, DeliveryOutcome.DONE]
    assert [results[n].outcome for n in (3, 4)] == [DeliveryOutcome.RETRY, DeliveryOutcome.RETRY]
    assert "TokenExpired" in results[3].error
    assert len(ads.customers[CUSTOMER].click_conversions) == 2


def test_two_accounts_push_concurrently_each_with_its_own_token(ads: FakeGoogleAds, oauth: FakeOAuth) -> None:
    import threading

    other = ads.add_customer("5550001111", currency="EUR")  # a direct account, no manager
    other.actions[CALL_ACTION] = "click"
    sessions = {CUSTOMER: Session(oauth), "5550001111": Session(oauth)}
    for s in sessions.values():
        s.connect()
    at = NOW - dt.timedelta(days=1)
    for cid in sessions:
        for n in range(20):
            ads.customers[cid].clicks[f"gclid-{cid}-{n:02d}"] = at - dt.timedelta(minutes=1)
    outcomes: dict[str, list[DeliveryOutcome]] = {}

    def run(cid: str) -> None:
        ctx = make_ctx(ads, sessions[cid], batch_size=5)
        account = {"customer_id": cid}
        if cid == CUSTOMER:
            account["login_customer_id"] = MANAGER
        ctx = AccountContext(**{**ctx.__dict__, "account": account})
        from connectors.google_ads import make_connector

        conn = make_connector(ctx)
        items = [call_item(n, gclid=f"gclid-{cid}-{n:02d}", at=at) for n in range(20)]
        outcomes[cid] = [r.outcome for r in conn.push(items)]

    threads = [threading.Thread(target=run, args=(cid,)) for cid in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert outcomes == {cid: [DeliveryOutcome.DONE] * 20 for cid in sessions}
    for received in ads.calls_to("UploadClickConversions"):
        cid = received.request.customer_id
        assert received.metadata["authorization"] == f"Bearer {sessions[cid].session.token['access_token']}"
        assert all(c.gclid.startswith(f"gclid-{cid}-") for c in received.request.conversions)
    assert {cid: len(ads.customers[cid].click_conversions) for cid in sessions} == {
        cid: 20 for cid in sessions
    }


def test_one_push_never_exceeds_the_daily_operations(ads: FakeGoogleAds, session: Session) -> None:
    at = NOW - dt.timedelta(days=1)
    items = []
    for n in range(1, 6):
        click(ads, f"gclid-daily-{n}", at - dt.timedelta(minutes=1))
        items.append(call_item(n, gclid=f"gclid-daily-{n}", at=at))
    results = by_id(connector(ads, session, daily_operations=3).push(items))
    assert [results[n].outcome for n in range(1, 6)] == [DeliveryOutcome.DONE] * 3 + [
        DeliveryOutcome.RETRY
    ] * 2
    assert 60 <= results[4].retry_after <= 25 * 3600  # until midnight Pacific
    assert ads.operations_used == 3


def test_connect_helpers_list_accounts_and_import_actions(ads: FakeGoogleAds, session: Session) -> None:
    from connectors.google_ads import make_connector

    ads.add_customer("5550001111")
    ads.customers[CUSTOMER].actions[444] = "webpage"  # a site tag, not an import action
    ads.customers[CUSTOMER].actions[555] = "click"
    ads.customers[CUSTOMER].removed_actions.add(555)
    ads.customers[CUSTOMER].action_names[CALL_ACTION] = "Calls (Otkuda)"
    ctx = make_ctx(ads, session)
    picker = make_connector(AccountContext(**{**ctx.__dict__, "account": {}}))
    assert picker.accessible_customers() == ["5550001111", MANAGER]
    with pytest.raises(ValueError, match="customer id"):
        picker.push([call_item(1, gclid="gclid-nowhere")])
    actions = make_connector(ctx).conversion_actions()
    assert actions == [
        {"id": str(CALL_ACTION), "name": "Calls (Otkuda)", "kind": "click"},
        {"id": str(DEAL_ACTION), "name": f"Action {DEAL_ACTION}", "kind": "click"},
        {"id": str(CALL_ASSET_ACTION), "name": f"Action {CALL_ASSET_ACTION}", "kind": "call"},
    ]
    [query] = [r.request.query for r in ads.calls_to("SearchStream")]
    assert "FROM conversion_action" in query


def test_wrong_developer_token_is_auth_revoked(ads: FakeGoogleAds, session: Session) -> None:
    ctx = make_ctx(ads, session)
    ctx = AccountContext(**{**ctx.__dict__, "extra": {"developer_token": "someone-elses"}})
    from connectors.google_ads import make_connector

    with pytest.raises(AuthRevoked, match="DEVELOPER_TOKEN_INVALID"):
        list(make_connector(ctx).pull_spend(dt.date(2026, 11, 1), dt.date(2026, 11, 1)))
    assert ads.calls_to("SearchStream")[0].metadata["developer-token"] == "someone-elses"


def test_wbraid_and_a_broken_payload(ads: FakeGoogleAds, session: Session) -> None:
    at = NOW - dt.timedelta(days=3)
    click(ads, "wbraid-0BBBBB", at - dt.timedelta(minutes=2))
    good = call_item(60, at=at, wbraid="wbraid-0BBBBB")
    broken = call_item(61, gclid="gclid-broken1")
    del broken.payload["called_at"]
    results = by_id(connector(ads, session).push([good, broken]))
    assert results[60].outcome == DeliveryOutcome.DONE
    assert results[61].outcome == DeliveryOutcome.DEAD and "called_at" in results[61].error
    [conv] = ads.calls_to("UploadClickConversions")[0].request.conversions
    assert (conv.wbraid, conv.gclid, conv.gbraid) == ("wbraid-0BBBBB", "", "")
