"""Rate limits: Flask-Limiter over Redis when configured, else over the hub's own database.

Every gunicorn worker (and every hub behind one load balancer) must see the same counters, so the
in-memory storage is never used. ``RATELIMIT_STORAGE_URL`` (``OTKUDA_RATELIMIT_STORAGE_URL`` or
``OTKUDA_REDIS_URL``) names a Redis; without one the counters live in the ``rate_limit_counters`` table
through :class:`DatabaseStorage`, a storage for the ``limits`` package written here because the package
ships none over SQL (docs/decisions.md).

What is limited, per client address unless said otherwise (defaults in hub.config, each configurable):
the snippet's visit (also per site), heartbeat and release; the login form; every REST API request; and
failed logins per account and per address (:func:`login_blocked`, :func:`login_failed`).

The client address is ``request.remote_addr`` after ``ProxyFix`` has taken exactly
``TRUSTED_PROXIES`` hops off ``X-Forwarded-For`` (see :func:`install_proxy_fix`): a header the client
wrote itself is never believed.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import random
import time
from typing import Any

from flask import Flask, Response, current_app, jsonify, render_template, request
from flask_babel import gettext
from flask_limiter import Limiter, RequestLimit
from limits import RateLimitItem, parse_many
from limits.storage import Storage
from sqlalchemy import case, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.middleware.proxy_fix import ProxyFix

from tracking.models import RateLimitCounter

MACHINE_PREFIXES = ("/api/", "/t/", "/hooks/")
# One in this many increments also deletes windows that have ended, so the table stays small.
_SWEEP_ONE_IN = 200


class DatabaseStorage(Storage):
    """Fixed-window counters in ``rate_limit_counters``, one row per limit and key.

    An increment is one ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` (PostgreSQL and SQLite ≥ 3.35),
    atomic across processes: a window that has ended restarts at ``amount``. It runs on its own
    connection and commits at once, outside the request's transaction.
    """

    STORAGE_SCHEME = ["otkuda+db"]

    def __init__(
        self, uri: str | None = None, wrap_exceptions: bool = False, *, engine: Engine, **_: Any
    ) -> None:
        super().__init__(uri, wrap_exceptions)
        self.engine = engine

    @property
    def base_exceptions(self) -> type[Exception]:
        return SQLAlchemyError

    def _insert(self) -> Any:
        return (pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert)(RateLimitCounter)

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        table = RateLimitCounter.__table__
        ended = table.c.expires_at <= now
        stmt = self._insert().values(key=key, count=amount, expires_at=now + expiry)
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "count": case((ended, amount), else_=table.c.count + amount),
                "expires_at": case((ended, now + expiry), else_=table.c.expires_at),
            },
        ).returning(table.c.count)
        with self.engine.begin() as conn:
            count = conn.execute(stmt).scalar_one()
            if random.randrange(_SWEEP_ONE_IN) == 0:
                conn.execute(delete(RateLimitCounter).where(RateLimitCounter.expires_at <= now))
        return int(count)

    def get(self, key: str) -> int:
        with self.engine.connect() as conn:
            count = conn.scalar(
                select(RateLimitCounter.count).where(
                    RateLimitCounter.key == key, RateLimitCounter.expires_at > time.time()
                )
            )
        return int(count or 0)

    def get_expiry(self, key: str) -> float:
        with self.engine.connect() as conn:
            expires = conn.scalar(select(RateLimitCounter.expires_at).where(RateLimitCounter.key == key))
        return float(expires) if expires is not None and expires > time.time() else time.time()

    def check(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.scalar(select(func.count()).select_from(RateLimitCounter))
            return True
        except SQLAlchemyError:
            return False

    def reset(self) -> int | None:
        with self.engine.begin() as conn:
            return conn.execute(delete(RateLimitCounter)).rowcount

    def clear(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(RateLimitCounter).where(RateLimitCounter.key == key))


def client_ip() -> str:
    """The caller's address as the trusted proxies reported it (never a header the caller wrote)."""
    return request.remote_addr or "unknown"


def source_key(secret: str, address: str) -> str:
    """A keyed hash of a client address: enough to count per source, useless to anyone reading the DB."""
    return hmac.new(secret.encode(), address.encode(), hashlib.sha256).hexdigest()[:32]


def install_proxy_fix(app: Flask) -> None:
    """Believe ``X-Forwarded-For``/``-Proto`` only as far as ``TRUSTED_PROXIES`` hops of our own proxies."""
    hops = int(app.config["TRUSTED_PROXIES"])
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]


def _configured(name: str) -> Any:
    return lambda: current_app.config[name]


def _site_key() -> str:
    return "site:" + str((request.view_args or {}).get("site_key", ""))


def _retry_after(reset_at: float) -> int:
    return max(1, math.ceil(reset_at - time.time()))


def too_many(retry_after: int) -> Response:
    """The 429 every limit answers: the project's error shape for machines, the login page for people."""
    message = f"Too many requests; try again in {retry_after} seconds."
    if request.path.startswith(MACHINE_PREFIXES):
        resp = jsonify(error="too_many_requests", message=message)
    else:
        shown = gettext("Too many requests; try again in %(n)s seconds.", n=retry_after)
        resp = Response(render_template("login.html", error=shown), mimetype="text/html")
    resp.status_code = 429
    resp.headers["Retry-After"] = str(retry_after)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _on_breach(limit: RequestLimit) -> Response:
    return too_many(_retry_after(limit.window.reset_time))


def init_ratelimit(app: Flask) -> Limiter:
    """Attach this app's limiter: storage from the configuration, the limits of each endpoint."""
    storage_url = app.config.get("RATELIMIT_STORAGE_URL")
    # The hot path's engine: autocommit and no ping on checkout, so an increment is one round trip.
    engine = app.extensions["otkuda.tracking_engine"]
    app.config.setdefault("RATELIMIT_ENABLED", True)
    limiter = Limiter(
        key_func=client_ip,
        storage_uri=storage_url or "otkuda+db://",
        storage_options={} if storage_url else {"engine": engine},
        strategy="fixed-window",
        key_prefix=app.config.get("RATELIMIT_KEY_PREFIX", "otkuda"),
        # A storage outage must not take the snippet or the login page down with it.
        swallow_errors=True,
        on_breach=_on_breach,
    )
    limiter.init_app(app)
    app.extensions["otkuda.limiter"] = limiter

    per_endpoint: list[tuple[str, str, Any, list[str] | None]] = [
        ("public.visit", "RATELIMIT_VISIT", client_ip, None),
        ("public.visit", "RATELIMIT_VISIT_PER_SITE", _site_key, None),
        ("public.heartbeat", "RATELIMIT_BEACON", client_ip, None),
        ("public.release", "RATELIMIT_BEACON", client_ip, None),
        ("web.login", "RATELIMIT_LOGIN", client_ip, ["POST"]),
    ]
    for endpoint, setting, key_func, methods in per_endpoint:
        view: Any = app.view_functions[endpoint]
        app.view_functions[endpoint] = limiter.limit(
            _configured(setting), key_func=key_func, methods=methods
        )(view)
    api: Any = app.blueprints["api"]
    limiter.limit(_configured("RATELIMIT_API"))(api)
    return limiter


def _failure_limits(email: str) -> list[tuple[RateLimitItem, str]]:
    cfg = current_app.config
    prefix = cfg.get("RATELIMIT_KEY_PREFIX", "otkuda")
    keys = {
        "LOGIN_FAILURES_PER_ACCOUNT": "account:" + source_key(cfg["SECRET_KEY"], email.strip().lower()),
        "LOGIN_FAILURES_PER_IP": "ip:" + client_ip(),
    }
    return [
        (item, f"{prefix}/login-failures/{key}")
        for setting, key in keys.items()
        for item in parse_many(cfg[setting])
    ]


def login_blocked(email: str) -> int | None:
    """Seconds to wait when this account or this address has failed too often lately, else None.

    Checked before the password, so a guess made while blocked tells nothing even when right.
    """
    limiter: Limiter = current_app.extensions["otkuda.limiter"]
    if not limiter.enabled:
        return None
    try:
        for item, key in _failure_limits(email):
            if not limiter.limiter.test(item, key):
                return _retry_after(limiter.limiter.get_window_stats(item, key).reset_time)
    except Exception:
        current_app.logger.exception("login throttle unavailable")
    return None


def login_failed(email: str) -> None:
    """Count a failed login against the account and the address."""
    limiter: Limiter = current_app.extensions["otkuda.limiter"]
    if not limiter.enabled:
        return
    try:
        for item, key in _failure_limits(email):
            limiter.limiter.hit(item, key)
    except Exception:
        current_app.logger.exception("login throttle unavailable")
