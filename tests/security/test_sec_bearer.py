"""What identifies a visitor's session over the public endpoints must be unguessable, and a session's
public id alone buys nothing: no number, no promo code."""

from __future__ import annotations

import json
import secrets

from sqlalchemy.orm import Session

from tests.factories import make_pool, make_tenant

SECRET_ONLY = {"number", "replace", "promo_code"}


def _post(client, site, action: str, body: dict, ip: str = "198.51.100.1"):
    return client.post(
        f"/t/v1/{site.site_key}/{action}",
        data=json.dumps(body),
        headers={"Origin": f"https://{site.domains[0]}"},
        content_type="text/plain",
        environ_base={"REMOTE_ADDR": ip},
    )


def _promo_site(db: Session):
    t = make_tenant(db)
    t.site.promo_codes_enabled = True
    db.commit()
    make_pool(db, t.site, 5)
    return t


def test_a_stolen_session_id_reveals_neither_number_nor_code(client, db: Session) -> None:
    t = _promo_site(db)
    victim = _post(client, t.site, "visit", {"visitor_id": secrets.token_hex(16)}).get_json()
    assert victim["promo_code"] and victim["number"]
    stolen = {"session_id": victim["session_id"]}
    for action in ("heartbeat", "release"):
        body = _post(client, t.site, action, stolen, ip="203.0.113.66").get_json()
        assert SECRET_ONLY.isdisjoint(body), (action, body)
        assert victim["promo_code"] not in json.dumps(body)
        assert victim["number"]["e164"] not in json.dumps(body)
    # A visit that names the stolen session id is just a new visitor.
    mine = _post(
        client, t.site, "visit", {"visitor_id": secrets.token_hex(16), **stolen}, ip="203.0.113.66"
    ).get_json()
    assert mine["session_id"] != victim["session_id"]
    assert mine["promo_code"] != victim["promo_code"] and mine["number"] != victim["number"]


def test_a_guessable_visitor_id_does_not_open_that_visitors_session(client, db: Session) -> None:
    t = _promo_site(db)
    # A visitor id of the kind early snippets or hand-made integrations used: easy to enumerate.
    victim = _post(client, t.site, "visit", {"visitor_id": "visitor-0001"}).get_json()
    guess = _post(client, t.site, "visit", {"visitor_id": "visitor-0001"}, ip="203.0.113.66").get_json()
    assert guess["session_id"] != victim["session_id"]
    assert guess.get("promo_code") != victim["promo_code"]
    assert guess["number"] != victim["number"]


def test_an_unguessable_visitor_id_still_continues_its_own_session(client, db: Session) -> None:
    t = _promo_site(db)
    vid = secrets.token_hex(16)
    first = _post(client, t.site, "visit", {"visitor_id": vid}).get_json()
    again = _post(client, t.site, "visit", {"visitor_id": vid}).get_json()
    assert again["session_id"] == first["session_id"]
    assert (again["promo_code"], again["number"]) == (first["promo_code"], first["number"])
