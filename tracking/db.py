"""Engine, session factory and column types shared by every model.

Datetimes are stored as naive UTC and handed back timezone-aware, so SQLite (which keeps no zone)
and PostgreSQL behave the same and comparisons never mix naive and aware values.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from sqlalchemy import JSON, DateTime, MetaData, create_engine, event
from sqlalchemy.engine import Connection, CursorResult, Engine, Result
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def rowcount(result: Result[Any]) -> int:
    """How many rows an UPDATE, INSERT or DELETE touched (``Session.execute`` is typed as returning a plain
    ``Result``, which hides the cursor's ``rowcount``)."""
    return int(cast(CursorResult[Any], result).rowcount or 0)


def iso(value: dt.datetime | dt.date | None) -> str | None:
    """The one way a moment is written out: UTC with a ``Z`` (a date stays a date)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return value.isoformat()


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A DateTime that refuses naive input and always returns aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine with the settings the hub relies on for each backend."""
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": 30})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    _psycopg_statement_cache()
    kwargs.setdefault("pool_pre_ping", True)
    # An unreachable server fails in seconds rather than the system's TCP timeout: the Twilio voice webhook
    # must fall back in time to connect the caller.
    kwargs.setdefault("connect_args", {"connect_timeout": 5})
    return create_engine(url, **kwargs)


def _psycopg_statement_cache() -> None:
    """Let psycopg keep the parsed form of statements up to 16 KB (it keeps those up to 4 KB): the snippet's
    one-statement writes (tracking.visit_path) are longer, and re-parsing one cost more than running it."""
    try:
        from psycopg import _queries
    except ImportError:
        return
    if getattr(_queries, "MAX_CACHED_STATEMENT_LENGTH", 0) < 16384:
        _queries.MAX_CACHED_STATEMENT_LENGTH = 16384


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def is_postgres(session_or_engine: Session | Engine | Connection) -> bool:
    bind = session_or_engine.get_bind() if isinstance(session_or_engine, Session) else session_or_engine
    return bind.dialect.name == "postgresql"
