"""The snippet's endpoints under /t/v1: happy paths, every refusal, and CORS."""

from __future__ import annotations

import gzip
import io
import json
import re

import brotli
import pytest
from sqlalchemy import func, select

from hub.public import SNIPPET_PATH
from tests.factories import make_pool, make_tenant
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


def test_hosted_loader_names_key_and_hub_and_waits_for_load(client, db, tenant) -> None:
    resp = client.get(f"/t/v1/{tenant.site.site_key}.js")
    assert resp.status_code == 200
    assert resp.mimetype == "application/javascript"
    assert "max-age=" in resp.headers["Cache-Control"] and resp.headers["ETag"]
    js = resp.get_data(as_text=True)
    assert json.dumps(tenant.site.site_key) in js and '"http://hub.test"' in js
    assert "addEventListener('load'" in js and '"http://hub.test/t/v1/otkuda.js"' in js
    cached = client.get(f"/t/v1/{tenant.site.site_key}.js", headers={"If-None-Match": resp.headers["ETag"]})
    assert cached.status_code == 304
    missing = client.get("/t/v1/no-such-key.js")
    assert missing.status_code == 404 and missing.get_json()["error"] == "unknown_site"


def test_loader_cannot_be_broken_out_of_by_a_hub_url() -> None:
    from hub.public import snippet_tag

    tag = snippet_tag("https://hub.example/</script><script>alert(1)//", "key")
    assert tag.count("</script>") == 1 and tag.endswith("</script>")


def test_snippet_is_one_immutable_compressed_file_for_every_site(client, db, tenant) -> None:
    latest = client.get("/t/v1/otkuda.js")
    assert latest.status_code == 302 and "max-age=300" in latest.headers["Cache-Control"]
    path = latest.headers["Location"]
    assert re.fullmatch(r"/t/v1/otkuda\.[0-9a-f]{16}\.js", path)
    plain = client.get(path, headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and "Content-Encoding" not in plain.headers
    assert plain.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert plain.headers["Vary"] == "Accept-Encoding" and plain.mimetype == "application/javascript"
    js = plain.get_data(as_text=True)
    # Minified (no comments, far smaller than the source) and free of any one site's settings.
    source = SNIPPET_PATH.read_text(encoding="utf-8")
    assert "/*" not in js and len(js) < 0.8 * len(source) and tenant.site.site_key not in js
    assert "data-site" in js and "getRandomValues" in js
    gz = client.get(path, headers={"Accept-Encoding": "gzip"})
    assert gz.headers["Content-Encoding"] == "gzip" and gzip.decompress(gz.get_data()).decode() == js
    br = client.get(path, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert br.headers["Content-Encoding"] == "br" and brotli.decompress(br.get_data()).decode() == js
    assert len({plain.headers["ETag"], gz.headers["ETag"], br.headers["ETag"]}) == 3
    again = client.get(path, headers={"Accept-Encoding": "br", "If-None-Match": br.headers["ETag"]})
    assert again.status_code == 304
    stale = client.get("/t/v1/otkuda.0123456789abcdef.js")
    assert stale.status_code == 302 and stale.headers["Location"] == path


def test_snippet_is_small() -> None:
    from hub.public import snippet_build

    assert len(snippet_build().gzip) <= 5 * 1024


def test_visit_answer_keeps_shapes_local_forms_and_attributes(client, db, tenant) -> None:
    tenant.site.replace_numbers = ["+74997654321", "+78005553535"]
    tenant.site.swap_attributes = ["data-phone"]
    db.commit()
    url = f"/t/v1/{tenant.site.site_key}/visit"
    body = post(client, url, {"visitor_id": "visitor-0001"}).get_json()
    e164 = body["number"]["e164"]
    national = e164[2:]
    moscow, free = body["replace"]
    assert moscow["match"] == ["0074997654321", "74997654321", "84997654321", "4997654321"]
    assert moscow["to"] == ["007" + national, "7" + national, "8" + national, national]
    assert "local" not in moscow and body["attributes"] == ["data-phone"]
    # The same area code (499) on both sides: the local form is offered only once the site opts in.
    tenant.site.swap_local_numbers = True
    db.commit()
    body = post(client, url, {"visitor_id": "visitor-0002"}).get_json()
    moscow, free = body["replace"]
    assert moscow["local"] == ["7654321", body["number"]["e164"][5:]]
    assert "local" not in free  # 8-800 numbers have no area code


def _held(db, sid: str):
    from tracking.models import TrackingNumber, VisitSession

    db.expire_all()
    session = db.scalar(select(VisitSession).where(VisitSession.public_id == sid))
    number = db.get(TrackingNumber, session.number_id)
    return session, number


def test_release_of_an_unanswered_visit_frees_the_number(client, db, tenant) -> None:
    key, vid = tenant.site.site_key, "0123456789abcdef0123456789abcdef"
    sid = post(client, f"/t/v1/{key}/visit", {"visitor_id": vid}).get_json()["session_id"]
    post(client, f"/t/v1/{key}/visit", {"visitor_id": "e" * 32})  # the pool's other number
    session, number = _held(db, sid)
    assert number.held_by_session_id == session.id
    rel = post(client, f"/t/v1/{key}/release", {"visitor_id": vid})
    assert rel.status_code == 200 and rel.get_json() == {"released": True}
    assert rel.headers["Access-Control-Allow-Origin"] == ORIGIN
    session, number = _held(db, sid)
    assert number.held_by_session_id is None and session.left_at is not None
    # The next visitor gets that number at once, not the pool's fallback.
    other = post(client, f"/t/v1/{key}/visit", {"visitor_id": "f" * 32}).get_json()
    assert other["number"]["e164"] == number.e164


def test_release_without_session_leaves_a_confirmed_hold(client, db, tenant) -> None:
    key, vid = tenant.site.site_key, "0123456789abcdef0123456789abcdef"
    sid = post(client, f"/t/v1/{key}/visit", {"visitor_id": vid}).get_json()["session_id"]
    assert post(client, f"/t/v1/{key}/heartbeat", {"session_id": sid}).status_code == 200
    rel = post(client, f"/t/v1/{key}/release", {"visitor_id": vid})
    assert rel.get_json() == {"released": False}
    session, number = _held(db, sid)
    assert number.held_by_session_id == session.id and session.left_at is None


def test_release_without_session_only_soon_after_the_visit(db, tenant) -> None:
    import datetime as dt

    from tracking import visits

    vid, t0 = "0123456789abcdef0123456789abcdef", dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
    visits.visit(db, tenant.site, {"visitor_id": vid}, now=t0)
    late = t0 + dt.timedelta(seconds=visits.UNSEEN_SECONDS + 1)
    assert visits.release_unseen(db, tenant.site, {"visitor_id": vid}, now=late) is False
    assert visits.release_unseen(db, tenant.site, {"visitor_id": "a" * 32}, now=t0) is False  # no session
    assert visits.release_unseen(db, tenant.site, {"visitor_id": vid}, now=t0 + dt.timedelta(seconds=5))


@pytest.mark.parametrize("vid", ["visitor-0001", "0123456789ABCDEF0123456789ABCDEF", 5, None])
def test_release_without_session_wants_a_snippet_visitor_id(client, db, tenant, vid) -> None:
    key = tenant.site.site_key
    post(client, f"/t/v1/{key}/visit", {"visitor_id": "visitor-0001"})
    before = row_counts(db)
    rel = post(client, f"/t/v1/{key}/release", {"visitor_id": vid})
    assert rel.status_code == 400 and rel.get_json()["error"] == "invalid_body"
    assert row_counts(db) == before


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
