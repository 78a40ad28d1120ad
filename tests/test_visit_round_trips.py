"""How many database round trips the snippet's endpoints cost: a change that adds one fails here.

Every statement the hub's engines send is counted, and so are what the driver sends around them: a COMMIT,
the BEGIN psycopg sends before the first statement of a transaction, and a pool's ping on checkout. On
SQLite nothing crosses a network; the same count is kept as a ceiling on statements.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from tests.factories import make_pool, make_tenant
from tests.test_public_endpoints import post
from tracking import accounts
from tracking.channels import default_channel
from tracking.db import utcnow
from tracking.models import FallbackEvent, Site, VisitSession

# Round trips per request on PostgreSQL (the aim is at most 4 for a new visit and 2 for the others) and
# statements on SQLite, where a write is BEGIN IMMEDIATE ... COMMIT around the statements.
BUDGET = {
    "postgresql": {"new": 2, "repeat": 2, "heartbeat": 2, "release": 2, "fallback": 2, "static": 2},
    "sqlite": {"new": 9, "repeat": 6, "heartbeat": 6, "release": 6, "fallback": 8, "static": 2},
}
AIM = {"new": 4, "repeat": 2, "heartbeat": 2, "release": 2, "fallback": 4, "static": 4}


class RoundTrips:
    def __init__(self, engines: list[Engine]) -> None:
        self.count = 0
        self.statements: list[str] = []
        for engine in engines:
            postgres = engine.dialect.name == "postgresql"
            event.listen(engine, "before_cursor_execute", self._statement)
            event.listen(engine, "commit", self._commit)
            if postgres:
                event.listen(engine, "begin", self._begin)
            if getattr(engine.pool, "_pre_ping", False):
                event.listen(engine.pool, "checkout", self._ping)

    def _statement(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        self.count += 1
        self.statements.append(statement.split("\n")[0][:100])

    def _commit(self, conn: Any) -> None:
        if not _autocommit(conn):
            self.count += 1
            self.statements.append("COMMIT")

    def _begin(self, conn: Any) -> None:
        # psycopg opens a transaction with its own BEGIN before the first statement, unless in autocommit.
        if not _autocommit(conn):
            self.count += 1
            self.statements.append("BEGIN")

    def _ping(self, *_: Any) -> None:
        self.count += 1
        self.statements.append("(ping)")

    def measure(self, send: Any) -> int:
        self.count, self.statements = 0, []
        send()
        return self.count


def _autocommit(conn: Any) -> bool:
    return bool(getattr(conn.connection.dbapi_connection, "autocommit", False)) or (
        conn.dialect.name == "sqlite" and conn.connection.dbapi_connection.isolation_level is None
    )


@pytest.fixture
def app(make_hub):
    # Rate-limit counters are measured on their own (test_each_rate_limit_window_is_one_round_trip): with
    # Redis configured they cost the database nothing. Two holds per address: the third visitor below is
    # refused by the cap, which the hot path answers with the fallback number.
    return make_hub(RATELIMIT_ENABLED=False, POOL_HOLDS_PER_SOURCE=2)


@pytest.fixture
def trips(app) -> Iterator[RoundTrips]:
    yield RoundTrips([app.extensions["otkuda.engine"], app.extensions["otkuda.tracking_engine"]])


def _tenant(db):
    tenant = make_tenant(db, "Acme")
    tenant.site.domains = ["acme.example"]
    default_channel(db, tenant.client.id)  # else the first visit creates it, which changes the setup
    db.commit()
    return tenant


def _visit(client, key: str, vid: str) -> dict[str, Any]:
    resp = post(client, f"/t/v1/{key}/visit", {"visitor_id": vid})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()


def test_round_trips_per_request(app, client, db, trips) -> None:
    tenant = _tenant(db)
    make_pool(db, tenant.site, 3)
    key = tenant.site.site_key
    budget = BUDGET[db.get_bind().dialect.name]
    _visit(client, key, "a" * 32)  # loads the site's setup into this process's cache
    used: dict[str, int] = {}
    new: dict[str, Any] = {}
    used["new"] = trips.measure(lambda: new.update(_visit(client, key, "b" * 32)))
    assert new["number"] is not None
    used["repeat"] = trips.measure(lambda: _visit(client, key, "b" * 32))
    sid = {"session_id": new["session_id"]}
    used["heartbeat"] = trips.measure(lambda: post(client, f"/t/v1/{key}/heartbeat", sid))
    used["release"] = trips.measure(lambda: post(client, f"/t/v1/{key}/release", sid))
    # This address holds two numbers now: the next visitor from it gets the fallback and an event says so.
    fell_back: dict[str, Any] = {}
    used["fallback"] = trips.measure(lambda: fell_back.update(_visit(client, key, "c" * 32)))
    assert fell_back["number"] is not None
    assert db.query(FallbackEvent).count() == 1
    statements = trips.statements
    for name, n in used.items():
        assert n <= budget[name], (name, n, "\n".join(statements))
        assert n <= AIM[name] or db.get_bind().dialect.name == "sqlite", (name, n)


def test_static_number_visit_is_one_write(app, client, db, trips) -> None:
    from tracking.models import Channel, TrackingNumber

    tenant = make_tenant(db, "Acme")
    tenant.site.domains = ["acme.example"]
    channel = Channel(client_id=tenant.client.id, name="Direct", position=10_000, is_default=True)
    db.add(channel)
    db.flush()
    db.add(TrackingNumber(client_id=tenant.client.id, e164="+74950000001", channel_id=channel.id))
    db.commit()
    key = tenant.site.site_key
    _visit(client, key, "a" * 32)
    answer: dict[str, Any] = {}
    n = trips.measure(lambda: answer.update(_visit(client, key, "d" * 32)))
    assert answer["number"]["e164"] == "+74950000001"
    assert n <= BUDGET[db.get_bind().dialect.name]["static"], trips.statements


def test_a_setup_change_reaches_the_cache(app, client, db) -> None:
    """The cached setup is reloaded when a person changes it: here the site's domains."""
    tenant = _tenant(db)
    make_pool(db, tenant.site, 1)
    key = tenant.site.site_key
    _visit(client, key, "a" * 32)
    other = "https://other.example"
    assert post(client, f"/t/v1/{key}/visit", {"visitor_id": "e" * 32}, origin=other).status_code == 403
    tenant.site.domains = ["acme.example", "other.example"]
    db.commit()
    assert post(client, f"/t/v1/{key}/visit", {"visitor_id": "e" * 32}, origin=other).status_code == 200


def test_each_rate_limit_window_is_one_round_trip(make_hub, db) -> None:
    """With the counters in the database, every limit window of a request adds exactly one statement."""
    hub = make_hub(RATELIMIT_VISIT="1000 per minute", RATELIMIT_VISIT_PER_SITE="1000 per minute")
    client = hub.test_client()
    trips = RoundTrips([hub.extensions["otkuda.engine"], hub.extensions["otkuda.tracking_engine"]])
    tenant = _tenant(db)
    make_pool(db, tenant.site, 2)
    key = tenant.site.site_key
    _visit(client, key, "a" * 32)
    n = trips.measure(lambda: _visit(client, key, "b" * 32))
    counters = [s for s in trips.statements if "rate_limit_counters" in s]
    hot_path = BUDGET[db.get_bind().dialect.name]["new"]
    assert len(counters) == 2 and n == len(counters) + hot_path, trips.statements


def test_a_pool_change_reaches_the_cache(app, client, db) -> None:
    """Turning a pool off (a change to another table than the site's) reaches every worker's cache too."""
    tenant = _tenant(db)
    pool = make_pool(db, tenant.site, 2, fallback=False)
    key = tenant.site.site_key
    assert _visit(client, key, "a" * 32)["number"] is not None
    pool.active = False
    db.commit()
    assert _visit(client, key, "f" * 32)["number"] is None


def test_no_free_number_of_the_channel_goes_the_full_way(app, client, db) -> None:
    """With every number held the hot path writes nothing and the full implementation answers, in the
    allocation order of tracking.allocation: the number of a holder that has left is reclaimed."""
    tenant = _tenant(db)
    pool = make_pool(db, tenant.site, 1)
    key = tenant.site.site_key
    first = _visit(client, key, "a" * 32)
    assert first["number"] is not None
    # Still on the page: its number is not reclaimed, the next visitor is shown the fallback number.
    fell_back = _visit(client, key, "b" * 32)
    assert fell_back["number"]["e164"] != first["number"]["e164"]
    db.expire_all()
    assert db.query(FallbackEvent).filter_by(pool_id=pool.id).count() == 1
    # The first visitor leaves: a new visitor takes its number rather than the fallback one.
    assert post(client, f"/t/v1/{key}/release", {"session_id": first["session_id"]}).status_code == 200
    third = _visit(client, key, "c" * 32)
    assert third["number"]["e164"] == first["number"]["e164"]
    db.expire_all()
    assert db.query(FallbackEvent).filter_by(pool_id=pool.id).count() == 1
    assert db.query(VisitSession).filter_by(site_id=tenant.site.id).count() == 3


def test_archiving_the_client_reaches_the_cache(app, client, db) -> None:
    """An archived client's sites hand out no number on the hot path either, and restoring it brings the
    numbers back, without a restart: the archive bumps the sites' config versions."""
    tenant = _tenant(db)
    make_pool(db, tenant.site, 2)
    key = tenant.site.site_key
    assert _visit(client, key, "a" * 32)["number"] is not None  # the setup is cached now
    version = tenant.site.config_version
    accounts.set_archived(tenant.client, True, utcnow())
    db.commit()
    db.expire_all()
    assert db.get(Site, tenant.site.id).config_version > version
    assert _visit(client, key, "b" * 32)["number"] is None
    accounts.set_archived(tenant.client, False, utcnow())
    db.commit()
    assert _visit(client, key, "c" * 32)["number"] is not None
