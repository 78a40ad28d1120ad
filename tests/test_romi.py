"""The ROMI engine against a small client whose every figure is worked out by hand below."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from tests.factories import Tenant, make_tenant
from tracking import romi
from tracking.models import (
    AttributionMethod,
    Call,
    CallStatus,
    CampaignMapping,
    Channel,
    Connection,
    ConnectionStatus,
    Deal,
    DealStatus,
    ManualSpend,
    SpendRow,
    VisitSession,
)

NOV_1, NOV_30 = dt.date(2026, 11, 1), dt.date(2026, 11, 30)
_ids = itertools.count(1)


def utc(day: int, hour: int = 12, minute: int = 0, month: int = 11) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=dt.UTC)


class Shop:
    """Channels, sessions, calls, deals and spend of one client for November 2026 (Moscow time)."""

    def __init__(self, db: Session, t: Tenant) -> None:
        self.db, self.t = db, t
        cid = t.client.id
        self.direct = Channel(client_id=cid, name="Direct", is_default=True, position=10_000)
        self.yandex = Channel(client_id=cid, name="Yandex Direct", rules=[{"has_yclid": True}], position=1)
        self.google = Channel(client_id=cid, name="Google Ads", rules=[{"has_gclid": True}], position=2)
        self.billboard = Channel(client_id=cid, name="Billboard", offline=True, position=3)
        db.add_all([self.direct, self.yandex, self.google, self.billboard])
        self.conn = Connection(
            agency_id=t.agency.id,
            client_id=cid,
            provider="yandex",
            name="ads",
            connectors=["yandex_direct"],
            account={},
            settings={},
            scopes=[],
            status=ConnectionStatus.ACTIVE,
        )
        db.add(self.conn)
        db.add(
            CampaignMapping(
                client_id=cid, platform="yandex_direct", utm_campaign="sofas-nov", campaign_id="701"
            )
        )
        db.flush()

    def session(self, channel: Channel, visitor: str, at: dt.datetime, **utm: str) -> VisitSession:
        s = VisitSession(
            public_id=f"s{next(_ids)}",
            client_id=self.t.client.id,
            site_id=self.t.site.id,
            visitor_id=visitor,
            channel_id=channel.id,
            started_at=at,
            last_seen_at=at,
            **utm,
        )
        self.db.add(s)
        self.db.flush()
        return s

    def call(
        self,
        at: dt.datetime,
        *,
        session: VisitSession | None = None,
        channel: Channel | None = None,
        caller: str | None = None,
        status: CallStatus = CallStatus.ANSWERED,
        method: AttributionMethod = AttributionMethod.DYNAMIC,
        first_time: bool = True,
    ) -> Call:
        c = Call(
            client_id=self.t.client.id,
            provider="generic",
            provider_call_id=f"c{next(_ids)}",
            caller=caller,
            called_at=at,
            status=status,
            first_time=first_time,
            attribution_method=method,
            session_id=session.id if session else None,
            channel_id=channel.id if channel else (session.channel_id if session else None),
        )
        self.db.add(c)
        self.db.flush()
        return c

    def deal(
        self, call: Call | None, status: DealStatus, amount: str, created: dt.datetime | None = None
    ) -> Deal:
        d = Deal(
            client_id=self.t.client.id,
            connection_id=self.conn.id,
            external_id=f"d{next(_ids)}",
            status=status,
            amount=Decimal(amount),
            call_id=call.id if call else None,
            created_at=created or utc(20),
        )
        self.db.add(d)
        self.db.flush()
        return d

    def spend(self, day: dt.date, campaign: str, cost: str, platform: str = "yandex_direct", **rest) -> None:
        names = {"701": "Sofas", "702": "Brand", "9001": "Search"}
        self.db.add(
            SpendRow(
                client_id=self.t.client.id,
                connection_id=self.conn.id,
                platform=platform,
                day=day,
                campaign_id=campaign,
                campaign_name=names[campaign],
                cost=Decimal(cost),
                currency="RUB",
                **rest,
            )
        )


@pytest.fixture
def shop(db: Session) -> Shop:
    t = make_tenant(db)
    s = Shop(db, t)
    g1 = {"ad_group_id": "g1", "ad_group_name": "Sofa group"}
    s.spend(
        dt.date(2026, 11, 5),
        "701",
        "1000",
        clicks=50,
        impressions=1000,
        keyword_id="k1",
        keyword="sofa",
        **g1,
    )
    s.spend(
        dt.date(2026, 11, 6),
        "701",
        "500",
        clicks=20,
        impressions=400,
        keyword_id="k2",
        keyword="armchair",
        **g1,
    )
    s.spend(dt.date(2026, 11, 7), "702", "300", clicks=10, impressions=100)  # nobody visited from it
    s.spend(dt.date(2026, 10, 31), "701", "999", keyword_id="k1", keyword="sofa", **g1)  # before the period
    s.spend(dt.date(2026, 11, 8), "9001", "200", platform="google_ads", clicks=4)
    # 3,100 for 31 days (16 Oct – 15 Nov): 15 of them fall in November.
    db.add(
        ManualSpend(
            client_id=t.client.id,
            channel_id=s.billboard.id,
            period_start=dt.date(2026, 10, 16),
            period_end=dt.date(2026, 11, 15),
            amount=Decimal("3100"),
        )
    )
    s1 = s.session(
        s.yandex, "A", utc(5, 10), utm_campaign="701", utm_content="g1", utm_term="Sofa", yclid="y1"
    )
    s2 = s.session(
        s.yandex,
        "B",
        utc(6),
        utm_campaign="sofas-nov",
        utm_content="Sofa group",
        utm_term="armchair",
        yclid="y2",
    )
    s3 = s.session(s.direct, "A", utc(10))  # visitor A comes back by typing the address
    # 21:00 UTC on 31 October is midnight in Moscow: the first minute of November there.
    s4 = s.session(s.google, "C", utc(31, 21, month=10), utm_campaign="9001", gclid="g")
    s5 = s.session(s.direct, "D", utc(12))
    c1 = s.call(utc(5, 10, 5), session=s1, caller="+79000000001")
    s.call(utc(6, 12, 30), session=s2, caller="+79000000002", status=CallStatus.MISSED)
    c3 = s.call(utc(10, 12, 10), session=s3, caller="+79000000001", first_time=False)
    c4 = s.call(utc(11), channel=s.billboard, caller="+79000000004", method=AttributionMethod.STATIC)
    s.call(utc(12, 9), caller="+79000000005", method=AttributionMethod.OVERFLOW)
    s.call(utc(12, 10), caller="+79000000006", method=AttributionMethod.UNMATCHED)
    s.call(utc(12, 13), session=s5, caller="+79000000007")
    s.call(utc(30, 21, 30), session=s5, caller="+79000000008")  # 00:30 on 1 December in Moscow
    s.call(utc(31, 21, 30, month=10), session=s4, caller="+79000000009")  # 00:30 on 1 November in Moscow
    s.call(utc(13), session=s5, caller="+79000000010", status=CallStatus.IN_PROGRESS)  # not final
    s.deal(c1, DealStatus.WON, "50000")
    s.deal(c3, DealStatus.OPEN, "0")
    s.deal(c4, DealStatus.WON, "20000")
    s.deal(None, DealStatus.WON, "7000")  # a deal the CRM holds without any call
    s.deal(None, DealStatus.WON, "100", created=utc(1, 12, month=12))  # outside the period
    db.commit()
    return s


def by_label(nodes) -> dict[str, romi.Node]:
    return {n.label: n for n in nodes}


FIELDS = (
    "spend",
    "visits",
    "calls",
    "unique_callers",
    "first_time_calls",
    "answered",
    "missed",
    "deals",
    "won",
)


def figures(node: romi.Node) -> dict[str, object]:
    d = node.metrics.as_dict()
    return {k: d[k] for k in (*FIELDS, "revenue")}


def test_channel_rows_match_the_hand_count(db, shop) -> None:
    rep = romi.report(db, shop.t.client, NOV_1, NOV_30)
    rows = by_label(rep.rows(1))
    assert figures(rows["Yandex Direct"]) == {
        "spend": "1800.00",  # 1000 + 500 + the unvisited campaign's 300 (its platform's channel)
        "visits": 2,
        "calls": 3,  # two of its own and the direct return of visitor A (last non-direct)
        "unique_callers": 2,
        "first_time_calls": 2,
        "answered": 2,
        "missed": 1,
        "deals": 2,
        "won": 1,
        "revenue": "50000.00",
    }
    y = rows["Yandex Direct"].metrics
    assert y.romi == pytest.approx((50000 - 1800) / 1800)
    assert y.cost_per_call == Decimal("600.00") and y.cost_per_deal == Decimal("900.00")
    assert (y.visit_to_call, y.call_to_deal, y.deal_to_won) == (1.5, pytest.approx(2 / 3), 0.5)
    assert figures(rows["Google Ads"]) == {
        "spend": "200.00",
        "visits": 1,
        "calls": 1,
        "unique_callers": 1,
        "first_time_calls": 1,
        "answered": 1,
        "missed": 0,
        "deals": 0,
        "won": 0,
        "revenue": "0.00",
    }
    assert (rows["Direct"].metrics.visits, rows["Direct"].metrics.calls) == (2, 1)
    billboard = rows["Billboard"].metrics
    assert (billboard.spend, billboard.calls, billboard.revenue) == (Decimal("1500.00"), 1, Decimal("20000"))
    assert billboard.romi == pytest.approx((20000 - 1500) / 1500)
    # Calls and deals that belong to no channel keep rows of their own.
    assert rows["Pool overflow"].metrics.calls == 1 and rows["Unmatched number"].metrics.calls == 1
    no_call = rows["Deals without a call"].metrics
    assert (no_call.deals, no_call.won, no_call.revenue, no_call.calls) == (1, 1, Decimal("7000"), 0)
    total = rep.total.metrics
    assert (total.calls, total.visits, total.spend, total.revenue) == (
        8,
        5,
        Decimal("3500.00"),
        Decimal("77000"),
    )
    assert total.unique_callers == 7  # +79000000001 called twice
    special = {"Pool overflow", "Unmatched number", "Deals without a call"}
    assert set([n.label for n in rep.rows(1)][-3:]) == special  # after every channel


def test_drill_down_to_campaign_ad_group_keyword(db, shop) -> None:
    rep = romi.report(db, shop.t.client, NOV_1, NOV_30)
    yandex = by_label(rep.rows(1))["Yandex Direct"]
    campaigns = by_label(yandex.sorted_children())
    assert set(campaigns) == {"Sofas", "Brand"}
    sofas = campaigns["Sofas"]  # "701" by id and "sofas-nov" through the mapping are one campaign
    assert (sofas.key, sofas.metrics.visits, sofas.metrics.calls, sofas.metrics.spend) == (
        "701",
        2,
        3,
        Decimal("1500"),
    )
    assert (campaigns["Brand"].metrics.spend, campaigns["Brand"].metrics.visits) == (Decimal("300"), 0)
    [group] = sofas.sorted_children()  # "g1" by id and "Sofa group" by name are one ad group
    assert (group.key, group.label, group.metrics.visits) == ("g1", "Sofa group", 2)
    keywords = by_label(group.sorted_children())
    sofa, armchair = keywords["sofa"].metrics, keywords["armchair"].metrics
    assert (sofa.visits, sofa.calls, sofa.spend, sofa.clicks, sofa.revenue) == (
        1,
        2,
        Decimal("1000"),
        50,
        Decimal("50000"),
    )
    assert (armchair.visits, armchair.calls, armchair.missed, armchair.spend) == (1, 1, 1, Decimal("500"))
    assert rep.total.find([f"ch{shop.yandex.id}", "701", "g1", "k1"]) is not None
    assert [n.label for n in rep.top("campaign", 3)] == ["Sofas", "Search", "Brand"]  # named ones only


def test_every_parent_is_the_sum_of_its_children(db, shop) -> None:
    rep = romi.report(db, shop.t.client, NOV_1, NOV_30)
    additive = ("spend", "clicks", "impressions", "visits", "calls", "first_time_calls", "answered", "missed")
    additive += ("deals", "won", "revenue")

    def check(node: romi.Node) -> None:
        if not node.children:
            return
        for name in additive:
            assert getattr(node.metrics, name) == sum(
                getattr(c.metrics, name) for c in node.children.values()
            )
        assert node.metrics.callers == set().union(*(c.metrics.callers for c in node.children.values()))
        for c in node.children.values():
            check(c)

    check(rep.total)
    assert len(list(rep.total.walk(4))) > 12


def test_attribution_models_move_only_the_direct_return(db, shop) -> None:
    last = by_label(romi.report(db, shop.t.client, NOV_1, NOV_30, model="last_touch").rows(1))
    assert (last["Yandex Direct"].metrics.calls, last["Direct"].metrics.calls) == (2, 2)
    assert last["Direct"].metrics.deals == 1  # the open deal moved with its call
    first = by_label(romi.report(db, shop.t.client, NOV_1, NOV_30, model="first_touch").rows(1))
    assert (first["Yandex Direct"].metrics.calls, first["Direct"].metrics.calls) == (3, 1)


def test_a_manual_source_drops_the_session_tags(db, shop) -> None:
    call = shop.db.query(Call).filter(Call.caller == "+79000000002").one()
    call.attribution_method = AttributionMethod.MANUAL
    call.channel_id = shop.billboard.id
    db.commit()
    rows = by_label(romi.report(db, shop.t.client, NOV_1, NOV_30).rows(2))
    assert rows["Billboard"].metrics.calls == 2
    assert [c.label for c in rows["Billboard"].sorted_children()] == ["(no campaign)"]


def test_manual_spend_is_prorated_and_periods_are_local_days(db, shop) -> None:
    half = romi.report(db, shop.t.client, dt.date(2026, 11, 1), dt.date(2026, 11, 5))
    rows = by_label(half.rows(1))
    assert rows["Billboard"].metrics.spend == Decimal("500.00")  # 5 of 31 days of 3,100
    assert rows["Google Ads"].metrics.calls == 1  # 00:30 Moscow on the 1st
    assert rows["Yandex Direct"].metrics.spend == Decimal("1000")
    shop.t.client.timezone = "UTC"
    db.commit()
    utc_rows = by_label(romi.report(db, shop.t.client, dt.date(2026, 11, 1), dt.date(2026, 11, 5)).rows(1))
    assert "Google Ads" not in utc_rows or utc_rows["Google Ads"].metrics.calls == 0


def test_bad_requests_are_refused(db, shop) -> None:
    with pytest.raises(romi.InvalidReport, match="end"):
        romi.report(db, shop.t.client, NOV_30, NOV_1)
    with pytest.raises(romi.InvalidReport, match="model"):
        romi.report(db, shop.t.client, NOV_1, NOV_30, model="linear")


def test_another_client_sees_nothing_of_this_one(db, shop) -> None:
    other = make_tenant(db, "Other")
    rep = romi.report(db, other.client, NOV_1, NOV_30)
    assert rep.rows(1) == [] and rep.total.metrics.calls == 0 and rep.total.metrics.spend == 0
