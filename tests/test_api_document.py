"""The OpenAPI document and the API agree: every route is described and every described route exists, and
real answers over a seeded world carry exactly the fields their documented schemas list."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from tests import factories as h
from tests.factories import make_tenant
from tracking.calls import ingest
from tracking.db import utcnow
from tracking.models import Connection, ConnectionStatus, Delivery, DeliveryStatus, SyncRun
from tracking.telephony.base import CallOutcome, EventKind, ProviderEvent

PREFIX = "/api/v1"
UNDOCUMENTED = {"api.openapi_json", "api.docs"}  # the document itself and its rendering for people
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def _routes(app) -> set[tuple[str, str]]:
    out = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(PREFIX + "/") or rule.endpoint in UNDOCUMENTED:
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([a-z_]+)>", r"{\1}", rule.rule.removeprefix(PREFIX))
        out |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    return out


def test_every_route_is_documented_and_every_documented_route_exists(client, app) -> None:
    doc = client.get(f"{PREFIX}/openapi.json").get_json()
    described = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    routes = _routes(app)
    assert routes - described == set(), "routes missing from the document"
    assert described - routes == set(), "documented operations with no route"


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"].rsplit("/", 1)[-1]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def test_every_documented_response_object_is_closed_and_complete(client) -> None:
    """Responses list every field as required and allow no other: so validating a real answer against the
    document catches both a documented field that is missing and a returned field that is undocumented."""
    doc = client.get(f"{PREFIX}/openapi.json").get_json()
    schemas = doc["components"]["schemas"]
    seen: set[str] = set()
    todo = _refs([op["responses"] for ops in doc["paths"].values() for op in ops.values()])
    while todo:
        name = todo.pop()
        if name in seen or name not in schemas:
            continue
        seen.add(name)
        todo |= _refs(schemas[name])
    objects = [n for n in seen if "properties" in schemas[n]]
    assert len(objects) > 15
    for name in objects:
        schema = schemas[name]
        assert schema.get("additionalProperties") is False, name
        assert set(schema.get("required", [])) == set(schema["properties"]), name


class Checker:
    """Validates answers against the document's schema for their path, method and status."""

    def __init__(self, client, headers: dict[str, str]) -> None:
        self.client, self.headers = client, headers
        self.doc = client.get(f"{PREFIX}/openapi.json").get_json()
        self.checked: set[tuple[str, str]] = set()
        self.moments = 0

    def validator(self, path: str, method: str, status: int) -> Draft202012Validator:
        response = self.doc["paths"][path][method]["responses"][str(status)]
        schema = response["content"]["application/json"]["schema"]
        return Draft202012Validator({**schema, "components": self.doc["components"]})

    def __call__(self, method: str, path: str, status: int, **ids: Any) -> dict[str, Any]:
        kwargs = {k: ids.pop(k) for k in ("json", "query_string") if k in ids}
        url = PREFIX + path.format(**ids)
        resp = self.client.open(url, method=method.upper(), headers=self.headers, **kwargs)
        assert resp.status_code == status, (method, url, resp.get_json())
        data = resp.get_json()
        errors = sorted(self.validator(path, method, status).iter_errors(data), key=str)
        assert not errors, (method, url, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]])
        self._moments(data)
        self.checked.add((path, method))
        return data

    def _moments(self, node: Any) -> None:
        """Every timestamp is UTC with a Z."""
        if isinstance(node, dict):
            for key, value in node.items():
                if (key.endswith("_at") or key in ("at", "hold_until")) and value is not None:
                    assert ISO_Z.match(value), (key, value)
                    self.moments += 1
                self._moments(value)
        elif isinstance(node, list):
            for value in node:
                self._moments(value)


def _ingest(db, integ, cid: str, number: str, at: dt.datetime, caller: str) -> None:
    common = {"provider": "generic", "provider_call_id": cid}
    ingest(
        db, integ, ProviderEvent(**common, kind=EventKind.START, occurred_at=at, caller=caller, called=number)
    )
    end = at + dt.timedelta(minutes=1)
    ingest(
        db,
        integ,
        ProviderEvent(
            **common,
            kind=EventKind.END,
            occurred_at=end,
            ended_at=end,
            outcome=CallOutcome.ANSWERED,
            talk_seconds=30,
        ),
    )
    db.commit()


def test_real_answers_match_their_documented_schemas(client, app, db) -> None:
    t = make_tenant(db)
    check = Checker(client, {"Authorization": f"Bearer {t.token}"})
    cid = t.client.id

    # Setting up through the API: every create and change answer is checked too.
    check("patch", "/clients/{client_id}", 200, client_id=cid, json={"timezone": "Europe/Moscow"})
    other = check("post", "/clients", 201, json={"name": "Second", "currency": "eur"})
    assert other["currency"] == "EUR"
    site = check("post", "/clients/{client_id}/sites", 201, client_id=cid, json={"name": "Shop"})
    check("patch", "/sites/{site_id}", 200, site_id=site["id"], json={"domains": ["Shop.example"]})
    ads = check("post", "/clients/{client_id}/channels", 201, client_id=cid, json={"name": "Ads"})
    check(
        "patch", "/channels/{channel_id}", 200, channel_id=ads["id"], json={"rules": [{"utm_source": "ya"}]}
    )
    static = check("post", "/clients/{client_id}/numbers", 201, client_id=cid, json={"e164": "+74951110000"})
    check("patch", "/numbers/{number_id}", 200, number_id=static["id"], json={"channel_id": ads["id"]})
    member = check("post", "/clients/{client_id}/numbers", 201, client_id=cid, json={"e164": "+74952220000"})
    pool = check(
        "post",
        "/clients/{client_id}/pools",
        201,
        client_id=cid,
        json={"name": "P", "site_id": t.site.id, "number_ids": [member["id"]]},
    )
    check("patch", "/pools/{pool_id}", 200, pool_id=pool["id"], json={"channel_ids": [ads["id"]]})
    spend = check(
        "post",
        "/clients/{client_id}/manual-spend",
        201,
        client_id=cid,
        json={"period_start": "2026-11-01", "period_end": "2026-11-30", "amount": "100.50"},
    )
    mapping = check(
        "put",
        "/clients/{client_id}/campaign-mappings",
        200,
        client_id=cid,
        json={"platform": "yandex_direct", "utm_campaign": "autumn", "campaign_id": "42"},
    )
    generic = check(
        "post",
        "/clients/{client_id}/telephony-integrations",
        201,
        client_id=cid,
        json={"provider": "generic"},
    )
    assert generic["generated_secrets"]["secret"]
    check(
        "patch",
        "/clients/{client_id}/telephony-integrations/{integration_id}",
        200,
        client_id=cid,
        integration_id=generic["id"],
        json={"name": "PBX", "active": True},
    )
    rekeyed = check(
        "post",
        "/clients/{client_id}/telephony-integrations/{integration_id}/rotate-secret",
        200,
        client_id=cid,
        integration_id=generic["id"],
    )
    assert rekeyed["generated_secrets"]["secret"] != generic["generated_secrets"]["secret"]
    manager = check(
        "post",
        "/users",
        201,
        json={"email": "m@acme.example", "password": "long enough 1", "role": "manager"},
    )
    check("patch", "/users/{user_id}", 200, user_id=manager["id"], json={"role": "viewer", "client_id": cid})
    # What people act on: target rules, outgoing webhooks, GA4 streams and notification channels.
    rule = check(
        "post",
        "/clients/{client_id}/target-rules",
        201,
        client_id=cid,
        json={"name": "Lead", "tags_included": ["x"], "working_hours": {"start": "09:00", "end": "18:00"}},
    )
    check("patch", "/target-rules/{rule_id}", 200, rule_id=rule["id"], json={"min_talk_seconds": 0})
    app.config["WEBHOOK_ALLOW_PRIVATE"] = "1"  # the receiver's address is a loopback one
    webhook = check(
        "post",
        "/clients/{client_id}/webhooks",
        201,
        client_id=cid,
        json={"url": "http://127.0.0.1:9/hook", "events": ["call.finalised"]},
    )
    assert webhook["secret"]
    rotated = check(
        "patch", "/webhooks/{webhook_id}", 200, webhook_id=webhook["id"], json={"rotate_secret": True}
    )
    assert rotated["secret"] and rotated["secret"] != webhook["secret"]
    ga4 = check(
        "post",
        "/clients/{client_id}/ga4-connections",
        201,
        client_id=cid,
        json={"measurement_id": "G-ABC123XYZ", "api_secret": "s3cret"},
    )
    assert "api_secret" not in ga4
    check(
        "patch",
        "/ga4-connections/{stream_id}",
        200,
        stream_id=ga4["id"],
        json={"validate": False, "target_calls_only": True},
    )
    chat = check(
        "post",
        "/clients/{client_id}/notification-channels",
        201,
        client_id=cid,
        json={"kind": "telegram", "chat_id": "-100200300", "events": ["missed_call"]},
    )
    check(
        "patch",
        "/notification-channels/{notification_channel_id}",
        200,
        notification_channel_id=chat["id"],
        json={"events": ["missed_call", "target_call"]},
    )
    check(
        "post",
        "/notification-channels/{notification_channel_id}/test",
        202,
        notification_channel_id=chat["id"],
    )

    # Traffic and calls, as the snippet and the telephony webhooks would leave them.
    from tracking.models import Channel, TelephonyIntegration, TrackingNumber

    channel = db.get(Channel, ads["id"])
    number = db.get(TrackingNumber, member["id"])
    visit = h.make_visit(db, t, channel, started=h.T0, last_seen=h.T0, utm_source="ya", promo="AB12")
    h.make_hold(db, visit, number, h.T0, h.T0 + dt.timedelta(minutes=15))
    integ = db.get(TelephonyIntegration, generic["id"])
    _ingest(db, integ, "c1", number.e164, h.T0 + dt.timedelta(minutes=2), "+79001112233")
    _ingest(db, integ, "c2", "+74951110000", h.T0 + dt.timedelta(minutes=3), "+79004445566")
    conn = Connection(
        agency_id=t.agency.id,
        client_id=cid,
        provider="amocrm",
        name="CRM",
        connectors=["amocrm"],
        account={"subdomain": "acme"},
        scopes=[],
        access_token_enc="sealed",
        expires_at=utcnow(),
        status=ConnectionStatus.ACTIVE,
    )
    db.add(conn)
    db.flush()
    dead = Delivery(
        client_id=cid,
        connection_id=conn.id,
        connector="amocrm",
        kind="call",
        key="c1",
        status=DeliveryStatus.DEAD,
    )
    db.add_all(
        [dead, SyncRun(job="deliver", connector="amocrm", connection_id=conn.id, finished_at=utcnow())]
    )
    db.commit()

    calls = check("get", "/clients/{client_id}/calls", 200, client_id=cid)
    assert calls["total"] == 2 and calls["items"]
    call_id = next(c["id"] for c in calls["items"] if c["attribution"]["session_id"])
    check(
        "post",
        "/clients/{client_id}/calls/{call_id}/channel",
        200,
        client_id=cid,
        call_id=call_id,
        json={"channel_id": ads["id"], "reason": "asked"},
    )
    detail = check(
        "patch",
        "/clients/{client_id}/calls/{call_id}",
        200,
        client_id=cid,
        call_id=call_id,
        json={"tags": ["x"]},
    )
    assert detail["history"] and detail["history"][0]["from"] is not None
    check(
        "post",
        "/clients/{client_id}/calls/{call_id}/promo-code",
        200,
        client_id=cid,
        call_id=call_id,
        json={"code": "AB12"},
    )
    detail = check("get", "/clients/{client_id}/calls/{call_id}", 200, client_id=cid, call_id=call_id)
    assert detail["session"] is not None and detail["candidates"]
    check(
        "post", "/clients/{client_id}/deliveries/{delivery_id}/retry", 200, client_id=cid, delivery_id=dead.id
    )
    check(
        "patch",
        "/clients/{client_id}/connections/{connection_id}",
        200,
        client_id=cid,
        connection_id=conn.id,
        json={"name": "Main CRM"},
    )

    ids = {
        "client_id": cid,
        "site_id": site["id"],
        "channel_id": ads["id"],
        "number_id": static["id"],
        "pool_id": pool["id"],
        "session_id": visit.public_id,
        "call_id": call_id,
        "integration_id": generic["id"],
        "rule_id": rule["id"],
        "webhook_id": webhook["id"],
        "stream_id": ga4["id"],
        "notification_channel_id": chat["id"],
    }
    doc = check.doc
    for path, ops in doc["paths"].items():
        op = ops.get("get")
        if op is None or "application/json" not in op["responses"]["200"].get("content", {}):
            continue
        data = check("get", path, 200, **{k: v for k, v in ids.items() if "{" + k + "}" in path})
        if "items" in data:
            assert data["items"], f"{path}: the seeded world should fill every list"
    json_ops = {
        (path, method)
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        if any(
            "application/json" in r.get("content", {})
            for s, r in op["responses"].items()
            if s.startswith("2")
        )
    }
    assert json_ops - check.checked == set(), "operations answering JSON that no real answer exercised"
    assert check.moments > 20
    assert spend["amount"] == "100.50" and mapping["campaign_id"] == "42"


def test_the_check_catches_an_undocumented_and_a_missing_field(client, db) -> None:
    t = make_tenant(db)
    check = Checker(client, {"Authorization": f"Bearer {t.token}"})
    one = check("get", "/clients/{client_id}", 200, client_id=t.client.id)
    validator = check.validator("/clients/{client_id}", "get", 200)
    with pytest.raises(ValidationError):
        validator.validate({**one, "secret": "x"})
    with pytest.raises(ValidationError):
        validator.validate({k: v for k, v in one.items() if k != "currency"})


def test_every_error_has_the_one_shape(client, db) -> None:
    t = make_tenant(db)
    h_ = {"Authorization": f"Bearer {t.token}"}
    answers = [
        client.get(f"{PREFIX}/clients/999999", headers=h_),  # werkzeug's 404
        client.get(f"{PREFIX}/clients/{t.client.id}/calls?from=soon", headers=h_),  # a bad query argument
        client.post(f"{PREFIX}/clients/{t.client.id}/channels", json={"name": 5}, headers=h_),  # a bad field
        client.post(f"{PREFIX}/clients/{t.client.id}/channels", data="nope", headers=h_),  # no JSON body
        client.get(f"{PREFIX}/me"),  # no token
        client.get(f"{PREFIX}/clients/{t.client.id}/romi?start=2026-02-01&end=2026-01-01", headers=h_),
    ]
    doc = client.get(f"{PREFIX}/openapi.json").get_json()
    validator = Draft202012Validator({"$ref": "#/components/schemas/Error", "components": doc["components"]})
    for resp in answers:
        assert resp.status_code in (400, 401, 404), resp.get_json()
        validator.validate(resp.get_json())
    assert answers[1].get_json()["field"] == "from" and answers[2].get_json()["field"] == "name"
    assert answers[5].get_json()["field"] == "end"
