"""The visit service behind the snippet: a page view becomes a session with a number reserved for it.

``visit`` starts or continues a session, ``heartbeat`` keeps its number while the page stays open and
``release`` starts the grace period when the visitor leaves. Each call is one transaction and commits.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import exists, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from tracking import abuse, allocation
from tracking.channels import VisitSource, referrer_domain, resolve_channel
from tracking.db import is_postgres, utcnow
from tracking.hosts import canonical_domain_entry
from tracking.models import Channel, NumberAssignment, Pool, Site, TrackingNumber, VisitSession
from tracking.models.numbers import NumberStatus

T = TypeVar("T")

_VISITOR_ID = re.compile(r"^[A-Za-z0-9_.\-]{8,64}$")
_CLICK_KEYS = ("gclid", "gbraid", "wbraid", "yclid")
_UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
_URL_LIMIT = 4096
_PROMO_DIGITS = 5
# A visit without ad marks continues the source of the visitor's latest session when it comes from one of
# the site's own pages within this long of that session's last activity (a tab woken after its hold), or
# with no referrer at all within the shorter time (a quick return, the usual web-analytics session rule).
INNER_PAGE_CONTINUES = dt.timedelta(hours=24)
RETURN_CONTINUES = dt.timedelta(minutes=30)


class VisitError(Exception):
    status = 400
    error = "bad_request"


class InvalidVisit(VisitError):
    status = 400
    error = "invalid_body"


class UnknownSite(VisitError):
    status = 404
    error = "unknown_site"


class UnknownSession(VisitError):
    status = 404
    error = "unknown_session"


@dataclass
class VisitInput:
    visitor_id: str
    url: str | None = None
    referrer: str | None = None
    screen: str | None = None
    ym_client_id: str | None = None
    ga_client_id: str | None = None
    user_agent: str | None = None
    marks: dict[str, str | None] | None = None  # utm_* and click ids

    def mark(self, key: str) -> str | None:
        return (self.marks or {}).get(key)


@dataclass
class VisitResult:
    site: Site
    session: VisitSession
    number: TrackingNumber | None
    hold_until: dt.datetime | None
    live: bool
    heartbeat_seconds: int
    # A heartbeat moved the session from the fallback number to a pool number: the page must show it.
    renumbered: bool = False


def site_by_key(db: Session, site_key: str) -> Site | None:
    if not site_key or len(site_key) > 64:
        return None
    return db.scalar(select(Site).where(Site.site_key == site_key))


def visit_source(data: VisitInput, marks: dict[str, str | None], referrer: str | None) -> VisitSource:
    """What channel rules read of a new session: its marks, referrer and landing page."""
    return VisitSource(
        utm_source=marks["utm_source"],
        utm_medium=marks["utm_medium"],
        utm_campaign=marks["utm_campaign"],
        referrer=referrer,
        gclid=marks["gclid"],
        yclid=marks["yclid"],
        landing_url=data.url,
    )


def new_session_columns(
    client_id: int,
    site_id: int,
    data: VisitInput,
    channel_id: int,
    referrer: str | None,
    marks: dict[str, str | None],
    now: dt.datetime,
    requester: abuse.Requester | None,
) -> dict[str, Any]:
    """The columns of a new visit session: one list for the ORM path and the hot path's insert."""
    return dict(
        public_id=secrets.token_urlsafe(16),
        client_id=client_id,
        site_id=site_id,
        visitor_id=data.visitor_id,
        channel_id=channel_id,
        started_at=now,
        last_seen_at=now,
        landing_url=data.url,
        referrer=referrer,
        ym_client_id=data.ym_client_id,
        ga_client_id=data.ga_client_id,
        user_agent=data.user_agent,
        device=device_from_user_agent(data.user_agent),
        screen=data.screen,
        source_key=requester.key if requester else None,
        **marks,
    )


def device_from_user_agent(ua: str | None) -> str:
    """desktop / mobile / tablet from the user agent: good enough for reports, not for fingerprinting."""
    s = (ua or "").lower()
    if (
        "ipad" in s
        or "tablet" in s
        or "kindle" in s
        or "silk/" in s
        or ("android" in s and "mobile" not in s)
    ):
        return "tablet"
    if any(m in s for m in ("mobi", "iphone", "ipod", "android", "windows phone", "opera mini")):
        return "mobile"
    return "desktop"


def _opt_str(data: Mapping[str, Any], key: str, limit: int) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidVisit(f"'{key}' must be a string")
    if len(value) > limit:
        raise InvalidVisit(f"'{key}' is longer than {limit} characters")
    return _no_nul(value, key)


def _no_nul(value: str, key: str) -> str:
    # PostgreSQL cannot store NUL in text: refused here as bad input rather than failing in the database.
    if "\x00" in value:
        raise InvalidVisit(f"'{key}' contains a NUL character")
    return value


def _ga_client_id(raw: str | None) -> str | None:
    # The _ga cookie is "GA1.1.<random>.<timestamp>"; the client id is the last two parts.
    if not raw:
        return None
    parts = raw.split(".")
    if len(parts) >= 4 and parts[0].upper().startswith("GA"):
        return ".".join(parts[-2:])[:64]
    return raw[:64]


def parse_visit(data: Any, user_agent: str | None = None) -> VisitInput:
    """Validate what the snippet sent. Unknown keys are ignored; wrong types and sizes are refused."""
    if not isinstance(data, Mapping):
        raise InvalidVisit("the body must be a JSON object")
    visitor_id = data.get("visitor_id")
    if not isinstance(visitor_id, str) or not _VISITOR_ID.match(visitor_id):
        raise InvalidVisit("'visitor_id' must be 8-64 characters of letters, digits, '.', '_' or '-'")
    url = _opt_str(data, "url", _URL_LIMIT)
    marks: dict[str, str | None] = {}
    query = parse_qs(urlsplit(url).query) if url else {}
    for key in (*_UTM_KEYS, *_CLICK_KEYS):
        value = _opt_str(data, key, 255)
        if value is None and query.get(key):
            value = _no_nul(query[key][0][:255], f"url ({key})") or None
        marks[key] = value
    ym = _opt_str(data, "ym_uid", 64)
    if ym is not None and not (ym.isascii() and ym.isdigit()):
        raise InvalidVisit("'ym_uid' must be digits")
    return VisitInput(
        visitor_id=visitor_id,
        url=url,
        referrer=_opt_str(data, "referrer", _URL_LIMIT),
        screen=_opt_str(data, "screen", 32),
        ym_client_id=ym,
        ga_client_id=_ga_client_id(_opt_str(data, "ga", 128)),
        user_agent=(user_agent or "")[:1024] or None,
        marks=marks,
    )


def session_id_of(data: Any) -> str:
    """The session id a heartbeat or release names, validated."""
    return _session_id(data)


def _session_id(data: Any) -> str:
    if not isinstance(data, Mapping):
        raise InvalidVisit("the body must be a JSON object")
    sid = data.get("session_id")
    if not isinstance(sid, str) or not 1 <= len(sid) <= 32:
        raise InvalidVisit("'session_id' must be a string")
    return _no_nul(sid, "session_id")


def _is_lock_timeout(exc: OperationalError) -> bool:
    return "database is locked" in str(exc.orig).lower() or "database is busy" in str(exc.orig).lower()


def run_with_retry(db: Session, work: Callable[[], T], attempts: int = 8) -> T:
    """Run ``work`` and commit; on SQLite's "database is locked" roll back and run it again."""
    for attempt in range(attempts):
        try:
            result = work()
            db.commit()
            return result
        except OperationalError as exc:
            db.rollback()
            if not _is_lock_timeout(exc) or attempt == attempts - 1:
                raise
            time.sleep(random.uniform(0.01, 0.05) * (2**attempt))
        except BaseException:
            db.rollback()
            raise
    raise AssertionError("unreachable")


def _pool_hold_seconds(db: Session, assignment: NumberAssignment | None) -> int:
    pool = db.get(Pool, assignment.pool_id) if assignment is not None else None
    return pool.hold_seconds if pool is not None else allocation.STATIC_SESSION_SECONDS


@dataclass
class _State:
    live: bool
    assignment: NumberAssignment | None  # the session's open pool hold, if it has one
    shown: TrackingNumber | None = None  # the static or fallback number of a session without a pool hold


def _state(db: Session, session: VisitSession, now: dt.datetime) -> _State:
    if session.hold_until is None or session.hold_until < now:
        return _State(False, None)
    assignment = allocation.live_assignment(db, session)
    if assignment is None:
        # Static, fallback or no number: the session's own hold is all there is, unless its number was
        # taken out of service meanwhile.
        shown = db.get(TrackingNumber, session.number_id) if session.number_id else None
        return _State(shown is None or shown.status == NumberStatus.ACTIVE, None, shown)
    number = db.get(TrackingNumber, assignment.number_id, populate_existing=True)
    # A number quarantined or retired while held is not extended: the visitor's next visit moves on.
    live = (
        number is not None
        and number.status == NumberStatus.ACTIVE
        and number.held_by_session_id == session.id
        and number.held_until is not None
        and number.held_until >= now
    )
    return _State(live, assignment)


def _touch(
    db: Session, session: VisitSession, now: dt.datetime, state: _State, *, leaving: bool = False
) -> bool:
    """Move a live session's hold after activity (or the leave beacon). False when it is no longer live."""
    if not state.live:
        return False
    if state.assignment is not None:
        fn = allocation.release_hold if leaving else allocation.extend_hold
        until = fn(db, session, now, state.assignment)
        if until is None:
            return False
        session.hold_until = until
    else:
        extra = 0 if leaving else allocation.STATIC_SESSION_SECONDS
        session.hold_until = max(session.hold_until or now, now + dt.timedelta(seconds=extra))
    session.last_seen_at = now
    session.left_at = now if leaving else None
    return True


def _leave_fallback(
    db: Session,
    session: VisitSession,
    now: dt.datetime,
    state: _State,
    requester: abuse.Requester | None = None,
) -> bool:
    """A live session shown its pool's fallback number takes a pool number as soon as one is free, so its
    calls become attributable. True when the session's number changed."""
    shown = state.shown
    if not state.live or state.assignment is not None or shown is None or not allocation.is_fallback(shown):
        return False
    taken = allocation.take_fallback_upgrade(db, shown, session, now, requester)
    if taken is None:
        return False
    session.number_id = taken.id
    session.hold_until = taken.held_until
    session.last_seen_at = now
    session.left_at = None
    state.assignment = allocation.live_assignment(db, session)
    return True


def site_has_host(site: Any, host: str | None) -> bool:
    """Whether ``host`` (canonical: IDNA, lower case) is one of the site's domains ("*.example.ru" entries
    allow subdomains). Entries are compared in the same canonical form, whatever form was typed."""
    if not host:
        return False
    for entry in site.domains or []:
        if not isinstance(entry, str):
            continue
        want = canonical_domain_entry(entry)
        if not want:
            continue
        if want.startswith("*."):
            if host.endswith(want[1:]):
                return True
        elif host == want:
            return True
    return False


def _continues_source(site: Any, previous: Any, data: VisitInput, now: dt.datetime) -> bool:
    """A visit without ad marks that follows the visitor's recent session keeps that session's source: a
    tab that slept past its hold and wakes on an inner page, or a quick return, is not a "direct" visit."""
    if any(data.mark(k) for k in (*_UTM_KEYS, *_CLICK_KEYS)):
        return False
    quiet = now - previous.last_seen_at
    if site_has_host(site, referrer_domain(data.referrer)):
        return quiet <= INNER_PAGE_CONTINUES
    return not data.referrer and quiet <= RETURN_CONTINUES


def _new_ad_click(session: Any, data: VisitInput) -> bool:
    """A repeat visit that arrives through a different ad click or campaign starts a new session."""
    for key in ("gclid", "yclid", "gbraid", "wbraid", "utm_source", "utm_campaign"):
        value = data.mark(key)
        if value and value != getattr(session, key):
            return True
    return False


def _assign_promo_code(db: Session, session: VisitSession, now: dt.datetime) -> None:
    if is_postgres(db):
        # Serialise code choice per client so two concurrent sessions cannot draw the same free code.
        db.execute(text("SELECT pg_advisory_xact_lock(7001, :c)"), {"c": session.client_id})
    digits = _PROMO_DIGITS
    for attempt in range(60):
        if attempt and attempt % 20 == 0:
            digits += 1  # the short codes are nearly exhausted among live sessions: use a longer one
        code = str(secrets.randbelow(9 * 10 ** (digits - 1)) + 10 ** (digits - 1))
        taken = db.scalar(
            select(
                exists().where(
                    VisitSession.client_id == session.client_id,
                    VisitSession.promo_code == code,
                    VisitSession.hold_until >= now,
                    VisitSession.id != session.id,
                )
            )
        )
        if not taken:
            session.promo_code = code
            return
    raise RuntimeError("no free promo code")


def _start_session(
    db: Session,
    site: Site,
    data: VisitInput,
    now: dt.datetime,
    requester: abuse.Requester | None = None,
    inherit: VisitSession | None = None,
) -> VisitResult:
    marks = {k: data.mark(k) for k in (*_UTM_KEYS, *_CLICK_KEYS)}
    referrer = data.referrer
    if inherit is not None:
        marks = {k: getattr(inherit, k) for k in (*_UTM_KEYS, *_CLICK_KEYS)}
        referrer = inherit.referrer
    source = visit_source(data, marks, referrer)
    channel = (
        db.get(Channel, inherit.channel_id)
        if inherit is not None and inherit.channel_id is not None
        else resolve_channel(db, site.client_id, source)
    )
    assert channel is not None
    session = VisitSession(
        **new_session_columns(site.client_id, site.id, data, channel.id, referrer, marks, now, requester)
    )
    db.add(session)
    db.flush()
    alloc = allocation.allocate(db, site, channel, session, now, requester)
    session.number_id = alloc.number.id if alloc.number else None
    session.hold_until = alloc.hold_until
    if site.promo_codes_enabled:
        _assign_promo_code(db, session, now)
    hold = alloc.pool.hold_seconds if alloc.pool else allocation.STATIC_SESSION_SECONDS
    hb = allocation.heartbeat_seconds(hold)
    return VisitResult(site, session, alloc.number, session.hold_until, True, hb)


def _latest_session(db: Session, site: Site, visitor_id: str) -> VisitSession | None:
    return db.scalar(
        select(VisitSession)
        .where(VisitSession.site_id == site.id, VisitSession.visitor_id == visitor_id)
        .order_by(VisitSession.last_seen_at.desc(), VisitSession.id.desc())
        .limit(1)
    )


def _site_or_raise(db: Session, site_key: str | Site) -> Site:
    # Callers that already looked the site up (the public endpoints check its origin first) pass it.
    if isinstance(site_key, Site):
        return site_key
    site = site_by_key(db, site_key)
    if site is None:
        raise UnknownSite("unknown site key")
    return site


def visit(
    db: Session,
    site_key: str | Site,
    data: Any,
    now: dt.datetime | None = None,
    user_agent: str | None = None,
    requester: abuse.Requester | None = None,
) -> VisitResult:
    """A page view: continue the visitor's live session (extending its hold) or start a new one.

    ``requester`` (the hub passes it) bounds how many pool numbers one address and one visitor may hold.
    Answered by the hot path (:mod:`tracking.visit_path`) where it can, else by :func:`visit_full`.
    """
    parsed = parse_visit(data, user_agent)
    when = now or utcnow()
    answer = _hot(
        db,
        site_key,
        lambda path, conn, found: path.visit(conn, found, parsed, when, requester),
        visitor_id=parsed.visitor_id,
    )
    if answer is not None:
        return answer
    return visit_full(db, site_key, data, when, user_agent, requester)


def _hot(db: Session, site_key: str | Site, answer: Callable[..., Any], **by: str) -> VisitResult | None:
    """Run a hot-path function on its own autocommit connection and hand back ORM objects, for callers
    that work with a session; None when the hot path leaves the request to the full implementation."""
    # Imported here: the hot path builds on this module's parsing and session rules.
    from tracking import visit_path

    key = site_key.site_key if isinstance(site_key, Site) else site_key
    if db.in_transaction():
        db.commit()  # what the caller wrote must be visible to (and not lock out) the hot path's connection
    with visit_path.connect(db.get_bind()) as conn:  # type: ignore[arg-type]
        found = visit_path.lookup(conn, key, visitor_id=by.get("visitor_id"), public_id=by.get("public_id"))
        if found.site is None:
            raise UnknownSite("unknown site key")
        hot = answer(visit_path, conn, found)
    if hot is None:
        return None
    db.expire_all()
    site = db.get(Site, hot.site.id)
    session = db.get(VisitSession, hot.session.id)
    number = db.get(TrackingNumber, hot.number.id) if hot.number is not None else None
    assert site is not None and session is not None
    result = VisitResult(
        site, session, number, hot.hold_until, hot.live, hot.heartbeat_seconds, hot.renumbered
    )
    db.commit()
    return result


def visit_full(
    db: Session,
    site_key: str | Site,
    data: Any,
    now: dt.datetime | None = None,
    user_agent: str | None = None,
    requester: abuse.Requester | None = None,
) -> VisitResult:
    """:func:`visit` through the ORM, every turn included (promo codes, fallback upgrades, new ad clicks)."""
    parsed = parse_visit(data, user_agent)
    when = now or utcnow()

    def work() -> VisitResult:
        site = _site_or_raise(db, site_key)
        # A guessable visitor id never continues a session: it would hand out that session's number and code.
        strong = requester is None or abuse.continues_sessions(parsed.visitor_id)
        previous = _latest_session(db, site, parsed.visitor_id) if strong else None
        state = _state(db, previous, when) if previous is not None else None
        if previous is not None and state is not None and state.live:
            if _new_ad_click(previous, parsed):
                allocation.end_hold(db, previous, when)
                previous.hold_until = min(previous.hold_until or when, when)
            elif _leave_fallback(db, previous, when, state, requester) or _touch(db, previous, when, state):
                number = db.get(TrackingNumber, previous.number_id) if previous.number_id else None
                hb = allocation.heartbeat_seconds(_pool_hold_seconds(db, state.assignment))
                return VisitResult(site, previous, number, previous.hold_until, True, hb)
        continues = previous is not None and _continues_source(site, previous, parsed, when)
        inherit = previous if continues else None
        return _start_session(db, site, parsed, when, requester, inherit)

    return run_with_retry(db, work)


def _session_of(db: Session, site: Site, public_id: str) -> VisitSession:
    session = db.scalar(
        select(VisitSession).where(VisitSession.public_id == public_id, VisitSession.site_id == site.id)
    )
    if session is None:
        raise UnknownSession("unknown session")
    return session


def _keep(
    db: Session,
    site_key: str | Site,
    data: Any,
    now: dt.datetime | None,
    *,
    leaving: bool,
    requester: abuse.Requester | None = None,
) -> VisitResult:
    public_id = _session_id(data)
    when = now or utcnow()

    def work() -> VisitResult:
        site = _site_or_raise(db, site_key)
        session = _session_of(db, site, public_id)
        state = _state(db, session, when)
        renumbered = not leaving and _leave_fallback(db, session, when, state, requester)
        live = renumbered or _touch(db, session, when, state, leaving=leaving)
        number = db.get(TrackingNumber, session.number_id) if session.number_id else None
        hb = allocation.heartbeat_seconds(_pool_hold_seconds(db, state.assignment))
        return VisitResult(site, session, number, session.hold_until, live, hb, renumbered)

    return run_with_retry(db, work)


def keep_full(
    db: Session,
    site_key: str | Site,
    data: Any,
    now: dt.datetime | None,
    *,
    leaving: bool,
    requester: abuse.Requester | None = None,
) -> VisitResult:
    """:func:`heartbeat` (or :func:`release`) through the ORM, every turn included."""
    return _keep(db, site_key, data, now, leaving=leaving, requester=requester)


def _keep_hot(
    db: Session,
    site_key: str | Site,
    data: Any,
    now: dt.datetime | None,
    *,
    leaving: bool,
    requester: abuse.Requester | None = None,
) -> VisitResult:
    public_id = _session_id(data)
    when = now or utcnow()
    answer = _hot(
        db,
        site_key,
        lambda path, conn, found: path.keep(conn, found, when, leaving=leaving),
        public_id=public_id,
    )
    if answer is not None:
        return answer
    return _keep(db, site_key, data, when, leaving=leaving, requester=requester)


def heartbeat(
    db: Session,
    site_key: str | Site,
    data: Any,
    now: dt.datetime | None = None,
    requester: abuse.Requester | None = None,
) -> VisitResult:
    """The page is still open and visible: extend the hold. ``live`` is False once the hold is over.

    ``requester`` bounds a fallback session's move to a pool number like a first visit (see ``visit``).
    """
    return _keep_hot(db, site_key, data, now, leaving=False, requester=requester)


def release(db: Session, site_key: str | Site, data: Any, now: dt.datetime | None = None) -> VisitResult:
    """The visitor left the page: the hold runs on only for the pool's grace period."""
    return _keep_hot(db, site_key, data, now, leaving=True)


UNSEEN_SECONDS = 120


def release_unseen(db: Session, site_key: str | Site, data: Any, now: dt.datetime | None = None) -> bool:
    """The snippet gave up waiting for its visit answer: free the number that answer may have reserved.

    The beacon carries only the visitor id (the snippet never learnt a session id). The visitor's latest
    session on the site is ended at once if nothing confirmed it since it started (no heartbeat, no later
    visit) and it started within ``UNSEEN_SECONDS``: a number a page is showing is left alone. Only the
    snippet's own 128-bit random ids are accepted, so nobody can release someone else's number by guessing.
    True when a hold was ended.
    """
    if not isinstance(data, Mapping):
        raise InvalidVisit("the body must be a JSON object")
    visitor_id = data.get("visitor_id")
    if not isinstance(visitor_id, str) or not re.fullmatch(r"[0-9a-f]{32}", visitor_id):
        raise InvalidVisit("'visitor_id' must be 32 lowercase hex digits")
    when = now or utcnow()

    def work() -> bool:
        site = _site_or_raise(db, site_key)
        session = _latest_session(db, site, visitor_id)
        if (
            session is None
            or session.last_seen_at != session.started_at
            or session.started_at < when - dt.timedelta(seconds=UNSEEN_SECONDS)
            or session.hold_until is None
            or session.hold_until < when
        ):
            return False
        allocation.end_hold(db, session, when)
        session.hold_until = when
        session.left_at = when
        return True

    return run_with_retry(db, work)
