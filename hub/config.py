"""The Flask configuration, from ``tracking.settings.Settings``, with defaults that run out of the box."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from tracking.settings import Settings


def _persistent_secret(instance: Path, name: str, make: Any) -> str:
    """Read a secret kept in the instance folder, creating it (readable by the owner only) on first run."""
    path = instance / name
    if path.exists():
        return path.read_text().strip()
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


def load_config(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build the app configuration: ``tracking.settings.Settings`` (the environment), then generated
    defaults, then ``overrides``."""
    overrides = dict(overrides or {})
    env = Settings()
    instance = Path(overrides.pop("INSTANCE_DIR", None) or env.instance_dir)
    instance.mkdir(parents=True, exist_ok=True)
    cfg: dict[str, Any] = {
        "INSTANCE_DIR": str(instance),
        "DATABASE_URL": env.database_url or f"sqlite:///{instance / 'otkuda.db'}",
        # A read replica of DATABASE_URL for reports (optional); used only when it has caught up.
        "REPORTS_DATABASE_URL": env.reports_database_url or None,
        "SECRET_KEY": env.secret_key
        or _persistent_secret(instance, "secret_key", lambda: secrets.token_hex(32)),
        # Key for secrets kept in the database (OAuth tokens, webhook keys): a Fernet key.
        "ENCRYPTION_KEY": env.encryption_key
        or _persistent_secret(instance, "encryption_key", _new_fernet_key),
        "BASE_URL": env.base_url.rstrip("/"),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "TRACKING_MAX_BODY": env.tracking_max_body,
        "LOG_LEVEL": env.log_level,
        "DEFAULT_LANGUAGE": env.default_language,
        # How many reverse proxies of our own stand in front of the hub: X-Forwarded-For is believed for
        # exactly that many hops and no further (0: the peer address is the client).
        "TRUSTED_PROXIES": env.trusted_proxies,
        # Rate limits (hub.ratelimit). Counters live in Redis when a URL is given, else in the database.
        "RATELIMIT_STORAGE_URL": env.ratelimit_storage_url or env.redis_url or None,
        "RATELIMIT_ENABLED": env.ratelimit_enabled,
        "RATELIMIT_VISIT": env.ratelimit_visit,
        "RATELIMIT_VISIT_PER_SITE": env.ratelimit_visit_per_site,
        "RATELIMIT_BEACON": env.ratelimit_beacon,
        "RATELIMIT_LOGIN": env.ratelimit_login,
        "RATELIMIT_API": env.ratelimit_api,
        "LOGIN_FAILURES_PER_ACCOUNT": env.login_failures_per_account,
        "LOGIN_FAILURES_PER_IP": env.login_failures_per_ip,
        # Live pool holds one client address, and one visitor, may have in one pool (0: no cap).
        "POOL_HOLDS_PER_SOURCE": env.pool_holds_per_source,
        "POOL_HOLDS_PER_VISITOR": env.pool_holds_per_visitor,
        # Where a Twilio call goes when the database is down and the outage snapshot does not know the number.
        "TWILIO_FALLBACK_DIAL": env.twilio_fallback_dial or None,
    }
    cfg.update(overrides)
    # The session cookie goes only over https when the hub is reached over https.
    cfg.setdefault("SESSION_COOKIE_SECURE", str(cfg["BASE_URL"]).lower().startswith("https://"))
    return cfg


def _new_fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()
