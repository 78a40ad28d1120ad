"""No cross-tenant oracles: what another agency has typed in neither blocks nor shows through.

Emails are unique per agency and tracking numbers per agency (docs/security.md); each attack is made by a
rival agency's admin who guesses another agency's address or number.
"""

from __future__ import annotations

import datetime as dt
import json
import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories as h
from tests.factories import PASSWORD, csrf, make_tenant, web_login
from tracking.models import Call, TrackingNumber, User
from tracking.telephony import generic

OTHER_PASSWORD = "another long passphrase"


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _user_rows(db: Session) -> list[tuple]:
    db.rollback()
    return sorted(db.execute(select(User.id, User.agency_id, User.email, User.password_hash)).all())


def test_adding_an_address_another_agency_uses_looks_like_any_new_address(client, db: Session) -> None:
    acme = make_tenant(db, "Acme")
    rival = make_tenant(db, "Rival")
    before = _user_rows(db)
    probe = {"password": OTHER_PASSWORD, "role": "manager"}
    taken = client.post(
        "/api/v1/users", json={**probe, "email": "admin@acme.example"}, headers=_auth(rival.token)
    )
    fresh = client.post(
        "/api/v1/users", json={**probe, "email": "nobody@acme.example"}, headers=_auth(rival.token)
    )
    # Both answers are the same: created, with the same fields; nothing says the first address is known.
    assert taken.status_code == fresh.status_code == 201
    assert set(taken.get_json()) == set(fresh.get_json())
    # Acme's admin is untouched and still logs into Acme with Acme's password...
    after = _user_rows(db)
    assert [r for r in after if r[1] == acme.agency.id] == [r for r in before if r[1] == acme.agency.id]
    assert web_login(client, "admin@acme.example", PASSWORD).status_code == 302
    with client.session_transaction() as sess:
        assert sess["user_id"] == acme.admin.id
    client.post("/logout", data={"csrf_token": csrf(client)})
    # ...and the rival's password opens only the rival's own account.
    assert web_login(client, "admin@acme.example", OTHER_PASSWORD).status_code == 302
    with client.session_transaction() as sess:
        assert sess["user_id"] == taken.get_json()["id"] != acme.admin.id


def test_an_agency_cannot_squat_another_agencys_future_address(client, db: Session) -> None:
    acme = make_tenant(db, "Acme")
    rival = make_tenant(db, "Rival")
    body = {"email": "boss@acme.example", "password": OTHER_PASSWORD, "role": "manager"}
    assert client.post("/api/v1/users", json=body, headers=_auth(rival.token)).status_code == 201
    real = client.post("/api/v1/users", json={**body, "password": PASSWORD}, headers=_auth(acme.token))
    assert real.status_code == 201
    # The agency's own duplicate is still refused: within one agency an address names one person.
    again = client.post("/api/v1/users", json=body, headers=_auth(acme.token))
    assert again.status_code == 400 and again.get_json()["field"] == "email"
    assert web_login(client, "boss@acme.example", PASSWORD).status_code == 302
    with client.session_transaction() as sess:
        assert db.get(User, sess["user_id"]).agency_id == acme.agency.id


def _generic_start(client, key: str, call_id: str, called: str):
    body = json.dumps(
        {
            "event": "start",
            "call_id": call_id,
            "caller": "+79001234567",
            "called": called,
            "at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        }
    ).encode()
    stamp = str(int(time.time()))
    headers = {
        "X-Otkuda-Timestamp": stamp,
        "X-Otkuda-Signature": generic.sign("gen-secret", stamp, body),
        "Content-Type": "application/json",
    }
    return client.post(f"/hooks/v1/generic/{key}", data=body, headers=headers)


def test_a_number_another_agency_uses_neither_fails_nor_takes_its_calls(client, db: Session) -> None:
    acme = make_tenant(db, "Acme")
    rival = make_tenant(db, "Rival")
    ch = h.make_channel(db, acme.site, "Billboard")
    mine = h.make_static(db, ch, e164="+74951110000")
    mine_row = (mine.id, mine.client_id, mine.e164, mine.channel_id)
    url = f"/api/v1/clients/{rival.client.id}/numbers"
    taken = client.post(url, json={"e164": "8 495 111-00-00"}, headers=_auth(rival.token))
    fresh = client.post(url, json={"e164": "+74951110001"}, headers=_auth(rival.token))
    assert taken.status_code == fresh.status_code == 201
    assert set(taken.get_json()) == set(fresh.get_json())
    db.rollback()
    again = db.get(TrackingNumber, mine.id)
    assert (again.id, again.client_id, again.e164, again.channel_id) == mine_row

    # Calls to the shared digits land with the client whose integration reported them.
    acme_pbx = h.make_integration(db, acme, "generic", {"secret": "gen-secret"})
    rival_pbx = h.make_integration(db, rival, "generic", {"secret": "gen-secret"})
    assert _generic_start(client, acme_pbx.integration_key, "a-1", "+74951110000").status_code == 200
    assert _generic_start(client, rival_pbx.integration_key, "r-1", "+74951110000").status_code == 200
    db.rollback()
    calls = {c.client_id: c for c in db.scalars(select(Call))}
    assert calls[acme.client.id].tracking_number_id == mine.id
    assert calls[rival.client.id].tracking_number_id == taken.get_json()["id"]
