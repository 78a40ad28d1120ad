"""Older names of builders in ``tests.factories``, kept for tests not yet moved; new tests import that."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from tests.factories import T0, PoolSetup, Tenant, make_channel, make_pool_setup, make_static
from tests.factories import make_hold as hold
from tests.factories import make_integration as integration
from tests.factories import make_visit as visit
from tracking.models import Channel, TrackingNumber

__all__ = ["T0", "PoolSetup", "channel", "hold", "integration", "pool", "static_number", "visit"]


def channel(db: Session, tenant: Tenant, name: str) -> Channel:
    return make_channel(db, tenant.site, name)


def static_number(
    db: Session, tenant: Tenant, e164: str, ch: Channel, forward_to: str = "+74950000001"
) -> TrackingNumber:
    return make_static(db, ch, e164=e164, forward_to=forward_to)


def pool(db: Session, tenant: Tenant, prefix: str, size: int, channels: Sequence[Channel] = ()) -> PoolSetup:
    return make_pool_setup(db, tenant.site, prefix, size, channels)
