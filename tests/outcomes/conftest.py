"""Fixtures for outcomes: a runtime pointed at local fakes, with the outbox listening."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from jobs.outbox import install, uninstall
from jobs.runtime import Runtime
from tests.conftest import TEST_ENCRYPTION_KEY


@pytest.fixture
def outbox() -> Iterator[None]:
    install()
    yield
    uninstall()


@pytest.fixture
def rt_config(database_url: str) -> dict[str, Any]:
    return {
        "DATABASE_URL": database_url,
        "ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        "BASE_URL": "http://hub.test",
        "DELIVERY_BACKOFF_BASE": 30,
        # The fakes listen on 127.0.0.1, which production refuses.
        "WEBHOOK_ALLOW_PRIVATE": "1",
    }


@pytest.fixture
def rt(rt_config: dict[str, Any], engine: Any, outbox: None) -> Runtime:
    return Runtime.from_config(rt_config, engine=engine)
