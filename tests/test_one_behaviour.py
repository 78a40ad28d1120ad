"""Rules written once in tracking/ behave the same through the API and through the web pages."""

from __future__ import annotations

import datetime as dt
import pathlib
import re

from sqlalchemy import select

from tests.factories import csrf, make_channel, make_tenant, web_login
from tests.test_journal import _calls
from tracking.models import AttributionChange, Call


def test_a_long_reason_is_refused_by_the_api_and_by_the_web_form(client, db) -> None:
    t = make_tenant(db)
    call = _calls(db, t)[0]
    billboard = make_channel(db, t.site, "Billboard")
    reason = "r" * 201
    api = client.post(
        f"/api/v1/clients/{t.client.id}/calls/{call.id}/channel",
        json={"channel_id": billboard.id, "reason": reason},
        headers={"Authorization": f"Bearer {t.token}"},
    )
    assert api.status_code == 400 and api.get_json()["field"] == "reason"
    web_login(client, t.admin.email)
    page = client.post(
        f"/clients/{t.client.id}/calls/{call.id}",
        data={
            "csrf_token": csrf(client),
            "action": "channel",
            "channel_id": str(billboard.id),
            "reason": reason,
        },
    )
    # The page once cut the reason to 200 characters and kept the change.
    assert page.status_code == 400 and "reason" in page.get_data(as_text=True)
    db.expire_all()
    assert db.get(Call, call.id).channel_id != billboard.id
    assert db.scalars(select(AttributionChange).where(AttributionChange.call_id == call.id)).all() == []


def test_romi_this_month_so_far_ends_on_the_clients_today_in_the_api_and_the_page(client, db) -> None:
    t = make_tenant(db)
    now = dt.datetime.now(dt.UTC)
    # Whatever the hour, one of these zones is already tomorrow or still yesterday.
    zone = "Etc/GMT-14" if now.hour >= 10 else "Etc/GMT+12"
    t.client.timezone = zone
    db.commit()
    local_today = dt.datetime.now(dt.timezone(dt.timedelta(hours=14 if zone == "Etc/GMT-14" else -12))).date()
    assert local_today != now.date()
    api = client.get(f"/api/v1/clients/{t.client.id}/romi", headers={"Authorization": f"Bearer {t.token}"})
    assert api.status_code == 200
    assert (api.get_json()["start"], api.get_json()["end"]) == (
        local_today.replace(day=1).isoformat(),
        local_today.isoformat(),
    )
    web_login(client, t.admin.email)
    page = client.get(f"/clients/{t.client.id}/romi").get_data(as_text=True)
    assert f'value="{local_today.isoformat()}"' in page


def test_web_pages_do_not_reach_into_the_api_package() -> None:
    web = pathlib.Path(__file__).parent.parent / "hub" / "web"
    for path in web.glob("*.py"):
        assert not re.search(r"^\s*(from|import) hub\.api\b", path.read_text(), re.M), path.name
