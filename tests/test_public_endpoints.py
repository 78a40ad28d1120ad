"""The snippet's endpoints under /t/v1: happy paths, every refusal, and CORS."""

from __future__ import annotations

import gzip
import io
import json

import pytest
from sqlalchemy import func, select

from hub.public import SNIPPET_PATH
from tests.factories import make_tenant
from tests.tracking_factories import make_pool
from tracking.db import Base

ORIGIN = "https://acme.example"


def row_counts(db) -> dict[str, int]:
    """Rows of every data table; rate-limit counters count every request, refused ones too: left out."""
    db.expire_all()
    return {
        t.name: db.scalar(select(func.count()).select_from(t))
        for t in Base.metadata.sorted_tables
        if t.name != "rate_limit_counters"
    }


def post(client, path: str, body, origin: str | None = ORIGIN, content_type: str = "text/plain", **kw):
    headers = {"Origin": origin} if origin else {}
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post(path, data=data, headers=headers, content_type=content_type, **kw)


@pytest.fixture
def tenant(db):
    t = make_tenant(db, "Acme")
    t.site.domains = ["acme.example", "*.shop.example", "https://Typed.Example/", "port.example:8443"]
    t.site.replace_numbers = ["+74951234567", "8 (800) 555-35-35"]
    db.commit()
    make_pool(db, t.site, 2)
    return t


def test_visit_happy_path_with_text_plain_and_json(client, db, tenant) -> None:
    url = f"/t/v1/{tenant.site.site_key}/visit"
    resp = post(
        client,
        url,
        {"visitor_id": "0f3c9a7d2e6b5f1a8c4d0e9b-visitor-0001", "url": "https://acme.example/?utm_source=x"},
    )
    assert resp.status_code == 200
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in resp.headers["Vary"] and resp.headers["Cache-Control"] == "no-store"
    body = resp.get_json()
    assert set(body) >= {"session_id", "number", "hold_until", "replace", "heartbeat_seconds"}
    assert "promo_code" not in body
    e164 = body["number"]["e164"]
    assert body["number"]["display"] == f"+7 ({e164[2:5]}) {e164[5:8]}-{e164[8:10]}-{e164[10:]}"
    assert body["hold_until"].endswith("Z")
    assert [r["business"] for r in body["replace"]] == ["+74951234567", "+78005553535"]
    assert "84951234567" in body["replace"][0]["match"] and body["replace"][1]["number"]["e164"] == e164
    again = post(
        client, url, {"visitor_id": "0f3c9a7d2e6b5f1a8c4d0e9b-visitor-0001"}, content_type="application/json"
    ).get_json()
    assert again["session_id"] == body["session_id"] and again["number"] == body["number"]


def test_heartbeat_and_release(client, db, tenant) -> None:
    key = tenant.site.site_key
    sid = post(
        client, f"/t/v1/{key}/visit", {"visitor_id": "0f3c9a7d2e6b5f1a8c4d0e9b-visitor-0001"}
    ).get_json()["session_id"]
    hb = post(client, f"/t/v1/{key}/heartbeat", {"session_id": sid})
    assert hb.status_code == 200 and hb.get_json()["live"] is True
    rel = post(client, f"/t/v1/{key}/release", {"session_id": sid})
    assert rel.status_code == 200 and rel.get_json()["live"] is True
    from tracking.models import VisitSession

    db.expire_all()
    assert db.scalar(select(VisitSession.left_at).where(VisitSession.public_id == sid)) is not None
    missing = post(client, f"/t/v1/{key}/heartbeat", {"session_id": "nope"})
    assert missing.status_code == 404 and missing.get_json()["error"] == "unknown_session"


def test_promo_code_returned_when_enabled(client, db, tenant) -> None:
    tenant.site.promo_codes_enabled = True
    db.commit()
    body = post(
        client, f"/t/v1/{tenant.site.site_key}/visit", {"visitor_id": "0f3c9a7d2e6b5f1a8c4d0e9b-visitor-0001"}
    ).get_json()
    assert body["promo_code"].isdigit() and len(body["promo_code"]) == 5


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://acme.example", True),
        ("http://acme.example:8080", True),
        ("https://a.shop.example", True),
        ("https://deep.a.shop.example", True),
        ("https://shop.example", False),  # "*." allows subdomains only
        ("https://www.acme.example", False),  # no implicit subdomains
        ("https://acme.example.evil.test", False),
        ("https://evilacme.example", False),
        ("https://typed.example", True),
        ("https://port.example", True),
        ("null", False),
        ("ftp://acme.example", False),
        (None, False),
    ],
)
def test_cors_only_for_the_sites_domains(client, db, tenant, origin, allowed) -> None:
    before = row_counts(db)
    resp = post(
        client,
        f"/t/v1/{tenant.site.site_key}/visit",
        {"visitor_id": "0f3c9a7d2e6b5f1a8c4d0e9b-visitor-0001"},
        origin=origin,
    )
    if allowed:
        assert resp.status_code == 200 and resp.headers["Access-Control-Allow-Origin"] == origin
    else:
        assert resp.status_code == 403 and resp.get_json()["error"] == "origin_not_allowed"
        assert "Access-Control-Allow-Origin" not in resp.headers
        assert row_counts(db) == before


def test_preflight(client, db, tenant) -> None:
    before = row_counts(db)
    url = f"/t/v1/{tenant.site.site_key}/visit"
    ok = client.options(url, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
    assert ok.status_code == 204
    assert ok.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in ok.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in ok.headers["Access-Control-Allow-Headers"]
    bad = client.options(
        url, headers={"Origin": "https://evil.test", "Access-Control-Request-Method": "POST"}
    )
    assert bad.status_code == 403 and "Access-Control-Allow-Origin" not in bad.headers
    assert row_counts(db) == before


@pytest.mark.parametrize("action", ["visit", "heartbeat", "release"])
def test_unknown_site_key_404(client, db, tenant, action) -> None:
    before = row_counts(db)
    resp = post(
        client,
        f"/t/v1/no-such-key/{action}",
        {"visitor_id": "0f3c9a7d2e6b5f1a8c4d0e9b-visitor-0001", "session_id": "x"},
    )
    assert resp.status_code == 404 and resp.get_json()["error"] == "unknown_site"
    assert row_counts(db) == before


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"\xff\xfe", b"", b"[1, 2]", b'"text"', b'{"visitor_id": 5}', b"visitor_id=visitor-0001"],
)
def test_malformed_body_400(client, db, tenant, body) -> None:
    before = row_counts(db)
    for action in ("visit", "heartbeat"):
        resp = post(client, f"/t/v1/{tenant.site.site_key}/{action}", body)
        assert resp.status_code == 400, (action, body)
        err = resp.get_json()
        assert err["error"] == "invalid_body" and err["message"]
        assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN  # the snippet may read why
    assert row_counts(db) == before


def test_oversized_body_413(app, client, db, tenant) -> None:
    app.config["TRACKING_MAX_BODY"] = 1024
    before = row_counts(db)
    big = json.dumps(
        {"visitor_id": "0f3c9a7d2e6b5f1a8c4d0e9b-visitor-0001", "url": "https://acme.example/?" + "a" * 2000}
    )
    resp = post(client, f"/t/v1/{tenant.site.site_key}/visit", big)
    assert resp.status_code == 413 and resp.get_json()["error"] == "body_too_large"
    # Without a Content-Length (a chunked body the server has decoded), reading stops at the limit.
    chunked = client.post(
        f"/t/v1/{tenant.site.site_key}/visit",
        input_stream=io.BytesIO(big.encode()),
        headers={"Origin": ORIGIN, "Transfer-Encoding": "chunked", "Content-Type": "text/plain"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert chunked.status_code == 413
    assert row_counts(db) == before
    ok = post(
        client, f"/t/v1/{tenant.site.site_key}/visit", {"visitor_id": "0f3c9a7d2e6b5f1a8c4d0e9b-visitor-0001"}
    )
    assert ok.status_code == 200


def test_method_not_allowed_is_json(client, tenant) -> None:
    resp = client.get(f"/t/v1/{tenant.site.site_key}/visit")
    assert resp.status_code == 405 and resp.get_json()["error"] == "method_not_allowed"


def test_snippet_is_served_with_key_hub_and_cache_headers(client, db, tenant) -> None:
    resp = client.get(f"/t/v1/{tenant.site.site_key}.js")
    assert resp.status_code == 200
    assert resp.mimetype == "application/javascript"
    assert "max-age=" in resp.headers["Cache-Control"] and resp.headers["ETag"]
    js = resp.get_data(as_text=True)
    assert json.dumps(tenant.site.site_key) in js and '"http://hub.test"' in js
    assert "__OTKUDA" not in js
    cached = client.get(f"/t/v1/{tenant.site.site_key}.js", headers={"If-None-Match": resp.headers["ETag"]})
    assert cached.status_code == 304
    missing = client.get("/t/v1/no-such-key.js")
    assert missing.status_code == 404 and missing.get_json()["error"] == "unknown_site"


def test_snippet_is_small() -> None:
    raw = SNIPPET_PATH.read_bytes()
    assert len(gzip.compress(raw, compresslevel=9)) <= 5 * 1024


def test_no_number_applies_means_nothing_to_replace(client, db) -> None:
    t = make_tenant(db, "Bare")
    t.site.domains = ["acme.example"]
    db.commit()  # no pool, no static number
    body = post(
        client, f"/t/v1/{t.site.site_key}/visit", {"visitor_id": "0f3c9a7d2e6b5f1a8c4d0e9b-visitor-0001"}
    ).get_json()
    assert body["number"] is None and body["replace"] == [] and body["session_id"]


def test_fallback_number_is_returned_when_the_pool_is_full(client, db, tenant) -> None:
    from tracking.models import Pool, TrackingNumber

    key = tenant.site.site_key
    url = f"/t/v1/{key}/visit"
    taken = {
        post(client, url, {"visitor_id": f"0f3c9a7d2e6b5f1a8c4d0e9b-visitor-000{i}"}).get_json()["number"][
            "e164"
        ]
        for i in range(2)
    }
    body = post(
        client, f"/t/v1/{key}/visit", {"visitor_id": "0f3c9a7d2e6b5f1a8c4d0e9b-visitor-0009"}
    ).get_json()
    pool = db.scalars(select(Pool)).one()
    fallback = db.get(TrackingNumber, pool.fallback_number_id)
    assert len(taken) == 2 and body["number"]["e164"] == fallback.e164
    assert [r["number"]["e164"] for r in body["replace"]] == [fallback.e164, fallback.e164]
