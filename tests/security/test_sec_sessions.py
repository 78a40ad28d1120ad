"""Browser sessions: a copied cookie dies at logout, and the cookie is Secure on an https hub."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.factories import csrf, make_tenant, web_login
from tracking.models import User


def test_a_copied_session_cookie_stops_working_after_logout(app, db: Session) -> None:
    t = make_tenant(db)
    victim = app.test_client()
    assert web_login(victim, t.admin.email).status_code == 302
    stolen = victim.get_cookie("session").value
    thief = app.test_client()
    thief.set_cookie("session", stolen)
    assert thief.get("/").status_code == 200
    assert thief.get("/api/v1/clients").status_code == 200

    assert victim.post("/logout", data={"csrf_token": csrf(victim)}).status_code == 302
    page = thief.get("/")
    assert page.status_code == 302 and "/login" in page.headers["Location"]
    assert thief.get("/api/v1/clients").status_code == 401
    # A replay of the very cookie, not one the server rewrote, is refused too.
    replay = app.test_client()
    replay.set_cookie("session", stolen)
    assert replay.get(f"/clients/{t.client.id}").status_code == 302
    db.rollback()
    assert db.scalar(select(User.session_generation).where(User.id == t.admin.id)) == 1
    # Logging in again works and gives a cookie of the new generation.
    assert web_login(victim, t.admin.email).status_code == 302
    assert victim.get("/").status_code == 200


def _session_cookie_header(resp) -> str:
    return next(h for h in resp.headers.getlist("Set-Cookie") if h.startswith("session="))


def test_session_cookie_is_secure_on_an_https_hub(make_hub, db: Session) -> None:
    t = make_tenant(db)
    https = make_hub(BASE_URL="https://hub.example").test_client()
    cookie = _session_cookie_header(web_login(https, t.admin.email)).lower()
    assert "; secure" in cookie and "; httponly" in cookie and "samesite=lax" in cookie
    http = make_hub(BASE_URL="http://127.0.0.1:5000").test_client()
    cookie = _session_cookie_header(web_login(http, t.admin.email)).lower()
    assert "; secure" not in cookie and "; httponly" in cookie
