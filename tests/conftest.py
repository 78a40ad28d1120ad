"""Fixtures: every database test runs on SQLite and on PostgreSQL, each migrated with Alembic.

PostgreSQL gets a throwaway database per run (dropped at the end); tables are emptied after each test so
tests that need committed data across processes (allocation races, the scheduler) see real commits.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

import tracking.models  # noqa: F401
from hub import create_app
from tracking.db import Base, make_engine, make_session_factory
from tracking.migrate import upgrade

# Shared worlds whose fixtures several test modules use.
pytest_plugins = ["tests.romi_world", "tests.snippet_support"]

PG_ADMIN_URL = os.environ.get("OTKUDA_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
BACKENDS = [b.strip() for b in os.environ.get("OTKUDA_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]
TEST_ENCRYPTION_KEY = Fernet.generate_key().decode()


def _pg_admin() -> Engine:
    return make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'otkuda.db'}"
        upgrade(url)
        yield url
        return
    name = f"otkuda_test_{os.getpid()}_{secrets.token_hex(4)}"
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


def _empty_all_tables(engine: Engine) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(
                text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")
            )
        else:
            conn.execute(text("PRAGMA defer_foreign_keys=ON"))
            for t in tables:
                conn.execute(text(f'DELETE FROM "{t}"'))


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A session on a database that is empty when the test starts, and emptied after it."""
    session = make_session_factory(engine)()
    try:
        yield session
    finally:
        session.rollback()
        session.close()
        _empty_all_tables(engine)


def hub_app(database_url: str, tmp_path: Path, **overrides: object) -> Flask:
    """A hub on the test database; ``overrides`` change settings (limits, proxies, base URL)."""
    return create_app(
        {
            "DATABASE_URL": database_url,
            "INSTANCE_DIR": str(tmp_path / "instance"),
            "SECRET_KEY": "test-secret",
            "ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
            "BASE_URL": "http://hub.test",
            "TESTING": True,
            # Tests read the pages in English unless they ask for a language (test_i18n does).
            "DEFAULT_LANGUAGE": "en",
            **overrides,
        }
    )


@pytest.fixture
def make_hub(database_url: str, db: Session, tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Build hubs on the test database with settings of the test's choosing; their connections close after."""
    made: list[Flask] = []

    def make(**overrides: object) -> Flask:
        made.append(hub_app(database_url, tmp_path / f"hub{len(made)}", **overrides))
        return made[-1]

    yield make
    # Each hub has its own engine: close its connections now rather than at garbage collection, so a long
    # run does not exhaust the PostgreSQL server's connection slots.
    for hub in made:
        hub.extensions["otkuda.engine"].dispose()
        hub.extensions["otkuda.tracking_engine"].dispose()


@pytest.fixture
def app(make_hub: Callable[..., Flask]) -> Flask:
    return make_hub()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
