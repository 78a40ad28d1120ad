"""ROMI over the API and as downloads: the same figures as the engine, tenant-walled, bad input refused."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import openpyxl
from sqlalchemy import event, select

from tests.factories import make_tenant, make_user
from tracking.accounts import issue_api_token
from tracking.models import Client, Role

PERIOD = "start=2026-11-01&end=2026-11-30"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_rows_to_the_depth_asked_with_totals(client, shop) -> None:
    url = f"/api/v1/clients/{shop.t.client.id}/romi?{PERIOD}&group_by=channel,campaign"
    body = client.get(url, headers=auth(shop.t.token)).get_json()
    assert (body["start"], body["end"], body["model"], body["currency"]) == (
        "2026-11-01",
        "2026-11-30",
        "last_non_direct",
        "RUB",
    )
    channels = {r["label"]: r for r in body["rows"] if r["level"] == "channel"}
    yandex = channels["Yandex Direct"]
    assert (yandex["spend"], yandex["calls"], yandex["revenue"], yandex["unique_callers"]) == (
        "1800.00",
        3,
        "50000.00",
        2,
    )
    assert yandex["romi"] == float((Decimal(50000) - 1800) / 1800)
    sofas = next(r for r in body["rows"] if r["label"] == "Sofas")
    assert sofas["level"] == "campaign" and sofas["dimensions"] == {
        "channel": "Yandex Direct",
        "campaign": "Sofas",
        "ad_group": None,
        "keyword": None,
    }
    assert sofas["path"] == [f"ch{shop.yandex.id}", "701"]
    # Parents come before their children.
    labels = [r["label"] for r in body["rows"]]
    assert labels.index("Yandex Direct") < labels.index("Sofas")
    assert not any(r["level"] in ("ad_group", "keyword") for r in body["rows"])
    totals = body["totals"]
    assert (totals["calls"], totals["spend"], totals["revenue"], totals["visits"]) == (
        8,
        "3500.00",
        "77000.00",
        5,
    )
    last = client.get(
        f"/api/v1/clients/{shop.t.client.id}/romi?{PERIOD}&model=last_touch", headers=auth(shop.t.token)
    ).get_json()
    assert {r["label"]: r["calls"] for r in last["rows"]}["Direct"] == 2


def test_exports_are_flat_leaf_rows_that_add_up(client, shop) -> None:
    base = f"/api/v1/clients/{shop.t.client.id}/romi"
    resp = client.get(f"{base}.csv?{PERIOD}", headers=auth(shop.t.token))
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert 'filename="romi-' in resp.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(resp.get_data().decode("utf-8-sig"))))
    sofa = next(r for r in rows if r["keyword"] == "sofa")
    assert (sofa["channel"], sofa["campaign"], sofa["ad_group"], sofa["campaign_key"]) == (
        "Yandex Direct",
        "Sofas",
        "Sofa group",
        "701",
    )
    assert (sofa["spend"], sofa["calls"], sofa["revenue"], sofa["period_start"]) == (
        "1000.00",
        "2",
        "50000.00",
        "2026-11-01",
    )
    assert sum(Decimal(r["spend"]) for r in rows) == Decimal("3500.00")
    assert sum(int(r["calls"]) for r in rows) == 8
    assert sum(Decimal(r["revenue"]) for r in rows) == Decimal("77000.00")

    book = client.get(f"{base}.xlsx?{PERIOD}", headers=auth(shop.t.token))
    assert book.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(book.get_data())).active
    header, *cells = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert header == list(rows[0].keys()) and len(cells) == len(rows)
    calls_col = header.index("calls")
    assert sum(c[calls_col] for c in cells) == 8


def test_bad_parameters_are_400_with_a_reason(client, shop) -> None:
    base = f"/api/v1/clients/{shop.t.client.id}/romi"
    for query, word in (
        ("start=2026-13-01", "start"),
        ("start=2026-11-30&end=2026-11-01", "end"),
        ("model=linear", "model"),
        ("group_by=campaign", "group_by"),
        ("group_by=channel,keyword", "group_by"),
    ):
        resp = client.get(f"{base}?{query}", headers=auth(shop.t.token))
        assert resp.status_code == 400, query
        assert word in resp.get_json()["message"], resp.get_json()
    assert client.get(f"{base}.csv?model=linear", headers=auth(shop.t.token)).status_code == 400


def test_other_agencies_and_other_clients_viewers_get_404(client, db, shop) -> None:
    rival = make_tenant(db, "Rival")
    base = f"/api/v1/clients/{shop.t.client.id}/romi"
    for suffix in ("", ".csv", ".xlsx"):
        assert client.get(f"{base}{suffix}?{PERIOD}", headers=auth(rival.token)).status_code == 404
    second = Client(agency_id=shop.t.agency.id, name="Second")
    db.add(second)
    db.commit()
    viewer = make_user(db, shop.t, "viewer@acme.example", Role.VIEWER, client=second)
    token = issue_api_token(db, viewer, "v")
    db.commit()
    assert client.get(f"{base}?{PERIOD}", headers=auth(token)).status_code == 404
    own = client.get(f"/api/v1/clients/{second.id}/romi?{PERIOD}", headers=auth(token))
    assert own.status_code == 200 and own.get_json()["rows"] == []
    assert db.scalar(select(Client.id).where(Client.id == second.id)) == second.id


def test_the_api_reads_a_configured_reports_replica(app, shop, database_url) -> None:
    from hub import create_app

    replica_app = create_app({**app.config, "REPORTS_DATABASE_URL": database_url})
    seen: list[str] = []
    engine = replica_app.extensions["otkuda.report_sessions"].kw["bind"]
    event.listen(engine, "before_cursor_execute", lambda _c, _cur, sql, *_: seen.append(sql))
    url = f"/api/v1/clients/{shop.t.client.id}/romi?{PERIOD}&group_by=channel"
    via_replica = replica_app.test_client().get(url, headers=auth(shop.t.token)).get_json()
    assert any("romi_monthly" in sql for sql in seen)  # the sums came from the replica
    direct = app.test_client().get(url, headers=auth(shop.t.token)).get_json()
    assert via_replica == direct
