"""Demo data and the demo landing page, so a newcomer sees the number swap on a fresh clone.

Seeding goes through the real services (``tracking.visits`` for visits, ``tracking.calls`` for calls), so
the demo shows what production code produces, not hand-made rows.
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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.public import snippet_tag
from tracking import calls, visits
from tracking.accounts import hash_password
from tracking.crypto import encrypt_json
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
    ManualSpend,
    PlatformSpend,
    Pool,
    PoolChannel,
    Role,
    Site,
    TelephonyIntegration,
    TrackingNumber,
    User,
)
from tracking.telephony.base import CallOutcome, EventKind, ProviderEvent

DEMO_AGENCY = "Demo Agency"
DEMO_EMAIL = "demo@otkuda.example"
DEMO_PASSWORD = "demo-password"  # noqa: S105  (printed for the newcomer; demo data only)
BUSINESS_NUMBER = "+74951234567"

# name, position, rules, offline
CHANNELS: list[tuple[str, int, list[dict[str, Any]], bool]] = [
    ("Yandex Direct", 10, [{"utm_source": "yandex", "utm_medium": "cpc"}, {"has_yclid": True}], False),
    ("Google Ads", 20, [{"utm_source": "google", "utm_medium": "cpc"}, {"has_gclid": True}], False),
    ("Organic search", 30, [{"referrer_domain": "yandex.ru"}, {"referrer_domain": "google.com"}], False),
    ("Referral", 40, [{"utm_medium": "referral"}], False),
    ("Billboard", 50, [], True),
    ("Avito", 60, [], True),
    ("Partner", 70, [], True),
]


@dataclass(frozen=True)
class DemoInfo:
    email: str
    password: str
    client_id: int
    site_key: str
    created: bool


def _numbers(start: int, count: int) -> list[str]:
    return [f"+7495000{start + i:04d}" for i in range(count)]


def seed(
    db: Session, landing_origins: Iterable[str], encryption_key: str, now: dt.datetime | None = None
) -> DemoInfo:
    """Create the demo agency once; later runs find it and change nothing.

    ``encryption_key`` is the hub's key for secrets at rest (the demo PBX integration's secret).
    """
    origins = list(landing_origins)
    existing = db.scalar(select(Agency).where(Agency.name == DEMO_AGENCY))
    if existing is not None:
        client = db.scalar(select(Client).where(Client.agency_id == existing.id).order_by(Client.id))
        assert client is not None
        site = db.scalar(select(Site).where(Site.client_id == client.id).order_by(Site.id))
        assert site is not None
        return DemoInfo(DEMO_EMAIL, DEMO_PASSWORD, client.id, site.site_key, created=False)

    now = now or utcnow()
    agency = Agency(name=DEMO_AGENCY)
    client = Client(agency=agency, name="Okna Plus (demo)", timezone="Europe/Moscow", currency="RUB")
    site = Site(
        client=client,
        name="okna-plus demo landing",
        domains=origins,
        site_key=secrets.token_urlsafe(12),
        replace_numbers=[BUSINESS_NUMBER],
        promo_codes_enabled=True,
    )
    user = User(
        agency=agency,
        email=DEMO_EMAIL,
        name="Demo admin",
        password_hash=hash_password(DEMO_PASSWORD),
        role=Role.ADMIN,
    )
    db.add_all([agency, client, site, user])
    db.flush()
    channels = {}
    for name, position, rules, offline in CHANNELS:
        channels[name] = Channel(
            client_id=client.id, name=name, position=position, rules=rules, offline=offline
        )
        db.add(channels[name])
    channels["Direct / unknown"] = Channel(
        client_id=client.id, name="Direct / unknown", position=1000, is_default=True
    )
    db.add(channels["Direct / unknown"])
    db.flush()

    pool = Pool(client_id=client.id, site_id=site.id, name="Site pool", hold_seconds=900, grace_seconds=300)
    db.add(pool)
    db.flush()
    for e164 in _numbers(100, 10):
        db.add(
            TrackingNumber(
                client_id=client.id,
                e164=e164,
                provider="generic",
                forward_to=BUSINESS_NUMBER,
                pool_id=pool.id,
            )
        )
    fallback = TrackingNumber(
        client_id=client.id, e164=_numbers(199, 1)[0], provider="generic", forward_to=BUSINESS_NUMBER
    )
    db.add(fallback)
    db.flush()
    pool.fallback_number_id = fallback.id
    for name in ("Yandex Direct", "Google Ads", "Organic search", "Referral", "Direct / unknown"):
        db.add(PoolChannel(pool_id=pool.id, channel_id=channels[name].id))
    statics = {}
    for offset, name in enumerate(("Billboard", "Avito", "Partner")):
        statics[name] = TrackingNumber(
            client_id=client.id,
            e164=_numbers(200 + offset, 1)[0],
            provider="generic",
            forward_to=BUSINESS_NUMBER,
            channel_id=channels[name].id,
        )
        db.add(statics[name])
    integration = TelephonyIntegration(
        client_id=client.id,
        provider="generic",
        name="Demo PBX",
        integration_key=secrets.token_urlsafe(16),
        secrets_encrypted=encrypt_json(encryption_key, {"secret": secrets.token_hex(16)}),
    )
    db.add(integration)
    db.commit()

    _simulate(db, site, integration, list(statics.values()), now)
    if origins:
        # The demo landing server plays the PBX's part of keeping recordings.
        recording = f"http://{origins[0]}{RECORDING_PATH}"
        for call in db.scalars(
            select(Call).where(Call.client_id == client.id, Call.status == CallStatus.ANSWERED)
        ):
            call.recording_url = recording
        db.commit()
    _money(db, client, channels["Billboard"], now)
    return DemoInfo(DEMO_EMAIL, DEMO_PASSWORD, client.id, site.site_key, created=True)


_SOURCES: list[dict[str, str]] = [
    {"utm_source": "yandex", "utm_medium": "cpc", "utm_campaign": "70001", "utm_term": "plastic windows"},
    {"utm_source": "yandex", "utm_medium": "cpc", "utm_campaign": "70002", "utm_term": "window repair"},
    {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "brand", "gclid": "demo-gclid"},
    {"referrer": "https://yandex.ru/search/?text=okna"},
    {"referrer": "https://www.google.com/"},
    {"utm_source": "blog", "utm_medium": "referral"},
    {},
]
_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
]


def _simulate(
    db: Session,
    site: Site,
    integration: TelephonyIntegration,
    statics: list[TrackingNumber],
    now: dt.datetime,
) -> None:
    """Three days of visits, and calls from some of them, through the real visit and call services."""
    rng = random.Random(20261122)  # the same demo every time
    start = now - dt.timedelta(days=3)
    seen: list[tuple[dt.datetime, str]] = []
    for i in range(120):
        at = start + dt.timedelta(minutes=i * 36 + rng.randint(0, 20))
        source = dict(rng.choice(_SOURCES))
        referrer = source.pop("referrer", None)
        query = "&".join(f"{k}={v}" for k, v in source.items())
        data = {
            "visitor_id": f"demo-visitor-{i:04d}",
            "url": "https://okna-plus.example/" + (f"?{query}" if query else ""),
            "referrer": referrer,
            "ym_uid": str(1700000000000000000 + i),
            "screen": "1920x1080",
        }
        result = visits.visit(db, site, data, now=at, user_agent=rng.choice(_AGENTS))
        if result.number is not None:
            seen.append((at, result.number.e164))
    # About one visitor in five calls, a few minutes after looking at the number; some call static numbers.
    for n, (at, e164) in enumerate(seen[::5]):
        _call(db, integration, f"demo-call-{n}", e164, at + dt.timedelta(minutes=rng.randint(1, 12)), rng)
    for n, number in enumerate(statics):
        _call(db, integration, f"demo-static-{n}", number.e164, now - dt.timedelta(hours=5 * (n + 1)), rng)
    db.commit()


def _call(
    db: Session,
    integration: TelephonyIntegration,
    call_id: str,
    called: str,
    at: dt.datetime,
    rng: random.Random,
) -> None:
    caller = f"+7916{rng.randint(1000000, 9999999)}"
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
            forwarded_to=BUSINESS_NUMBER,
        ),
    ]
    for event in events:
        calls.ingest(db, integration, event)
    db.commit()


# What the ad platforms would report for the demo's campaigns: platform, campaign, name, keyword id and text.
_CAMPAIGNS = [
    ("yandex_direct", "70001", "Plastic windows", "k-501", "plastic windows"),
    ("yandex_direct", "70002", "Window repair", "k-502", "window repair"),
    ("google_ads", "brand", "Brand search", "", ""),
]


def _money(db: Session, client: Client, billboard: Channel, now: dt.datetime) -> None:
    """Spend, hand-entered billboard cost and CRM deals, so the ROMI report has something to say.

    They hang off a disabled connection that stands for the accounts a real client would connect; the
    scheduler never pulls from a disabled connection.
    """
    rng = random.Random(7)
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
    today = now.date()
    for days_ago in range(4):
        for platform, cid, name, kid, keyword in _CAMPAIGNS:
            db.add(
                PlatformSpend(
                    client_id=client.id,
                    connection_id=conn.id,
                    platform=platform,
                    day=today - dt.timedelta(days=days_ago),
                    campaign_id=cid,
                    campaign_name=name,
                    ad_group_id=f"g-{cid}" if kid else "",
                    ad_group_name=f"{name} group" if kid else "",
                    keyword_id=kid,
                    keyword=keyword,
                    clicks=rng.randint(20, 60),
                    impressions=rng.randint(400, 1500),
                    cost=Decimal(rng.randint(1500, 4000)),
                    currency="RUB",
                )
            )
    db.add(
        ManualSpend(
            client_id=client.id,
            channel_id=billboard.id,
            period_start=today.replace(day=1),
            period_end=today.replace(day=1) + dt.timedelta(days=29),
            amount=Decimal("30000"),
            note="Billboard on the ring road",
        )
    )
    answered = db.scalars(
        select(Call).where(Call.client_id == client.id, Call.status == CallStatus.ANSWERED).order_by(Call.id)
    ).all()
    for n, call in enumerate(answered[::2]):
        won = n % 3 != 2
        db.add(
            Deal(
                client_id=client.id,
                connection_id=conn.id,
                external_id=f"demo-deal-{n}",
                status=DealStatus.WON if won else DealStatus.OPEN,
                amount=Decimal(rng.randint(18, 95) * 1000) if won else Decimal("0"),
                name=f"Windows order {n + 1}",
                call_id=call.id,
                session_id=call.session_id,
                contact_phone=call.caller,
                won_at=(call.called_at + dt.timedelta(hours=6)) if won and call.called_at else None,
                closed_at=(call.called_at + dt.timedelta(hours=6)) if won and call.called_at else None,
            )
        )
    db.commit()


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
