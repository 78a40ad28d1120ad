"""The builders of test data: tenants and users, integrations, channels, numbers, pools, visits and holds.
Each commits, so other processes and the app see the rows."""

from __future__ import annotations

import datetime as dt
import itertools
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from tests.conftest import TEST_ENCRYPTION_KEY
from tracking.accounts import hash_password, issue_api_token
from tracking.crypto import encrypt_json
from tracking.models import (
    Agency,
    Channel,
    Client,
    NumberAssignment,
    Pool,
    PoolChannel,
    Role,
    Site,
    TelephonyIntegration,
    TrackingNumber,
    User,
    VisitSession,
)
from tracking.models.numbers import NumberStatus

PASSWORD = "correct horse battery staple"
# A moment the call tests start from, and the one the number-allocation tests start from.
T0 = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
ALLOCATION_T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
FORWARD_TO = "+74950000001"
_serial = itertools.count(1)


@dataclass
class Tenant:
    agency: Agency
    client: Client
    site: Site
    admin: User
    token: str


def make_tenant(db: Session, name: str = "Acme") -> Tenant:
    """An agency with one client, one site and an admin user with an API token."""
    agency = Agency(name=f"{name} Agency")
    client = Client(agency=agency, name=f"{name} Client")
    site = Site(
        client=client,
        name=f"{name} site",
        domains=[f"{name.lower()}.example"],
        site_key=secrets.token_urlsafe(12),
        replace_numbers=["+74951234567"],
    )
    admin = User(
        agency=agency,
        email=f"admin@{name.lower()}.example",
        password_hash=hash_password(PASSWORD),
        role=Role.ADMIN,
    )
    db.add_all([agency, client, site, admin])
    db.flush()
    token = issue_api_token(db, admin, "tests")
    db.commit()
    return Tenant(agency, client, site, admin, token)


def make_user(db: Session, tenant: Tenant, email: str, role: Role, client: Client | None = None) -> User:
    user = User(
        agency_id=tenant.agency.id,
        email=email,
        password_hash=hash_password(PASSWORD),
        role=role,
        client_id=client.id if client else None,
    )
    db.add(user)
    db.commit()
    return user


def csrf(client: FlaskClient) -> str:
    """The form token of the test client's browser session (set on first use)."""
    with client.session_transaction() as sess:
        sess.setdefault("csrf", "test-csrf-token")
        return sess["csrf"]


def web_login(client: FlaskClient, email: str, password: str = PASSWORD) -> TestResponse:
    return client.post("/login", data={"email": email, "password": password, "csrf_token": csrf(client)})


# --- telephony, channels, numbers, pools -------------------------------------------------------------------


def make_integration(
    db: Session, tenant: Tenant, provider: str, secrets_: dict[str, str], **settings: str
) -> TelephonyIntegration:
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


def next_e164() -> str:
    # Moscow numbers in a block no test writes by hand.
    return f"+7499{7000000 + next(_serial):07d}"


def make_channel(db: Session, site: Site, name: str, rules: list | None = None, **kw) -> Channel:
    ch = Channel(client_id=site.client_id, name=name, rules=rules or [], **kw)
    db.add(ch)
    db.commit()
    return ch


def make_static(
    db: Session,
    channel: Channel,
    status: NumberStatus = NumberStatus.ACTIVE,
    *,
    e164: str | None = None,
    forward_to: str | None = FORWARD_TO,
) -> TrackingNumber:
    """A channel's static number (a fresh one unless ``e164`` is given)."""
    n = TrackingNumber(
        client_id=channel.client_id,
        e164=e164 or next_e164(),
        channel_id=channel.id,
        status=status,
        forward_to=forward_to,
    )
    db.add(n)
    db.commit()
    return n


def make_pool(
    db: Session,
    site: Site,
    size: int,
    *,
    name: str = "Pool",
    channels: Sequence[Channel] = (),
    fallback: bool = True,
    prefix: str | None = None,
    **kw,
) -> Pool:
    """A pool of ``size`` numbers (``<prefix>00``, ``<prefix>01``… and fallback ``<prefix>99`` when a
    prefix is given, fresh numbers otherwise)."""
    pool = Pool(client_id=site.client_id, site_id=site.id, name=name, **kw)
    db.add(pool)
    db.flush()
    for i in range(size):
        e164 = f"{prefix}{i:02d}" if prefix else next_e164()
        db.add(TrackingNumber(client_id=site.client_id, e164=e164, pool_id=pool.id, forward_to=FORWARD_TO))
    if fallback:
        fb = TrackingNumber(
            client_id=site.client_id, e164=f"{prefix}99" if prefix else next_e164(), forward_to=FORWARD_TO
        )
        db.add(fb)
        db.flush()
        pool.fallback_number_id = fb.id
    for ch in channels:
        db.add(PoolChannel(pool_id=pool.id, channel_id=ch.id))
    db.commit()
    return pool


@dataclass
class PoolSetup:
    pool: Pool
    numbers: list[TrackingNumber]
    fallback: TrackingNumber


def make_pool_setup(
    db: Session, site: Site, prefix: str, size: int, channels: Sequence[Channel] = ()
) -> PoolSetup:
    """``make_pool`` with numbers named by ``prefix``, answered with its numbers and fallback."""
    pool = make_pool(db, site, size, name="pool", channels=channels, prefix=prefix)
    in_pool = select(TrackingNumber).where(TrackingNumber.pool_id == pool.id).order_by(TrackingNumber.id)
    numbers = list(db.scalars(in_pool))
    fallback = db.get(TrackingNumber, pool.fallback_number_id)
    assert fallback is not None
    return PoolSetup(pool, numbers, fallback)


def pool_numbers(db: Session, pool: Pool) -> list[TrackingNumber]:
    db.expire_all()
    return list(db.get(Pool, pool.id).numbers)


# --- visits and holds --------------------------------------------------------------------------------------


def make_visit(
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


def make_hold(
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
