"""Pipeline fixtures: fake OAuth provider, fake destination, the test connector, a runtime."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors import registry
from jobs.outbox import install, uninstall
from jobs.runtime import Runtime
from tests.conftest import TEST_ENCRYPTION_KEY
from tests.fakes.destination import FakeDestination
from tests.fakes.oauth import GENERIC, FakeOAuth
from tests.pipeline.support import Fakes


@pytest.fixture
def fakes() -> Iterator[Fakes]:
    dest = FakeDestination().start()
    oauth = FakeOAuth(GENERIC, on_issue=dest.valid_tokens.add).start()
    yield Fakes(oauth, dest)
    dest.release.set()
    oauth.stop()
    dest.stop()


@pytest.fixture
def fake_connector() -> Iterator[str]:
    registry.CONNECTORS["fakedest"] = "tests.fakes.connector"
    install()
    yield "fakedest"
    uninstall()
    registry.CONNECTORS.pop("fakedest", None)


@pytest.fixture
def rt(database_url: str, engine: Any, fakes: Fakes, fake_connector: str) -> Runtime:
    config = {
        "DATABASE_URL": database_url,
        "ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        "BASE_URL": "http://hub.test",
        "DELIVERY_BACKOFF_BASE": 30,
        **fakes.config(),
    }
    return Runtime.from_config(config, engine=engine)
