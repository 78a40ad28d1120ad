"""The database as the hub sees it: one engine per app, one SQLAlchemy session per request."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from tracking.db import make_engine, make_session_factory


def init_db(app: Flask) -> None:
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["otkuda.engine"] = engine
    # The snippet's hot path (tracking.visit_path) has its own pool: autocommit, and no ping on checkout,
    # which would cost a round trip per page view (a connection found dead is retried once instead).
    app.extensions["otkuda.tracking_engine"] = make_engine(
        app.config["DATABASE_URL"], isolation_level="AUTOCOMMIT", pool_pre_ping=False
    )
    app.extensions["otkuda.sessions"] = make_session_factory(engine)
    replica = app.config.get("REPORTS_DATABASE_URL")
    app.extensions["otkuda.report_sessions"] = make_session_factory(make_engine(replica)) if replica else None

    @app.teardown_appcontext
    def _close_session(exc: BaseException | None) -> None:
        for name in ("db_session", "reports_session"):
            session: Session | None = g.pop(name, None)
            if session is not None:
                if exc is not None:
                    session.rollback()
                session.close()


def tracking_engine() -> Engine:
    return current_app.extensions["otkuda.tracking_engine"]


def session_factory() -> sessionmaker[Session]:
    return current_app.extensions["otkuda.sessions"]


def db() -> Session:
    """The request's SQLAlchemy session (created on first use, closed at teardown)."""
    if "db_session" not in g:
        g.db_session = session_factory()()
    return g.db_session


def reports_db() -> Session | None:
    """A session on the reports replica for this request, when one is configured."""
    factory = current_app.extensions.get("otkuda.report_sessions")
    if factory is None:
        return None
    if "reports_session" not in g:
        g.reports_session = factory()
    return g.reports_session
