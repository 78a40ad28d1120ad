"""Tenants are walled off, proven for every endpoint that names an object.

The test walks the app's URL map: every route with a path parameter is asked, by another agency's user, for
agency A's objects with every method it accepts. Each must answer 404 and leave every table as it was. A new
route whose parameter this file does not know fails the suite until its tenancy is tested here too.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from sqlalchemy import select, text

from tests.factories import Tenant, csrf, make_tenant, make_user, web_login
from tracking.db import Base, utcnow
from tracking.models import (
    ApiToken,
    Call,
    CampaignMapping,
    Channel,
    Connection,
    Delivery,
    ManualSpend,
    Pool,
    Role,
    TargetRule,
    TelephonyIntegration,
    TrackingNumber,
    VisitSession,
)

# Routes anyone may call: the snippet's endpoints and telephony webhooks authenticate by their own keys and
# are tested in their own files; the rest name no tenant object.
PUBLIC = {
    "static",
    "public.snippet",
    "public.snippet_file",  # the same file for every site: no tenant in it
    "public.visit",
    "public.heartbeat",
    "public.release",
    "web.oauth_callback",
}
PUBLIC_PREFIX = "webhooks."


def build_world(db, t: Tenant) -> dict[str, str]:
    """One object of every kind for tenant ``t``; returns path parameter → value."""
    channel = Channel(client_id=t.client.id, name="Yandex Direct", rules=[{"utm_source": "yandex"}])
    db.add(channel)
    db.flush()
    pool = Pool(client_id=t.client.id, site_id=t.site.id, name="Pool")
    db.add(pool)
    db.flush()
    number = TrackingNumber(client_id=t.client.id, e164=f"+7499555{t.client.id:04d}", pool_id=pool.id)
    session = VisitSession(
        public_id=f"s{t.client.id}x", client_id=t.client.id, site_id=t.site.id, visitor_id="v" * 12
    )
    integration = TelephonyIntegration(
        client_id=t.client.id, provider="generic", integration_key=f"key-{t.client.id}", secrets_encrypted="x"
    )
    db.add_all([number, session, integration])
    db.flush()
    call = Call(
        client_id=t.client.id, provider="generic", provider_call_id=f"c{t.client.id}", called_at=utcnow()
    )
    conn = Connection(agency_id=t.agency.id, client_id=t.client.id, provider="yandex", connectors=["metrika"])
    db.add_all([call, conn])
    db.flush()
    delivery = Delivery(
        client_id=t.client.id, connection_id=conn.id, connector="metrika", kind="call", key="k", payload={}
    )
    spend = ManualSpend(
        client_id=t.client.id,
        channel_id=channel.id,
        period_start=dt.date(2026, 11, 1),
        period_end=dt.date(2026, 11, 30),
        amount=Decimal("100"),
    )
    mapping = CampaignMapping(
        client_id=t.client.id, platform="yandex_direct", utm_campaign="brand", campaign_id="1"
    )
    rule = TargetRule(client_id=t.client.id, name="Lead")
    webhook = Connection(
        agency_id=t.agency.id,
        client_id=t.client.id,
        provider="webhook",
        connectors=["webhook"],
        account={"url": "https://example.com/hook"},
    )
    chat = Connection(
        agency_id=t.agency.id,
        client_id=t.client.id,
        provider="telegram",
        connectors=["telegram"],
        account={"chat_id": "42"},
    )
    ga4 = Connection(
        agency_id=t.agency.id,
        client_id=t.client.id,
        provider="ga4",
        connectors=["ga4"],
        account={"measurement_id": "G-ABC123XYZ"},
    )
    db.add_all([delivery, spend, mapping, rule, webhook, chat, ga4])
    db.commit()
    return {
        "client_id": str(t.client.id),
        "fmt": "xlsx",  # export format: both are tenant-scoped alike
        "site_id": str(t.site.id),
        "channel_id": str(channel.id),
        "number_id": str(number.id),
        "pool_id": str(pool.id),
        "session_id": session.public_id,
        "call_id": str(call.id),
        "integration_id": str(integration.id),
        "connection_id": str(conn.id),
        "delivery_id": str(delivery.id),
        "spend_id": str(spend.id),
        "mapping_id": str(mapping.id),
        "connector": "metrika",
        "rule_id": str(rule.id),
        "webhook_id": str(webhook.id),
        "notification_channel_id": str(chat.id),
        "stream_id": str(ga4.id),
        "action": "test",  # a notification channel's form action; the others are tenant-scoped alike
        "user_id": str(t.admin.id),
        "token_id": str(db.scalar(select(ApiToken.id).where(ApiToken.user_id == t.admin.id))),
    }


def snapshot(db) -> dict[str, list]:
    db.expire_all()
    out = {}
    for table in Base.metadata.sorted_tables:
        # last_used_at moves with every API call; rate-limit counters count every request
        if table.name in ("api_tokens", "scheduler_jobs", "rate_limit_counters"):
            continue
        rows = db.execute(select(table).order_by(*table.primary_key.columns)).all()
        out[table.name] = [tuple(r) for r in rows]
    return out


def guarded_routes(app) -> list[tuple[str, str, str]]:
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC or rule.endpoint.startswith(PUBLIC_PREFIX) or not rule.arguments:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            routes.append((rule.endpoint, rule.rule, method))
    return routes


def fill(rule: str, world: dict[str, str]) -> str:
    def sub(m: re.Match) -> str:
        name = m.group(1)
        assert name in world, (
            f"route {rule} has parameter {name!r}: add it to build_world and test its tenancy"
        )
        return world[name]

    return re.sub(r"<(?:[^:<>]+:)?([a-z_]+)>", sub, rule)


def test_every_route_hides_other_agencies_objects(client, db, app) -> None:
    a = make_tenant(db, "Alpha")
    b = make_tenant(db, "Beta")
    world = build_world(db, a)
    routes = guarded_routes(app)
    assert len(routes) > 30
    before = snapshot(db)
    web_login(client, b.admin.email)
    token = csrf(client)
    for endpoint, rule, method in routes:
        url = fill(rule, world)
        if rule.startswith("/api/"):
            resp = client.open(url, method=method, json={}, headers={"Authorization": f"Bearer {b.token}"})
        else:
            resp = client.open(url, method=method, data={"csrf_token": token})
        assert resp.status_code == 404, f"{method} {url} ({endpoint}) answered {resp.status_code}"
    assert snapshot(db) == before

    # The control: the same reads by the owner succeed, so the 404s above are about tenancy, not bad URLs.
    own = app.test_client()
    web_login(own, a.admin.email)
    for endpoint, rule, method in routes:
        if method != "GET":
            continue
        url = fill(rule, world)
        headers = {"Authorization": f"Bearer {a.token}"} if rule.startswith("/api/") else {}
        resp = own.get(url, headers=headers)
        assert resp.status_code in (200, 302), f"owner GET {url} ({endpoint}) answered {resp.status_code}"


def test_a_viewer_sees_only_its_client_and_changes_nothing(client, db) -> None:
    a = make_tenant(db, "Alpha")
    from tracking.models import Client

    second = Client(agency_id=a.agency.id, name="Second client")
    db.add(second)
    db.commit()
    viewer = make_user(db, a, "viewer@alpha.example", Role.VIEWER, client=a.client)
    from tracking.accounts import issue_api_token

    vtoken = issue_api_token(db, viewer, "v")
    db.commit()
    auth = {"Authorization": f"Bearer {vtoken}"}
    items = client.get("/api/v1/clients", headers=auth).get_json()["items"]
    assert [c["id"] for c in items] == [a.client.id]
    assert client.get(f"/api/v1/clients/{second.id}", headers=auth).status_code == 404
    assert client.get(f"/api/v1/clients/{second.id}/sites", headers=auth).status_code == 404
    before = snapshot(db)
    assert client.patch(f"/api/v1/clients/{a.client.id}", json={"name": "x"}, headers=auth).status_code == 403
    assert (
        client.post(f"/api/v1/clients/{a.client.id}/sites", json={"name": "x"}, headers=auth).status_code
        == 403
    )
    assert client.post("/api/v1/clients", json={"name": "x"}, headers=auth).status_code == 403
    assert snapshot(db) == before
    assert db.execute(text("SELECT count(*) FROM clients")).scalar() == 2
