"""Connectors and telephony adapters declare their settings, secrets and webhook paths; the API validates
and documents through those declarations and knows no provider by name."""

from __future__ import annotations

from tests.conftest import TEST_ENCRYPTION_KEY
from tests.factories import make_tenant
from tracking.crypto import decrypt_json
from tracking.models import Connection, ConnectionStatus, TelephonyIntegration


def _auth(t) -> dict[str, str]:
    return {"Authorization": f"Bearer {t.token}"}


def _connection(db, t, connectors: list[str], settings: dict | None = None) -> Connection:
    conn = Connection(
        agency_id=t.agency.id,
        client_id=t.client.id,
        provider="yandex" if "metrika" in connectors else connectors[0],
        name="Account",
        connectors=connectors,
        account={},
        settings=settings or {},
        scopes=[],
        status=ConnectionStatus.ACTIVE,
    )
    db.add(conn)
    db.commit()
    return conn


def test_connection_settings_are_checked_against_the_connectors_declarations(client, db) -> None:
    t = make_tenant(db)
    amo = _connection(db, t, ["amocrm"], {"mode": "unsorted"})
    url = f"/api/v1/clients/{t.client.id}/connections/{amo.id}"
    for settings, field in (
        ({"mode": "lead"}, "settings.pipeline_id"),  # a rule across fields names the field it blames
        ({"mode": "deal"}, "settings.mode"),
        ({"bogus": 1}, "settings.bogus"),
        ({"tags": ["x" * 51]}, "settings.tags[0]"),
    ):
        resp = client.patch(url, json={"settings": settings}, headers=_auth(t))
        assert resp.status_code == 400 and resp.get_json()["field"] == field, (settings, resp.get_json())
    db.expire_all()
    assert db.get(Connection, amo.id).settings == {"mode": "unsorted"}
    ok = client.patch(url, json={"settings": {"mode": "lead", "pipeline_id": "77"}}, headers=_auth(t))
    assert ok.status_code == 200, ok.get_json()
    db.expire_all()
    # Stored as given and coerced by the declaration, without defaults written in.
    assert db.get(Connection, amo.id).settings == {"mode": "lead", "pipeline_id": 77}

    # One Yandex account serves Metrika and Direct: each checks its own keys.
    yandex = _connection(db, t, ["metrika", "yandex_direct"])
    url = f"/api/v1/clients/{t.client.id}/connections/{yandex.id}"
    both = {"deal_goal": "won", "include_vat": False}
    assert client.patch(url, json={"settings": both}, headers=_auth(t)).status_code == 200
    bad = client.patch(url, json={"settings": {"window_days": 0}}, headers=_auth(t))
    assert bad.status_code == 400 and bad.get_json()["field"] == "settings.window_days"
    # Settings of a connector the connection does not serve are refused.
    amo_only = client.patch(url, json={"settings": {"mode": "lead"}}, headers=_auth(t))
    assert amo_only.status_code == 400 and amo_only.get_json()["field"] == "settings.mode"


def test_telephony_secrets_and_settings_follow_the_adapters_declarations(client, db) -> None:
    t = make_tenant(db)
    url = f"/api/v1/clients/{t.client.id}/telephony-integrations"
    for payload, field in (
        ({"provider": "twilio", "secrets": {}}, "secrets.auth_token"),
        ({"provider": "twilio", "secrets": {"auth_token": "a", "api_secret": "b"}}, "secrets.api_secret"),
        ({"provider": "mango", "secrets": {"api_key": "k"}}, "secrets.api_salt"),
        (
            {"provider": "zadarma", "secrets": {"api_secret": "s"}, "settings": {"timezone": "Mars/Base"}},
            "settings.timezone",
        ),
        (
            {"provider": "twilio", "secrets": {"auth_token": "a"}, "settings": {"timezone": "UTC"}},
            "settings.timezone",
        ),
        ({"provider": "skype"}, "provider"),
    ):
        resp = client.post(url, json=payload, headers=_auth(t))
        assert resp.status_code == 400 and resp.get_json()["field"] == field, (payload, resp.get_json())
    assert db.query(TelephonyIntegration).count() == 0

    novofon = client.post(
        url,
        json={
            "provider": "novofon",
            "secrets": {"api_secret": "s"},
            "settings": {"timezone": "Europe/Moscow"},
        },
        headers=_auth(t),
    ).get_json()
    assert novofon["settings"] == {"timezone": "Europe/Moscow"}
    assert set(novofon["webhook_urls"]) == {"notify"}
    one = f"{url}/{novofon['id']}"
    moved = client.patch(one, json={"settings": {"timezone": "Asia/Omsk"}, "active": False}, headers=_auth(t))
    assert moved.status_code == 200 and moved.get_json()["settings"] == {"timezone": "Asia/Omsk"}
    assert moved.get_json()["active"] is False
    refused = client.patch(one, json={"secrets": {"api_secret": ""}}, headers=_auth(t))
    assert refused.status_code == 400 and refused.get_json()["field"] == "secrets.api_secret"

    generic = client.post(url, json={"provider": "generic"}, headers=_auth(t)).get_json()
    made = generic["generated_secrets"]["secret"]
    renamed = client.patch(f"{url}/{generic['id']}", json={"secrets": {}, "name": "PBX"}, headers=_auth(t))
    assert renamed.status_code == 200 and "generated_secrets" not in renamed.get_json()
    db.expire_all()
    kept = decrypt_json(TEST_ENCRYPTION_KEY, db.get(TelephonyIntegration, generic["id"]).secrets_encrypted)
    assert kept == {"secret": made}

    # Another client's integration is not there for this caller.
    other = make_tenant(db, "Other")
    assert client.get(f"{url}/{generic['id']}", headers=_auth(other)).status_code == 404


def test_declarations_are_in_the_document(client) -> None:
    schemas = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    assert set(schemas["TelephonySecrets_mango"]["required"]) == {"api_key", "api_salt"}
    assert "timezone" in schemas["TelephonySettings_zadarma"]["properties"]
    assert schemas["TelephonySettings_twilio"]["additionalProperties"] is False
    assert "pipeline_id" in schemas["ConnectorSettings_amocrm"]["properties"]
    assert "include_vat" in schemas["ConnectorSettings_yandex_direct"]["properties"]


def test_the_connections_page_builds_a_settings_form_from_the_declarations(client, db) -> None:
    from tests.factories import csrf, web_login

    t = make_tenant(db)
    yandex = _connection(db, t, ["metrika", "yandex_direct"], {"deal_goal": "won", "kept": "x"})
    web_login(client, t.admin.email)
    page = client.get(f"/clients/{t.client.id}/connections").get_data(as_text=True)
    # Fields of both connectors, from their Settings models; no hand-written template knows them.
    for name in ("deal_goal", "window_days", "phone_number", "include_vat", "report_timeout_seconds"):
        assert f'name="{name}"' in page, name
    assert 'value="won"' in page
    url = f"/clients/{t.client.id}/connections/{yandex.id}/settings"
    token = csrf(client)
    bad = client.post(url, data={"csrf_token": token, "window_days": "0", "phone_number": "tracking"})
    assert bad.status_code == 302 and "window_days" in bad.headers["Location"]
    db.expire_all()
    assert db.get(Connection, yandex.id).settings == {"deal_goal": "won", "kept": "x"}
    ok = client.post(
        url, data={"csrf_token": token, "window_days": "30", "phone_number": "caller", "deal_goal": ""}
    )
    assert ok.status_code == 302 and "error" not in ok.headers["Location"]
    db.expire_all()
    saved = db.get(Connection, yandex.id).settings
    # Typed by the declaration; an emptied input unset; an unchecked box is off; other keys kept.
    assert saved["window_days"] == 30 and saved["phone_number"] == "caller" and "deal_goal" not in saved
    assert saved["include_vat"] is False and saved["kept"] == "x"
