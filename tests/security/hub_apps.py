"""Hubs configured for an attack: the test database, with the settings a test wants to provoke."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

from hub import create_app
from tests.conftest import TEST_ENCRYPTION_KEY


def hub_app(database_url: str, tmp_path: Path, **overrides: Any) -> Flask:
    """A hub like the ``app`` fixture's, with ``overrides`` on top (limits, proxies, base URL)."""
    return create_app(
        {
            "DATABASE_URL": database_url,
            "INSTANCE_DIR": str(tmp_path / "instance"),
            "SECRET_KEY": "test-secret",
            "ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
            "BASE_URL": "http://hub.test",
            "TESTING": True,
            **overrides,
        }
    )
