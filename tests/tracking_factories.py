"""Builders for channels, numbers and pools used by the tracking tests. Each commits."""

from __future__ import annotations

import datetime as dt
import itertools

from sqlalchemy.orm import Session

from tracking.models import Channel, Pool, PoolChannel, Site, TrackingNumber
from tracking.models.numbers import NumberStatus

T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
_serial = itertools.count(1)


def next_e164() -> str:
    # Moscow numbers in a block no test writes by hand.
    return f"+7499{7000000 + next(_serial):07d}"


def make_channel(db: Session, site: Site, name: str, rules: list | None = None, **kw) -> Channel:
    ch = Channel(client_id=site.client_id, name=name, rules=rules or [], **kw)
    db.add(ch)
    db.commit()
    return ch


def make_pool(
    db: Session,
    site: Site,
    size: int,
    *,
    name: str = "Pool",
    channels: list[Channel] | None = None,
    fallback: bool = True,
    **kw,
) -> Pool:
    pool = Pool(client_id=site.client_id, site_id=site.id, name=name, **kw)
    db.add(pool)
    db.flush()
    for _ in range(size):
        db.add(TrackingNumber(client_id=site.client_id, e164=next_e164(), pool_id=pool.id))
    if fallback:
        fb = TrackingNumber(client_id=site.client_id, e164=next_e164())
        db.add(fb)
        db.flush()
        pool.fallback_number_id = fb.id
    for ch in channels or []:
        db.add(PoolChannel(pool_id=pool.id, channel_id=ch.id))
    db.commit()
    return pool


def make_static(db: Session, channel: Channel, status: NumberStatus = NumberStatus.ACTIVE) -> TrackingNumber:
    n = TrackingNumber(client_id=channel.client_id, e164=next_e164(), channel_id=channel.id, status=status)
    db.add(n)
    db.commit()
    return n


def pool_numbers(db: Session, pool: Pool) -> list[TrackingNumber]:
    db.expire_all()
    return [n for n in db.get(Pool, pool.id).numbers]
