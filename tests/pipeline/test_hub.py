"""The hub's side: the OAuth connect flow, and connections, deliveries and sync history in UI and API."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import requests
from sqlalchemy import func, select, text

from jobs.deliver import Worker
from tests.factories import csrf, make_tenant, make_user, web_login
from tests.pipeline.support import BOX, call_payload, make_connection
from tracking import hooks
from tracking.models import Connection, ConnectionStatus, Delivery, DeliveryStatus, Role


def login(client, tenant) -> None:
    assert web_login(client, tenant.admin.email).status_code == 302


def start_connect(client, tenant, **params) -> str:
    """Press "Connect", follow the redirect to the fake provider; return the callback URL it sends back."""
    resp = client.get(f"/clients/{tenant.client.id}/connections/connect/fakedest", query_string=params)
    assert resp.status_code == 302
    consent = requests.get(resp.headers["Location"], allow_redirects=False, timeout=10)
    assert consent.status_code == 302
    return consent.headers["Location"]


def test_connect_flow_stores_encrypted_tokens_and_account(app, client, db, rt, fakes) -> None:
    app.config.update(fakes.config())
    t = make_tenant(db)
    login(client, t)
    page = client.get(f"/clients/{t.client.id}/connections").get_data(as_text=True)
    assert "Connect Fake CRM" in page
    resp = client.get(f"/clients/{t.client.id}/connections/connect/fakedest")
    target = urlsplit(resp.headers["Location"])
    q = parse_qs(target.query)
    assert target.path == "/authorize" and q["redirect_uri"] == ["http://hub.test/oauth/callback"]
    assert q["scope"] == ["read write"] and len(q["state"][0]) >= 32
    callback = requests.get(resp.headers["Location"], allow_redirects=False, timeout=10).headers["Location"]
    done = client.get(callback.replace("http://hub.test", ""))
    assert done.status_code == 302 and done.headers["Location"].endswith(
        f"/clients/{t.client.id}/connections"
    )
    conn = db.scalars(select(Connection)).one()
    assert (conn.client_id, conn.provider, conn.connectors, conn.status) == (
        t.client.id,
        "fakeoauth",
        ["fakedest"],
        ConnectionStatus.ACTIVE,
    )
    assert conn.account == {"subdomain": "acme.fake.test"}  # learnt from the callback
    token = BOX.open(conn.access_token_enc)
    assert token in fakes.dest.valid_tokens and token not in conn.access_token_enc
    assert conn.expires_at is not None and conn.scopes == ["read", "write"]


def test_callback_with_a_wrong_state_is_refused_and_stores_nothing(app, client, db, rt, fakes) -> None:
    app.config.update(fakes.config())
    t = make_tenant(db)
    login(client, t)
    callback = start_connect(client, t)
    parts = urlsplit(callback)
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    forged = client.get("/oauth/callback", query_string={**q, "state": "forged-" + q["state"]})
    assert forged.status_code == 400
    # The flow is spent: even the right state no longer works, and the code was never exchanged.
    replay = client.get("/oauth/callback", query_string=q)
    assert replay.status_code == 400
    assert fakes.oauth.token_requests == []
    assert db.scalar(select(func.count(Connection.id))) == 0
    # A callback with no flow started in this browser is refused too.
    assert client.get("/oauth/callback?code=x&state=y").status_code == 400


def test_reconnect_revives_a_connection_that_needs_reauthorisation(app, client, db, rt, fakes) -> None:
    app.config.update(fakes.config())
    t = make_tenant(db)
    conn = make_connection(db, t, fakes)
    conn.status, conn.status_reason = ConnectionStatus.NEEDS_REAUTH, "refresh refused: invalid_grant"
    db.commit()
    login(client, t)
    page = client.get(f"/clients/{t.client.id}/connections").get_data(as_text=True)
    assert "Needs re-authorisation" in page and "Reconnect" in page
    callback = start_connect(client, t, connection=conn.id)
    assert client.get(callback.replace("http://hub.test", "")).status_code == 302
    db.expire_all()
    assert db.scalar(select(func.count(Connection.id))) == 1
    conn = db.get(Connection, conn.id)
    assert conn.status == ConnectionStatus.ACTIVE and conn.status_reason is None
    assert "Needs re-authorisation" not in client.get(f"/clients/{t.client.id}/connections").get_data(
        as_text=True
    )


def queue(db, tenant, n: int) -> list[str]:
    keys = []
    for call_id in range(1, n + 1):
        p = call_payload(call_id, tenant.client.id)
        hooks.call_finalised.fire(db, hooks.CallFinalised(tenant.client.id, call_id, p["key"], p))
        keys.append(p["key"])
    db.commit()
    return keys


def test_api_lists_connections_without_tokens_and_hides_other_agencies(client, db, rt, fakes) -> None:
    t = make_tenant(db)
    other = make_tenant(db, "Other")
    conn = make_connection(db, t, fakes)
    auth = {"Authorization": f"Bearer {t.token}"}
    resp = client.get(f"/api/v1/clients/{t.client.id}/connections", headers=auth)
    assert resp.status_code == 200
    [item] = resp.get_json()["items"]
    assert item["id"] == conn.id and item["status"] == "active" and item["has_token"] is True
    body = resp.get_data(as_text=True)
    assert BOX.open(conn.access_token_enc) not in body and BOX.open(conn.refresh_token_enc) not in body
    assert "token_enc" not in body
    for path in ("connections", "deliveries", "sync-runs"):
        foreign = client.get(f"/api/v1/clients/{other.client.id}/{path}", headers=auth)
        assert foreign.status_code == 404 and foreign.get_json()["error"] == "not_found"
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    for p in (
        "/clients/{client_id}/connections",
        "/clients/{client_id}/deliveries",
        "/clients/{client_id}/deliveries/{delivery_id}/retry",
        "/clients/{client_id}/sync-runs",
    ):
        assert p in paths


def test_api_deliveries_filters_and_retry(client, db, rt, fakes) -> None:
    t = make_tenant(db)
    other = make_tenant(db, "Other")
    make_connection(db, t, fakes)
    bad, busy, good = queue(db, t, 3)
    fakes.dest.invalid_uids.add(bad)
    fakes.dest.busy_uids.add(busy)
    Worker(rt).run_once()
    auth = {"Authorization": f"Bearer {t.token}"}
    base = f"/api/v1/clients/{t.client.id}/deliveries"

    def keys(status: str) -> list[str]:
        resp = client.get(base, query_string={"status": status}, headers=auth)
        assert resp.status_code == 200
        return [d["key"] for d in resp.get_json()["items"]]

    assert keys("dead") == [bad]
    assert keys("failing") == [busy]
    assert sorted(keys("problems")) == sorted([bad, busy])
    assert keys("done") == [good]
    dead = client.get(base, query_string={"status": "dead"}, headers=auth).get_json()["items"][0]
    assert dead["last_error"] == "bad phone" and dead["attempts"] == 1
    assert client.get(base, query_string={"status": "bogus"}, headers=auth).status_code == 400
    assert client.get(base, query_string={"limit": "0"}, headers=auth).status_code == 400

    # Another agency cannot retry it (404, unchanged); a viewer may look but not retry (403).
    foreign = client.post(f"{base}/{dead['id']}/retry", headers={"Authorization": f"Bearer {other.token}"})
    assert foreign.status_code == 404
    viewer = make_user(db, t, "viewer@acme.example", Role.VIEWER, t.client)
    from tracking.accounts import issue_api_token

    vtoken = issue_api_token(db, viewer)
    db.commit()
    assert (
        client.post(f"{base}/{dead['id']}/retry", headers={"Authorization": f"Bearer {vtoken}"}).status_code
        == 403
    )
    db.expire_all()
    assert db.get(Delivery, dead["id"]).status == DeliveryStatus.DEAD

    fakes.dest.invalid_uids.clear()
    retried = client.post(f"{base}/{dead['id']}/retry", headers=auth)
    assert retried.status_code == 200 and retried.get_json()["status"] == "pending"
    done_id = [
        d["id"] for d in client.get(base, query_string={"status": "done"}, headers=auth).get_json()["items"]
    ]
    conflict = client.post(f"{base}/{done_id[0]}/retry", headers=auth)
    assert conflict.status_code == 409 and conflict.get_json()["error"] == "conflict"
    # A delivery id of another client of the caller's own URL space answers 404 as well.
    assert (
        client.post(
            f"/api/v1/clients/{other.client.id}/deliveries/{dead['id']}/retry", headers=auth
        ).status_code
        == 404
    )
    Worker(rt).run_once()
    assert sorted(keys("done")) == sorted([bad, good])
    assert fakes.dest.counts()[bad] == 1

    runs = client.get(f"/api/v1/clients/{t.client.id}/sync-runs", headers=auth).get_json()["items"]
    assert {r["job"] for r in runs} == {"deliver"}
    assert sum(r["items"] for r in runs) == 2 and sum(r["errors"] for r in runs) == 2


def test_web_pages_show_failures_and_retry(client, db, rt, fakes) -> None:
    t = make_tenant(db)
    other = make_tenant(db, "Other")
    make_connection(db, t, fakes)
    [bad] = queue(db, t, 1)
    fakes.dest.invalid_uids.add(bad)
    Worker(rt).run_once()
    login(client, t)
    page = client.get(f"/clients/{t.client.id}/deliveries?status=dead").get_data(as_text=True)
    assert bad in page and "bad phone" in page and "Retry now" in page
    history = client.get(f"/clients/{t.client.id}/sync-history").get_data(as_text=True)
    assert "deliver" in history and "bad phone" in history
    d = db.scalars(select(Delivery)).one()
    assert (
        client.post(
            f"/clients/{other.client.id}/deliveries/{d.id}/retry", data={"csrf_token": csrf(client)}
        ).status_code
        == 404
    )
    # Without the form token nothing is retried, even on the user's own client.
    assert client.post(f"/clients/{t.client.id}/deliveries/{d.id}/retry").status_code == 400
    for path in ("connections", "deliveries", "sync-history"):
        assert client.get(f"/clients/{other.client.id}/{path}").status_code == 404
    resp = client.post(
        f"/clients/{t.client.id}/deliveries/{d.id}/retry", data={"status": "dead", "csrf_token": csrf(client)}
    )
    assert resp.status_code == 302
    db.expire_all()
    assert db.get(Delivery, d.id).status == DeliveryStatus.PENDING
    raw = db.execute(text("SELECT status FROM deliveries")).scalar()
    assert raw.lower() == "pending"


def test_api_patch_connection_validates_and_shares(client, db, rt, fakes) -> None:
    t = make_tenant(db)
    other = make_tenant(db, "Other")
    from tracking.models import Client

    second = Client(agency_id=t.agency.id, name="Acme Second")
    db.add(second)
    db.commit()
    own = make_connection(db, t, fakes)
    shared = make_connection(db, t, fakes, shared=True)
    auth = {"Authorization": f"Bearer {t.token}"}
    url = f"/api/v1/clients/{t.client.id}/connections/{own.id}"
    ok = client.patch(
        url,
        json={"account": {"counter_id": "123"}, "settings": {"goal": "call"}, "connectors": ["fakedest"]},
        headers=auth,
    )
    assert ok.status_code == 200 and ok.get_json()["account"] == {"subdomain": "acme", "counter_id": "123"}
    for bad, code, field in (
        ({"connectors": ["nosuch"]}, "invalid", "connectors[0]"),
        ({"account": {"counter_id": 123}}, "invalid", "account.counter_id"),
        ({"status": "needs_reauth"}, "invalid", "status"),
        ({"shared_with": [t.client.id]}, "invalid", "shared_with"),  # a client-owned one cannot be shared
        ({"token": "x"}, "invalid", "token"),
        (["not", "an", "object"], "bad_request", "body"),
    ):
        resp = client.patch(url, json=bad, headers=auth)
        assert resp.status_code == 400, bad
        assert (resp.get_json()["error"], resp.get_json()["field"]) == (code, field), bad
    db.expire_all()
    # the bad requests changed nothing
    assert db.get(Connection, own.id).account == {"subdomain": "acme", "counter_id": "123"}
    # Sharing: only with clients of the same agency; the second client then queues deliveries to it.
    surl = f"/api/v1/clients/{t.client.id}/connections/{shared.id}"
    listed = client.get(f"/api/v1/clients/{t.client.id}/connections", headers=auth).get_json()["items"]
    assert [c["id"] for c in listed] == [own.id]  # not shared with this client yet
    assert (
        client.patch(
            f"/api/v1/clients/{second.id}/connections/{shared.id}", json={}, headers=auth
        ).status_code
        == 404
    )
    foreign = client.patch(
        surl.replace(f"/clients/{t.client.id}/", f"/clients/{other.client.id}/"), json={}, headers=auth
    )
    assert foreign.status_code == 404
    from tracking.models import ConnectionClient

    db.add(ConnectionClient(connection_id=shared.id, client_id=t.client.id))
    db.commit()
    assert (
        client.patch(surl, json={"shared_with": [t.client.id, other.client.id]}, headers=auth).status_code
        == 400
    )
    assert client.patch(surl, json={"shared_with": [t.client.id, second.id]}, headers=auth).status_code == 200
    p = call_payload(1, second.id)
    hooks.call_finalised.fire(db, hooks.CallFinalised(second.id, 1, p["key"], p))
    db.commit()
    assert [(d.client_id, d.connection_id) for d in db.scalars(select(Delivery))] == [(second.id, shared.id)]
    # Disabling stops new deliveries; a connection needing re-authorisation cannot be switched back on.
    assert client.patch(surl, json={"status": "disabled"}, headers=auth).get_json()["status"] == "disabled"
    db.expire_all()
    conn = db.get(Connection, own.id)
    conn.status = ConnectionStatus.NEEDS_REAUTH
    db.commit()
    assert client.patch(url, json={"status": "active"}, headers=auth).status_code == 409


def test_connect_for_the_agency_creates_a_shared_connection(app, client, db, rt, fakes) -> None:
    app.config.update(fakes.config())
    t = make_tenant(db)
    login(client, t)
    callback = start_connect(client, t, shared="1")
    assert client.get(callback.replace("http://hub.test", "")).status_code == 302
    conn = db.scalars(select(Connection)).one()
    assert conn.client_id is None and conn.agency_id == t.agency.id
    assert [link.client_id for link in conn.shared_with] == [t.client.id]
    auth = {"Authorization": f"Bearer {t.token}"}
    [item] = client.get(f"/api/v1/clients/{t.client.id}/connections", headers=auth).get_json()["items"]
    assert item["shared"] is True
