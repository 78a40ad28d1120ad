"""The ROMI report page: period, drill-down, downloads, tenancy; and the same in real Chromium."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from tests.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, serve
from tests.factories import PASSWORD, csrf, make_tenant, make_user, web_login
from tracking import romi
from tracking.models import Client, ManualSpend, Role

PERIOD = {"start": "2026-11-01", "end": "2026-11-30"}


def test_page_drills_from_channel_to_keyword(client, shop) -> None:
    web_login(client, shop.t.admin.email)
    base = f"/clients/{shop.t.client.id}/romi"
    top = client.get(base, query_string=PERIOD).get_data(as_text=True)
    assert "Yandex Direct" in top and "Pool overflow" in top and "Deals without a call" in top
    assert "3\u00a0500" in top and "77\u00a0000" in top  # totals in the footer
    assert "Sofas" in top  # the top campaigns block
    ch = f"ch{shop.yandex.id}"
    campaigns = client.get(base, query_string={**PERIOD, "path": ch}).get_data(as_text=True)
    assert (
        "Sofas" in campaigns
        and "Brand" in campaigns
        and "Billboard" not in campaigns.split('id="romi-table"')[1].split("</table>")[0]
    )
    keywords = client.get(base, query_string={**PERIOD, "path": f"{ch}/701/g1"}).get_data(as_text=True)
    table = keywords.split('id="romi-table"')[1].split("</table>")[0]
    assert "sofa" in table and "armchair" in table and "1\u00a0000" in table
    assert client.get(base, query_string={**PERIOD, "path": f"{ch}/nope"}).status_code == 404
    assert client.get(base, query_string={"start": "2026-11-40", "end": "x"}).status_code == 400
    last_month = client.get(base, query_string={"preset": "last_month"})
    assert last_month.status_code == 200


def test_downloads_from_the_page(client, shop) -> None:
    web_login(client, shop.t.admin.email)
    resp = client.get(f"/clients/{shop.t.client.id}/romi.csv", query_string=PERIOD)
    rows = list(csv.DictReader(io.StringIO(resp.get_data().decode("utf-8-sig"))))
    assert sum(int(r["calls"]) for r in rows) == 8
    assert client.get(f"/clients/{shop.t.client.id}/romi.xlsx", query_string=PERIOD).status_code == 200


def test_viewer_of_another_client_and_other_agency_get_404(client, db, shop) -> None:
    rival = make_tenant(db, "Rival")
    web_login(client, rival.admin.email)
    assert client.get(f"/clients/{shop.t.client.id}/romi").status_code == 404
    second = Client(agency_id=shop.t.agency.id, name="Second")
    db.add(second)
    db.commit()
    make_user(db, shop.t, "viewer@acme.example", Role.VIEWER, client=second)
    client.post("/logout")
    web_login(client, "viewer@acme.example")
    assert client.get(f"/clients/{shop.t.client.id}/romi").status_code == 404
    assert client.get(f"/clients/{shop.t.client.id}/romi.csv").status_code == 404
    assert client.get(f"/clients/{second.id}/romi").status_code == 200


@pytest.mark.browser
def test_report_in_chromium_log_in_drill_down_export(app, db, shop, tmp_path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    query = "start=2026-11-01&end=2026-11-30"
    with serve(app) as hub_url, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 900}).new_page()
        page.goto(f"{hub_url}/login?next=" + quote(f"/clients/{shop.t.client.id}/romi?{query}"))
        page.fill("input[name=email]", shop.t.admin.email)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("#romi-table")
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / f"romi-channels-{db.bind.dialect.name}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 20_000
        # The table is readable: wider than the crumbs, and no cell collapses to nothing.
        assert page.locator("#romi-table").bounding_box()["width"] > 800
        page.click("#romi-table a.drill:text('Yandex Direct')")
        page.wait_for_selector("nav.crumbs >> text=Yandex Direct")
        assert page.locator("#romi-table tbody tr").count() == 2  # Sofas and Brand
        page.click("#romi-table a.drill:text('Sofas')")
        page.click("#romi-table a.drill:text('Sofa group')")
        rows = page.locator("#romi-table tbody tr td:first-child").all_inner_texts()
        assert sorted(rows) == ["armchair", "sofa"]
        page.screenshot(path=str(ARTIFACTS / f"romi-keywords-{db.bind.dialect.name}.png"), full_page=True)
        with page.expect_download() as info:
            page.click("#export-csv")
        path = tmp_path / "romi.csv"
        info.value.save_as(path)
        data = list(csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8-sig"))))
        assert sum(int(r["calls"]) for r in data) == 8 and {r["keyword"] for r in data} >= {
            "sofa",
            "armchair",
        }
        browser.close()


def test_spend_typed_in_by_hand_reaches_the_report(client, db, shop) -> None:
    web_login(client, shop.t.admin.email)
    token = csrf(client)
    url = f"/clients/{shop.t.client.id}/manual-spend"
    form = {
        "csrf_token": token,
        "channel_id": str(shop.billboard.id),
        "period_start": "2026-11-16",
        "period_end": "2026-11-30",
        "amount": "1 500,00",
        "note": "second half of the month",
    }
    for bad in ({"amount": "lots"}, {"period_end": "2026-11-01"}, {"channel_id": "999999"}):
        assert client.post(url, data={**form, **bad}).status_code == 400
    assert db.scalar(select(func.count()).select_from(ManualSpend)) == 1
    assert client.post(url, data=form).status_code == 302
    page = client.get(f"/clients/{shop.t.client.id}/romi", query_string=PERIOD).get_data(as_text=True)
    assert "second half of the month" in page
    rows = {n.label: n.metrics for n in romi.report(db, shop.t.client, *map(_date, PERIOD.values())).rows(1)}
    assert rows["Billboard"].spend == Decimal("3000.00")  # 1,500 prorated + the new 1,500
    added = db.scalars(select(ManualSpend).where(ManualSpend.note == "second half of the month")).one()
    assert client.post(f"{url}/{added.id}/delete", data={"csrf_token": token}).status_code == 302
    assert db.scalar(select(func.count()).select_from(ManualSpend)) == 1


def _date(value: str):
    return dt.date.fromisoformat(value)
