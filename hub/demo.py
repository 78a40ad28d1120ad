"""Demo data and the demo landing page: a newcomer sees the number swap and a lived-in hub on a fresh clone.

Every run re-creates the demo agency with its data laid out relative to the current time, so the default
period of every page has calls, spend and deals whenever the demo is started. The clients are set up through
``hub.resources`` (the functions the setup pages and the API use, with their validation), their traffic goes
through the real visit and call services (``tracking.visits``, ``tracking.calls``), won calls queue their
deliveries through the outbox, and pool history comes from the pool-statistics job. Only what an outside
system would write is inserted as rows: the ad platforms' spend, the CRM's deals, and the outcomes and run
history of jobs that would have run while the demo was not looking.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import random
import secrets
import struct
import threading
import wave
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app, g
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hub import destinations
from hub import resources as rs
from hub.public import snippet_tag
from tracking import calls, manual_spend, visits
from tracking.accounts import add_user
from tracking.db import utcnow
from tracking.models import (
    Agency,
    Call,
    CallStatus,
    Channel,
    Client,
    Connection,
    ConnectionStatus,
    Deal,
    DealStatus,
    Delivery,
    DeliveryStatus,
    PlatformSpend,
    Role,
    Site,
    SyncRun,
    TelephonyIntegration,
    User,
)
from tracking.telephony.base import CallOutcome, EventKind, ProviderEvent

DEMO_AGENCY = "Demo Agency"
DEMO_EMAIL = "demo@otkuda.example"
DEMO_PASSWORD = "demo-password"  # noqa: S105  (printed for the newcomer; demo data only)
BUSINESS_NUMBER = "+74951234567"
# Long enough for "last 30 days" and "this month" to have a previous period of the same length with data.
DAYS = 62
RECENT_DAYS = 14  # busier than the weeks before, so the overview's change against the last period shows

Rules = list[dict[str, Any]]
_YANDEX: Rules = [{"has_yclid": True}, {"utm_source": "yandex", "utm_medium": "cpc"}]
_GOOGLE: Rules = [{"has_gclid": True}, {"utm_source": "google", "utm_medium": "cpc"}]
_ORGANIC: Rules = [{"referrer_domain": "yandex.ru"}, {"referrer_domain": "google.com"}]


@dataclass(frozen=True)
class Campaign:
    """One campaign as an ad platform reports it, and the tags its ads' links carry."""

    platform: str
    campaign_id: str
    name: str
    tags: dict[str, str]  # the landing URL's query (utm_*, click ids)
    group_id: str = ""
    group_name: str = ""
    keywords: tuple[tuple[str, str], ...] = ()  # (keyword id, text)
    daily: tuple[int, int] = (1500, 4000)  # the day's cost, from–to


@dataclass(frozen=True)
class Profile:
    """One demo client: its set-up (as a person would enter it) and the shape of its traffic."""

    name: str
    timezone: str
    business_number: str
    number_prefix: str  # + 4 digits makes a number
    domain: str  # the client's own site (the first client's site is the demo landing page instead)
    pool_size: int
    channels: tuple[tuple[str, list[dict[str, Any]], bool], ...]  # name, rules, offline
    pool_channels: tuple[str, ...]
    statics: tuple[str, ...]  # offline channels with a number of their own
    campaigns: tuple[Campaign, ...]
    organic: tuple[dict[str, str], ...]  # first visits not from an ad: organic search, referrals, typed in
    visits_per_day: tuple[int, int]  # (before the last RECENT_DAYS, within them)
    billboard: str | None = None  # an offline channel whose cost is typed in by hand each month


OKNA = Profile(
    name="Okna Plus (demo)",
    timezone="Europe/Moscow",
    business_number=BUSINESS_NUMBER,
    number_prefix="+7495000",
    domain="okna-plus.example",
    pool_size=10,
    channels=(
        ("Yandex Direct", _YANDEX, False),
        ("Google Ads", _GOOGLE, False),
        ("Organic search", _ORGANIC, False),
        ("Referral", [{"utm_medium": "referral"}], False),
        ("Billboard", [], True),
        ("Avito", [], True),
        ("Partner", [], True),
    ),
    pool_channels=("Yandex Direct", "Google Ads", "Organic search", "Referral", "Direct / unknown"),
    statics=("Billboard", "Avito", "Partner"),
    campaigns=(
        Campaign(
            "yandex_direct",
            "70001",
            "Plastic windows",
            {"utm_source": "yandex", "utm_medium": "cpc", "utm_campaign": "70001", "utm_content": "g-70001"},
            "g-70001",
            "Plastic windows group",
            (("k-501", "plastic windows"), ("k-503", "pvc windows price")),
            (2000, 4500),
        ),
        Campaign(
            "yandex_direct",
            "70002",
            "Window repair",
            {"utm_source": "yandex", "utm_medium": "cpc", "utm_campaign": "70002", "utm_content": "g-70002"},
            "g-70002",
            "Window repair group",
            (("k-502", "window repair"),),
            (800, 2000),
        ),
        Campaign(
            "google_ads",
            "brand",
            "Brand search",
            {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "brand", "gclid": "demo-gclid"},
            daily=(400, 1200),
        ),
    ),
    organic=(
        {"referrer": "https://yandex.ru/search/?text=okna"},
        {"referrer": "https://www.google.com/"},
        {"utm_source": "blog", "utm_medium": "referral"},
        {},
    ),
    visits_per_day=(3, 6),
    billboard="Billboard",
)

DVERI = Profile(
    name="Dveri Market (demo)",
    timezone="Asia/Yekaterinburg",
    business_number="+73432000000",
    number_prefix="+7343000",
    domain="dveri-market.example",
    pool_size=6,
    channels=(
        ("Yandex Direct", _YANDEX, False),
        ("Google Ads", _GOOGLE, False),
        ("VK", [{"utm_source": "vk"}, {"referrer_domain": "vk.com"}], False),
        ("Organic search", _ORGANIC, False),
        ("Flyers", [], True),
    ),
    pool_channels=("Yandex Direct", "Google Ads", "VK", "Organic search", "Direct / unknown"),
    statics=("Flyers",),
    campaigns=(
        Campaign(
            "yandex_direct",
            "80001",
            "Interior doors",
            {"utm_source": "yandex", "utm_medium": "cpc", "utm_campaign": "80001", "utm_content": "g-80001"},
            "g-80001",
            "Interior doors group",
            (("k-801", "interior doors"), ("k-802", "doors with installation")),
            (1500, 3500),
        ),
        Campaign(
            "google_ads",
            "doors-brand",
            "Doors brand search",
            {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "doors-brand", "gclid": "demo"},
            daily=(300, 900),
        ),
    ),
    organic=(
        {"referrer": "https://yandex.ru/search/?text=dveri"},
        {"utm_source": "vk", "utm_medium": "social"},
        {},
    ),
    visits_per_day=(1, 3),
)

PROFILES = (OKNA, DVERI)

_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
]
# How a visitor comes back: typed in (direct) most often, else found through search.
_RETURNS: tuple[dict[str, str], ...] = ({}, {}, {}, {"referrer": "https://yandex.ru/search/?text=okna+plus"})


@dataclass(frozen=True)
class DemoInfo:
    email: str
    password: str
    client_id: int  # the client whose site is the demo landing page
    site_key: str
    replaced: bool  # an earlier demo agency was removed first


def seed(db: Session, landing_origins: Iterable[str], now: dt.datetime | None = None) -> DemoInfo:
    """Re-create the demo agency with data relative to ``now`` (default: the current time).

    Runs in the hub's application context: the clients are set up through ``hub.resources`` in ``db``, the
    hub's encryption key seals the secrets, and the outbox's listeners queue the deliveries.
    """
    now = now or utcnow()
    origins = list(landing_origins)
    replaced = _remove_previous(db)
    with _request_session(db):
        agency = Agency(name=DEMO_AGENCY)
        db.add(agency)
        db.flush()
        add_user(db, agency, DEMO_EMAIL, DEMO_PASSWORD, Role.ADMIN, name="Demo admin")
        db.commit()
        first: tuple[Client, Site] | None = None
        for n, profile in enumerate(PROFILES):
            client, site, integration = _set_up(agency, profile, origins if n == 0 else [profile.domain])
            rng = random.Random(20261122 + n)  # the same shape on every run, only moved in time
            _traffic(db, profile, client, site, integration, now, rng)
            if origins:
                # The demo landing server plays the PBX's part of keeping recordings.
                recording = f"http://{origins[0]}{RECORDING_PATH}"
                for call in db.scalars(
                    select(Call).where(Call.client_id == client.id, Call.status == CallStatus.ANSWERED)
                ):
                    call.recording_url = recording
            _money(db, profile, client, now, rng)
            _deliveries(db, client, now, rng)
            db.commit()
            first = first or (client, site)
        _pool_history(db, now)
    assert first is not None
    return DemoInfo(DEMO_EMAIL, DEMO_PASSWORD, first[0].id, first[1].site_key, replaced)


def _remove_previous(db: Session) -> bool:
    """Delete an earlier demo agency and everything under it (the database cascades from the agency).

    Only an agency with the demo's name *and* the demo's login is taken for the demo's own.
    """
    agency_id = db.scalar(
        select(Agency.id)
        .join(User, User.agency_id == Agency.id)
        .where(Agency.name == DEMO_AGENCY, User.email == DEMO_EMAIL)
    )
    if agency_id is None:
        return False
    db.execute(delete(Agency).where(Agency.id == agency_id))
    db.commit()
    return True


@contextmanager
def _request_session(db: Session) -> Iterator[None]:
    """Let ``hub.resources`` (which works in the request's session) work in ``db``."""
    before = g.pop("db_session", None)
    g.db_session = db
    try:
        yield
    finally:
        g.pop("db_session", None)
        if before is not None:
            g.db_session = before


def _number(profile: Profile, n: int) -> str:
    return f"{profile.number_prefix}{n:04d}"


def _set_up(
    agency: Agency, profile: Profile, domains: list[str]
) -> tuple[Client, Site, TelephonyIntegration]:
    """The client as a person would set it up in the setup pages: the same functions, the same checks."""
    client = rs.create_client(
        agency.id,
        rs.validate(rs.ClientCreate, {"name": profile.name, "timezone": profile.timezone, "currency": "RUB"}),
    )
    site = rs.create_site(
        client,
        rs.validate(
            rs.SiteCreate,
            {
                "name": f"{profile.domain} (demo)",
                "domains": domains,
                "replace_numbers": [profile.business_number],
                "promo_codes_enabled": True,
            },
        ),
    )
    channels: dict[str, Channel] = {}
    for position, (name, rules, offline) in enumerate(profile.channels, start=1):
        channels[name] = rs.create_channel(
            client,
            rs.validate(
                rs.ChannelCreate,
                {"name": name, "position": position * 10, "rules": rules, "offline": offline},
            ),
        )
    channels["Direct / unknown"] = rs.create_channel(
        client,
        rs.validate(rs.ChannelCreate, {"name": "Direct / unknown", "position": 1000, "is_default": True}),
    )

    def number(n: int, **assign: Any) -> int:
        data = {"e164": _number(profile, n), "provider": "generic", "forward_to": profile.business_number}
        return rs.create_number(client, rs.validate(rs.NumberCreate, {**data, **assign})).id

    members = [number(100 + i) for i in range(profile.pool_size)]
    fallback = number(199)
    for offset, name in enumerate(profile.statics):
        number(200 + offset, channel_id=channels[name].id)
    rs.create_pool(
        client,
        rs.validate(
            rs.PoolCreate,
            {
                "name": "Site pool",
                "site_id": site.id,
                "hold_seconds": 900,
                "grace_seconds": 300,
                "fallback_number_id": fallback,
                "channel_ids": [channels[name].id for name in profile.pool_channels],
                "number_ids": members,
            },
        ),
    )
    integration, _secret = rs.create_integration(
        client, rs.validate(rs.IntegrationCreate, {"provider": "generic", "name": "Demo PBX"})
    )
    # The client's CRM takes finished calls by webhook: each call then queues a delivery in the outbox.
    destinations.new(
        client,
        "webhook",
        name="CRM webhook (demo)",
        account={"url": f"https://crm.{profile.domain}/otkuda"},
        settings={"events": ["call.finalised"]},
        secret=secrets.token_urlsafe(24),
    )
    rs.commit()
    return client, site, integration


@dataclass
class _Visitor:
    visitor_id: str
    last_at: dt.datetime
    from_ad: bool = False


def _traffic(
    db: Session,
    profile: Profile,
    client: Client,
    site: Site,
    integration: TelephonyIntegration,
    now: dt.datetime,
    rng: random.Random,
) -> None:
    """``DAYS`` days of visits and calls up to ``now`` through the real visit and call services.

    About a third of the visits are visitors coming back (typed in, or through search) days after an
    ad brought them, and those call more often: the attribution models then credit different channels.
    """
    tz = ZoneInfo(profile.timezone)
    today = now.astimezone(tz).date()
    latest = now - dt.timedelta(minutes=14)  # every call below lands before ``now``
    plan: list[tuple[dt.datetime, dict[str, str], str, float]] = []  # (at, tags, visitor, call chance)
    seen: list[_Visitor] = []
    count = 0
    for days_ago in range(DAYS - 1, -1, -1):
        day = today - dt.timedelta(days=days_ago)
        per_day = profile.visits_per_day[1 if days_ago < RECENT_DAYS else 0]
        for _ in range(per_day):
            local = dt.datetime.combine(day, dt.time(9), tz) + dt.timedelta(minutes=rng.randint(0, 12 * 60))
            at = local.astimezone(dt.UTC)
            if at >= latest:
                continue
            back = [v for v in seen if dt.timedelta(days=1) < at - v.last_at < dt.timedelta(days=21)]
            if back and rng.random() < 0.35:
                visitor = rng.choice(back)
                tags, chance = dict(rng.choice(_RETURNS)), 0.45
            else:
                tags, chance = _first_touch(profile, rng), 0.15
                visitor = _Visitor(
                    f"demo-{profile.number_prefix[-3:]}-{count:05d}", at, "utm_campaign" in tags
                )
                seen.append(visitor)
            visitor.last_at = at
            plan.append((at, tags, visitor.visitor_id, chance))
            count += 1
    # Someone who came from an ad a few days ago comes back directly and calls just now.
    ads = [v for v in seen if v.from_ad and v.last_at < latest - dt.timedelta(days=1)]
    if ads:
        plan.append((latest, {}, ads[-1].visitor_id, 1.0))
    plan.sort(key=lambda p: p[0])
    dialled: list[tuple[dt.datetime, str]] = []
    for at, tags, visitor_id, chance in plan:
        referrer = tags.pop("referrer", None)
        query = "&".join(f"{k}={v}" for k, v in tags.items())
        data = {
            "visitor_id": visitor_id,
            "url": f"https://{profile.domain}/" + (f"?{query}" if query else ""),
            "referrer": referrer,
            "ym_uid": str(1700000000000000000 + zlib.crc32(visitor_id.encode())),
            "screen": "1920x1080",
        }
        result = visits.visit(db, site, data, now=at, user_agent=rng.choice(_AGENTS))
        if result.number is not None and rng.random() < chance:
            wait = 6 if chance == 1.0 else rng.randint(1, 12)
            dialled.append((at + dt.timedelta(minutes=wait), result.number.e164))
    db.commit()
    # Offline channels ring their own numbers: one call every few days each.
    for offset, _name in enumerate(profile.statics):
        for days_ago in range(DAYS - 1, -1, -(5 + 2 * offset)):
            at = now - dt.timedelta(days=days_ago, hours=rng.randint(2, 9))
            dialled.append((at, _number(profile, 200 + offset)))
    callers: list[str] = []
    for n, (at, e164) in enumerate(sorted(dialled)):
        _call(
            db, integration, profile, f"demo-call-{n}", e164, at, rng, callers, answered=at >= latest or None
        )


def _first_touch(profile: Profile, rng: random.Random) -> dict[str, str]:
    """Where a new visitor comes from: two in three from an ad (a keyword of it when it has keywords)."""
    if rng.random() < 0.33:
        return dict(rng.choice(profile.organic))
    campaign = rng.choice(profile.campaigns)
    tags = dict(campaign.tags)
    if campaign.keywords:
        tags["utm_term"] = rng.choice(campaign.keywords)[1]
    if campaign.platform == "yandex_direct":
        tags["yclid"] = str(rng.randint(10**9, 10**10))
    return tags


def _call(
    db: Session,
    integration: TelephonyIntegration,
    profile: Profile,
    call_id: str,
    called: str,
    at: dt.datetime,
    rng: random.Random,
    callers: list[str],
    *,
    answered: bool | None = None,
) -> None:
    # One call in six is someone who has called before (a repeat caller, not a first-time one).
    if callers and rng.random() < 1 / 6:
        caller = rng.choice(callers)
    else:
        caller = f"+7916{rng.randint(1000000, 9999999)}"
        callers.append(caller)
    if answered is None:
        answered = rng.random() < 0.8
    talk = rng.randint(40, 400) if answered else 0
    ended = at + dt.timedelta(seconds=(8 if answered else 20) + talk)
    events = [
        ProviderEvent("generic", call_id, EventKind.START, at, caller=caller, called=called, started_at=at),
        ProviderEvent(
            "generic",
            call_id,
            EventKind.END,
            ended,
            caller=caller,
            called=called,
            started_at=at,
            answered_at=at + dt.timedelta(seconds=8) if answered else None,
            ended_at=ended,
            talk_seconds=talk,
            outcome=CallOutcome.ANSWERED if answered else CallOutcome.MISSED,
            forwarded_to=profile.business_number,
        ),
    ]
    for event in events:
        calls.ingest(db, integration, event)
    db.commit()


def _money(db: Session, profile: Profile, client: Client, now: dt.datetime, rng: random.Random) -> None:
    """The ad platforms' daily spend, the billboard's monthly cost typed in by hand, and the CRM's deals.

    Spend and deals hang off a disabled connection standing for the accounts a real client would connect
    (the scheduler never pulls from a disabled connection); its sync history is what daily pulls leave.
    """
    conn = Connection(
        agency_id=client.agency_id,
        client_id=client.id,
        provider="demo",
        name="Demo CRM and ad accounts (not live)",
        connectors=[],
        account={},
        settings={},
        scopes=[],
        status=ConnectionStatus.DISABLED,
    )
    db.add(conn)
    db.flush()
    today = now.astimezone(ZoneInfo(profile.timezone)).date()
    for days_ago in range(DAYS):
        day = today - dt.timedelta(days=days_ago)
        for c in profile.campaigns:
            for kid, keyword in c.keywords or (("", ""),):
                share = len(c.keywords) or 1
                db.add(
                    PlatformSpend(
                        client_id=client.id,
                        connection_id=conn.id,
                        platform=c.platform,
                        day=day,
                        campaign_id=c.campaign_id,
                        campaign_name=c.name,
                        ad_group_id=c.group_id,
                        ad_group_name=c.group_name,
                        keyword_id=kid,
                        keyword=keyword,
                        clicks=rng.randint(20, 60) // share,
                        impressions=rng.randint(400, 1500) // share,
                        cost=Decimal(rng.randint(*c.daily) // share),
                        currency="RUB",
                    )
                )
    if profile.billboard:
        channel = db.scalar(
            select(Channel).where(Channel.client_id == client.id, Channel.name == profile.billboard)
        )
        assert channel is not None
        this_month = today.replace(day=1)
        last_month = (this_month - dt.timedelta(days=1)).replace(day=1)
        for first, amount in ((last_month, "28000"), (this_month, "30000")):
            following = (first + dt.timedelta(days=32)).replace(day=1)
            db.add(
                manual_spend.build(
                    db,
                    client,
                    {
                        "period_start": first.isoformat(),
                        "period_end": (following - dt.timedelta(days=1)).isoformat(),
                        "amount": amount,
                        "channel_id": channel.id,
                        "note": "Billboard on the ring road",
                    },
                )
            )
    answered = db.scalars(
        select(Call)
        .where(Call.client_id == client.id, Call.status == CallStatus.ANSWERED)
        .order_by(Call.called_at, Call.id)
    ).all()
    latest = answered[-1].id if answered else None
    for n, call in enumerate(answered):
        if call.id != latest and rng.random() < 0.5:
            continue
        assert call.called_at is not None
        won = call.id != latest and call.called_at < now - dt.timedelta(days=1) and rng.random() < 0.65
        closed = min(call.called_at + dt.timedelta(hours=rng.randint(2, 30)), now) if won else None
        db.add(
            Deal(
                client_id=client.id,
                connection_id=conn.id,
                external_id=f"demo-deal-{n}",
                status=DealStatus.WON if won else DealStatus.OPEN,
                amount=Decimal(rng.randint(18, 95) * 1000) if won else Decimal("0"),
                name=f"Order {n + 1}",
                call_id=call.id,
                session_id=call.session_id,
                contact_phone=call.caller,
                won_at=closed,
                closed_at=closed,
            )
        )
    for days_ago in range(RECENT_DAYS, -1, -1):
        at = now - dt.timedelta(days=days_ago, hours=1)
        for job, items in (("spend", len(profile.campaigns) * 2), ("deals", rng.randint(0, 4))):
            failed = job == "deals" and days_ago == 9
            db.add(
                SyncRun(
                    job=job,
                    connector="demo",
                    connection_id=conn.id,
                    started_at=at,
                    finished_at=at + dt.timedelta(seconds=rng.randint(2, 40)),
                    items=0 if failed else items,
                    errors=1 if failed else 0,
                    error_text="HTTP 503 from the CRM's API; the next run caught up" if failed else None,
                )
            )
    conn.last_sync_at = now - dt.timedelta(hours=1)
    db.commit()


def _deliveries(db: Session, client: Client, now: dt.datetime, rng: random.Random) -> None:
    """What the workers would have made of the webhook deliveries the calls queued: most went out a
    minute after the call, one was given up, and the latest are waiting for a retry."""
    rows = db.scalars(select(Delivery).where(Delivery.client_id == client.id).order_by(Delivery.id)).all()
    rows = sorted(rows, key=lambda d: str((d.payload or {}).get("ended_at") or ""))
    for n, d in enumerate(rows):
        ended = (d.payload or {}).get("ended_at")
        at = dt.datetime.fromisoformat(ended) if ended else now
        if at.tzinfo is None:
            at = at.replace(tzinfo=dt.UTC)
        d.created_at = d.next_attempt_at = at
        if n >= len(rows) - 2:
            d.status, d.attempts = DeliveryStatus.RETRY, 2
            d.last_error = "503 Service Unavailable from the receiver"
            d.next_attempt_at = now + dt.timedelta(minutes=5)
        elif n == len(rows) // 2:
            d.status, d.attempts = DeliveryStatus.DEAD, 8
            d.last_error = "410 Gone: the receiver no longer takes this URL"
        else:
            d.status, d.attempts = DeliveryStatus.DONE, 1
            d.done_at = at + dt.timedelta(seconds=rng.randint(5, 90))
            d.external_id = f"crm-{d.id}"
        d.updated_at = d.done_at or at
    webhook = db.scalar(
        select(Connection).where(Connection.client_id == client.id, Connection.provider == "webhook")
    )
    if webhook is not None:
        for days_ago in range(RECENT_DAYS, -1, -1):
            day_start = now - dt.timedelta(days=days_ago + 1)
            done = [
                d for d in rows if d.done_at and day_start <= d.done_at < day_start + dt.timedelta(days=1)
            ]
            if done:
                db.add(
                    SyncRun(
                        job="deliver",
                        connector="webhook",
                        connection_id=webhook.id,
                        started_at=done[0].created_at,
                        finished_at=done[-1].done_at,
                        items=len(done),
                    )
                )


def _pool_history(db: Session, now: dt.datetime) -> None:
    """A week of hourly pool statistics, written by the job that writes them every hour."""
    from jobs.pool_stats import compute_pool_stats
    from jobs.runtime import Runtime

    rt = Runtime.from_config(current_app.config, engine=db.get_bind())  # type: ignore[arg-type]
    hour = now - dt.timedelta(days=7)
    while hour < now:
        compute_pool_stats(rt, now=hour)  # the hour given and the one before it
        hour += dt.timedelta(hours=2)
    compute_pool_stats(rt, now=now)


def landing_page(hub_url: str, site_key: str) -> str:
    """A small business page showing its phone number the ways real sites do."""
    tag = snippet_tag(hub_url, site_key)
    return f"""<!doctype html>
<html lang="ru"><head><meta charset="utf-8"><title>Okna Plus — demo landing page</title>
<style>body{{font-family:system-ui,sans-serif;max-width:720px;margin:2rem auto;line-height:1.5}}
.phone{{font-size:1.6rem;font-weight:700}} .note{{color:#666;font-size:.9rem}}
code{{background:#eee;padding:0 .2rem}}</style>
{tag}</head>
<body>
<h1>Okna Plus — plastic windows in Moscow</h1>
<p>Call us: <a class="phone" href="tel:+74951234567">+7 (495) 123-45-67</a></p>
<p>Or: 8 495 123 45 67 &middot; 8-495-123-45-67</p>
<p>Your promo code: <strong data-otkuda-promo>—</strong></p>
<p data-otkuda-ignore>Head office (never swapped): +7 (495) 123-45-67</p>
<p class="note">This page loads the Otkuda snippet from the hub. Each browser session is shown its own number
from the pool; open it in a private window (or add <code>?utm_source=yandex&amp;utm_medium=cpc</code>) and the
number changes. The hub's client page lists the session.</p>
</body></html>"""


RECORDING_PATH = "/recordings/demo-call.wav"


def recording_wav(seconds: int = 4) -> bytes:
    """A short two-tone WAV standing in for call recordings, so the demo's players have something to play."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        frames = (
            struct.pack(
                "<h", int(6000 * math.sin(2 * math.pi * (440 if (i // 4000) % 2 else 554) * i / 8000))
            )
            for i in range(8000 * seconds)
        )
        w.writeframes(b"".join(frames))
    return out.getvalue()


def landing_app(page: Callable[[], str]) -> Callable[..., Any]:
    """The demo's landing page, and the demo recording at ``RECORDING_PATH``."""
    wav = recording_wav()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ.get("PATH_INFO") == RECORDING_PATH:
            start_response("200 OK", [("Content-Type", "audio/wav"), ("Content-Length", str(len(wav)))])
            return [wav]
        body = page().encode()
        start_response(
            "200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))]
        )
        return [body]

    return app


def serve_in_thread(app: Callable[..., Any], host: str, port: int) -> Any:
    from werkzeug.serving import make_server

    server = make_server(host, port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
