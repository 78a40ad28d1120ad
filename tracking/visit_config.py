"""What the snippet's hot path needs to know about a site's setup, cached per process.

A site's setup — the site row, its client's channels and their rules, its pools with the channels they
serve and their fallback numbers, the client's static numbers — changes when a person edits it, not per
page view. Each worker keeps it in memory, keyed by site key, together with ``sites.config_version``; every
request reads that counter with its first query (which it makes anyway), and a different value reloads the
setup. Database triggers bump the counter on every setup change (migration 0014), archiving or restoring
the client included (migration 0016), so no writer can forget.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from tracking.channels import VisitSource, channel_matches
from tracking.models import Channel, Client, Pool, PoolChannel, Site, TrackingNumber
from tracking.models.numbers import NumberStatus


@dataclass(frozen=True)
class NumberConfig:
    id: int
    e164: str
    pool_id: int | None
    channel_id: int | None
    status: str

    @property
    def active(self) -> bool:
        return self.status == NumberStatus.ACTIVE


@dataclass(frozen=True)
class PoolConfig:
    id: int
    hold_seconds: int
    grace_seconds: int
    max_hold_seconds: int
    channel_coherent: bool
    active: bool
    fallback_number_id: int | None
    fallback_number: NumberConfig | None
    channels: frozenset[int]


@dataclass(frozen=True)
class ChannelConfig:
    id: int
    rules: Any


@dataclass
class SiteConfig:
    """A site's setup as the snippet's endpoints use it (attribute names follow :class:`Site`)."""

    id: int
    version: int
    client_id: int
    site_key: str
    domains: list[Any]
    replace_numbers: list[Any]
    display_template: str
    promo_codes_enabled: bool
    swap_attributes: list[Any]
    swap_local_numbers: bool
    archived: bool = False  # the client is archived: its sites hand out no number
    channels: list[ChannelConfig] = field(default_factory=list)  # web channels, in matching order
    default_channel_id: int | None = None
    pools: dict[int, PoolConfig] = field(default_factory=dict)  # every pool of the site, active or not
    static_numbers: dict[int, NumberConfig] = field(default_factory=dict)  # channel id -> its static number
    # What callers derive from this setup alone (the snippet's swap rules for a number), kept while it is
    # current: a changed setup is a new SiteConfig. Keyed by the caller; bounded by the client's numbers.
    memo: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    def resolve_channel(self, source: VisitSource) -> int | None:
        """As :func:`tracking.channels.resolve_channel`; None when the default channel does not exist yet."""
        for channel in self.channels:
            if channel_matches(channel, source):  # type: ignore[arg-type]
                return channel.id
        return self.default_channel_id

    def pool_for(self, channel_id: int) -> PoolConfig | None:
        """As :func:`tracking.allocation.pool_for`."""
        active = [p for p in sorted(self.pools.values(), key=lambda p: p.id) if p.active]
        for pool in active:
            if channel_id in pool.channels:
                return pool
        for pool in active:
            if not pool.channels:
                return pool
        return None


def load(conn: Connection, site_id: int) -> SiteConfig | None:
    site = conn.execute(select(Site).where(Site.id == site_id)).first()
    if site is None:
        return None
    s = site._mapping
    cfg = SiteConfig(
        id=s["id"],
        version=s["config_version"],
        client_id=s["client_id"],
        site_key=s["site_key"],
        domains=list(s["domains"] or []),
        replace_numbers=list(s["replace_numbers"] or []),
        display_template=s["display_template"],
        promo_codes_enabled=bool(s["promo_codes_enabled"]),
        swap_attributes=list(s["swap_attributes"] or []),
        swap_local_numbers=bool(s["swap_local_numbers"]),
    )
    # Archiving a client bumps its sites' versions too (migration 0016).
    cfg.archived = conn.scalar(select(Client.archived_at).where(Client.id == cfg.client_id)) is not None
    for ch in conn.execute(
        select(Channel.id, Channel.rules, Channel.is_default, Channel.offline)
        .where(Channel.client_id == cfg.client_id)
        .order_by(Channel.position, Channel.id)
    ):
        if ch.is_default:
            if cfg.default_channel_id is None or ch.id < cfg.default_channel_id:
                cfg.default_channel_id = ch.id
        elif not ch.offline:
            cfg.channels.append(ChannelConfig(ch.id, ch.rules))
    numbers = {
        n.id: NumberConfig(n.id, n.e164, n.pool_id, n.channel_id, str(n.status))
        for n in conn.execute(
            select(
                TrackingNumber.id,
                TrackingNumber.e164,
                TrackingNumber.pool_id,
                TrackingNumber.channel_id,
                TrackingNumber.status,
            )
            .where(TrackingNumber.client_id == cfg.client_id, TrackingNumber.pool_id.is_(None))
            .order_by(TrackingNumber.id)
        )
    }
    for n in numbers.values():
        if n.channel_id is not None and n.active and n.channel_id not in cfg.static_numbers:
            cfg.static_numbers[n.channel_id] = n
    served: dict[int, set[int]] = {}
    for pc in conn.execute(
        select(PoolChannel.pool_id, PoolChannel.channel_id)
        .join(Pool, Pool.id == PoolChannel.pool_id)
        .where(Pool.site_id == site_id)
    ):
        served.setdefault(pc.pool_id, set()).add(pc.channel_id)
    for p in conn.execute(select(Pool).where(Pool.site_id == site_id)):
        m = p._mapping
        fallback = numbers.get(m["fallback_number_id"]) if m["fallback_number_id"] is not None else None
        if fallback is None and m["fallback_number_id"] is not None:
            # A fallback number bound to a pool or channel is unusual but allowed: read it on its own.
            row = conn.execute(
                select(
                    TrackingNumber.id,
                    TrackingNumber.e164,
                    TrackingNumber.pool_id,
                    TrackingNumber.channel_id,
                    TrackingNumber.status,
                ).where(TrackingNumber.id == m["fallback_number_id"])
            ).first()
            if row is not None:
                fallback = NumberConfig(row.id, row.e164, row.pool_id, row.channel_id, str(row.status))
        cfg.pools[m["id"]] = PoolConfig(
            id=m["id"],
            hold_seconds=m["hold_seconds"],
            grace_seconds=m["grace_seconds"],
            max_hold_seconds=m["max_hold_seconds"],
            channel_coherent=bool(m["channel_coherent"]),
            active=bool(m["active"]),
            fallback_number_id=m["fallback_number_id"],
            fallback_number=fallback,
            channels=frozenset(served.get(m["id"], ())),
        )
    return cfg


class ConfigCache:
    """Site setups of one database, keyed by site key; an entry is good while its version is current."""

    def __init__(self) -> None:
        self._by_key: dict[str, SiteConfig] = {}
        self._lock = threading.Lock()

    def get(self, conn: Connection, site_key: str, site_id: int, version: int) -> SiteConfig | None:
        cfg = self._by_key.get(site_key)
        if cfg is not None and cfg.id == site_id and cfg.version == version:
            return cfg
        cfg = load(conn, site_id)
        if cfg is not None:
            with self._lock:
                self._by_key[site_key] = cfg
        return cfg


_caches: weakref.WeakKeyDictionary[Engine, ConfigCache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def cache_for(engine: Engine) -> ConfigCache:
    """The cache of the database ``engine`` talks to (one per engine, so tests with many databases never
    share entries)."""
    cache = _caches.get(engine)
    if cache is None:
        with _caches_lock:
            cache = _caches.setdefault(engine, ConfigCache())
    return cache
