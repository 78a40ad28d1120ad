"""Rate limits, each provoked by the bot it is for, on the real counter storage (database or Redis).

Limits are set low here so a handful of requests reach them; the defaults (hub.config) are far above what
a real site sends.
"""

from __future__ import annotations

import json
import secrets
import socket

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.factories import PASSWORD, csrf, make_pool, make_tenant
from tracking.models import RateLimitCounter, Site, VisitSession


def _vid() -> str:
    return secrets.token_hex(16)


def _visit(client, site: Site, ip: str = "203.0.113.7", **headers: str):
    return client.post(
        f"/t/v1/{site.site_key}/visit",
        data=json.dumps({"visitor_id": _vid()}),
        headers={"Origin": f"https://{site.domains[0]}", **headers},
        content_type="text/plain",
        environ_base={"REMOTE_ADDR": ip},
    )


def _sessions(db: Session) -> int:
    db.rollback()
    return db.scalar(select(func.count()).select_from(VisitSession))


def _assert_429(resp) -> None:
    assert resp.status_code == 429
    body = resp.get_json()
    assert body["error"] == "too_many_requests" and "try again" in body["message"]
    assert 1 <= int(resp.headers["Retry-After"]) <= 60


def test_a_bot_posting_visits_from_one_address_is_stopped(make_hub, db) -> None:
    t = make_tenant(db)
    make_pool(db, t.site, 10)
    app = make_hub(RATELIMIT_VISIT="5 per minute", POOL_HOLDS_PER_SOURCE=0)
    client = app.test_client()
    assert [_visit(client, t.site).status_code for _ in range(5)] == [200] * 5
    refused = _visit(client, t.site)
    _assert_429(refused)
    assert _sessions(db) == 5  # the refused visit wrote nothing
    # A real visitor elsewhere is not affected.
    assert _visit(client, t.site, ip="198.51.100.20").status_code == 200
    # The counters are rows of the database the hub runs on.
    assert db.scalar(select(func.count()).select_from(RateLimitCounter)) >= 2


def test_visits_to_one_site_are_bounded_whatever_the_addresses(make_hub, db) -> None:
    t = make_tenant(db)
    other = make_tenant(db, "Other")
    app = make_hub(RATELIMIT_VISIT_PER_SITE="4 per minute")
    client = app.test_client()
    assert [_visit(client, t.site, ip=f"203.0.113.{i}").status_code for i in range(4)] == [200] * 4
    _assert_429(_visit(client, t.site, ip="203.0.113.99"))
    assert _sessions(db) == 4
    assert _visit(client, other.site, ip="203.0.113.99").status_code == 200


def test_heartbeat_and_release_floods_are_stopped(make_hub, db) -> None:
    t = make_tenant(db)
    app = make_hub(RATELIMIT_BEACON="3 per minute")
    client = app.test_client()
    sid = _visit(client, t.site).get_json()["session_id"]
    origin = {"Origin": f"https://{t.site.domains[0]}"}
    for action in ("heartbeat", "release"):
        codes = [
            client.post(
                f"/t/v1/{t.site.site_key}/{action}",
                data=json.dumps({"session_id": sid}),
                headers=origin,
                content_type="text/plain",
                environ_base={"REMOTE_ADDR": "203.0.113.7"},
            ).status_code
            for _ in range(4)
        ]
        assert codes == [200, 200, 200, 429], action


def test_the_login_form_is_limited_per_address_even_for_the_right_password(make_hub, db) -> None:
    t = make_tenant(db)
    app = make_hub(RATELIMIT_LOGIN="3 per minute")
    client = app.test_client()
    env = {"REMOTE_ADDR": "203.0.113.7"}
    for _ in range(3):
        form = {"email": t.admin.email, "password": "wrong guess", "csrf_token": csrf(client)}
        assert client.post("/login", data=form, environ_base=env).status_code == 401
    form = {"email": t.admin.email, "password": PASSWORD, "csrf_token": csrf(client)}
    refused = client.post("/login", data=form, environ_base=env)
    assert refused.status_code == 429 and "try again" in refused.get_data(as_text=True)
    assert int(refused.headers["Retry-After"]) >= 1
    with client.session_transaction() as sess:
        assert "user_id" not in sess


def test_an_api_script_gone_wild_is_stopped_per_address(make_hub, db) -> None:
    t = make_tenant(db)
    app = make_hub(RATELIMIT_API="3 per minute")
    client = app.test_client()
    auth = {"Authorization": f"Bearer {t.token}"}
    codes = [
        client.get("/api/v1/clients", headers=auth, environ_base={"REMOTE_ADDR": "203.0.113.7"}).status_code
        for _ in range(4)
    ]
    assert codes == [200, 200, 200, 429]
    _assert_429(client.get("/api/v1/clients", headers=auth, environ_base={"REMOTE_ADDR": "203.0.113.7"}))
    ok = client.get("/api/v1/clients", headers=auth, environ_base={"REMOTE_ADDR": "198.51.100.20"})
    assert ok.status_code == 200


def test_a_forged_forwarded_for_header_does_not_reset_the_count(make_hub, db) -> None:
    t = make_tenant(db)
    # No proxy of ours in front: X-Forwarded-For is whatever the client wrote, so it is ignored.
    direct = make_hub(RATELIMIT_VISIT="2 per minute").test_client()
    codes = [_visit(direct, t.site, **{"X-Forwarded-For": f"10.0.0.{i}"}).status_code for i in range(3)]
    assert codes == [200, 200, 429]


def test_behind_one_proxy_only_the_hop_it_added_counts(make_hub, db) -> None:
    t = make_tenant(db)
    app = make_hub(RATELIMIT_VISIT="2 per minute", TRUSTED_PROXIES=1)
    client = app.test_client()
    proxy = "10.0.0.1"
    # The bot writes its own X-Forwarded-For entries; our proxy appends the address it really saw.
    codes = [
        _visit(client, t.site, ip=proxy, **{"X-Forwarded-For": f"192.0.2.{i}, 203.0.113.7"}).status_code
        for i in range(3)
    ]
    assert codes == [200, 200, 429]
    # Another visitor behind the same proxy has a budget of its own.
    assert _visit(client, t.site, ip=proxy, **{"X-Forwarded-For": "198.51.100.20"}).status_code == 200


def test_workers_share_one_count(make_hub, db) -> None:
    t = make_tenant(db)
    # Two app instances on one database stand for two gunicorn workers.
    one = make_hub(RATELIMIT_VISIT="4 per minute").test_client()
    two = make_hub(RATELIMIT_VISIT="4 per minute").test_client()
    codes = [_visit(c, t.site).status_code for c in (one, two, one, two, one, two)]
    assert codes == [200, 200, 200, 200, 429, 429]


def _redis_url() -> str:
    pytest.importorskip("redis")
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
    except OSError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    return "redis://127.0.0.1:6379/0"


def test_counters_in_redis_when_configured(make_hub, db) -> None:
    import redis

    url = _redis_url()
    prefix = "otkuda-test-" + secrets.token_hex(6)
    t = make_tenant(db)
    settings = {
        "RATELIMIT_VISIT": "3 per minute",
        "RATELIMIT_STORAGE_URL": url,
        "RATELIMIT_KEY_PREFIX": prefix,
    }
    one = make_hub(**settings).test_client()
    two = make_hub(**settings).test_client()
    r = redis.Redis.from_url(url)
    try:
        codes = [_visit(c, t.site).status_code for c in (one, two, one, two)]
        assert codes == [200, 200, 200, 429]
        assert r.keys(f"*{prefix}*")  # the counts are in Redis...
        assert db.scalar(select(func.count()).select_from(RateLimitCounter)) == 0  # ...not in the database
    finally:
        for key in r.scan_iter(f"*{prefix}*"):
            r.delete(key)
