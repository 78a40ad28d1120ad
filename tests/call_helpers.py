"""Builders for call tests: integrations, numbers, pools, sessions and holds, committed like factories."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy.orm import Session

from tests.conftest import TEST_ENCRYPTION_KEY
from tests.factories import Tenant
from tracking.crypto import encrypt_json
from tracking.models import (
    Channel,
    NumberAssignment,
    Pool,
    PoolChannel,
    TelephonyIntegration,
    TrackingNumber,
    VisitSession,
)

T0 = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


def integration(db: Session, tenant: Tenant, provider: str, secrets_: dict[str, str], **settings: str):
    row = TelephonyIntegration(
        client_id=tenant.client.id,
        provider=provider,
        name=provider,
        integration_key=secrets.token_urlsafe(24),
        secrets_encrypted=encrypt_json(TEST_ENCRYPTION_KEY, secrets_),
        settings=dict(settings),
    )
    db.add(row)
    db.commit()
    return row


def channel(db: Session, tenant: Tenant, name: str) -> Channel:
    row = Channel(client_id=tenant.client.id, name=name)
    db.add(row)
    db.commit()
    return row


def static_number(
    db: Session, tenant: Tenant, e164: str, ch: Channel | None, forward_to: str = "+74950000001"
):
    row = TrackingNumber(
        client_id=tenant.client.id, e164=e164, channel_id=ch.id if ch else None, forward_to=forward_to
    )
    db.add(row)
    db.commit()
    return row


@dataclass
class PoolSetup:
    pool: Pool
    numbers: list[TrackingNumber]
    fallback: TrackingNumber


def pool(db: Session, tenant: Tenant, prefix: str, size: int, channels: list[Channel] = ()) -> PoolSetup:
    p = Pool(
        client_id=tenant.client.id, site_id=tenant.site.id, name="pool", hold_seconds=900, grace_seconds=300
    )
    db.add(p)
    db.flush()
    numbers = [
        TrackingNumber(
            client_id=tenant.client.id, e164=f"{prefix}{i:02d}", pool_id=p.id, forward_to="+74950000001"
        )
        for i in range(size)
    ]
    fallback = TrackingNumber(client_id=tenant.client.id, e164=f"{prefix}99", forward_to="+74950000001")
    db.add_all([*numbers, fallback])
    db.flush()
    p.fallback_number_id = fallback.id
    for ch in channels:
        db.add(PoolChannel(pool_id=p.id, channel_id=ch.id))
    db.commit()
    return PoolSetup(p, numbers, fallback)


def visit(
    db: Session,
    tenant: Tenant,
    ch: Channel | None,
    *,
    started: dt.datetime,
    last_seen: dt.datetime | None = None,
    left: dt.datetime | None = None,
    visitor: str | None = None,
    promo: str | None = None,
    device: str = "desktop",
    **fields: str,
) -> VisitSession:
    row = VisitSession(
        public_id=secrets.token_hex(8),
        client_id=tenant.client.id,
        site_id=tenant.site.id,
        visitor_id=visitor or secrets.token_hex(8),
        channel_id=ch.id if ch else None,
        started_at=started,
        last_seen_at=last_seen or started,
        left_at=left,
        promo_code=promo,
        device=device,
        **fields,
    )
    db.add(row)
    db.commit()
    return row


def hold(
    db: Session,
    session: VisitSession,
    number: TrackingNumber,
    start: dt.datetime,
    until: dt.datetime,
    ended: dt.datetime | None = None,
) -> NumberAssignment:
    row = NumberAssignment(
        number_id=number.id,
        session_id=session.id,
        pool_id=number.pool_id,
        started_at=start,
        hold_until=until,
        ended_at=ended,
    )
    db.add(row)
    db.commit()
    return row
