"""One Yandex OAuth connection for Metrika and Direct: code exchange and refresh with Authlib's
OAuth2Session against the local fake token endpoint, then both APIs with the token it gave."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest
import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from connectors import registry
from connectors.base import (
    AccountContext,
    DeliveryItem,
    DeliveryOutcome,
    ItemKind,
    OAuthProvider,
    TokenExpired,
)
from tests.fakes.yandex_direct import Stat
from tests.fakes.yandex_server import FakeYandex, running_yandex

REDIRECT = "https://hub.example/connections/yandex/callback"


@pytest.fixture
def yandex() -> Iterator[FakeYandex]:
    with running_yandex() as fake:
        fake.oauth.owner = "shop"
        fake.metrika.counters["5551"] = {"shop"}
        fake.direct.stats["shop"] = [
            Stat(dt.date(2026, 11, 1), 7, "Brand", 8, "Group", 9, "sofa", 10, 2, Decimal("3"))
        ]
        fake.direct.polls_to_ready = 0
        yield fake


def provider(fake: FakeYandex, name: str) -> OAuthProvider:
    real = registry.load(name).PROVIDER
    return dataclasses.replace(
        real, authorize_url=f"{fake.base_url}/authorize", token_url=f"{fake.base_url}/token"
    )


def oauth_session(p: OAuthProvider, method: str | None = None) -> OAuth2Session:
    return OAuth2Session(
        client_id="app-id",
        client_secret="app-secret",
        scope=" ".join(p.scopes),
        redirect_uri=REDIRECT,
        token_endpoint_auth_method=method or p.token_endpoint_auth_method,
    )


def connect(fake: FakeYandex, session: OAuth2Session, p: OAuthProvider) -> dict:
    url, _state = session.create_authorization_url(p.authorize_url, **p.authorize_params)
    redirect = requests.get(url, allow_redirects=False, timeout=10)
    assert redirect.status_code == 302
    return session.fetch_token(p.token_url, authorization_response=redirect.headers["Location"])


def test_both_connectors_describe_one_provider() -> None:
    metrika, direct = registry.load("metrika").PROVIDER, registry.load("yandex_direct").PROVIDER
    assert metrika.name == direct.name == "yandex"
    assert dataclasses.replace(metrika, api_base="") == dataclasses.replace(direct, api_base="")
    assert {"metrika:offline_data", "direct:api"} <= set(metrika.scopes)
    assert metrika.api_base == "https://api-metrika.yandex.net"
    assert direct.api_base == "https://api.direct.yandex.com"
    assert {"push_calls", "push_deals"} == registry.load("metrika").CAPABILITIES
    assert {"spend"} == registry.load("yandex_direct").CAPABILITIES


def test_code_exchange_then_one_token_serves_metrika_and_direct(yandex: FakeYandex) -> None:
    p = provider(yandex, "metrika")
    token = connect(yandex, oauth_session(p), p)
    assert token["token_type"].lower() == "bearer" and token["refresh_token"]
    assert yandex.oauth.token_requests[0]["grant_type"] == "authorization_code"
    assert yandex.oauth.token_requests[0]["client_secret"] == "app-secret"  # client_secret_post

    def ctx(name: str, account: dict[str, str]) -> AccountContext:
        return AccountContext(
            connection_id=1,
            provider="yandex",
            api_base=yandex.base_url,
            account=account,
            settings={"status_poll_interval": 0},
            access_token=lambda: token["access_token"],
        )

    payload = {
        "key": "otkuda-call-1",
        "called_at": dt.datetime.now(dt.UTC).isoformat(),
        "tracking_number": "+74950000001",
        "status": "answered",
        "session": {"ym_client_id": "1700000000123456789"},
    }
    item = DeliveryItem(1, ItemKind.CALL, "otkuda-call-1", payload)
    [result] = registry.load("metrika").make_connector(ctx("metrika", {"counter_id": "5551"})).push([item])
    assert result.outcome == DeliveryOutcome.DONE
    rows = (
        registry.load("yandex_direct")
        .make_connector(ctx("yandex_direct", {}))
        .pull_spend(dt.date(2026, 11, 1), dt.date(2026, 11, 1))
    )
    assert [(r.campaign_id, r.keyword) for r in rows] == [("7", "sofa")]


def test_refresh_rotates_single_use_refresh_tokens(yandex: FakeYandex) -> None:
    p = provider(yandex, "yandex_direct")
    session = oauth_session(p, "client_secret_basic")
    first = connect(yandex, session, p)
    assert "client_secret" not in yandex.oauth.token_requests[0]  # sent as HTTP Basic instead

    second = session.refresh_token(p.token_url, refresh_token=first["refresh_token"])
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    assert yandex.oauth.token_requests[-1]["grant_type"] == "refresh_token"

    with pytest.raises(OAuthError) as info:
        session.refresh_token(p.token_url, refresh_token=first["refresh_token"])
    assert info.value.error == "invalid_grant"

    # The replaced access token is refused, which the connector reports so the pipeline refreshes.
    stale = AccountContext(
        connection_id=1,
        provider="yandex",
        api_base=yandex.base_url,
        account={"counter_id": "5551"},
        settings={},
        access_token=lambda: first["access_token"],
    )
    call = DeliveryItem(
        2,
        ItemKind.CALL,
        "otkuda-call-2",
        {
            "called_at": dt.datetime.now(dt.UTC).isoformat(),
            "session": {"ym_client_id": "1700000000123456789"},
        },
    )
    with pytest.raises(TokenExpired):
        registry.load("metrika").make_connector(stale).push([call])


def test_bad_code_and_bad_client_are_refused(yandex: FakeYandex) -> None:
    p = provider(yandex, "metrika")
    with pytest.raises(OAuthError) as info:
        oauth_session(p).fetch_token(p.token_url, code="never-issued")
    assert info.value.error == "bad_verification_code"
    wrong = OAuth2Session(client_id="app-id", client_secret="nope", redirect_uri=REDIRECT)
    with pytest.raises(OAuthError) as info:
        wrong.fetch_token(p.token_url, code="whatever")
    assert info.value.error == "invalid_client"
