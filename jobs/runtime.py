"""What a job needs outside a web request: configuration, the database and the secret box."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from tracking.crypto import SecretBox
from tracking.db import make_engine, make_session_factory
from tracking.settings import Settings


def setting(config: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """A setting from the app config, else ``tracking.settings.Settings`` (the ``OTKUDA_<NAME>`` environment
    variable or the declared default). Names outside ``Settings`` are the connectors' OAuth family
    (``OTKUDA_<PROVIDER>_*``), read from the environment, else ``default``."""
    for key in (name, f"OTKUDA_{name}"):
        if key in config and config[key] not in (None, ""):
            return config[key]
    if name.lower() in Settings.model_fields:
        return getattr(Settings(), name.lower())
    value = os.environ.get(f"OTKUDA_{name}")
    return default if value in (None, "") else value


@dataclass
class Runtime:
    config: Mapping[str, Any]
    engine: Engine
    sessions: sessionmaker[Session]
    box: SecretBox

    @classmethod
    def from_config(cls, config: Mapping[str, Any], engine: Engine | None = None) -> Runtime:
        engine = engine or make_engine(config["DATABASE_URL"])
        return cls(
            config=config,
            engine=engine,
            sessions=make_session_factory(engine),
            box=SecretBox(config["ENCRYPTION_KEY"]),
        )

    def setting(self, name: str, default: Any = None) -> Any:
        return setting(self.config, name, default)
