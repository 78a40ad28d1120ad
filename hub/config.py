"""Configuration from environment variables, with defaults that run out of the box."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any


def _instance_dir() -> Path:
    path = Path(os.environ.get("OTKUDA_INSTANCE_DIR", Path.cwd() / "instance"))
    path.mkdir(parents=True, exist_ok=True)
    return path


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
    """Build the app configuration: environment first, then generated defaults, then ``overrides``."""
    overrides = dict(overrides or {})
    instance = Path(overrides.pop("INSTANCE_DIR", None) or _instance_dir())
    instance.mkdir(parents=True, exist_ok=True)
    env = os.environ
    cfg: dict[str, Any] = {
        "INSTANCE_DIR": str(instance),
        "DATABASE_URL": env.get("OTKUDA_DATABASE_URL") or f"sqlite:///{instance / 'otkuda.db'}",
        "SECRET_KEY": env.get("OTKUDA_SECRET_KEY")
        or _persistent_secret(instance, "secret_key", lambda: secrets.token_hex(32)),
        # Key for secrets kept in the database (OAuth tokens, webhook keys): a Fernet key.
        "ENCRYPTION_KEY": env.get("OTKUDA_ENCRYPTION_KEY")
        or _persistent_secret(instance, "encryption_key", _new_fernet_key),
        "BASE_URL": env.get("OTKUDA_BASE_URL", "http://127.0.0.1:5000").rstrip("/"),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        # Largest JSON body the public tracking endpoints accept.
        "TRACKING_MAX_BODY": int(env.get("OTKUDA_TRACKING_MAX_BODY", 16 * 1024)),
        # How many reverse proxies of our own stand in front of the hub: X-Forwarded-For is believed for
        # exactly that many hops and no further (0: the peer address is the client).
        "TRUSTED_PROXIES": int(env.get("OTKUDA_TRUSTED_PROXIES", 0)),
        # Rate limits (hub.ratelimit). Counters live in Redis when a URL is given, else in the database.
        "RATELIMIT_STORAGE_URL": env.get("OTKUDA_RATELIMIT_STORAGE_URL")
        or env.get("OTKUDA_REDIS_URL")
        or None,
        "RATELIMIT_ENABLED": env.get("OTKUDA_RATELIMIT_ENABLED", "1").lower() not in ("0", "false", "no"),
        "RATELIMIT_VISIT": env.get("OTKUDA_RATELIMIT_VISIT", "120 per minute;2000 per hour"),
        "RATELIMIT_VISIT_PER_SITE": env.get("OTKUDA_RATELIMIT_VISIT_PER_SITE", "6000 per minute"),
        "RATELIMIT_BEACON": env.get("OTKUDA_RATELIMIT_BEACON", "600 per minute"),
        "RATELIMIT_LOGIN": env.get("OTKUDA_RATELIMIT_LOGIN", "30 per minute;300 per hour"),
        "RATELIMIT_API": env.get("OTKUDA_RATELIMIT_API", "1200 per minute"),
        "LOGIN_FAILURES_PER_ACCOUNT": env.get("OTKUDA_LOGIN_FAILURES_PER_ACCOUNT", "10 per 15 minutes"),
        "LOGIN_FAILURES_PER_IP": env.get("OTKUDA_LOGIN_FAILURES_PER_IP", "50 per hour"),
        # Live pool holds one client address, and one visitor, may have in one pool (0: no cap).
        "POOL_HOLDS_PER_SOURCE": int(env.get("OTKUDA_POOL_HOLDS_PER_SOURCE", 3)),
        "POOL_HOLDS_PER_VISITOR": int(env.get("OTKUDA_POOL_HOLDS_PER_VISITOR", 1)),
    }
    cfg.update(overrides)
    # The session cookie goes only over https when the hub is reached over https.
    cfg.setdefault("SESSION_COOKIE_SECURE", str(cfg["BASE_URL"]).lower().startswith("https://"))
    return cfg


def _new_fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()
