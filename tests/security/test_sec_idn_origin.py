"""Sites on internationalised domain names: the Origin a browser sends (punycode) matches the domain however
the agency typed it, and look-alike or foreign origins are still refused without writing anything."""

from __future__ import annotations

import json

import pytest

from tests.factories import make_pool, make_tenant
from tests.test_public_endpoints import row_counts

TYPED = [
    "окна.рф",
    "ОКНА.РФ",
    "xn--80atjc.xn--p1ai",
    "https://окна.рф:8443/catalog",
    "окна.рф.",
    "XN--80ATJC.XN--P1AI",
]


def _visit(client, key: str, origin: str):
    return client.post(
        f"/t/v1/{key}/visit",
        data=json.dumps({"visitor_id": "visitor-idn-0001", "url": "https://xn--80atjc.xn--p1ai/"}),
        headers={"Origin": origin},
        content_type="text/plain",
    )


@pytest.mark.parametrize("typed", TYPED)
def test_idn_site_accepts_the_browsers_origin(client, db, typed) -> None:
    t = make_tenant(db)
    t.site.domains = [typed, "*.магазин.рф"]
    db.commit()
    make_pool(db, t.site, 1)
    for origin in (
        "https://xn--80atjc.xn--p1ai",
        "http://xn--80atjc.xn--p1ai:8080",
        "https://a.xn--80aairftm.xn--p1ai",
    ):
        resp = _visit(client, t.site.site_key, origin)
        assert resp.status_code == 200, (typed, origin)
        assert resp.headers["Access-Control-Allow-Origin"] == origin


def test_look_alikes_are_refused_and_write_nothing(client, db) -> None:
    t = make_tenant(db)
    t.site.domains = ["окна.рф"]
    db.commit()
    before = row_counts(db)
    for origin in (
        "https://xn--80atjc.xn--p1ai.evil.example",
        "https://evil-xn--80atjc.xn--p1ai",
        "https://xn--80ajc.xn--p1ai",  # another name
        "https://okna.rf",
        "null",
        "https://xn--80atjc.xn--p1ai@evil.example",
    ):
        assert _visit(client, t.site.site_key, origin).status_code == 403, origin
    assert row_counts(db) == before


def test_domains_are_saved_canonical(client, db) -> None:
    t = make_tenant(db)
    auth = {"Authorization": f"Bearer {t.token}"}
    url = f"/api/v1/sites/{t.site.id}"
    resp = client.patch(url, json={"domains": ["https://ОКНА.РФ/", "*.Магазин.рф", "окна.рф."]}, headers=auth)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["domains"] == ["xn--80atjc.xn--p1ai", "*.xn--80aairftm.xn--p1ai"]
    for bad in (["http://"], ["*."], ["a b.example"], [""], [5]):
        assert client.patch(url, json={"domains": bad}, headers=auth).status_code == 400, bad
    db.expire_all()
    assert db.get(type(t.site), t.site.id).domains == ["xn--80atjc.xn--p1ai", "*.xn--80aairftm.xn--p1ai"]
