"""The restyled pages in real Chromium: the ROMI money columns in view at 1366 px, the column chooser, the
agency home on a phone, and the API reference rendered from the hub's own files."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlparse

import pytest

from tests.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, serve
from tests.factories import PASSWORD, web_login
from tracking import romi

NOV = {"start": "2026-11-01", "end": "2026-11-30"}


def _num(text: str) -> Decimal:
    text = text.replace("\u00a0", "").replace(" ", "").rstrip("%")
    return Decimal(text) if text not in ("", "—") else Decimal(0)


@pytest.mark.parametrize("by", ["week", "day"])
def test_romi_breakdown_adds_up_to_the_period(client, db, shop, by) -> None:
    web_login(client, shop.t.admin.email)
    html = client.get(f"/clients/{shop.t.client.id}/romi", query_string={**NOV, "by": by}).get_data(
        as_text=True
    )
    table = html.split('id="breakdown-table"')[1].split("</table>")[0]
    body, foot = table.split("<tfoot>")
    parts = re.findall(r'<tr class="part" data-start="([\d-]+)" data-end="([\d-]+)">(.*?)</tr>', body, re.S)
    assert len(parts) == (30 if by == "day" else 6)  # Nov 2026: Sun 1st, four Mon–Sun weeks, Mon 30th
    assert parts[0][:2] == ("2026-11-01", "2026-11-01") and parts[-1][1] == "2026-11-30"

    def cols(row: str) -> dict[str, Decimal]:
        return {k: _num(v) for k, v in re.findall(r'data-col="(\w+)">([^<]*)<', row)}

    rows = [cols(r) for _, _, r in parts]
    total = cols(foot)
    engine = romi.report(db, shop.t.client, dt.date(2026, 11, 1), dt.date(2026, 11, 30)).total.metrics
    for key in ("spend", "revenue", "calls", "missed", "deals", "won", "visits", "clicks"):
        assert sum(r[key] for r in rows) == total[key], key
    assert (total["spend"], total["revenue"], total["calls"]) == (engine.spend, engine.revenue, engine.calls)
    assert (total["spend"], total["revenue"], total["calls"]) == (Decimal(3500), Decimal(77000), Decimal(8))
    assert (
        sum(1 for r in rows if r["spend"]) >= 2
    )  # spread over more than one part, so the sum means something
    assert 'class="chart spend-revenue"' in html


def _parts(html: str) -> tuple[list[dict[str, Decimal]], dict[str, Decimal]]:
    """The breakdown table's rows (figures by column) and its footer."""
    table = html.split('id="breakdown-table"')[1].split("</table>")[0]
    body, foot = table.split("<tfoot>")
    rows = re.findall(r'<tr class="part" data-start="[\d-]+" data-end="[\d-]+">(.*?)</tr>', body, re.S)

    def cols(row: str) -> dict[str, Decimal]:
        return {k: _num(v) for k, v in re.findall(r'data-col="(\w+)">([^<]*)<', row)}

    return [cols(r) for r in rows], cols(foot)


def test_romi_breakdown_follows_the_drilled_campaign(client, db, shop) -> None:
    web_login(client, shop.t.admin.email)
    base = f"/clients/{shop.t.client.id}/romi"
    channel = f"ch{shop.yandex.id}"
    whole, _ = _parts(client.get(base, query_string={**NOV, "by": "day"}).get_data(as_text=True))
    html = client.get(base, query_string={**NOV, "by": "day", "path": f"{channel}/701"}).get_data(
        as_text=True
    )
    rows, foot = _parts(html)
    node = romi.report(db, shop.t.client, dt.date(2026, 11, 1), dt.date(2026, 11, 30)).total.find(
        [channel, "701"]
    )
    assert node is not None and node.metrics.spend == Decimal(1500)
    # The campaign's own row, as the channel's table lists it.
    listed = client.get(base, query_string={**NOV, "path": channel}).get_data(as_text=True)
    row = re.search(r'href="[^"]*path=ch\d+/701[^"]*">[^<]*</a></td>(.*?)</tr>', listed, re.S)
    assert row is not None
    campaign_row = {k: _num(v) for k, v in re.findall(r'data-col="(\w+)">([^<]*)<', row.group(1))}
    for key in ("spend", "revenue", "calls", "missed", "deals", "won", "visits", "clicks"):
        assert sum(r[key] for r in rows) == foot[key] == campaign_row[key], key
    assert (foot["spend"], foot["calls"]) == (node.metrics.spend, node.metrics.calls)
    # Not the client's: the whole client spent 3 500 and had 8 calls over the same days.
    assert [r["spend"] for r in rows] != [r["spend"] for r in whole]
    assert sum(r["calls"] for r in rows) < sum(r["calls"] for r in whole)
    assert [r["spend"] for r in rows if r["spend"]] == [Decimal(1000), Decimal(500)]  # 5 and 6 November
    assert 'data-path="' + channel + '/701"' in html and "Spend and revenue by day: Sofas" in html


@contextmanager
def _chromium(app, **context: Any) -> Iterator[tuple[str, Any]]:
    """The hub on a real port and a Chromium page with the given context options (viewport, is_mobile)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with serve(app) as hub_url, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield hub_url, browser.new_context(**context).new_page()
        finally:
            browser.close()


def _login(page, hub_url: str, email: str, target: str) -> None:
    page.goto(f"{hub_url}/login?next=" + quote(target))
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form.login button[type=submit]")


@pytest.mark.browser
def test_romi_money_columns_in_view_at_1366(app, db, shop) -> None:
    with _chromium(app, viewport={"width": 1366, "height": 768}) as (hub_url, page):
        _login(
            page,
            hub_url,
            shop.t.admin.email,
            f"/clients/{shop.t.client.id}/romi?start=2026-11-01&end=2026-11-30",
        )
        page.wait_for_selector("#romi-table")
        for col in ("spend", "revenue", "romi"):
            box = page.locator(f"#romi-table tfoot td[data-col={col}]").bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 1366, col
        # The label column stays in place when the table scrolls sideways.
        assert page.eval_on_selector(
            "#romi-table tbody td:first-child", "e => getComputedStyle(e).position"
        ) == ("sticky")
        # The column chooser hides a column and remembers it on the next page.
        page.click("details.columns-chooser[data-table=romi-table] summary")
        page.uncheck("details.columns-chooser[data-table=romi-table] input[value=clicks]")
        assert not page.locator("#romi-table tfoot td[data-col=clicks]").is_visible()
        page.reload()
        page.wait_for_selector("#romi-table")
        assert not page.locator("#romi-table tfoot td[data-col=clicks]").is_visible()
        assert page.locator("#romi-table tfoot td[data-col=romi]").is_visible()
        # The breakdown below has its own chooser; its money columns are in view too.
        for col in ("spend", "revenue", "romi"):
            cell = page.locator(f"#breakdown-table tfoot td[data-col={col}]")
            cell.scroll_into_view_if_needed()
            box = cell.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 1366, col
        page.click("details.columns-chooser[data-table=breakdown-table] summary")
        page.uncheck("details.columns-chooser[data-table=breakdown-table] input[value=visits]")
        assert not page.locator("#breakdown-table tfoot td[data-col=visits]").is_visible()
        assert page.locator("#romi-table tfoot td[data-col=visits]").is_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"romi-1366-{db.bind.dialect.name}.png"), full_page=True)


@pytest.mark.browser
def test_agency_home_on_a_phone(app, db, shop) -> None:
    with _chromium(app, viewport={"width": 390, "height": 844}, is_mobile=True) as (hub_url, page):
        _login(page, hub_url, shop.t.admin.email, "/?start=2026-11-01&end=2026-11-30")
        page.wait_for_selector("#clients-table")
        # The page itself does not scroll sideways: wide tables scroll inside their own box.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert page.locator(f"tr[data-client='{shop.t.client.id}'] svg.spark").count() == 1
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"agency-home-phone-{db.bind.dialect.name}.png"), full_page=True)
        page.click(f"tr[data-client='{shop.t.client.id}'] a")
        page.wait_for_selector("nav.subnav a[aria-current=page]")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert page.goto(f"{hub_url}/clients/999999").status == 404
        assert page.locator("article.error-page .status-code").inner_text() == "404"
        page.screenshot(path=str(ARTIFACTS / f"not-found-phone-{db.bind.dialect.name}.png"))
        page.goto(f"{hub_url}/clients/{shop.t.client.id}")
        page.screenshot(path=str(ARTIFACTS / f"overview-phone-{db.bind.dialect.name}.png"), full_page=True)


@pytest.mark.browser
def test_api_reference_renders_from_local_files(app, db, shop) -> None:
    with _chromium(app, viewport={"width": 1366, "height": 900}) as (hub_url, page):
        sent: list[str] = []  # requests that reached the network (finished, or failed for a network reason)
        page.on("requestfinished", lambda r: sent.append(r.url))
        page.on("requestfailed", lambda r: None if r.failure == "csp" else sent.append(r.url))
        page.goto(f"{hub_url}/api/v1/docs")
        # Redoc has read the document and drawn its operations.
        page.wait_for_selector("text=Otkuda API", timeout=30_000)
        page.wait_for_selector("[data-section-id^='/paths/']", timeout=30_000)
        assert page.locator("[data-section-id^='/paths/~1clients/get']").count() == 1
        assert page.locator("[data-section-id^='/paths/']").count() >= 10
        page.wait_for_timeout(500)  # late requests (images, the search worker) are in the list too
        hosts = {urlparse(u).hostname for u in sent if not u.startswith(("blob:", "data:"))}
        assert hosts == {"127.0.0.1"}, sent
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"api-docs-{db.bind.dialect.name}.png"))
