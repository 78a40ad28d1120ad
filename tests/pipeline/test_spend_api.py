"""Hand-entered spend and campaign mappings through the API: validated, tenant-scoped, editable."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from tests.factories import make_tenant
from tracking.models import CampaignMapping, Channel, ManualSpend


def test_manual_spend_is_validated_and_scoped(client, db) -> None:
    t = make_tenant(db)
    other = make_tenant(db, "Other")
    billboard = Channel(client_id=t.client.id, name="Billboard", offline=True)
    foreign_channel = Channel(client_id=other.client.id, name="Radio", offline=True)
    db.add_all([billboard, foreign_channel])
    db.commit()
    auth = {"Authorization": f"Bearer {t.token}"}
    url = f"/api/v1/clients/{t.client.id}/manual-spend"
    good = {
        "period_start": "2026-11-01",
        "period_end": "2026-11-30",
        "amount": "15000.50",
        "channel_id": billboard.id,
    }
    created = client.post(url, json=good, headers=auth)
    assert created.status_code == 201
    assert created.get_json()["amount"] == "15000.50" and created.get_json()["currency"] == "RUB"
    for bad in (
        {**good, "period_end": "2026-10-01"},
        {**good, "amount": "-1"},
        {**good, "amount": "1.234"},
        {**good, "amount": "lots"},
        {**good, "period_start": "01.11.2026"},
        {**good, "channel_id": foreign_channel.id},
        {**good, "currency": "RUBLES"},
    ):
        resp = client.post(url, json=bad, headers=auth)
        assert resp.status_code == 400, bad
    assert db.scalar(select(func.count(ManualSpend.id))) == 1
    assert db.scalars(select(ManualSpend)).one().amount == Decimal("15000.50")
    items = client.get(url, headers=auth).get_json()["items"]
    assert [i["channel_id"] for i in items] == [billboard.id]
    other_auth = {"Authorization": f"Bearer {other.token}"}
    assert client.get(url, headers=other_auth).status_code == 404
    assert client.delete(f"{url}/{items[0]['id']}", headers=other_auth).status_code == 404
    assert (
        client.delete(
            f"/api/v1/clients/{other.client.id}/manual-spend/{items[0]['id']}", headers=other_auth
        ).status_code
        == 404
    )
    assert client.delete(f"{url}/{items[0]['id']}", headers=auth).status_code == 204
    assert db.scalar(select(func.count(ManualSpend.id))) == 0


def test_campaign_mapping_is_set_and_changed_in_place(client, db) -> None:
    t = make_tenant(db)
    other = make_tenant(db, "Other")
    auth = {"Authorization": f"Bearer {t.token}"}
    url = f"/api/v1/clients/{t.client.id}/campaign-mappings"
    first = client.put(
        url, json={"platform": "yandex_direct", "utm_campaign": "brand", "campaign_id": "111"}, headers=auth
    )
    assert first.status_code == 200
    again = client.put(
        url, json={"platform": "yandex_direct", "utm_campaign": "brand", "campaign_id": "222"}, headers=auth
    )
    assert again.get_json()["id"] == first.get_json()["id"]
    assert [m.campaign_id for m in db.scalars(select(CampaignMapping))] == ["222"]
    assert (
        client.put(
            url, json={"platform": "", "utm_campaign": "x", "campaign_id": "1"}, headers=auth
        ).status_code
        == 400
    )
    assert (
        client.put(url, json={"platform": "google_ads", "utm_campaign": "x"}, headers=auth).status_code == 400
    )
    assert client.get(url, headers={"Authorization": f"Bearer {other.token}"}).status_code == 404
    mid = first.get_json()["id"]
    assert (
        client.delete(
            f"/api/v1/clients/{other.client.id}/campaign-mappings/{mid}",
            headers={"Authorization": f"Bearer {other.token}"},
        ).status_code
        == 404
    )
    assert client.delete(f"{url}/{mid}", headers=auth).status_code == 204
    assert client.get(url, headers=auth).get_json()["items"] == []
