"""Viewers read; they never see webhook URLs, which carry the keys that let anyone post calls or deals."""

from __future__ import annotations

from flask import Flask

from hub.crm_webhooks import webhook_token
from tests import factories as h
from tests.factories import make_tenant, make_user, web_login
from tracking.accounts import issue_api_token
from tracking.models import Connection, ConnectionStatus, Role


def test_viewer_sees_no_secret_urls(app: Flask, client, db) -> None:
    t = make_tenant(db)
    integs = [
        h.make_integration(db, t, p, {"secret": "s"}) for p in ("generic", "twilio", "mango", "zadarma")
    ]
    amo = Connection(
        agency_id=t.agency.id,
        client_id=t.client.id,
        provider="amocrm",
        name="amoCRM",
        connectors=["amocrm"],
        account={"host": "acme.amocrm.ru", "subdomain": "acme"},
        settings={},
        scopes=[],
        status=ConnectionStatus.ACTIVE,
    )
    db.add(amo)
    db.commit()
    viewer = make_user(db, t, "viewer@acme.example", Role.VIEWER, client=t.client)
    viewer_token = issue_api_token(db, viewer, "viewer")
    db.commit()
    keys = [i.integration_key for i in integs]
    hook_token = webhook_token(app.config["SECRET_KEY"], amo.id)

    listed = client.get(
        f"/api/v1/clients/{t.client.id}/telephony-integrations",
        headers={"Authorization": f"Bearer {viewer_token}"},
    )
    assert listed.status_code == 200 and len(listed.get_json()["items"]) == 4
    body = listed.get_data(as_text=True)
    assert all(item["webhook_urls"] is None for item in listed.get_json()["items"])
    assert not any(k in body for k in keys)
    connections = client.get(
        f"/api/v1/clients/{t.client.id}/connections", headers={"Authorization": f"Bearer {viewer_token}"}
    )
    assert connections.status_code == 200 and hook_token not in connections.get_data(as_text=True)

    web_login(client, viewer.email)
    page = client.get(f"/clients/{t.client.id}/connections")
    assert page.status_code == 200 and "amoCRM" in page.get_data(as_text=True)
    assert hook_token not in page.get_data(as_text=True) and "/hooks/v1/" not in page.get_data(as_text=True)

    # Those who may edit the client still get them (they configure the provider with them).
    admin = client.get(
        f"/api/v1/clients/{t.client.id}/telephony-integrations",
        headers={"Authorization": f"Bearer {t.token}"},
    ).get_data(as_text=True)
    assert all(k in admin for k in keys)
    client.post("/logout")
    web_login(client, t.admin.email)
    assert hook_token in client.get(f"/clients/{t.client.id}/connections").get_data(as_text=True)
