"""Attribution accuracy of the real hub against a simulated world with ground truth.

Everything the hub does runs for real on a throw-away SQLite database with an in-process clock: page views,
heartbeats and leave beacons go through ``tracking.visits`` (allocation, holds, fallback, channel rules),
calls arrive as generic PBX events through ``tracking.calls.ingest`` (which attributes them with
``tracking.attribution``) — live, late, reordered and redelivered. The world: a daily traffic curve, six
channels, returning visitors (often through another channel), multi-page visits, hidden tabs that stop
heartbeating, leave beacons lost on mobile, calls on the page, within 15 minutes of leaving, 15–120
minutes later, hours or a day later (the number written down), redials of missed calls and misdials to pool
numbers.

Printed per pool size (numbers per daily visitors): session, channel and campaign accuracy per call-timing
bucket for the hub and for the naive rule "the latest holder of the number called" on the same calls
(campaign: over the calls whose true session has a utm_campaign, right when the named session's campaign
is the true one, as ROMI's campaign rows count them), the fallback share of visits, how often a misdial is
named as a session, and reliability tables with the expected calibration error of the session and channel
confidences.

    python bench/attribution.py [--days 5] [--visitors-per-day 450] [--ratios 45,20] [--quick]
    python bench/attribution.py --no-campaign   # pools keep channels but not campaigns together
    python bench/attribution.py --fit      # fit tracking.attribution_model's parameters to this world
    python bench/attribution.py --world misdials_per_call=0.15 --world timing=0.3,0.2,0.2,0.3
                                           # another world than the one the model was fitted on
"""

from __future__ import annotations

import argparse
import datetime as dt
import heapq
import itertools
import math
import random
import secrets
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.fernet import Fernet
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from tracking import allocation, attribution, visits
from tracking import attribution_model as model
from tracking.calls import ingest
from tracking.crypto import encrypt_json
from tracking.db import make_engine, make_session_factory
from tracking.migrate import upgrade
from tracking.models import (
    Agency,
    Call,
    CallCandidate,
    Channel,
    Client,
    FallbackEvent,
    NumberAssignment,
    Pool,
    Site,
    TelephonyIntegration,
    TrackingNumber,
    VisitSession,
)
from tracking.poolsim import DAILY_SHAPE, poisson
from tracking.telephony.base import CallOutcome, EventKind, ProviderEvent

T0 = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)  # a Monday; only differences matter
DOMAIN = "shop.example"
BUCKETS = ("on page", "<=15 min", "15-120 min", "hours later", "redial", "misdial")
MOBILE_UA = "Mozilla/5.0 (Linux; Android 14; Pixel 8) Chrome/120 Mobile Safari/537.36"
DESKTOP_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0"


@dataclass(frozen=True)
class ChannelSpec:
    name: str
    share: float
    rules: list[dict[str, Any]]
    marks: Callable[[random.Random], dict[str, str]]
    is_default: bool = False


def _campaign(rng: random.Random, prefix: str, n: int) -> str:
    return f"{prefix}-{rng.randrange(n)}"


CHANNELS = (
    ChannelSpec(
        "Yandex Direct",
        0.30,
        [{"has_yclid": True}],
        lambda r: {
            "utm_source": "yandex",
            "utm_medium": "cpc",
            "utm_campaign": _campaign(r, "ya", 4),
            "yclid": str(r.randrange(10**12)),
        },
    ),
    ChannelSpec(
        "Google Ads",
        0.15,
        [{"has_gclid": True}],
        lambda r: {"utm_campaign": _campaign(r, "g", 3), "gclid": secrets.token_hex(8)},
    ),
    ChannelSpec(
        "SEO",
        0.22,
        [{"referrer_domain": "google.com"}, {"referrer_domain": "yandex.ru"}],
        lambda r: {"referrer": r.choice(["https://www.google.com/", "https://yandex.ru/search/"])},
    ),
    ChannelSpec(
        "Social", 0.10, [{"utm_source": "vk"}], lambda r: {"utm_source": "vk", "utm_medium": "social"}
    ),
    ChannelSpec(
        "Email", 0.06, [{"utm_medium": "email"}], lambda r: {"utm_source": "news", "utm_medium": "email"}
    ),
    ChannelSpec("Direct / unknown", 0.17, [], lambda r: {}, is_default=True),
)


@dataclass
class World:
    visitors_per_day: float = 450.0
    days: float = 6.0
    visitors_per_number: float = 45.0  # pool size = daily visitors / this
    coherent: bool = True  # the pool keeps numbers within their channel
    campaign_coherent: bool = (
        True  # and, within a channel, with their campaign (allocation.CAMPAIGN_COHERENT)
    )
    seed: int = 1
    call_rate: float = 0.15  # visits that lead to a call
    # How those calls are timed: on the page, <=15 min after leaving, 15-120 min, hours or a day later.
    timing: tuple[float, float, float, float] = (0.45, 0.25, 0.12, 0.18)
    # Shapes within the buckets: "<=15 min" is 20 s plus an exponential of this mean (cut at 15 min);
    # "hours later" a log-normal of this median (cut to 2-30 h).
    soon_mean_seconds: float = 240.0
    late_median_hours: float = 6.0
    missed_share: float = 0.2
    redial_share: float = 0.6  # of missed calls
    misdials_per_call: float = 0.06
    returning_share: float = 0.3
    other_channel_on_return: float = 0.5
    mobile_share: float = 0.6
    beacon_lost: tuple[float, float] = (0.4, 0.05)  # mobile, desktop
    hidden_share: float = 0.2  # visits whose tab is hidden for a while (no heartbeats)
    late_webhooks: float = 0.15  # delivered 1-20 min late
    very_late_webhooks: float = 0.04  # delivered 1-3 h late
    reordered: float = 0.5  # of late deliveries, the end event comes first
    redelivered: float = 0.1
    hold_seconds: int = 900
    grace_seconds: int = 300

    @property
    def pool_size(self) -> int:
        return max(1, round(self.visitors_per_day / self.visitors_per_number))


@dataclass
class Truth:
    bucket: str
    session_id: int | None  # None: a misdial
    channel: str | None
    campaign: str | None = None  # allocation.campaign_key of the true session's utm_campaign


@dataclass
class Bucket:
    calls: int = 0
    session: int = 0
    channel: int = 0
    naive_session: int = 0
    naive_channel: int = 0
    named: int = 0  # calls given a session
    naive_named: int = 0
    campaign_calls: int = 0  # real calls whose true session has a campaign
    campaign: int = 0
    naive_campaign: int = 0
    held: int = 0  # calls to a number some session held at the moment of the call
    holder_right: int = 0  # ... whose holder then was the true session


@dataclass
class Report:
    world: World
    sessions: int
    fallback_visits: int
    buckets: dict[str, Bucket]
    session_conf: list[tuple[float, bool]]
    channel_conf: list[tuple[float, bool]]
    elapsed: float
    # (call id, true session id, true channel id (None for a misdial), bucket) for fitting
    truths: list[tuple[int, int | None, int | None, str]] = field(default_factory=list)

    def total(self, *, misdials: bool = False) -> Bucket:
        out = Bucket()
        for name, b in self.buckets.items():
            if (name == "misdial") != misdials:
                continue
            for f in vars(out):
                setattr(out, f, getattr(out, f) + getattr(b, f))
        return out

    @property
    def fallback_share(self) -> float:
        return self.fallback_visits / max(1, self.sessions)


def reliability(
    pairs: list[tuple[float, bool]], bins: int = 10
) -> tuple[list[tuple[str, int, float, float]], float]:
    """Rows (bin, count, mean confidence, accuracy) and the expected calibration error."""
    rows, ece = [], 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = [(c, ok) for c, ok in pairs if lo <= c < hi or (b == bins - 1 and c >= 1.0)]
        if not inside:
            continue
        mean_c = sum(c for c, _ in inside) / len(inside)
        acc = sum(ok for _, ok in inside) / len(inside)
        rows.append((f"{lo:.1f}-{hi:.1f}", len(inside), mean_c, acc))
        ece += abs(mean_c - acc) * len(inside)
    return rows, ece / max(1, len(pairs))


class Sim:
    """One world, one database: an event queue over simulated time, each event a real hub call."""

    def __init__(self, world: World, db: Session) -> None:
        self.w = world
        self.db = db
        self.rng = random.Random(world.seed)
        self.queue: list[tuple[dt.datetime, int, Callable[[dt.datetime], None]]] = []
        self.seq = itertools.count()
        self.truth: dict[str, Truth] = {}
        self.channel_ids: dict[str, int] = {}
        self.visitors: list[tuple[dt.datetime, dict[str, Any]]] = []
        self._setup()

    # --- setup -----------------------------------------------------------------------------------------
    def _setup(self) -> None:
        db = self.db
        agency = Agency(name="Bench agency")
        client = Client(agency=agency, name="Bench client")
        self.site = Site(
            client=client,
            name="shop",
            domains=[DOMAIN],
            site_key=secrets.token_urlsafe(12),
            replace_numbers=["+74951234567"],
        )
        db.add_all([agency, client, self.site])
        db.flush()
        for pos, spec in enumerate(CHANNELS):
            ch = Channel(
                client_id=client.id,
                name=spec.name,
                position=pos,
                rules=spec.rules,
                is_default=spec.is_default,
            )
            db.add(ch)
            db.flush()
            self.channel_ids[spec.name] = ch.id
        pool = Pool(
            client_id=client.id,
            site_id=self.site.id,
            name="Site pool",
            hold_seconds=self.w.hold_seconds,
            grace_seconds=self.w.grace_seconds,
            channel_coherent=self.w.coherent,
        )
        db.add(pool)
        db.flush()
        self.numbers = [f"+7495555{i:04d}" for i in range(self.w.pool_size)]
        for e164 in self.numbers:
            db.add(TrackingNumber(client_id=client.id, e164=e164, pool_id=pool.id))
        fallback = TrackingNumber(client_id=client.id, e164="+74955559999")
        db.add(fallback)
        db.flush()
        pool.fallback_number_id = fallback.id
        self.integration = TelephonyIntegration(
            client_id=client.id,
            provider="generic",
            name="PBX",
            integration_key=secrets.token_urlsafe(24),
            secrets_encrypted=encrypt_json(Fernet.generate_key().decode(), {"secret": "bench"}),
        )
        db.add(self.integration)
        db.commit()

    # --- the event queue -------------------------------------------------------------------------------
    def at(self, when: dt.datetime, fn: Callable[[dt.datetime], None]) -> None:
        heapq.heappush(self.queue, (when, next(self.seq), fn))

    def run(self) -> None:
        end = T0 + dt.timedelta(days=self.w.days)
        self._arrivals(end)
        self._misdials(end)
        while self.queue:
            when, _, fn = heapq.heappop(self.queue)
            fn(when)

    def _arrivals(self, end: dt.datetime) -> None:
        total = sum(DAILY_SHAPE)
        t = T0
        while t < end:
            hour_rate = self.w.visitors_per_day * DAILY_SHAPE[t.hour] / total
            for _ in range(poisson(self.rng, hour_rate)):
                self.at(t + dt.timedelta(seconds=self.rng.random() * 3600), self._arrive)
            t += dt.timedelta(hours=1)

    def _misdials(self, end: dt.datetime) -> None:
        per_day = self.w.visitors_per_day * self.w.call_rate * self.w.misdials_per_call
        if per_day <= 0:
            return
        t = T0
        while True:
            t += dt.timedelta(seconds=self.rng.expovariate(per_day / 86400))
            if t >= end:
                return
            number = self.rng.choice(self.numbers)
            phone = f"+7916{self.rng.randrange(10**7):07d}"
            self._call(t, phone, number, Truth("misdial", None, None))

    # --- visitors --------------------------------------------------------------------------------------
    def _arrive(self, now: dt.datetime) -> None:
        rng, w = self.rng, self.w
        recent = [v for t, v in self.visitors if now - t < dt.timedelta(days=3)]
        if recent and rng.random() < w.returning_share:
            visitor = rng.choice(recent)
            if rng.random() < w.other_channel_on_return:
                visitor["channel"] = _pick_channel(rng)
        else:
            mobile = rng.random() < w.mobile_share
            visitor = {
                "id": secrets.token_hex(8),
                "ua": MOBILE_UA if mobile else DESKTOP_UA,
                "mobile": mobile,
                "phone": f"+7903{rng.randrange(10**7):07d}",
                "channel": _pick_channel(rng),
            }
        self.visitors.append((now, visitor))
        spec = next(c for c in CHANNELS if c.name == visitor["channel"])
        marks = spec.marks(rng)
        campaign = allocation.campaign_key(marks.get("utm_campaign"))
        query = "&".join(f"{k}={v}" for k, v in marks.items() if k != "referrer")
        pages = min(6, 1 + int(rng.expovariate(0.7)))
        dwell = [max(5.0, rng.lognormvariate(math.log(50), 0.9)) for _ in range(pages)]
        tab = {
            "visitor": visitor,
            "channel": spec.name,
            "campaign": campaign,
            "landing": f"https://{DOMAIN}/{'?' + query if query else ''}",
            "referrer": marks.get("referrer"),
            "pages": dwell,
            "page": 0,
            "session": None,
            "number": None,
            "hidden_page": rng.randrange(pages) if rng.random() < w.hidden_share else None,
            "call": self._plan_call(),
        }
        if tab["call"] == "on page" and tab["hidden_page"] == pages - 1:
            tab["hidden_page"] = None  # a call "on the page" is made while looking at it
        self._page(now, tab)

    def _plan_call(self) -> str | None:
        if self.rng.random() >= self.w.call_rate:
            return None
        return self.rng.choices(BUCKETS[:4], weights=self.w.timing)[0]

    def _visit(self, now: dt.datetime, tab: dict[str, Any], url: str, referrer: str | None) -> None:
        body: dict[str, Any] = {"visitor_id": tab["visitor"]["id"], "url": url, "referrer": referrer}
        r = visits.visit(self.db, self.site, body, now=now, user_agent=tab["visitor"]["ua"])
        self._shown(tab, r)

    def _shown(self, tab: dict[str, Any], r: visits.VisitResult) -> None:
        tab["session"] = r.session.id
        tab["public"] = r.session.public_id
        tab["number"] = r.number.e164 if r.number is not None else None
        tab["heartbeat"] = r.heartbeat_seconds

    def _url(self, tab: dict[str, Any], page: int) -> tuple[str, str | None]:
        if page == 0:
            return tab["landing"], tab["referrer"]
        prev = tab["landing"] if page == 1 else f"https://{DOMAIN}/p{page - 1}"
        return f"https://{DOMAIN}/p{page}", prev

    def _page(self, now: dt.datetime, tab: dict[str, Any]) -> None:
        page = tab["page"]
        url, ref = self._url(tab, page)
        self._visit(now, tab, url, ref)
        dwell = tab["pages"][page]
        if tab["call"] == "on page" and page == len(tab["pages"]) - 1:
            self.at(
                now + dt.timedelta(seconds=dwell * self.rng.random()), lambda t: self._dial(t, tab, "on page")
            )
        hidden = tab["hidden_page"] == page
        if hidden:
            # The visitor switches to another tab a little into the page and comes back much later.
            away = dt.timedelta(seconds=self.rng.lognormvariate(math.log(40 * 60), 0.8))
            leave_at = now + dt.timedelta(seconds=min(dwell, 20))
            self._beats(now, leave_at, tab)
            self.at(leave_at + away, lambda t: self._wake(t, tab, dwell))
            return
        self._beats(now, now + dt.timedelta(seconds=dwell), tab)
        self.at(now + dt.timedelta(seconds=dwell), lambda t: self._next_page(t, tab))

    def _wake(self, now: dt.datetime, tab: dict[str, Any], dwell: float) -> None:
        # The snippet's first heartbeat on becoming visible; a hold that ran out gets a fresh visit.
        self._beat(now, tab)
        rest = max(5.0, dwell - 20)
        self._beats(now, now + dt.timedelta(seconds=rest), tab)
        self.at(now + dt.timedelta(seconds=rest), lambda t: self._next_page(t, tab))

    def _beats(self, start: dt.datetime, end: dt.datetime, tab: dict[str, Any]) -> None:
        period = dt.timedelta(seconds=tab["heartbeat"])
        t = start + period
        while t < end:
            self.at(t, lambda now: self._beat(now, tab))
            t += period

    def _beat(self, now: dt.datetime, tab: dict[str, Any]) -> None:
        r = visits.heartbeat(self.db, self.site, {"session_id": tab["public"]}, now=now)
        if not r.live:
            url, ref = self._url(tab, tab["page"])
            self._visit(now, tab, url, ref)
        elif r.renumbered:
            self._shown(tab, r)

    def _next_page(self, now: dt.datetime, tab: dict[str, Any]) -> None:
        lost = self.w.beacon_lost[0 if tab["visitor"]["mobile"] else 1]
        if self.rng.random() >= lost:
            visits.release(self.db, self.site, {"session_id": tab["public"]}, now=now)
        tab["page"] += 1
        if tab["page"] < len(tab["pages"]):
            self.at(now + dt.timedelta(seconds=1), lambda t: self._page(t, tab))
            return
        plan = tab["call"]
        if plan is None or plan == "on page":
            return
        if plan == "<=15 min":
            delay = min(899.0, 20 + self.rng.expovariate(1 / self.w.soon_mean_seconds))
        elif plan == "15-120 min":
            delay = math.exp(self.rng.uniform(math.log(15 * 60 + 1), math.log(120 * 60)))
        else:
            median = math.log(self.w.late_median_hours * 3600)
            delay = min(30 * 3600.0, max(2 * 3600.0, self.rng.lognormvariate(median, 0.8)))
        self.at(now + dt.timedelta(seconds=delay), lambda t: self._dial(t, tab, plan))

    # --- calls -----------------------------------------------------------------------------------------
    def _dial(self, now: dt.datetime, tab: dict[str, Any], bucket: str) -> None:
        if tab["number"] is None:
            return  # the page kept its own number: not a tracked call
        fallback = tab["number"] == "+74955559999"
        truth = Truth(bucket, tab["session"], tab["channel"], tab["campaign"])
        missed = self._call(now, tab["visitor"]["phone"], tab["number"], truth)
        if missed and not fallback and self.rng.random() < self.w.redial_share:
            later = now + dt.timedelta(seconds=30 + self.rng.expovariate(1 / 900))
            redial = Truth("redial", tab["session"], tab["channel"], tab["campaign"])
            phone, number = tab["visitor"]["phone"], tab["number"]
            self.at(later, lambda t: self._call(t, phone, number, redial))

    def _call(self, now: dt.datetime, caller: str, number: str, truth: Truth) -> bool:
        rng, w = self.rng, self.w
        cid = secrets.token_hex(10)
        self.truth[cid] = truth
        missed = rng.random() < w.missed_share
        end = now + dt.timedelta(seconds=rng.uniform(10, 30) if missed else rng.uniform(40, 400))
        common = {"provider": "generic", "provider_call_id": cid, "caller": caller, "called": number}
        start_ev = ProviderEvent(kind=EventKind.START, occurred_at=now, started_at=now, **common)
        end_ev = ProviderEvent(
            kind=EventKind.END,
            occurred_at=end,
            started_at=now,
            ended_at=end,
            outcome=CallOutcome.MISSED if missed else CallOutcome.ANSWERED,
            talk_seconds=0 if missed else int((end - now).total_seconds()) - 10,
            **common,
        )
        u = rng.random()
        if u < w.very_late_webhooks:
            delay = dt.timedelta(hours=rng.uniform(1, 3))
        elif u < w.very_late_webhooks + w.late_webhooks:
            delay = dt.timedelta(minutes=rng.uniform(1, 20))
        else:
            delay = dt.timedelta(0)
        deliveries = [
            (now + delay + dt.timedelta(seconds=1), start_ev),
            (end + delay + dt.timedelta(seconds=1), end_ev),
        ]
        if delay and rng.random() < w.reordered:
            deliveries = [(deliveries[1][0], start_ev), (deliveries[0][0], end_ev)]
        if rng.random() < w.redelivered:
            t, ev = rng.choice(deliveries)
            deliveries.append((t + dt.timedelta(minutes=rng.uniform(0, 10)), ev))
        for t, ev in deliveries:
            self.at(t, lambda _now, ev=ev: self._deliver(ev))
        return missed

    def _deliver(self, ev: ProviderEvent) -> None:
        ingest(self.db, self.integration, ev)
        self.db.commit()

    # --- scoring ---------------------------------------------------------------------------------------
    def report(self, elapsed: float) -> Report:
        db = self.db
        db.expire_all()
        channel_name = {v: k for k, v in self.channel_ids.items()}
        buckets = {b: Bucket() for b in BUCKETS}
        session_conf: list[tuple[float, bool]] = []
        channel_conf: list[tuple[float, bool]] = []
        truths = []
        for call in db.scalars(select(Call).order_by(Call.id)):
            truth = self.truth[call.provider_call_id]
            truths.append(
                (call.id, truth.session_id, self.channel_ids.get(truth.channel or ""), truth.bucket)
            )
            b = buckets[truth.bucket]
            b.calls += 1
            naive = db.execute(
                select(NumberAssignment.session_id, VisitSession.channel_id, VisitSession.utm_campaign)
                .join(VisitSession, VisitSession.id == NumberAssignment.session_id)
                .where(
                    NumberAssignment.number_id == call.tracking_number_id,
                    NumberAssignment.started_at <= call.called_at,
                )
                .order_by(NumberAssignment.started_at.desc())
                .limit(1)
            ).first()
            holder = db.scalar(
                select(NumberAssignment.session_id).where(
                    NumberAssignment.number_id == call.tracking_number_id,
                    NumberAssignment.started_at <= call.called_at,
                    func.coalesce(NumberAssignment.ended_at, NumberAssignment.hold_until) >= call.called_at,
                )
            )
            if holder is not None:
                b.held += 1
                b.holder_right += holder == truth.session_id
            hub_channel = channel_name.get(call.channel_id) if call.channel_id else None
            right_session = call.session_id is not None and call.session_id == truth.session_id
            right_channel = hub_channel is not None and hub_channel == truth.channel
            b.session += right_session
            b.channel += right_channel
            b.named += call.session_id is not None
            if naive is not None:
                b.naive_named += 1
                b.naive_session += naive.session_id == truth.session_id
                b.naive_channel += channel_name.get(naive.channel_id) == truth.channel
            if truth.campaign is not None:
                b.campaign_calls += 1
                named = db.get(VisitSession, call.session_id) if call.session_id is not None else None
                b.campaign += (
                    named is not None and allocation.campaign_key(named.utm_campaign) == truth.campaign
                )
                b.naive_campaign += (
                    naive is not None and allocation.campaign_key(naive.utm_campaign) == truth.campaign
                )
            if call.session_id is not None and call.session_confidence is not None:
                session_conf.append((call.session_confidence, right_session))
            if call.channel_id is not None and call.channel_confidence is not None:
                channel_conf.append((call.channel_confidence, right_channel))
        sessions = db.scalar(select(func.count()).select_from(VisitSession)) or 0
        fallbacks = db.scalar(select(func.count(func.distinct(FallbackEvent.session_id)))) or 0
        return Report(self.w, sessions, fallbacks, buckets, session_conf, channel_conf, elapsed, truths)


def _pick_channel(rng: random.Random) -> str:
    return rng.choices([c.name for c in CHANNELS], weights=[c.share for c in CHANNELS])[0]


def simulate(world: World, keep: Callable[[Session, Report], Any] | None = None) -> Report:
    """Run one world on a fresh database and score the hub's attribution of its calls."""
    began = time.monotonic()
    tmp = Path(
        tempfile.mkdtemp(prefix="otkuda-bench-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None)
    )
    url = f"sqlite:///{tmp / 'bench.db'}"
    try:
        upgrade(url)
        engine = make_engine(url)

        @event.listens_for(engine, "connect")
        def _fast(dbapi_conn: Any, _record: Any) -> None:
            # Durability is not under test here; speed is welcome.
            dbapi_conn.execute("PRAGMA synchronous=OFF")

        engine.dispose()
        allocation.CAMPAIGN_COHERENT = world.campaign_coherent
        with make_session_factory(engine)() as db:
            sim = Sim(world, db)
            sim.run()
            report = sim.report(time.monotonic() - began)
            if keep is not None:
                keep(db, report)
        engine.dispose()
        return report
    finally:
        allocation.CAMPAIGN_COHERENT = True
        shutil.rmtree(tmp, ignore_errors=True)


# --- fitting ---------------------------------------------------------------------------------------------
Sample = tuple[list[dict[str, Any]], int | None, list[int | None], int | None, str]
# The index of a call whose true session is no hypothesis: no rate can make it likely, so the rate fit
# skips it, but the calibration must see it, as a call the hub can only name wrong.
ABSENT = -1


def fit_samples(db: Session, report: Report) -> list[Sample]:
    """Per dynamic call: its hypotheses' features, which one was true (index; None for a misdial, ABSENT
    when the true session is no hypothesis), the hypotheses' channels and the true channel."""
    out: list[Sample] = []
    cands: dict[int, list[tuple[CallCandidate, int | None]]] = defaultdict(list)
    for c, channel_id in db.execute(
        select(CallCandidate, VisitSession.channel_id).join(
            VisitSession, VisitSession.id == CallCandidate.session_id
        )
    ):
        cands[c.call_id].append((c, channel_id))
    for call_id, truth, truth_channel, bucket in report.truths:
        rows = cands.get(call_id)
        if not rows:
            continue
        feats = [r.reasons for r, _ in rows]
        idx = next((i for i, (r, _) in enumerate(rows) if r.session_id == truth), None)
        if truth is not None and idx is None:
            idx = ABSENT
        out.append((feats, idx, [ch for _, ch in rows], truth_channel, bucket))
    return out


def _raw_verdict(sample: Sample, p: model.Params) -> tuple[float, bool, float, bool, int]:
    """The uncalibrated probability of the session ``tracking.attribution.score`` would name and of the
    channel it would give, whether each was right, and the number's holds (the calibration's input)."""
    feats, idx, channels, truth_channel, _ = sample
    holds = int(feats[0].get("number_holds", 0))
    rates = [model.session_rate(f, p) for f in feats]
    norm = sum(rates) + model.outsider_rate(holds, p)
    cands = [
        attribution.Candidate(i, ch, "", f) for i, (f, ch) in enumerate(zip(feats, channels, strict=True))
    ]
    for c, r in zip(cands, rates, strict=True):
        c.probability = r / norm
    channel, best = attribution.pick(cands)
    mass = sum(c.probability for c in cands if c.channel_id == channel)
    right_channel = channel is not None and channel == truth_channel
    return best.probability, best.session_id == idx, mass, right_channel, holds


def _threshold_table(samples: list[Sample], p: model.Params) -> str:
    hits: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for feats, idx, channels, truth_channel, bucket in samples:
        rates = [model.session_rate(f, p) for f in feats]
        raw_s, ok_s, _, _, holds = _raw_verdict((feats, idx, channels, truth_channel, bucket), p)
        named = model.calibrated(raw_s, p.session_calibration, holds) >= p.session_threshold
        latest = max(
            (i for i, f in enumerate(feats) if f.get("held")),
            key=lambda i: feats[i].get("started", ""),
            default=None,
        )
        h = hits[bucket]
        h[0] += 1
        h[1] += (named and ok_s) if idx is not None else named
        h[2] += latest is not None and latest == idx if idx is not None else latest is not None
        del rates
    return ", ".join(f"{b} {h[1]}/{h[2]} of {h[0]}" for b, h in sorted(hits.items()))


def fit_calibration(rows: list[tuple[float, int, bool]], terms: int = 3) -> tuple[float, ...]:
    """Platt scaling with the number's busyness: a, b, c maximising the likelihood of
    sigmoid(a * logit(p) + b + c * busyness(holds)) over (p, holds, right) rows (Newton's method);
    ``terms=2`` leaves out the busyness (the form the model's session calibration has)."""
    xs = [(model.logit(p), 1.0, model.busyness(h))[:terms] for p, h, _ in rows]
    ys = [1.0 if ok else 0.0 for _, _, ok in rows]
    w = [1.0] + [0.0] * (terms - 1)
    for _ in range(50):
        grad = [0.0] * terms
        hess = [[0.0] * terms for _ in range(terms)]
        for x, y in zip(xs, ys, strict=True):
            q = 1 / (1 + math.exp(-sum(wi * xi for wi, xi in zip(w, x, strict=True))))
            for i in range(terms):
                grad[i] += (y - q) * x[i]
                for j in range(terms):
                    hess[i][j] += q * (1 - q) * x[i] * x[j]
        step = _solve(hess, grad)
        if step is None:
            break
        w = [wi + si for wi, si in zip(w, step, strict=True)]
        if sum(abs(si) for si in step) < 1e-9:
            break
    return tuple(w)


def _solve(m: list[list[float]], v: list[float]) -> list[float] | None:
    """m x = v by Gaussian elimination with partial pivoting; None when m is singular."""
    n = len(v)
    a = [row[:] + [v[i]] for i, row in enumerate(m)]
    for col in range(n):
        piv = max(range(col, n), key=lambda r: abs(a[r][col]))
        if abs(a[piv][col]) < 1e-12:
            return None
        a[col], a[piv] = a[piv], a[col]
        for r in range(n):
            if r != col:
                f = a[r][col] / a[col][col]
                a[r] = [x - f * y for x, y in zip(a[r], a[col], strict=True)]
    return [a[i][n] / a[i][i] for i in range(n)]


def log_likelihood(samples: list[Sample], p: model.Params) -> float:
    total = 0.0
    for feats, idx, _, _, _ in samples:
        if idx == ABSENT:
            continue  # its likelihood needs the true hypothesis; no parameter can fix that call
        rates = [model.session_rate(f, p) for f in feats]
        other = model.outsider_rate(int(feats[0].get("number_holds", 0)), p)
        norm = sum(rates) + other
        hit = other if idx is None else rates[idx]
        total += math.log(max(hit, 1e-300) / norm)
    return total


def fit(samples: list[Sample], rounds: int = 6) -> model.Params:
    """Coordinate ascent of the log-likelihood of the true hypotheses over log-scaled parameters."""
    p = model.PARAMS
    best = log_likelihood(samples, p)
    step = 1.0
    for _ in range(rounds):
        for name in model.FITTED:
            for factor in (math.exp(step), math.exp(-step), math.exp(step / 3), math.exp(-step / 3)):
                trial = p.with_values(**{name: getattr(p, name) * factor})
                ll = log_likelihood(samples, trial)
                if ll > best:
                    best, p = ll, trial
        step /= 2
    return p


# --- output ----------------------------------------------------------------------------------------------
def _pct(n: int, d: int) -> str:
    return f"{100 * n / d:.1f}%" if d else "—"


def print_report(r: Report) -> None:
    w = r.world
    kind = "least-recently-used"
    if w.coherent:
        kind = "channel- and campaign-coherent" if w.campaign_coherent else "channel-coherent"
    print(
        f"\n### 1 number per {w.visitors_per_number:.0f} daily visitors: {w.pool_size} numbers, {kind} pool\n"
    )
    print(
        f"{r.sessions} sessions, fallback {_pct(r.fallback_visits, r.sessions)} of visits, "
        f"{sum(b.calls for b in r.buckets.values())} calls, {r.elapsed:.0f} s\n"
    )
    print(
        "| call timing | calls | session acc | naive session | channel acc | naive channel "
        "| campaign calls | campaign acc | naive campaign |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, b in r.buckets.items():
        if name == "misdial":
            continue
        print(
            f"| {name} | {b.calls} | {_pct(b.session, b.calls)} | {_pct(b.naive_session, b.calls)} "
            f"| {_pct(b.channel, b.calls)} | {_pct(b.naive_channel, b.calls)} "
            f"| {b.campaign_calls} | {_pct(b.campaign, b.campaign_calls)} "
            f"| {_pct(b.naive_campaign, b.campaign_calls)} |"
        )
    t = r.total()
    print(
        f"| **all real calls** | {t.calls} | **{_pct(t.session, t.calls)}** "
        f"| {_pct(t.naive_session, t.calls)} "
        f"| **{_pct(t.channel, t.calls)}** | {_pct(t.naive_channel, t.calls)} "
        f"| {t.campaign_calls} | **{_pct(t.campaign, t.campaign_calls)}** "
        f"| {_pct(t.naive_campaign, t.campaign_calls)} |"
    )
    m = r.buckets["misdial"]
    print(
        f"\nmisdials named as a session: hub {_pct(m.named, m.calls)}, naive {_pct(m.naive_named, m.calls)} "
        f"(of {m.calls})"
    )
    # What any rule that reads only the number and the time can do about misdials: a call to a number
    # someone holds looks the same whether the holder or a stranger dialled it.
    print(
        f"calls to a number held at that moment: {t.held} real calls (the holder was the caller in "
        f"{_pct(t.holder_right, t.held)}) and {m.held} misdials ({_pct(m.held, m.calls)} of misdials, "
        f"{_pct(m.held, m.held + t.held)} of such calls)\n"
    )
    for label, pairs in (("session", r.session_conf), ("channel", r.channel_conf)):
        rows, ece = reliability(pairs)
        print(f"{label} confidence: ECE {ece:.3f} over {len(pairs)} named calls")
        print("| confidence | calls | mean confidence | accuracy |\n|---|---:|---:|---:|")
        for rng, n, c, a in rows:
            print(f"| {rng} | {n} | {c:.3f} | {a:.3f} |")
        print()


def _changed(world: World, settings: list[str]) -> World:
    """``world`` with FIELD=VALUE settings applied, each converted to the field's current type."""
    values: dict[str, Any] = {}
    for setting in settings:
        name, sep, raw = setting.partition("=")
        if not sep or name not in World.__dataclass_fields__:
            raise SystemExit(f"--world {setting!r}: expected FIELD=VALUE with FIELD one of World's fields")
        current = getattr(world, name)
        if isinstance(current, tuple):
            parts = tuple(float(x) for x in raw.split(","))
            if len(parts) != len(current):
                raise SystemExit(f"--world {name}: {len(current)} comma-separated numbers expected")
            values[name] = parts
        elif isinstance(current, bool):
            if raw.lower() not in ("true", "false"):
                raise SystemExit(f"--world {name}: true or false expected")
            values[name] = raw.lower() == "true"
        else:
            values[name] = type(current)(raw)
    if values:
        print("world changed: " + ", ".join(f"{k}={v}" for k, v in values.items()))
    return replace(world, **values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=6.0)
    parser.add_argument("--visitors-per-day", type=float, default=450.0)
    parser.add_argument("--ratios", default="45,20", help="daily visitors per pool number")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--lru", action="store_true", help="also run least-recently-used (non-coherent) pools"
    )
    parser.add_argument(
        "--no-campaign", action="store_true", help="pools keep channels together but not campaigns"
    )
    parser.add_argument("--quick", action="store_true", help="a small world, for a smoke run")
    parser.add_argument(
        "--world",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="change one of the world's settings (a World field; tuples as comma-separated numbers)",
    )
    parser.add_argument("--fit", action="store_true", help="fit the model's parameters and print them")
    parser.add_argument(
        "--calibrate", action="store_true", help="with --fit: keep the rates, fit only the calibration"
    )
    args = parser.parse_args()
    days, vpd = (1.5, 200.0) if args.quick else (args.days, args.visitors_per_day)
    ratios = [float(x) for x in args.ratios.split(",")]
    print(
        f"world: {vpd:.0f} visitors/day for {days:g} days, daily curve, {len(CHANNELS)} channels; "
        f"model {model.MODEL_VERSION}"
    )
    if args.fit:
        samples: list[Sample] = []
        for ratio in ratios:
            world = _changed(World(vpd, days, ratio, seed=args.seed + 100), args.world)
            simulate(world, keep=lambda db, rep: samples.extend(fit_samples(db, rep)))
        before = log_likelihood(samples, model.PARAMS)
        fitted = model.PARAMS if args.calibrate else fit(samples)
        print(f"{len(samples)} calls; log-likelihood {before:.1f} -> {log_likelihood(samples, fitted):.1f}")
        for name in model.FITTED:
            print(f"    {name}: float = {getattr(fitted, name):.4g}")
        raw = [_raw_verdict(sample, fitted) for sample in samples]
        # Each calibration keeps the form the model gives it (two or three terms).
        session_ab = fit_calibration(
            [(ps, holds, ok) for ps, ok, _, _, holds in raw], len(model.PARAMS.session_calibration)
        )
        channel_ab = fit_calibration(
            [(pc, holds, ok) for _, _, pc, ok, holds in raw], len(model.PARAMS.channel_calibration)
        )
        for label, ab in (("session", session_ab), ("channel", channel_ab)):
            print(f"    {label}_calibration: tuple[float, ...] = ({', '.join(f'{x:.4g}' for x in ab)})")
        fitted = fitted.with_values(session_calibration=session_ab, channel_calibration=channel_ab)
        print("session threshold → session accuracy per bucket (hub / naive), misdials named")
        for threshold in (0.0, 0.1, 0.2, 0.3, 0.4):
            table = _threshold_table(samples, fitted.with_values(session_threshold=threshold))
            print(f"  {threshold:.1f}: {table}")
        return
    for ratio in ratios:
        for coherent in (True, False) if args.lru else (True,):
            world = World(
                vpd, days, ratio, coherent=coherent, campaign_coherent=not args.no_campaign, seed=args.seed
            )
            world = _changed(world, args.world)
            print_report(simulate(world))


if __name__ == "__main__":
    main()
