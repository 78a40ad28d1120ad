"""The agency home and the client overview: figures from the ROMI engine, the change against the previous
period, branded error pages, and the formatting rules every page uses."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from tests.factories import csrf, make_tenant, make_user, web_login
from tests.romi_world import utc
from tracking import romi
from tracking.models import AttributionMethod, Call, CallStatus, Client, Role

NOV = {"start": "2026-11-01", "end": "2026-11-30"}
NBSP = "\u00a0"


def _rows(html: str) -> dict[int, dict[str, str]]:
    """Client id -> {column: the text shown} from the agency home's table."""
    out = {}
    for cid, body in re.findall(r'<tr class="client-row" data-client="(\d+)">(.*?)</tr>', html, re.S):
        out[int(cid)] = {k: v.strip() for k, v in re.findall(r'data-col="(\w+)">([^<]*)<', body)}
    return out


def _second_client(db, agency_id: int) -> Client:
    beta = Client(agency_id=agency_id, name="Beta Bakery", timezone="Asia/Yekaterinburg", currency="RUB")
    db.add(beta)
    db.flush()
    for i, status in enumerate((CallStatus.ANSWERED, CallStatus.MISSED, CallStatus.MISSED)):
        db.add(
            Call(
                client_id=beta.id,
                provider="generic",
                provider_call_id=f"beta{i}",
                caller=f"+7900000000{i}",
                called_at=utc(10 + i),
                status=status,
                first_time=i == 0,
                attribution_method=AttributionMethod.UNMATCHED,
            )
        )
    db.flush()
    return beta


def test_agency_home_shows_the_romi_engines_totals_for_every_client(client, db, shop) -> None:
    beta = _second_client(db, shop.t.agency.id)
    other = make_tenant(db, "Other")  # another agency's client must not appear
    db.commit()
    web_login(client, shop.t.admin.email)
    html = client.get("/", query_string=NOV).get_data(as_text=True)
    rows = _rows(html)
    assert set(rows) == {shop.t.client.id, beta.id} and other.client.id not in rows
    for c in (shop.t.client, beta):
        m = romi.report(db, db.get(Client, c.id), dt.date(2026, 11, 1), dt.date(2026, 11, 30)).total.metrics
        shown = rows[c.id]
        assert shown["calls"] == str(m.calls)
        assert shown["missed"] == str(m.missed)
        assert shown["first_time"] == str(m.first_time_calls)
        assert shown["deals"] == str(m.deals)
        assert shown["spend"] == f"{m.spend:,.0f}".replace(",", NBSP) + f"{NBSP}₽"
        assert shown["revenue"] == f"{m.revenue:,.0f}".replace(",", NBSP) + f"{NBSP}₽"
    # The figures worked out by hand for the shop (tests/test_romi.py): spend 3 500, revenue 77 000.
    assert rows[shop.t.client.id]["spend"] == f"3{NBSP}500{NBSP}₽"
    assert rows[shop.t.client.id]["revenue"] == f"77{NBSP}000{NBSP}₽"
    assert rows[shop.t.client.id]["romi"] == f"{(77000 - 3500) / 3500 * 100:.0f}{NBSP}%"
    assert (rows[beta.id]["calls"], rows[beta.id]["missed"], rows[beta.id]["first_time"]) == ("3", "2", "1")
    assert rows[beta.id]["romi"] == "—" and "None" not in html
    assert html.count('<svg class="spark"') == 2


def test_agency_home_sorts_and_filters(client, db, shop) -> None:
    beta = _second_client(db, shop.t.agency.id)
    db.commit()
    web_login(client, shop.t.admin.email)

    def order(**args: str) -> list[int]:
        page = client.get("/", query_string={**NOV, **args}).get_data(as_text=True)
        return [int(x) for x in re.findall(r'data-client="(\d+)"', page)]

    shop_id = shop.t.client.id
    assert order(sort="revenue") == [shop_id, beta.id]
    assert order(sort="missed") == ([beta.id, shop_id] if beta_missed_more(db, shop) else [shop_id, beta.id])
    assert order(sort="name") == sorted([shop_id, beta.id], key=lambda i: db.get(Client, i).name.lower())
    assert order(q="bakery") == [beta.id]
    assert "No client" in client.get("/", query_string={**NOV, "q": "zzz"}).get_data(as_text=True)


def beta_missed_more(db, shop) -> bool:
    m = romi.report(db, shop.t.client, dt.date(2026, 11, 1), dt.date(2026, 11, 30)).total.metrics
    return m.missed < 2


def test_new_agency_is_told_what_to_do(client, db) -> None:
    t = make_tenant(db, "Fresh")
    db.delete(t.site)
    db.delete(t.client)
    db.commit()
    web_login(client, t.admin.email)
    html = client.get("/").get_data(as_text=True)
    assert "No clients yet" in html and "/api/v1/docs" in html


def test_error_pages_are_branded(client, db, shop) -> None:
    viewer = make_user(db, shop.t, "viewer@example.com", Role.VIEWER, shop.t.client)
    db.commit()
    web_login(client, shop.t.admin.email)
    missing = client.get("/clients/999999")
    page = missing.get_data(as_text=True)
    assert (
        missing.status_code == 404
        and 'data-status="404"' in page
        and "Otkuda" in page
        and "Nothing here" in page
    )
    assert 'href="/static/vendor/pico/pico.min.css"' in page  # the hub's look, not Flask's bare page
    assert client.get("/no/such/page").status_code == 404
    client.post("/logout", data={"csrf_token": csrf(client)})
    web_login(client, viewer.email)
    refused = client.post(
        f"/clients/{shop.t.client.id}/manual-spend", data={"csrf_token": csrf(client), "amount": "1"}
    )
    assert refused.status_code == 403 and 'data-status="403"' in refused.get_data(as_text=True)
    # Machines still get JSON.
    api = client.get("/api/v1/clients/999999", headers={"Authorization": f"Bearer {shop.t.token}"})
    assert api.status_code == 404 and api.get_json()["error"]


def test_server_error_page_is_branded_and_hides_the_details(app, client, db, shop) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.get("/boom-for-test")
    def boom() -> str:
        raise RuntimeError("secret detail")

    resp = client.get("/boom-for-test")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 500 and 'data-status="500"' in page and "secret detail" not in page


def test_money_and_time_filters() -> None:
    from zoneinfo import ZoneInfo

    from hub import formatting as f

    assert f.money(Decimal("1234567.5"), "RUB") == f"1{NBSP}234{NBSP}567.50{NBSP}₽"
    assert f.money(Decimal("3500.00"), "usd") == f"3{NBSP}500{NBSP}$"
    assert f.money(0, "EUR") == f"0{NBSP}€" and f.money(None, "RUB") == "—"
    when = dt.datetime(2026, 11, 30, 22, 15, 42, 123456, tzinfo=dt.UTC)
    assert f.local_time(when, "Europe/Moscow") == "2026-12-01 01:15"  # the client's day, no microseconds
    assert (
        f.local_time(when.replace(tzinfo=None), ZoneInfo("Asia/Vladivostok"), seconds=True)
        == "2026-12-01 08:15:42"
    )
    assert f.local_time(None) == "—"
    assert f.label("last_non_direct") == "Last non-direct touch" and f.label("ad_group") == "Ad group"
    assert f.label(CallStatus.IN_PROGRESS) == "In progress" and f.label("some_new_key") == "Some new key"
    assert f.percent(0.255) == f"26{NBSP}%" and f.percent(None) == "—"
    assert f.change(0.5) == f"+50{NBSP}%" and f.change(-0.25) == f"−25{NBSP}%" and f.change(None) == "—"
    assert f.duration(185) == f"3{NBSP}min 05{NBSP}s" and f.or_dash(None) == "—"


def test_client_pages_write_times_in_the_clients_zone(app, client, db, shop) -> None:
    shop.t.client.timezone = "Asia/Vladivostok"  # UTC+10
    shop.call(utc(30, 22, 15), channel=shop.direct, caller="+79001112233")
    db.commit()
    web_login(client, shop.t.admin.email)
    journal = client.get(f"/clients/{shop.t.client.id}/calls").get_data(as_text=True)
    assert "2026-12-01 08:15" in journal and "Asia/Vladivostok" in journal


def test_call_page_reads_like_a_page_not_a_dump(client, db, shop) -> None:
    from tracking.models import CallCandidate, Connection, DealStatus

    shop.conn.provider = "amocrm"
    shop.conn.account = {"host": "shop.amocrm.ru", "subdomain": "shop"}
    visit = shop.session(shop.yandex, "v1", utc(12, 9), utm_campaign="sofas-nov")
    first = shop.call(utc(12, 10), session=visit, caller="+79005550000")
    call = shop.call(utc(14, 11, 30), session=visit, caller="+79005550000", first_time=False)
    db.add(
        CallCandidate(
            call_id=call.id,
            session_id=visit.id,
            score=0.8,
            reasons={
                "seconds_since_activity": 65,
                "page_alive": True,
                "within_hold": False,
                "returning_caller": True,
            },
        )
    )
    shop.deal(call, DealStatus.WON, "125000")
    db.commit()
    assert db.get(Connection, shop.conn.id).provider == "amocrm"
    web_login(client, shop.t.admin.email)
    page = client.get(f"/clients/{shop.t.client.id}/calls/{call.id}").get_data(as_text=True)
    assert "2026-11-14 14:30:00" in page  # Moscow time, seconds but no microseconds
    assert (
        "last active 1\u00a0min 05\u00a0s before the call; page still open; number in its grace period"
        in page
    )
    assert "the caller&#39;s earlier calls came from this visitor" in page
    assert 'href="https://shop.amocrm.ru/leads/detail/' in page and f"125{NBSP}000{NBSP}₽" in page
    assert f"/calls/{first.id}" in page  # the caller's earlier call, linked
    assert "None" not in page and "seconds_since_activity" not in page and "session_exact" not in page


def test_overview_compares_with_the_period_just_before(client, db) -> None:
    from tests.romi_world import Shop
    from tracking.models import DealStatus

    t = make_tenant(db, "Cmp")
    t.client.timezone = "Europe/Moscow"
    s = Shop(db, t)
    # Previous period, Nov 1–10: 4 calls (2 missed), spend 1 000, nothing won.
    for day, status in (
        (2, CallStatus.ANSWERED),
        (3, CallStatus.MISSED),
        (5, CallStatus.MISSED),
        (9, CallStatus.ANSWERED),
    ):
        s.call(utc(day), channel=s.yandex, caller=f"+7911000000{day}", status=status)
    s.spend(dt.date(2026, 11, 4), "701", "1000")
    # This period, Nov 11–20: 6 calls (2 missed), spend 2 000, one deal won for 5 000.
    won = None
    for i, day in enumerate((11, 12, 13, 15, 18, 20)):
        status = CallStatus.MISSED if i in (1, 4) else CallStatus.ANSWERED
        call = s.call(utc(day), channel=s.yandex, caller=f"+7922000000{i}", status=status)
        won = won or call
    s.deal(won, DealStatus.WON, "5000", created=utc(19))
    s.spend(dt.date(2026, 11, 14), "701", "2000")
    # Outside both periods: must count nowhere.
    s.call(utc(21, 1), channel=s.yandex, caller="+79330000000")
    db.commit()
    web_login(client, t.admin.email)
    html = client.get(
        f"/clients/{t.client.id}", query_string={"start": "2026-11-11", "end": "2026-11-20"}
    ).get_data(as_text=True)
    assert "2026-11-01 – 2026-11-10" in html  # the previous period it compares with
    cards = dict(re.findall(r'data-key="(\w+)">.*?data-change="([^"]*)"', html, re.S))
    assert float(cards["calls"]) == 0.5  # 6 against 4
    assert float(cards["missed"]) == 0.0  # 2 against 2
    assert float(cards["spend"]) == 1.0  # 2 000 against 1 000
    assert cards["revenue"] == ""  # nothing before: no percentage to show
    assert float(cards["romi"]) == 2.5  # +150 % against −100 %: 250 points
    assert f"+50{NBSP}%" in html and "+250 pp" in html


def test_pool_advice_without_visits_says_not_enough_data(client, db) -> None:
    t = make_tenant(db, "Empty")
    db.commit()
    web_login(client, t.admin.email)
    page = client.get(f"/clients/{t.client.id}/pool-advice").get_data(as_text=True)
    assert 'data-kind="no_data"' in page and "Not enough data yet" in page
    assert 'id="advice"' not in page and "Rule of thumb" not in page  # no size drawn from defaults
    assert 'class="subnav"' in page and 'aria-current="page"' in page


def test_pool_verdict_sentences() -> None:
    from hub.dashboard import pool_verdict
    from tracking.poolsim import Advice

    advice = [Advice(0.95, 12, None), Advice(0.99, 20, None)]
    assert pool_verdict(500, 20, advice).text.startswith("You could drop 8 numbers")
    assert pool_verdict(500, 7, advice).text.startswith("Add 5 numbers")
    assert pool_verdict(500, 12, advice).kind == "right"
    assert (
        pool_verdict(500, None, advice).kind == "no_pool"
        and "12 numbers" in pool_verdict(500, None, advice).text
    )
    assert pool_verdict(99, 20, advice).kind == "no_data"
    assert pool_verdict(500, 20, [Advice(0.95, None, None)]).kind == "beyond"


def test_call_page_says_where_each_model_credits_the_call(client, db, shop) -> None:
    # A visitor came from a Direct ad (campaign "sofas-nov", id 701, "Sofas"), came back directly, called.
    ad = shop.session(
        shop.yandex, "ret1", utc(3, 9), utm_campaign="sofas-nov", utm_content="g1", utm_term="sofa"
    )
    back = shop.session(shop.direct, "ret1", utc(3, 15))
    call = shop.call(utc(3, 15, 5), session=back, caller="+79007770000")
    db.commit()
    assert ad.id != back.id
    web_login(client, shop.t.admin.email)
    page = client.get(f"/clients/{shop.t.client.id}/calls/{call.id}").get_data(as_text=True)
    credits = dict(re.findall(r'<tr data-model="(\w+)"><td>[^<]*</td><td class="credit">([^<]*)</td>', page))
    assert credits["last_touch"].startswith("Direct")
    assert credits["last_non_direct"] == "Yandex Direct › Sofas › Sofa group › sofa"
    assert credits["first_touch"].startswith("Yandex Direct › Sofas")
    # The page agrees with the report: the call's day under each model has the call in that channel.
    day = dt.date(2026, 11, 3)
    for model, shown in credits.items():
        rows = {
            n.label: n.metrics.calls for n in romi.report(db, shop.t.client, day, day, model=model).rows(1)
        }
        assert rows.get(shown.split(" › ")[0], 0) >= 1, (model, rows)


def _chart_bars(html: str) -> list[tuple[str, str, int]]:
    """(day or week, channel, calls) of each bar of the overview's calls chart."""
    chart = html.split('id="calls-chart"')[1].split("</svg>")[0]
    return [
        (when, series, int(value))
        for series, value, when in re.findall(
            r'<rect class="bar" data-series="([^"]*)" data-value="(\d+)".*?<title>([^ ]+) ·', chart
        )
    ]


def test_overview_chart_follows_the_chosen_period(client, db, shop) -> None:
    web_login(client, shop.t.admin.email)
    base = f"/clients/{shop.t.client.id}"
    # 11–20 November (Moscow days): the billboard call on the 11th and three calls on the 12th.
    html = client.get(base, query_string={"start": "2026-11-11", "end": "2026-11-20"}).get_data(as_text=True)
    assert 'data-by="day"' in html and "Calls per day by channel" in html
    bars = _chart_bars(html)
    assert sorted(bars) == [
        ("2026-11-11", "Billboard", 1),
        ("2026-11-12", "Direct", 1),
        ("2026-11-12", "Unattributed", 2),
    ]
    # The whole month: the same eight calls as the ROMI engine counts (the 1 December one is not in it).
    month = _chart_bars(client.get(base, query_string=NOV).get_data(as_text=True))
    engine = romi.report(db, shop.t.client, dt.date(2026, 11, 1), dt.date(2026, 11, 30)).total.metrics
    assert sum(n for *_, n in month) == engine.calls == 8
    assert ("2026-11-01", "Google Ads", 1) in month  # 00:30 on the 1st in Moscow, 31 October in UTC
    # A quarter is drawn by week (Monday to Sunday, clipped to the period), now with the December call.
    quarter = client.get(base, query_string={"start": "2026-10-01", "end": "2026-12-31"}).get_data(
        as_text=True
    )
    assert 'data-by="week"' in quarter and "Calls per week by channel" in quarter
    weeks = _chart_bars(quarter)
    assert sum(n for *_, n in weeks) == 9
    assert {w for w, *_ in weeks} == {"10-26–11-01", "11-02–11-08", "11-09–11-15", "11-30–12-06"}


def test_business_pages_speak_russian(client, shop) -> None:
    web_login(client, shop.t.admin.email)
    ru = {"Accept-Language": "ru"}
    base = f"/clients/{shop.t.client.id}"
    home = client.get("/", query_string=NOV, headers=ru).get_data(as_text=True)
    overview = client.get(base, query_string=NOV, headers=ru).get_data(as_text=True)
    report = client.get(
        f"{base}/romi", query_string={**NOV, "path": f"ch{shop.yandex.id}/701"}, headers=ru
    ).get_data(as_text=True)
    assert "Выручка" in home and "Звонки по дням" in home
    assert "Звонки по дням и каналам" in overview and "Состояние пулов" in overview
    assert "Расход и выручка по дням: Sofas" in report and "Лучшие кампании" in report
    assert f"Расход,{NBSP}₽" in report.replace("&nbsp;", NBSP)  # the currency in the money headings
    for english in ("Pool health", "Recent calls", "Top campaigns", "Spend entered by hand", "First-time"):
        assert english not in home + overview + report, english
