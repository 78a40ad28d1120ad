"""One agency must not be able to block another's calls by sending their (predictable) PBX call ids first."""

from __future__ import annotations

import datetime as dt
import enum
import secrets

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, Table, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tests import factories as h
from tests.factories import make_tenant
from tests.security.fresh_db import fresh_database
from tests.test_webhooks import _generic
from tracking.db import make_engine, make_session_factory
from tracking.migrate import alembic_config, upgrade
from tracking.models import Agency, Call, CallStatus, Client, StoredCallEvent, TelephonyIntegration


def test_a_call_id_sent_first_by_another_tenant_blocks_nothing(client, db: Session) -> None:
    attacker, victim = make_tenant(db, "Mallory"), make_tenant(db, "Victim")
    ia = h.make_integration(db, attacker, "generic", {"secret": "a-secret"})
    iv = h.make_integration(db, victim, "generic", {"secret": "v-secret"})
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start = {"event": "start", "call_id": "1764500000.42", "caller": "+79001234567", "called": "+74951110000"}
    forged = _generic(client, ia.integration_key, {**start, "at": now.isoformat()}, secret="a-secret")
    assert forged.status_code == 200
    end = {"event": "end", "call_id": "1764500000.42", "status": "missed"}
    _generic(client, ia.integration_key, {**end, "at": now.isoformat()}, secret="a-secret")

    real = _generic(client, iv.integration_key, {**start, "at": now.isoformat()}, secret="v-secret")
    assert real.status_code == 200
    answered = {
        **end,
        "status": "answered",
        "talk_seconds": 30,
        "at": (now + dt.timedelta(minutes=1)).isoformat(),
    }
    assert _generic(client, iv.integration_key, answered, secret="v-secret").status_code == 200

    db.expire_all()
    by_client = {c.client_id: c for c in db.scalars(select(Call))}
    assert set(by_client) == {attacker.client.id, victim.client.id}
    assert by_client[victim.client.id].integration_id == iv.id
    assert by_client[victim.client.id].status == CallStatus.ANSWERED
    # The attacker's own call did not absorb the victim's events.
    assert by_client[attacker.client.id].status == CallStatus.MISSED
    event = StoredCallEvent
    per_call = dict(db.execute(select(event.call_id, func.count()).group_by(event.call_id)).all())
    assert per_call == {by_client[attacker.client.id].id: 2, by_client[victim.client.id].id: 2}


def _insert(db: Session, model: type, **given: object) -> int:
    """A row written through the table as the database has it then, not the ORM model: later migrations
    add columns (clients.archived_at, sites.config_version, calls' target columns) that the schema under test
    does not have yet. The model's own defaults fill what ``given`` leaves out."""
    table = Table(model.__tablename__, MetaData(), autoload_with=db.connection())
    mapped = model.__table__.c
    values: dict[str, object] = {}
    for column in table.columns:
        default = mapped[column.name].default if column.name in mapped else None
        if default is not None and getattr(default, "is_scalar", False):
            values[column.name] = default.arg
        elif default is not None and getattr(default, "is_callable", False):
            values[column.name] = default.arg(None)
    values = {k: v.name if isinstance(v, enum.Enum) else v for k, v in values.items()}
    values.update({k: v for k, v in given.items() if k in table.c})
    row_id = db.execute(table.insert().values(**values)).inserted_primary_key
    db.commit()
    return int(row_id[0]) if row_id and row_id[0] is not None else 0


def _integration(db: Session, name: str) -> tuple[int, int]:
    """(client id, integration id) of a fresh agency's client with a generic PBX integration."""
    agency = _insert(db, Agency, name=f"{name} Agency")
    client = _insert(db, Client, agency_id=agency, name=f"{name} Client")
    integ = _insert(
        db,
        TelephonyIntegration,
        client_id=client,
        provider="generic",
        integration_key=secrets.token_urlsafe(24),
        secrets_encrypted="unused",
    )
    return client, integ


def _add_call(db: Session, integ: tuple[int, int], provider_call_id: str) -> None:
    client_id, integration_id = integ
    _insert(
        db,
        Call,
        client_id=client_id,
        integration_id=integration_id,
        provider="generic",
        provider_call_id=provider_call_id,
    )


def test_migration_keeps_calls_and_keys_them_per_integration(database_url, tmp_path) -> None:
    with fresh_database(database_url, tmp_path) as url:
        # The schema just before the change; rows are written through its tables as they are then.
        identity = "0011_call_identity_per_integration"
        before = ScriptDirectory.from_config(alembic_config(url)).get_revision(identity).down_revision
        upgrade(url, str(before))
        engine = make_engine(url)
        try:
            with make_session_factory(engine)() as db:
                ia, ib = _integration(db, "A"), _integration(db, "B")
                _add_call(db, ia, "same")
                _add_call(db, ib, "other")
                with pytest.raises(IntegrityError):  # the old key: one tenant blocks the other
                    _add_call(db, ib, "same")
                db.rollback()
            upgrade(url, identity)
            with make_session_factory(engine)() as db:
                calls = Table("calls", MetaData(), autoload_with=db.connection())
                kept = db.execute(
                    select(calls.c.integration_id, calls.c.provider_call_id).order_by(calls.c.id)
                ).all()
                assert [tuple(r) for r in kept] == [(ia[1], "same"), (ib[1], "other")]
                _add_call(db, ib, "same")
                with pytest.raises(IntegrityError):  # still one call per id within an integration
                    _add_call(db, ia, "same")
                db.rollback()
                assert db.scalar(select(func.count()).select_from(calls)) == 3
        finally:
            engine.dispose()
