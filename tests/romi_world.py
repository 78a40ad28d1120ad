"""A small client whose ROMI figures are worked out by hand in tests/test_romi.py."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from tests.factories import Tenant, make_tenant
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
    PlatformSpend,
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
            PlatformSpend(
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
