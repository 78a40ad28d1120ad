from sqlalchemy import func, select

from tests.factories import make_channel, make_tenant
from tests.test_public_endpoints import post as post_visit
from tracking.channels import (
    DEFAULT_CHANNEL_NAME,
    VisitSource,
    condition_set_matches,
    referrer_domain,
    resolve_channel,
)
from tracking.models import Channel, VisitSession


def test_referrer_domain_parsing() -> None:
    assert referrer_domain("https://www.Google.com/search?q=x") == "www.google.com"
    assert referrer_domain("http://user:pw@yandex.ru:8080/path") == "yandex.ru"
    assert referrer_domain("google.com/search") == "google.com"
    assert referrer_domain("https://example.ru./") == "example.ru"
    assert referrer_domain("https://xn--d1acpjx3f.xn--p1ai/") == "яндекс.рф"
    assert referrer_domain("") is None
    assert referrer_domain(None) is None
    assert referrer_domain("http://[::1") is None


def test_condition_sets() -> None:
    src = VisitSource(
        utm_source="Yandex", utm_medium="cpc", utm_campaign="brand_spring", gclid=None, yclid="123"
    )
    assert condition_set_matches({"utm_source": "yandex", "utm_medium": "CPC"}, src)
    assert condition_set_matches({"utm_campaign": "brand_*"}, src)
    assert not condition_set_matches({"utm_campaign": "brand"}, src)
    assert condition_set_matches({"has_yclid": True, "has_gclid": False}, src)
    assert not condition_set_matches({"has_gclid": True}, src)
    # Every condition of a set must hold.
    assert not condition_set_matches({"utm_source": "yandex", "utm_medium": "organic"}, src)
    # An empty set or an unknown key never matches: a typo must not swallow all traffic.
    assert not condition_set_matches({}, src)
    assert not condition_set_matches({"utm_sauce": "yandex"}, src)
    landing = VisitSource(landing_url="https://shop.example/Sale/sofas?utm_source=x#top")
    assert condition_set_matches({"landing_path": "/sale/*"}, landing)
    assert condition_set_matches({"landing_path": "/sale/sofas"}, landing)
    assert not condition_set_matches({"landing_path": "/sale"}, landing)
    assert not condition_set_matches({"landing_path": "/sale/*"}, VisitSource())
    assert condition_set_matches({"landing_path": "/"}, VisitSource(landing_url="https://shop.example"))
    ref = VisitSource(referrer="https://news.google.com/x")
    assert condition_set_matches({"referrer_domain": "google.com"}, ref)
    assert not condition_set_matches({"referrer_domain": "ogle.com"}, ref)
    assert not condition_set_matches(
        {"referrer_domain": "google.com"}, VisitSource(referrer="https://notgoogle.com")
    )


def test_first_matching_channel_by_position_wins(db) -> None:
    t = make_tenant(db)
    late = make_channel(db, t.site, "Any cpc", [{"utm_medium": "cpc"}], position=50)
    early = make_channel(
        db, t.site, "Yandex Direct", [{"utm_source": "yandex", "utm_medium": "cpc"}], position=10
    )
    google = make_channel(
        db, t.site, "Google Ads", [{"has_gclid": True}, {"utm_source": "google"}], position=20
    )
    seo = make_channel(db, t.site, "Google organic", [{"referrer_domain": "google.com"}], position=30)
    cid = t.client.id
    assert resolve_channel(db, cid, VisitSource(utm_source="yandex", utm_medium="cpc")).id == early.id
    assert resolve_channel(db, cid, VisitSource(utm_source="bing", utm_medium="cpc")).id == late.id
    assert (
        resolve_channel(db, cid, VisitSource(gclid="abc", referrer="https://www.google.com/")).id == google.id
    )
    assert resolve_channel(db, cid, VisitSource(referrer="https://www.google.com/")).id == seo.id


def test_default_channel_created_lazily_once(db) -> None:
    t = make_tenant(db)
    make_channel(db, t.site, "Yandex", [{"utm_source": "yandex"}])
    first = resolve_channel(db, t.client.id, VisitSource(referrer="https://bing.com"))
    db.commit()
    assert first.is_default and first.name == DEFAULT_CHANNEL_NAME
    again = resolve_channel(db, t.client.id, VisitSource())
    assert again.id == first.id
    assert db.scalar(select(func.count()).select_from(Channel).where(Channel.is_default.is_(True))) == 1


def test_existing_default_channel_is_used_and_offline_channels_never_match(db) -> None:
    t = make_tenant(db)
    default = make_channel(db, t.site, "Other", [], is_default=True)
    make_channel(db, t.site, "Billboard", [{"utm_source": "billboard"}], offline=True, position=1)
    assert resolve_channel(db, t.client.id, VisitSource(utm_source="billboard")).id == default.id


def test_channels_of_another_client_are_ignored(db) -> None:
    t = make_tenant(db, "Acme")
    other = make_tenant(db, "Other")
    make_channel(db, other.site, "Yandex", [{"utm_source": "yandex"}], position=1)
    ch = resolve_channel(db, t.client.id, VisitSource(utm_source="yandex"))
    assert ch.client_id == t.client.id and ch.is_default


def test_landing_path_rule_through_the_tracking_endpoint(client, db) -> None:
    t = make_tenant(db)
    t.site.domains = ["acme.example"]
    db.commit()
    sale = make_channel(db, t.site, "Sale page", [{"landing_path": "/sale/*"}], position=10)
    url = f"/t/v1/{t.site.site_key}/visit"
    body = {"visitor_id": "visitor-0001", "url": "https://acme.example/sale/sofas?x=1"}
    assert post_visit(client, url, body).status_code == 200
    other = {"visitor_id": "visitor-0002", "url": "https://acme.example/about"}
    assert post_visit(client, url, other).status_code == 200
    db.expire_all()
    by_visitor = {s.visitor_id: s.channel_id for s in db.scalars(select(VisitSession))}
    assert by_visitor["visitor-0001"] == sale.id
    assert by_visitor["visitor-0002"] != sale.id
