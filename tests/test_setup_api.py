"""Setting a client up through the REST API: validation, members, pagination, and the OpenAPI document."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from tests.factories import make_tenant
from tracking import visits
from tracking.models import Channel, Pool, Site, TrackingNumber


def auth(t):
    return {"Authorization": f"Bearer {t.token}"}


def count(db, model) -> int:
    return db.scalar(select(func.count()).select_from(model))


def test_client_site_channel_number_pool_round_trip(client, db) -> None:
    t = make_tenant(db, "Acme")
    h = auth(t)
    created = client.post(
        "/api/v1/clients", json={"name": "Windows Ltd", "timezone": "Asia/Yekaterinburg"}, headers=h
    )
    assert created.status_code == 201 and created.get_json()["timezone"] == "Asia/Yekaterinburg"
    cid = created.get_json()["id"]

    site = client.post(
        f"/api/v1/clients/{cid}/sites",
        json={"name": "Main", "domains": ["Okna.example"], "replace_numbers": ["8 (495) 123-45-67"]},
        headers=h,
    ).get_json()
    assert site["domains"] == ["okna.example"] and site["replace_numbers"] == ["+74951234567"]
    # An inline loader: no request to the hub before the page's load event.
    tag = site["snippet_tag"]
    assert tag.startswith("<script>") and "src=" not in tag.split(">")[0]
    assert f'"{site["site_key"]}"' in tag and "addEventListener('load'" in tag
    assert (site["swap_attributes"], site["swap_local_numbers"]) == ([], False)

    ch = client.post(
        f"/api/v1/clients/{cid}/channels",
        json={"name": "Direct", "position": 5, "rules": [{"utm_source": "yandex", "has_yclid": True}]},
        headers=h,
    ).get_json()
    static = client.post(
        f"/api/v1/clients/{cid}/numbers",
        json={"e164": "+7 (495) 000-11-22", "channel_id": ch["id"]},
        headers=h,
    ).get_json()
    assert static["e164"] == "+74950001122" and static["kind"] == "static"
    members = [
        client.post(
            f"/api/v1/clients/{cid}/numbers", json={"e164": f"8 495 000 12 0{i}"}, headers=h
        ).get_json()["id"]
        for i in range(3)
    ]
    pool = client.post(
        f"/api/v1/clients/{cid}/pools",
        json={
            "name": "P",
            "site_id": site["id"],
            "hold_seconds": 600,
            "number_ids": members,
            "channel_ids": [ch["id"]],
        },
        headers=h,
    )
    assert pool.status_code == 201, pool.get_json()
    body = pool.get_json()
    assert body["number_ids"] == members and body["channel_ids"] == [ch["id"]] and body["hold_seconds"] == 600
    # Replacing the members takes one out.
    patched = client.patch(
        f"/api/v1/pools/{body['id']}", json={"number_ids": members[:2]}, headers=h
    ).get_json()
    assert patched["number_ids"] == members[:2]
    assert db.get(TrackingNumber, members[2]).pool_id is None

    # A visitor from the channel with a static number gets that number; anyone else a pool number once the
    # pool serves every channel.
    result = visits.visit(
        db, site["site_key"], {"visitor_id": "visitor-0001", "utm_source": "yandex", "yclid": "1"}
    )
    assert result.number is not None and result.number.id == static["id"]
    client.patch(f"/api/v1/pools/{body['id']}", json={"channel_ids": []}, headers=h)
    organic = visits.visit(db, site["site_key"], {"visitor_id": "visitor-0002"})
    assert organic.number is not None and organic.number.id in members[:2]
    listed = client.get(f"/api/v1/clients/{cid}/sessions?channel_id={ch['id']}", headers=h).get_json()
    assert listed["total"] == 1 and listed["items"][0]["utm_source"] == "yandex"
    one = client.get(f"/api/v1/sessions/{listed['items'][0]['id']}", headers=h).get_json()
    assert one["number"] == result.number.e164


def test_bad_input_names_the_field_and_changes_nothing(client, db) -> None:
    t = make_tenant(db, "Acme")
    h = auth(t)
    before = (count(db, Site), count(db, Channel), count(db, TrackingNumber), count(db, Pool))
    cases = [
        (f"/api/v1/clients/{t.client.id}/numbers", {"e164": "call me maybe"}, "e164"),
        (f"/api/v1/clients/{t.client.id}/numbers", {}, "e164"),
        (
            f"/api/v1/clients/{t.client.id}/sites",
            {"name": "x", "replace_numbers": ["12"]},
            "replace_numbers[0]",
        ),
        (f"/api/v1/clients/{t.client.id}/channels", {"name": "x", "rules": [{"utm_sorce": "y"}]}, "rules[0]"),
        (f"/api/v1/clients/{t.client.id}/channels", {"name": 5}, "name"),
        (f"/api/v1/clients/{t.client.id}/pools", {"name": "p", "site_id": 999999}, "site_id"),
        (
            f"/api/v1/clients/{t.client.id}/pools",
            {"name": "p", "site_id": t.site.id, "hold_seconds": 1},
            "hold_seconds",
        ),
    ]
    for url, payload, fld in cases:
        resp = client.post(url, json=payload, headers=h)
        assert resp.status_code == 400, (url, payload, resp.get_json())
        assert resp.get_json()["field"] == fld
    assert client.post(f"/api/v1/clients/{t.client.id}/sites", data="nope", headers=h).status_code == 400
    assert (count(db, Site), count(db, Channel), count(db, TrackingNumber), count(db, Pool)) == before
    # A number already used by another client of the same agency cannot be taken (numbers are unique per
    # agency; another agency's numbers are tests/security/test_sec_oracles.py's business).
    client.post(f"/api/v1/clients/{t.client.id}/numbers", json={"e164": "+74950009999"}, headers=h)
    sibling = client.post("/api/v1/clients", json={"name": "Sibling"}, headers=h).get_json()
    dup = client.post(f"/api/v1/clients/{sibling['id']}/numbers", json={"e164": "84950009999"}, headers=h)
    assert dup.status_code == 400 and dup.get_json()["field"] == "e164"
    assert count(db, TrackingNumber) == before[2] + 1


def test_lists_are_paginated(client, db) -> None:
    t = make_tenant(db, "Acme")
    for i in range(5):
        db.add(Channel(client_id=t.client.id, name=f"c{i}", position=i))
    db.commit()
    page = client.get(f"/api/v1/clients/{t.client.id}/channels?per_page=2&page=2", headers=auth(t)).get_json()
    assert page["total"] == 5 and [c["name"] for c in page["items"]] == ["c2", "c3"]
    assert (
        client.get(f"/api/v1/clients/{t.client.id}/channels?per_page=0", headers=auth(t)).status_code == 400
    )


def test_openapi_describes_every_api_route(client, app) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    described = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.endpoint in ("api.openapi_json", "api.docs"):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([a-z_]+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method.lower()) in described, f"{method} {path} is not in the OpenAPI document"


def test_site_snippet_settings_are_validated_and_kept(client, db) -> None:
    t = make_tenant(db, "Acme")
    h = auth(t)
    url = f"/api/v1/sites/{t.site.id}"
    ok = client.patch(
        url, json={"swap_attributes": ["data-phone", "Data-Tel"], "swap_local_numbers": True}, headers=h
    )
    assert ok.status_code == 200
    assert (ok.get_json()["swap_attributes"], ok.get_json()["swap_local_numbers"]) == (
        ["data-phone", "data-tel"],
        True,
    )
    for bad in (["onclick"], ["href"], ["data phone"], "data-phone", [1], ["x"] * 21):
        resp = client.patch(url, json={"swap_attributes": bad}, headers=h)
        assert resp.status_code == 400, bad
        assert resp.get_json()["error"] == "invalid"
    assert client.patch(url, json={"swap_local_numbers": "yes"}, headers=h).status_code == 400
    db.expire_all()
    assert (t.site.swap_attributes, t.site.swap_local_numbers) == (["data-phone", "data-tel"], True)


def test_archiving_a_client_hides_it_keeps_its_data_and_stops_handing_out_numbers(client, db) -> None:
    from tests.factories import make_pool
    from tracking.models import Client

    t = make_tenant(db, "Acme")
    make_pool(db, t.site, 2)
    h = auth(t)
    url = f"/api/v1/clients/{t.client.id}"
    assert client.get(url, headers=h).get_json()["archived"] is False
    visit = {"visitor_id": "0f3c9a7d2e6b5f1a8c4d0e9b-visitor-0001", "url": "https://acme.example/"}
    origin = {"Origin": "https://acme.example"}
    before = client.post(f"/t/v1/{t.site.site_key}/visit", json=visit, headers=origin).get_json()
    assert before["number"] is not None

    assert client.patch(url, json={"archived": "yes"}, headers=h).status_code == 400
    done = client.patch(url, json={"archived": True}, headers=h)
    assert done.status_code == 200 and done.get_json()["archived"] is True
    db.expire_all()
    assert db.get(Client, t.client.id).archived_at is not None
    assert client.get("/api/v1/clients", headers=h).get_json()["items"] == []
    listed = client.get("/api/v1/clients?include_archived=true", headers=h).get_json()["items"]
    assert [c["id"] for c in listed] == [t.client.id] and listed[0]["archived"] is True
    # Still readable, its sessions kept; a new visitor sees the site's own number.
    assert client.get(url, headers=h).status_code == 200
    other = {**visit, "visitor_id": "0f3c9a7d2e6b5f1a8c4d0e9b-visitor-0002"}
    after = client.post(f"/t/v1/{t.site.site_key}/visit", json=other, headers=origin).get_json()
    assert after["number"] is None and after["session_id"] != before["session_id"]

    back = client.patch(url, json={"archived": False}, headers=h)
    assert back.get_json()["archived"] is False
    third = {**visit, "visitor_id": "0f3c9a7d2e6b5f1a8c4d0e9b-visitor-0003"}
    assert client.post(f"/t/v1/{t.site.site_key}/visit", json=third, headers=origin).get_json()["number"]


def _signed_start(client, key: str, secret: str, call_id: str):
    import json
    import time

    from tracking.telephony import generic

    body = json.dumps(
        {
            "event": "start",
            "call_id": call_id,
            "caller": "+79001234567",
            "called": "+74951110000",
            "at": "2026-11-30T10:00:00Z",
        }
    ).encode()
    stamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Otkuda-Timestamp": stamp,
        "X-Otkuda-Signature": generic.sign(secret, stamp, body),
    }
    return client.post(f"/hooks/v1/generic/{key}", data=body, headers=headers)


def test_integration_is_re_keyed_and_deleted_through_the_api_keeping_its_calls(client, db) -> None:
    from tests.factories import make_user
    from tracking.accounts import issue_api_token
    from tracking.models import Call, Role, TelephonyIntegration

    t = make_tenant(db, "Acme")
    h = auth(t)
    db.add(TrackingNumber(client_id=t.client.id, e164="+74951110000"))
    db.commit()
    base = f"/api/v1/clients/{t.client.id}/telephony-integrations"
    made = client.post(base, json={"provider": "generic", "name": "PBX"}, headers=h).get_json()
    old = made["generated_secrets"]["secret"]
    key = made["webhook_urls"]["notify"].rsplit("/", 1)[1]
    assert _signed_start(client, key, old, "c1").status_code < 300
    assert count(db, Call) == 1

    # A viewer may neither re-key nor delete; nothing changes.
    viewer = make_user(db, t, "viewer@acme.example", Role.VIEWER, client=t.client)
    vauth = {"Authorization": f"Bearer {issue_api_token(db, viewer, 'v')}"}
    db.commit()
    assert client.post(f"{base}/{made['id']}/rotate-secret", headers=vauth).status_code == 403
    assert client.delete(f"{base}/{made['id']}", headers=vauth).status_code == 403

    rotated = client.post(f"{base}/{made['id']}/rotate-secret", headers=h)
    assert rotated.status_code == 200
    new = rotated.get_json()["generated_secrets"]["secret"]
    assert new != old and rotated.get_json()["webhook_urls"] == made["webhook_urls"]
    # The secret is shown once: a plain read never carries it.
    assert new not in client.get(f"{base}/{made['id']}", headers=h).get_data(as_text=True)
    assert _signed_start(client, key, old, "c2").status_code >= 400
    assert _signed_start(client, key, new, "c3").status_code < 300
    assert count(db, Call) == 2

    gone = client.delete(f"{base}/{made['id']}", headers=h)
    assert gone.status_code == 204
    assert count(db, TelephonyIntegration) == 0 and count(db, Call) == 2
    assert client.get(f"{base}/{made['id']}", headers=h).status_code == 404
    assert _signed_start(client, key, new, "c4").status_code == 404


def test_an_integration_whose_secret_is_the_providers_is_not_re_keyed(client, db) -> None:
    from tests.factories import make_integration

    t = make_tenant(db, "Acme")
    integ = make_integration(db, t, "zadarma", {"api_secret": "z"})
    resp = client.post(
        f"/api/v1/clients/{t.client.id}/telephony-integrations/{integ.id}/rotate-secret", headers=auth(t)
    )
    assert resp.status_code == 400
    assert resp.get_json()["field"] == "secrets"
