"""One agency must not be able to block another's calls by sending their (predictable) PBX call ids first."""

from __future__ import annotations

import datetime as dt
import enum

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
from tracking.models import Call, CallStatus, StoredCallEvent, TelephonyIntegration


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


def _add_call(db: Session, integ, provider_call_id: str) -> None:
    # Written through the table as the database has it then, not the ORM model: later migrations may add
    # columns to calls that the schema under test does not have yet.
    table = Table("calls", MetaData(), autoload_with=db.connection())
    values: dict[str, object] = {}
    for column in table.columns:
        default = Call.__table__.c[column.name].default if column.name in Call.__table__.c else None
        if default is not None and getattr(default, "is_scalar", False):
            values[column.name] = default.arg
        elif default is not None and getattr(default, "is_callable", False):
            values[column.name] = default.arg(None)
    values = {k: v.name if isinstance(v, enum.Enum) else v for k, v in values.items()}
    values.update(
        client_id=integ.client_id,
        integration_id=integ.id,
        provider="generic",
        provider_call_id=provider_call_id,
    )
    db.execute(table.insert().values(**values))
    db.commit()


def test_migration_keeps_calls_and_keys_them_per_integration(database_url, tmp_path) -> None:
    with fresh_database(database_url, tmp_path) as url:
        # The schema just before the change; the ORM models below must fit it, so this migration is the
        # newest one that touches the tables the test writes.
        identity = "0011_call_identity_per_integration"
        before = ScriptDirectory.from_config(alembic_config(url)).get_revision(identity).down_revision
        upgrade(url, str(before))
        engine = make_engine(url)
        try:
            with make_session_factory(engine)() as db:
                a, b = make_tenant(db, "A"), make_tenant(db, "B")
                ia = h.make_integration(db, a, "generic", {"secret": "s"})
                ib = h.make_integration(db, b, "generic", {"secret": "s"})
                ia_id, ib_id = ia.id, ib.id
                _add_call(db, ia, "same")
                _add_call(db, ib, "other")
                with pytest.raises(IntegrityError):  # the old key: one tenant blocks the other
                    _add_call(db, ib, "same")
                db.rollback()
            upgrade(url, identity)
            with make_session_factory(engine)() as db:
                kept = db.execute(select(Call.integration_id, Call.provider_call_id).order_by(Call.id)).all()
                assert [tuple(r) for r in kept] == [(ia_id, "same"), (ib_id, "other")]
                _add_call(db, db.get(TelephonyIntegration, ib_id), "same")
                with pytest.raises(IntegrityError):  # still one call per id within an integration
                    _add_call(db, db.get(TelephonyIntegration, ia_id), "same")
                db.rollback()
                assert db.scalar(select(func.count()).select_from(Call)) == 3
        finally:
            engine.dispose()
