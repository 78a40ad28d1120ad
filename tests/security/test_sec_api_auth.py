"""The REST API with the session cookie: reads work; changes need the CSRF token a cross-site page lacks."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.factories import csrf, make_tenant, web_login
from tracking.models import Client, Site


def _count(db: Session, model) -> int:
    db.rollback()
    return db.scalar(select(func.count()).select_from(model))


def test_a_cross_site_post_riding_the_cookie_is_refused(client, db: Session) -> None:
    t = make_tenant(db)
    web_login(client, t.admin.email)
    before = _count(db, Client)
    # What a hostile page can make the browser send: the cookie goes along, the token does not.
    forged = client.post("/api/v1/clients", json={"name": "Planted"})
    assert forged.status_code == 400 and forged.get_json()["error"] == "bad_request"
    assert "X-CSRF-Token" in forged.get_json()["message"]
    wrong = client.post("/api/v1/clients", json={"name": "Planted"}, headers={"X-CSRF-Token": "guess"})
    assert wrong.status_code == 400
    for method in ("patch", "delete"):
        resp = getattr(client, method)(f"/api/v1/sites/{t.site.id}", json={"name": "Renamed"})
        assert resp.status_code == 400, method
    assert _count(db, Client) == before
    assert db.get(Site, t.site.id).name == t.site.name
    # The hub's own page script sends the token and may change things; reads need none.
    assert client.get("/api/v1/clients").status_code == 200
    made = client.post("/api/v1/clients", json={"name": "Mine"}, headers={"X-CSRF-Token": csrf(client)})
    assert made.status_code == 201 and _count(db, Client) == before + 1


def test_the_page_carries_the_token_scripts_send(client, db: Session) -> None:
    t = make_tenant(db)
    web_login(client, t.admin.email)
    page = client.get("/").get_data(as_text=True)
    assert f'<meta name="csrf-token" content="{csrf(client)}">' in page


def test_bearer_tokens_need_no_csrf_and_never_fall_back_to_the_cookie(client, db: Session) -> None:
    t = make_tenant(db)
    rival = make_tenant(db, "Rival")
    auth = {"Authorization": f"Bearer {t.token}"}
    assert client.post("/api/v1/clients", json={"name": "By script"}, headers=auth).status_code == 201
    # A browser logged in as the rival, with a made-up token: the token decides, and it is no good.
    web_login(client, rival.admin.email)
    bogus = {"Authorization": "Bearer otk_not-a-token", "X-CSRF-Token": csrf(client)}
    assert client.get("/api/v1/clients", headers=bogus).status_code == 401
    assert client.post("/api/v1/clients", json={"name": "x"}, headers=bogus).status_code == 401
