"""The calls journal and the charts: filters, the operator's forms, downloads, tenancy; SVG drawn right;
and in Chromium: filter, open a call, play its recording, download the journal, see the charts."""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import struct
import wave
import xml.etree.ElementTree as ET
from urllib.parse import quote

import openpyxl
import pytest
from sqlalchemy import select

from hub import charts
from tests.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, serve
from tests.factories import PASSWORD, csrf, make_tenant, make_user, web_login
from tracking.models import AttributionChange, Call, CallStatus, Pool, PoolStat, Role

SVG = "{http://www.w3.org/2000/svg}"


def test_stacked_bars_are_proportional_and_escape_names() -> None:
    svg = charts.stacked_bars(
        ["2026-11-01", "2026-11-02"], {"Direct": [2, 0], "<script>x</script>": [2, 4]}, "Calls"
    )
    assert "<script>" not in svg
    root = ET.fromstring(str(svg))
    bars = root.findall(f"{SVG}rect[@class='bar']")
    assert [(b.get("data-series"), int(b.get("data-value"))) for b in bars] == [
        ("Direct", 2),
        ("<script>x</script>", 2),
        ("<script>x</script>", 4),
    ]
    heights = [float(b.get("height")) for b in bars]
    assert heights[0] == pytest.approx(heights[1]) and heights[2] == pytest.approx(heights[0] * 2)
    # The tallest day fills the plot; both bars of day one together are as tall as day two's one.
    assert heights[0] + heights[1] == pytest.approx(heights[2])
    empty = ET.fromstring(str(charts.stacked_bars([], {}, "none")))
    assert empty.findall(f"{SVG}rect[@class='bar']") == []


def test_line_chart_scales_to_percent_and_handles_one_point() -> None:
    root = ET.fromstring(str(charts.line([("a", 0.0), ("b", 0.5), ("c", 1.0)], "Use")))
    ys = [float(c.get("cy")) for c in root.findall(f"{SVG}circle")]
    assert ys[0] > ys[1] > ys[2] and ys[0] - ys[1] == pytest.approx(ys[1] - ys[2])
    assert len(ET.fromstring(str(charts.line([("only", 0.3)], "One"))).findall(f"{SVG}circle")) == 1
    assert "No data yet" in charts.line([], "None")


def _calls(db, t, ch=None):
    base = dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC)
    rows = []
    for n, (caller, status, first, tags) in enumerate(
        [
            ("+79161110001", CallStatus.ANSWERED, True, ["vip"]),
            ("+79161110002", CallStatus.MISSED, True, []),
            ("+79161110001", CallStatus.ANSWERED, False, []),
        ]
    ):
        c = Call(
            client_id=t.client.id,
            provider="generic",
            provider_call_id=f"j{n}",
            caller=caller,
            called_at=base + dt.timedelta(hours=n),
            status=status,
            first_time=first,
            tags=tags,
            talk_seconds=61 * (status == CallStatus.ANSWERED),
            recording_url="https://pbx.example/r.wav" if n == 0 else None,
        )
        db.add(c)
        rows.append(c)
    db.commit()
    return rows


def test_filters_pick_exactly_the_calls_asked_for(client, db) -> None:
    t = make_tenant(db)
    a, b, c = _calls(db, t)
    web_login(client, t.admin.email)
    url = f"/clients/{t.client.id}/calls"

    def shown(**q) -> list[int]:
        html = client.get(url, query_string=q).get_data(as_text=True)
        return sorted(int(x.split('"')[0]) for x in html.split('data-call="')[1:])

    assert shown() == sorted([a.id, b.id, c.id])
    assert shown(status="missed") == [b.id]
    assert shown(first_time="true") == sorted([a.id, b.id])
    assert shown(caller="916 111-00-01") == sorted([a.id, c.id])
    assert shown(tag="VIP") == [a.id]
    assert shown(**{"from": "2026-11-20", "to": "2026-11-20"}) == sorted([a.id, b.id, c.id])
    assert shown(**{"from": "2026-11-21"}) == []
    assert client.get(url, query_string={"status": "nope"}).status_code == 400
    page = client.get(url).get_data(as_text=True)
    assert '<audio controls preload="none" src="https://pbx.example/r.wav">' in page
    assert "<svg" in page and "Calls per day by channel" in page


def _journal_chart(client, url: str, **q) -> ET.Element:
    html = client.get(url, query_string=q).get_data(as_text=True)
    section = html.split('<section class="chart-box">', 1)[1]
    return ET.fromstring(section[section.index("<svg") : section.index("</svg>") + 6])


def test_the_journal_chart_follows_the_chosen_period(client, db) -> None:
    t = make_tenant(db)
    _calls(db, t)  # three calls on 2026-11-20
    db.add(
        Call(
            client_id=t.client.id,
            provider="generic",
            provider_call_id="early",
            caller="+79161110009",
            called_at=dt.datetime(2026, 11, 10, 9, tzinfo=dt.UTC),
            status=CallStatus.ANSWERED,
        )
    )
    db.commit()
    web_login(client, t.admin.email)
    url = f"/clients/{t.client.id}/calls"

    svg = _journal_chart(client, url, **{"from": "2026-11-15", "to": "2026-11-24"})
    texts = [x.text or "" for x in svg.iter(f"{SVG}text") if x.get("class") == "axis"]
    days = [x for x in texts if "-" in x]  # the day labels, not the count scale
    assert days == [f"11-{d}" for d in range(15, 25)]
    bars = svg.findall(f"{SVG}rect[@class='bar']")
    # The call of 2026-11-10 lies outside the chosen days and is not drawn.
    assert sum(int(b.get("data-value")) for b in bars) == 3
    assert {b.find(f"{SVG}title").text.split(" · ")[0] for b in bars} == {"2026-11-20"}

    # Past a month the bars are weeks, and the early call is counted too.
    weeks = _journal_chart(client, url, **{"from": "2026-09-01", "to": "2026-11-30"})
    assert "Calls per week by channel" in ET.tostring(weeks, encoding="unicode")
    assert sum(int(b.get("data-value")) for b in weeks.findall(f"{SVG}rect[@class='bar']")) == 4


def test_operator_forms_change_the_call_or_refuse_without_change(client, db) -> None:
    t = make_tenant(db)
    a, _b, _c = _calls(db, t)
    from tests.factories import make_channel

    billboard = make_channel(db, t.site, "Billboard")
    web_login(client, t.admin.email)
    url = f"/clients/{t.client.id}/calls/{a.id}"
    token = csrf(client)
    ok = client.post(
        url,
        data={"csrf_token": token, "action": "notes", "tags": "vip, callback ,vip", "notes": "wants a quote"},
    )
    assert ok.status_code == 302
    db.expire_all()
    assert (db.get(Call, a.id).tags, db.get(Call, a.id).notes) == (["vip", "callback"], "wants a quote")
    moved = client.post(
        url,
        data={"csrf_token": token, "action": "channel", "channel_id": str(billboard.id), "reason": "asked"},
    )
    assert moved.status_code == 302
    db.expire_all()
    assert db.get(Call, a.id).channel_id == billboard.id
    change = db.scalars(select(AttributionChange).where(AttributionChange.call_id == a.id)).one()
    assert change.actor == t.admin.email and change.reason == "asked"
    # Bad input: a clear message, status 400, and the call as it was.
    foreign = make_tenant(db, "Rival")
    rival_channel = make_channel(db, foreign.site, "Theirs")
    for data, message in (
        ({"action": "channel", "channel_id": str(rival_channel.id)}, "one of this client"),
        ({"action": "promo", "code": "ZZ99"}, "ZZ99"),
        ({"action": "notes", "tags": "x" * 60}, "tags"),
        ({"action": "explode"}, "unknown action"),
    ):
        resp = client.post(url, data={"csrf_token": token, **data})
        assert resp.status_code == 400 and message in resp.get_data(as_text=True), data
    db.expire_all()
    kept = db.get(Call, a.id)
    assert (kept.channel_id, kept.tags, kept.promo_code) == (billboard.id, ["vip", "callback"], None)
    assert client.post(url, data={"action": "notes", "notes": "no token"}).status_code == 400


def test_downloads_and_tenancy(client, db) -> None:
    t = make_tenant(db)
    a, b, c = _calls(db, t)
    web_login(client, t.admin.email)
    resp = client.get(f"/clients/{t.client.id}/calls.csv", query_string={"status": "answered"})
    rows = list(csv.DictReader(io.StringIO(resp.get_data().decode("utf-8-sig"))))
    assert sorted(int(r["id"]) for r in rows) == sorted([a.id, c.id])
    book = client.get(f"/clients/{t.client.id}/calls.xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(book.get_data())).active
    assert sheet.max_row == 4 and sheet.cell(1, 1).value == "id"
    rival = make_tenant(db, "Rival")
    other = make_user(db, rival, "x@rival.example", Role.ADMIN)
    client.post("/logout")
    web_login(client, other.email)
    for path in (
        f"/clients/{t.client.id}/calls",
        f"/clients/{t.client.id}/calls/{a.id}",
        f"/clients/{t.client.id}/calls.csv",
    ):
        assert client.get(path).status_code == 404
    viewer = make_user(db, t, "viewer@acme.example", Role.VIEWER, client=t.client)
    client.post("/logout")
    web_login(client, viewer.email)
    assert client.get(f"/clients/{t.client.id}/calls/{a.id}").status_code == 200
    before = db.get(Call, a.id).notes
    resp = client.post(
        f"/clients/{t.client.id}/calls/{a.id}",
        data={"csrf_token": csrf(client), "action": "notes", "notes": "x"},
    )
    assert resp.status_code in (403, 404)
    db.expire_all()
    assert db.get(Call, a.id).notes == before


def _wav(path) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(i / 8))) for i in range(8000 * 3)))


@pytest.mark.browser
def test_journal_in_chromium_filter_play_download(app, db, tmp_path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    t = make_tenant(db)
    a, _b, _c = _calls(db, t)
    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    for c in (a, _b, _c):
        c.called_at = now - dt.timedelta(days=1)
    pool = Pool(client_id=t.client.id, site_id=t.site.id, name="Site pool")
    db.add(pool)
    db.flush()
    for h in range(6):
        db.add(
            PoolStat(
                pool_id=pool.id,
                hour=now - dt.timedelta(hours=6 - h),
                numbers=10,
                held=h,
                peak_held=h + 1,
                sessions=5,
                fallbacks=0,
            )
        )
    wav = tmp_path / "r.wav"
    _wav(wav)

    def recordings(environ, start_response):
        start_response("200 OK", [("Content-Type", "audio/wav"), ("Content-Length", str(wav.stat().st_size))])
        return [wav.read_bytes()]

    with serve(recordings) as rec, serve(app) as hub, sync_api.sync_playwright() as pw:
        a.recording_url = rec + "/r.wav"
        db.commit()
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"]
        )
        page = browser.new_context(accept_downloads=True, viewport={"width": 1300, "height": 900}).new_page()
        page.goto(f"{hub}/login?next=" + quote(f"/clients/{t.client.id}/calls"))
        page.fill("input[name=email]", t.admin.email)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("#calls-table")
        assert page.locator("svg.chart rect.bar").count() >= 1
        page.select_option("select[name=status]", "answered")
        page.click("#filters button[type=submit]")
        page.wait_for_url("**status=answered**")
        assert page.locator("#calls-table tr.call").count() == 2
        with page.expect_download() as info:
            page.click("#calls-csv")
        info.value.save_as(tmp_path / "calls.csv")
        rows = list(csv.DictReader(io.StringIO((tmp_path / "calls.csv").read_bytes().decode("utf-8-sig"))))
        assert {r["status"] for r in rows} == {"answered"} and len(rows) == 2
        page.click(f"tr[data-call='{a.id}'] a")
        page.wait_for_selector("#recording")
        page.evaluate("document.querySelector('#recording').play()")
        page.wait_for_function("() => document.querySelector('#recording').currentTime > 0.2", timeout=10000)
        assert page.evaluate("document.querySelector('#recording').paused") is False
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"journal-call-{db.bind.dialect.name}.png"), full_page=True)
        page.goto(f"{hub}/clients/{t.client.id}")
        assert page.locator(".pool-chart svg circle.point").count() == 6
        shot = ARTIFACTS / f"client-overview-{db.bind.dialect.name}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 20_000
        browser.close()
