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
        # Where a Twilio call goes when the database is down and the outage snapshot does not know the number.
        "TWILIO_FALLBACK_DIAL": env.get("OTKUDA_TWILIO_FALLBACK_DIAL") or None,
    }
    cfg.update(overrides)
    return cfg


def _new_fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()
