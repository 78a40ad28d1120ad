"""Which of a client's channels a visit came from.

Channels are checked in ascending ``position`` (then id); the first with a matching condition set wins and
the client's default channel takes everything else. The rule language is documented on
:class:`tracking.models.numbers.Channel`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tracking.hosts import host_of
from tracking.models import Channel, Client

DEFAULT_CHANNEL_NAME = "Direct / unknown"
_TEXT_KEYS = ("utm_source", "utm_medium", "utm_campaign")
_KNOWN_KEYS = {*_TEXT_KEYS, "referrer_domain", "has_gclid", "has_yclid", "landing_path"}


@dataclass(frozen=True)
class VisitSource:
    """What a visit tells about where it came from."""

    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    referrer: str | None = None
    gclid: str | None = None
    yclid: str | None = None
    landing_url: str | None = None

    @property
    def referrer_domain(self) -> str | None:
        return referrer_domain(self.referrer)


def referrer_domain(url: str | None) -> str | None:
    """The host of a referrer URL, lower-case, without port, credentials or a trailing dot; IDN as Unicode."""
    host = host_of(url)
    if host and (host.startswith("xn--") or ".xn--" in host):
        with contextlib.suppress(UnicodeError):
            host = host.encode("ascii").decode("idna")
    return host


def landing_path(url: str | None) -> str | None:
    """The path of a landing URL ("/sale/sofas"), without query or fragment; "/" for a bare host."""
    if not url:
        return None
    try:
        return urlsplit(url.strip()).path or "/"
    except ValueError:
        return None


def _domain_matches(host: str | None, domain: Any) -> bool:
    if not host or not isinstance(domain, str) or not domain.strip():
        return False
    want = referrer_domain(domain.strip()) or ""
    return host == want or host.endswith("." + want)


def _text_matches(value: str | None, pattern: Any) -> bool:
    if value is None or not isinstance(pattern, str):
        return False
    v, p = value.strip().lower(), pattern.strip().lower()
    if p.endswith("*"):
        return v.startswith(p[:-1])
    return v == p


def condition_set_matches(conditions: Mapping[str, Any], source: VisitSource) -> bool:
    """True when every condition of the set holds; an empty or unknown-keyed set never matches."""
    if not conditions or not set(conditions) <= _KNOWN_KEYS:
        return False
    for key, want in conditions.items():
        if key in _TEXT_KEYS:
            ok = _text_matches(getattr(source, key), want)
        elif key == "referrer_domain":
            ok = _domain_matches(source.referrer_domain, want)
        elif key == "landing_path":
            ok = _text_matches(landing_path(source.landing_url), want)
        elif key == "has_gclid":
            ok = bool(source.gclid) == bool(want)
        else:  # has_yclid
            ok = bool(source.yclid) == bool(want)
        if not ok:
            return False
    return True


def channel_matches(channel: Channel, source: VisitSource) -> bool:
    rules = channel.rules if isinstance(channel.rules, list) else []
    return any(isinstance(r, Mapping) and condition_set_matches(r, source) for r in rules)


def default_channel(db: Session, client_id: int) -> Channel:
    """The client's catch-all channel, created on first need."""
    found = db.scalar(
        select(Channel)
        .where(Channel.client_id == client_id, Channel.is_default.is_(True))
        .order_by(Channel.id)
        .limit(1)
    )
    if found is not None:
        return found
    # Two first visits at once must not create two defaults: a no-op write on the client row takes its
    # row lock on PostgreSQL and the write lock on SQLite, and the check is repeated under it.
    db.execute(update(Client).where(Client.id == client_id).values(id=Client.id))
    found = db.scalar(
        select(Channel)
        .where(Channel.client_id == client_id, Channel.is_default.is_(True))
        .order_by(Channel.id)
        .limit(1)
    )
    if found is not None:
        return found
    channel = Channel(client_id=client_id, name=DEFAULT_CHANNEL_NAME, position=10_000, is_default=True)
    db.add(channel)
    db.flush()
    return channel


def resolve_channel(db: Session, client_id: int, source: VisitSource) -> Channel:
    """The channel a visit belongs to. Offline channels never match a visit; they have no web traffic."""
    channels = db.scalars(
        select(Channel)
        .where(Channel.client_id == client_id, Channel.offline.is_(False), Channel.is_default.is_(False))
        .order_by(Channel.position, Channel.id)
    ).all()
    for channel in channels:
        if channel_matches(channel, source):
            return channel
    return default_channel(db, client_id)
