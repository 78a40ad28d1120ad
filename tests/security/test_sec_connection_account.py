"""Attacks on a connection's account facts: a manager re-points an amoCRM connection at a host of their
choosing, so that the token refresh or the API client sends the agency's secrets there."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session

from connectors.base import AuthRevoked
from jobs.contexts import make_connector
from jobs.runtime import Runtime
from jobs.tokens import refresh_connection
from tests.conftest import TEST_ENCRYPTION_KEY
from tests.factories import Tenant, make_tenant
from tests.security.listener import CountingListener
from tracking.crypto import SecretBox
from tracking.db import utcnow
from tracking.models import Connection, ConnectionStatus

BOX = SecretBox(TEST_ENCRYPTION_KEY)
AMO_ACCOUNT = {"host": "acme.amocrm.ru", "subdomain": "acme"}


def _connection(db: Session, t: Tenant, provider: str, connectors: list[str], account: dict) -> Connection:
    conn = Connection(
        agency_id=t.agency.id,
        client_id=t.client.id,
        provider=provider,
        name=provider,
        connectors=connectors,
        account=account,
        settings={},
        scopes=[],
        access_token_enc=BOX.seal("access-1"),
        refresh_token_enc=BOX.seal("refresh-1"),
        expires_at=utcnow() - dt.timedelta(minutes=1),
        status=ConnectionStatus.ACTIVE,
    )
    db.add(conn)
    db.commit()
    return conn


def _runtime(database_url: str, engine) -> Runtime:
    # No TOKEN_URL/API_BASE override: the URLs are built from the stored account, as in production.
    return Runtime.from_config(
        {
            "DATABASE_URL": database_url,
            "ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
            "BASE_URL": "http://hub.test",
            "OTKUDA_AMOCRM_CLIENT_ID": "id",
            "OTKUDA_AMOCRM_CLIENT_SECRET": "agency-secret",
        },
        engine=engine,
    )


def test_patch_cannot_repoint_the_amocrm_host(client, db) -> None:
    t = make_tenant(db)
    conn = _connection(db, t, "amocrm", ["amocrm"], dict(AMO_ACCOUNT))
    url = f"/api/v1/clients/{t.client.id}/connections/{conn.id}"
    auth = {"Authorization": f"Bearer {t.token}"}
    for forged in (
        {"host": "127.0.0.1:8080", "subdomain": "acme"},
        {"host": "evil.example"},
        {"host": "other.amocrm.ru", "subdomain": "other"},  # even another real account is not ours
        {"subdomain": "evil"},
        {"api_base": "http://10.0.0.1"},
    ):
        resp = client.patch(url, json={"account": forged}, headers=auth)
        assert resp.status_code == 400, forged
        assert resp.get_json()["error"] == "invalid"
        assert resp.get_json()["field"].startswith("account."), resp.get_json()
    # Dropping a learned fact does not delete it either, and the same values round-trip unchanged.
    assert client.patch(url, json={"account": {}}, headers=auth).get_json()["account"] == AMO_ACCOUNT
    assert client.patch(url, json={"account": AMO_ACCOUNT}, headers=auth).status_code == 200
    db.expire_all()
    assert db.get(Connection, conn.id).account == AMO_ACCOUNT


def test_typed_fields_are_validated(client, db) -> None:
    t = make_tenant(db)
    yandex = _connection(db, t, "yandex", ["metrika", "yandex_direct"], {})
    google = _connection(db, t, "google", ["google_ads"], {})
    auth = {"Authorization": f"Bearer {t.token}"}
    yurl = f"/api/v1/clients/{t.client.id}/connections/{yandex.id}"
    gurl = f"/api/v1/clients/{t.client.id}/connections/{google.id}"
    for bad in (
        {"counter_id": "12ab"},
        {"counter_id": "1" * 40},
        {"client_login": "evil\r\nX-Injected: 1"},
        {"client_login": "../x"},
        {"currency": "rubles"},
        {"customer_id": "123"},  # Google Ads (not this connection's) field
    ):
        assert client.patch(yurl, json={"account": bad}, headers=auth).status_code == 400, bad
    for bad in ({"customer_id": "12-34"}, {"login_customer_id": "https://evil"}, {"counter_id": "1"}):
        assert client.patch(gurl, json={"account": bad}, headers=auth).status_code == 400, bad
    db.expire_all()
    assert db.get(Connection, yandex.id).account == {} and db.get(Connection, google.id).account == {}
    ok = client.patch(
        yurl, json={"account": {"counter_id": " 4242 ", "client_login": "shop-1"}}, headers=auth
    )
    assert ok.get_json()["account"] == {"counter_id": "4242", "client_login": "shop-1"}
    ok = client.patch(
        gurl,
        json={"account": {"customer_id": "123-456-7890", "login_customer_id": "9876543210"}},
        headers=auth,
    )
    assert ok.status_code == 200
    # An empty value removes a typed field.
    assert client.patch(yurl, json={"account": {"counter_id": "4242"}}, headers=auth).get_json()[
        "account"
    ] == {"counter_id": "4242"}


@pytest.mark.parametrize(
    "host_of", [lambda port: f"127.0.0.1:{port}", lambda port: f"acme.amocrm.ru@127.0.0.1:{port}"]
)
def test_a_stored_foreign_host_is_never_contacted(database_url, engine, db, host_of) -> None:
    """However a foreign host got into the row, the refresh and the API client refuse to build a URL on it."""
    t = make_tenant(db)
    rt = _runtime(database_url, engine)
    with CountingListener() as evil:
        conn = _connection(db, t, "amocrm", ["amocrm"], {"host": host_of(evil.port), "subdomain": "acme"})
        with pytest.raises(AuthRevoked):
            refresh_connection(rt, conn.id)
        with rt.sessions() as s, pytest.raises(ValueError):
            make_connector(rt, s, s.get(Connection, conn.id), "amocrm")
    assert evil.accepted == 0
    db.expire_all()
    stored = db.get(Connection, conn.id)
    assert stored.status == ConnectionStatus.NEEDS_REAUTH
    assert BOX.open(stored.refresh_token_enc) == "refresh-1"  # the grant was not spent anywhere
