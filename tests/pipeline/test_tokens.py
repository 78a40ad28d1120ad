"""Tokens: encrypted at rest, refreshed once under contention, and a revoked grant is noticed."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import select, text

from connectors.base import AuthRevoked
from jobs.tokens import access_token, refresh_connection, refresh_expiring
from tests.factories import make_tenant
from tests.pipeline.support import BOX, make_connection
from tracking.db import utcnow
from tracking.models import Connection, ConnectionStatus


def test_tokens_are_encrypted_at_rest(db, rt, fakes) -> None:
    t = make_tenant(db)
    conn = make_connection(db, t, fakes)
    token = access_token(rt, conn.id)
    raw_access, raw_refresh = db.execute(
        text("SELECT access_token_enc, refresh_token_enc FROM connections WHERE id = :id"), {"id": conn.id}
    ).one()
    assert token.startswith("at-")
    assert token not in raw_access and raw_access != token
    assert "rt-" not in raw_refresh
    assert BOX.open(raw_access) == token
    assert "key hidden" in repr(BOX)


def test_two_workers_refreshing_at_once_use_the_refresh_token_once(db, rt, fakes) -> None:
    t = make_tenant(db)
    conn = make_connection(db, t, fakes, expires_in=dt.timedelta(seconds=-5))  # already expired
    old_refresh = BOX.open(conn.refresh_token_enc)
    fakes.oauth.refresh_delay = 0.3  # a slow provider: the second worker arrives while the first waits
    results: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def worker() -> None:
        try:
            barrier.wait()
            results.append(access_token(rt, conn.id))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert fakes.oauth.refresh_uses[old_refresh] == 1
    assert sum(fakes.oauth.refresh_uses.values()) == 1
    assert len(set(results)) == 1 and results[0] in fakes.dest.valid_tokens
    db.refresh(conn)
    assert conn.status == ConnectionStatus.ACTIVE
    assert conn.expires_at > utcnow() + dt.timedelta(minutes=30)


def test_rejected_token_is_refreshed_once_even_when_both_saw_it_rejected(db, rt, fakes) -> None:
    t = make_tenant(db)
    conn = make_connection(db, t, fakes)
    stale = BOX.open(conn.access_token_enc)
    fakes.oauth.refresh_delay = 0.2
    got: list[str] = []
    barrier = threading.Barrier(3)

    def worker() -> None:
        barrier.wait()
        got.append(refresh_connection(rt, conn.id, rejected_token=stale))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sum(fakes.oauth.refresh_uses.values()) == 1
    assert len(set(got)) == 1 and got[0] != stale


def test_invalid_grant_marks_connection_needs_reauth(db, rt, fakes) -> None:
    t = make_tenant(db)
    conn = make_connection(db, t, fakes, expires_in=dt.timedelta(seconds=-5))
    fakes.oauth.revoked = True
    with pytest.raises(AuthRevoked):
        access_token(rt, conn.id)
    db.refresh(conn)
    assert conn.status == ConnectionStatus.NEEDS_REAUTH
    assert "invalid_grant" in conn.status_reason
    # Further attempts do not hammer the provider with a dead grant.
    before = len(fakes.oauth.token_requests)
    with pytest.raises(AuthRevoked):
        access_token(rt, conn.id)
    assert len(fakes.oauth.token_requests) == before


def test_refresh_job_renews_only_tokens_about_to_expire(db, rt, fakes) -> None:
    t = make_tenant(db)
    soon = make_connection(db, t, fakes, expires_in=dt.timedelta(minutes=5))
    later = make_connection(db, t, fakes, expires_in=dt.timedelta(days=5))
    soon_token, later_token = BOX.open(soon.access_token_enc), BOX.open(later.access_token_enc)
    done, errors = refresh_expiring(rt, dt.timedelta(minutes=30))
    assert (done, errors) == (1, [])
    db.expire_all()
    assert BOX.open(db.get(Connection, soon.id).access_token_enc) != soon_token
    assert BOX.open(db.get(Connection, later.id).access_token_enc) == later_token


def test_token_job_records_each_connection_in_its_history(db, rt, fakes, monkeypatch) -> None:
    import jobs.scheduler as scheduler
    from tracking.models import SyncRun

    t = make_tenant(db)
    ok = make_connection(db, t, fakes, expires_in=dt.timedelta(minutes=5))
    doomed = make_connection(db, t, fakes, expires_in=dt.timedelta(minutes=5))
    fakes.oauth.live_refresh.pop(BOX.open(doomed.refresh_token_enc), None)  # its grant was revoked
    monkeypatch.setattr(scheduler, "_RUNTIME", rt)
    scheduler.job_tokens()
    runs = {r.connection_id: r for r in db.scalars(select(SyncRun).where(SyncRun.job == "tokens"))}
    assert (runs[ok.id].items, runs[ok.id].errors) == (1, 0)
    assert runs[doomed.id].errors == 1 and "invalid_grant" in runs[doomed.id].error_text
    db.expire_all()
    assert db.get(Connection, doomed.id).status == ConnectionStatus.NEEDS_REAUTH
