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
    }
    cfg.update(overrides)
    return cfg


def _new_fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()
