"""What a worker keeps between pushes (HTTP sessions per destination, the token within a serve) changes
nothing about what each account receives, with which token, or how a refused token is replaced."""

from __future__ import annotations

import collections

import requests
from sqlalchemy import select

from connectors.http import KeptSession, SessionShelf
from jobs.deliver import DeliverSettings, Worker
from jobs.tokens import refresh_connection
from tests.factories import make_tenant
from tests.pipeline.support import BOX, call_payload, make_connection
from tracking import hooks
from tracking.models import Connection, Delivery, DeliveryStatus


def queue_calls(db, client_id: int, first: int, n: int) -> list[str]:
    for call_id in range(first, first + n):
        payload = call_payload(call_id, client_id)
        hooks.call_finalised.fire(db, hooks.CallFinalised(client_id, call_id, payload["key"], payload))
    db.commit()
    return [f"otkuda-call-{i}" for i in range(first, first + n)]


def test_kept_sessions_send_each_accounts_own_token_on_its_own_connection(db, rt, fakes) -> None:
    t = make_tenant(db)
    a = make_connection(db, t, fakes)
    b = make_connection(db, t, fakes)
    token = {BOX.open(a.access_token_enc): a.id, BOX.open(b.access_token_enc): b.id}
    worker = Worker(rt, "w1", DeliverSettings(batch_size=1))
    keys = queue_calls(db, t.client.id, 1, 2)
    assert worker.run_once().done == 4
    keys += queue_calls(db, t.client.id, 3, 2)  # a second serve of each destination, same worker
    assert worker.run_once().done == 4

    # Every item arrived once at each account, each time with that account's token.
    by_account = collections.defaultdict(list)
    for uid, bearer, _port in fakes.dest.pushes:
        by_account[token[bearer]].append(uid)
    assert {k: sorted(v) for k, v in by_account.items()} == {a.id: sorted(keys), b.id: sorted(keys)}
    # Each account's pushes went over one connection of its own, kept from the first serve to the second.
    ports = collections.defaultdict(set)
    for _uid, bearer, port in fakes.dest.pushes:
        ports[token[bearer]].add(port)
    assert all(len(p) == 1 for p in ports.values())
    assert ports[a.id].isdisjoint(ports[b.id])


def test_a_token_replaced_during_a_serve_is_refused_once_then_the_new_one_is_used(db, rt, fakes) -> None:
    t = make_tenant(db)
    conn = make_connection(db, t, fakes)
    first = BOX.open(conn.access_token_enc)
    replaced: list[str] = []

    def another_process_refreshes() -> None:
        # After the first push, the scheduler refreshes the token and the platform stops taking the old one.
        if not replaced:
            replaced.append(refresh_connection(rt, conn.id, rejected_token=first))
            fakes.dest.valid_tokens.discard(first)

    fakes.dest.after_push = another_process_refreshes
    keys = queue_calls(db, t.client.id, 1, 3)
    stats = Worker(rt, "w1", DeliverSettings(batch_size=1)).run_once()

    assert stats.done == 3
    assert fakes.dest.arrivals == keys  # each once, in order
    assert [bearer for _uid, bearer, _port in fakes.dest.pushes] == [first, replaced[0], replaced[0]]
    # The refused request made no refresh of its own: the single-use refresh token was used once.
    assert sum(fakes.oauth.refresh_uses.values()) == 1
    assert fakes.dest.refused <= 1
    db.expire_all()
    assert {d.status for d in db.scalars(select(Delivery))} == {DeliveryStatus.DONE}
    assert BOX.open(db.get(Connection, conn.id).access_token_enc) == replaced[0]


def test_a_shelf_lends_each_session_to_one_user_and_keeps_few_and_fresh() -> None:
    now = [0.0]
    shelf = SessionShelf(keep=2, idle=10.0, clock=lambda: now[0])
    first = shelf.take("a")
    assert isinstance(first, KeptSession)
    assert shelf.take("a") is not first  # in use: a second user of the same key gets its own
    shelf.give_back("a", first)
    assert shelf.take("a") is first
    shelf.give_back("a", first)
    shelf.give_back("b", requests.Session())
    shelf.give_back("c", requests.Session())
    assert len(shelf) == 2
    assert shelf.take("a") is not first  # the least recently used went when a third was kept
    now[0] = 11.0
    stale = shelf.take("c")
    assert isinstance(stale, KeptSession) and len(shelf) == 1  # idle too long: a new one instead
    broken = shelf.take("b")
    shelf.give_back("b", broken, keep=False)
    assert shelf.take("b") is not broken
