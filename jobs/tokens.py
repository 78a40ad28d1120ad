"""Access tokens for connections: hand out a valid one, refresh race-free, notice revoked grants.

Refresh tokens may be single-use (amoCRM, Yandex return a new pair each time), so two workers refreshing
the same connection at once would burn it. A refresh therefore locks the connection row (``FOR UPDATE`` on
PostgreSQL; on SQLite a write that takes the database's write lock), re-reads it, and refreshes only if the
token it finds still needs it.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from connectors.base import AuthRevoked
from jobs import providers
from jobs.runtime import Runtime, setting
from tracking.crypto import SecretBox
from tracking.db import is_postgres, utcnow
from tracking.models import Connection, ConnectionStatus

log = logging.getLogger(__name__)

MIN_VALID = dt.timedelta(seconds=60)
OAUTH_TIMEOUT = 20.0  # seconds


class RefreshFailed(Exception):
    """The provider could not be reached or answered with a passing error; try again later."""


def lock_connection(db: Session, connection_id: int) -> Connection:
    """Lock one connection row for the rest of ``db``'s transaction and return its newest state."""
    if is_postgres(db):
        conn = db.scalars(
            select(Connection)
            .where(Connection.id == connection_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        return conn
    # SQLite has no row locks: a no-op write takes the database write lock, which serialises refreshes
    # across threads and processes until this transaction ends.
    db.execute(update(Connection).where(Connection.id == connection_id).values(id=Connection.id))
    return db.scalars(
        select(Connection).where(Connection.id == connection_id).execution_options(populate_existing=True)
    ).one()


def _expires_at(token: dict[str, Any]) -> dt.datetime | None:
    if token.get("expires_in") not in (None, ""):
        return utcnow() + dt.timedelta(seconds=int(token["expires_in"]))
    if token.get("expires_at"):
        return dt.datetime.fromtimestamp(int(token["expires_at"]), dt.UTC)
    return None


def store_token(box: SecretBox, conn: Connection, token: dict[str, Any]) -> None:
    """Keep a token response on the connection (encrypted). A missing refresh token keeps the old one."""
    conn.access_token_enc = box.seal(token["access_token"])
    if token.get("refresh_token"):
        conn.refresh_token_enc = box.seal(token["refresh_token"])
    conn.expires_at = _expires_at(token)
    if token.get("scope"):
        scope = token["scope"]
        conn.scopes = scope.split() if isinstance(scope, str) else list(scope)
    conn.status = ConnectionStatus.ACTIVE
    conn.status_reason = None


def _needs_refresh(conn: Connection, min_valid: dt.timedelta) -> bool:
    return conn.expires_at is not None and conn.expires_at <= utcnow() + min_valid


def oauth_session(provider: providers.ResolvedProvider, **kwargs: Any) -> OAuth2Session:
    # A timeout always: a refresh runs under the connection lock (on SQLite, the database write lock).
    kwargs.setdefault("default_timeout", OAUTH_TIMEOUT)
    return OAuth2Session(
        provider.client_id,
        provider.client_secret,
        token_endpoint_auth_method=provider.provider.token_endpoint_auth_method,
        **kwargs,
    )


def redirect_uri(config: Any) -> str:
    return str(setting(config, "BASE_URL")).rstrip("/") + "/oauth/callback"


def refresh_connection(
    rt: Runtime,
    connection_id: int,
    *,
    rejected_token: str | None = None,
    min_valid: dt.timedelta = MIN_VALID,
) -> str:
    """Return a valid access token, refreshing it if (after taking the lock) it still needs that.

    ``rejected_token`` is a token the API just refused: refresh unless someone already replaced it.
    Raises ``AuthRevoked`` (and marks the connection) when the grant is gone, ``RefreshFailed`` otherwise.
    """
    with rt.sessions() as db:
        conn = lock_connection(db, connection_id)
        if conn.status == ConnectionStatus.NEEDS_REAUTH:
            db.rollback()
            raise AuthRevoked(conn.status_reason or "the connection needs re-authorisation")
        current = rt.box.open(conn.access_token_enc)
        if rejected_token is not None and current != rejected_token and current:
            db.rollback()
            return current  # someone refreshed while we waited for the lock
        if rejected_token is None and current and not _needs_refresh(conn, min_valid):
            db.rollback()
            return current
        refresh_token = rt.box.open(conn.refresh_token_enc)
        if not refresh_token:
            _mark_reauth(db, conn, "no refresh token: connect the account again")
            raise AuthRevoked("no refresh token")
        provider = providers.resolve(rt.config, providers.connector_provider(conn.connectors[0]))
        try:
            token_url = providers.account_url(provider, provider.token_url, conn.account or {})
        except ValueError as exc:
            # The refresh token and the client secret would go to the host the account names.
            _mark_reauth(db, conn, f"{exc}: connect the account again")
            raise AuthRevoked(str(exc)) from None
        client = oauth_session(provider)
        try:
            # redirect_uri: amoCRM wants it on refresh; RFC 6749 servers ignore parameters they do not know.
            token = client.refresh_token(
                token_url,
                refresh_token=refresh_token,
                redirect_uri=redirect_uri(rt.config),
            )
        except OAuthError as exc:
            if exc.error in ("invalid_grant", "unauthorized_client", "invalid_client"):
                _mark_reauth(db, conn, f"refresh refused: {exc.error}")
                raise AuthRevoked(exc.error) from None
            db.rollback()
            raise RefreshFailed(f"refresh failed: {exc.error}") from None
        except Exception as exc:  # network trouble, 5xx with a non-OAuth body
            db.rollback()
            raise RefreshFailed(f"refresh failed: {type(exc).__name__}") from None
        finally:
            client.close()
        store_token(rt.box, conn, dict(token))
        db.commit()
        log.info("refreshed token of connection %s", connection_id)
        return token["access_token"]


def _mark_reauth(db: Session, conn: Connection, reason: str) -> None:
    conn.status = ConnectionStatus.NEEDS_REAUTH
    conn.status_reason = reason
    db.commit()
    log.warning("connection %s needs re-authorisation: %s", conn.id, reason)


def _stored(rt: Runtime, conn: Connection, min_valid: dt.timedelta) -> str | None:
    """The connection's stored token if it stays valid for ``min_valid``; None when it needs a refresh."""
    if conn.status == ConnectionStatus.NEEDS_REAUTH:
        raise AuthRevoked(conn.status_reason or "the connection needs re-authorisation")
    token = rt.box.open(conn.access_token_enc)
    if token and not _needs_refresh(conn, min_valid):
        return token
    return None


def access_token(rt: Runtime, connection_id: int, min_valid: dt.timedelta = MIN_VALID) -> str:
    """A token valid for at least ``min_valid``, refreshing first when it is about to expire."""
    with rt.sessions() as db:
        conn = db.get(Connection, connection_id)
        if conn is None:
            raise LookupError(f"no connection {connection_id}")
        token = _stored(rt, conn, min_valid)
        if token is not None:
            return token
    return refresh_connection(rt, connection_id, min_valid=min_valid)


def expiring(rt: Runtime, ahead: dt.timedelta) -> list[int]:
    """Active connections whose token expires within ``ahead`` and that can be refreshed."""
    with rt.sessions() as db:
        return list(
            db.scalars(
                select(Connection.id)
                .where(
                    Connection.status == ConnectionStatus.ACTIVE,
                    Connection.expires_at.is_not(None),
                    Connection.expires_at <= utcnow() + ahead,
                    Connection.refresh_token_enc.is_not(None),
                )
                .order_by(Connection.id)
            )
        )


def refresh_expiring(rt: Runtime, ahead: dt.timedelta = dt.timedelta(minutes=30)) -> tuple[int, list[str]]:
    """Refresh every active connection whose token expires within ``ahead``: (refreshed, errors)."""
    done, errors = 0, []
    for cid in expiring(rt, ahead):
        try:
            refresh_connection(rt, cid, min_valid=ahead)
            done += 1
        except (AuthRevoked, RefreshFailed, LookupError) as exc:
            errors.append(f"connection {cid}: {exc}")
    return done, errors


class TokenSource:
    """The ``access_token`` callable of an AccountContext, refreshed behind the connector's back.

    A token it handed out is handed out again without reading the connection row for up to ``REUSE``, and
    never closer than ``MIN_VALID`` to its expiry; a token the API refuses is refreshed at once
    (``refresh_after_rejection``) whatever its age, so a token replaced meanwhile by another process costs
    one refused request. Given the connection's row just read (``conn``), the first token comes from it.
    """

    REUSE = dt.timedelta(seconds=60)

    def __init__(self, rt: Runtime, connection_id: int, conn: Connection | None = None) -> None:
        self._rt = rt
        self._id = connection_id
        self.last: str | None = None
        self._reuse_until: dt.datetime | None = None
        self._row = conn

    def __call__(self) -> str:
        now = utcnow()
        if self.last is not None and self._reuse_until is not None and now < self._reuse_until:
            return self.last
        conn, self._row = self._row, None
        if conn is None:
            with self._rt.sessions() as db:
                conn = db.get(Connection, self._id)
                if conn is None:
                    raise LookupError(f"no connection {self._id}")
        token = _stored(self._rt, conn, MIN_VALID)
        if token is None:
            self.last = refresh_connection(self._rt, self._id)
            self._reuse_until = None  # its expiry is read with the row next time
            return self.last
        self.last = token
        until = now + self.REUSE
        if conn.expires_at is not None:
            until = min(until, conn.expires_at - MIN_VALID)
        self._reuse_until = until
        return token

    def refresh_after_rejection(self) -> str:
        self.last = refresh_connection(self._rt, self._id, rejected_token=self.last)
        self._reuse_until = None
        return self.last

    def __repr__(self) -> str:  # never show the token in logs or tracebacks
        return f"TokenSource(connection {self._id})"
