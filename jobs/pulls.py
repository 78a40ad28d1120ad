"""Pulling from connectors: ad spend (replacing the days pulled) and CRM deals (firing ``deal_won``)."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from connectors.base import AuthRevoked, DealUpdate
from jobs.contexts import clients_of_connection, make_connector
from jobs.deliver import mark_needs_reauth, with_token_retry
from jobs.history import RunTally, recorded
from jobs.providers import capabilities
from jobs.runtime import Runtime
from tracking import hooks
from tracking.calls import call_payload
from tracking.db import utcnow
from tracking.models import (
    Call,
    Client,
    Connection,
    ConnectionStatus,
    Deal,
    DealStatus,
    Delivery,
    DeliveryStatus,
    PlatformSpend,
)

log = logging.getLogger(__name__)

CALL_KEY = re.compile(r"otkuda-call-(\d+)")
DEALS_OVERLAP = dt.timedelta(minutes=10)  # re-read a little behind the cursor: CRM clocks and commits lag


def sources(rt: Runtime, capability: str, connector: str | None = None) -> list[tuple[int, str]]:
    """(connection id, connector) for every active connection feeding a connector with ``capability``."""
    out = []
    with rt.sessions() as db:
        for conn in db.scalars(
            select(Connection).where(Connection.status == ConnectionStatus.ACTIVE).order_by(Connection.id)
        ):
            for name in conn.connectors or []:
                if connector is not None and name != connector:
                    continue
                caps = capabilities(name)
                if caps and capability in caps:
                    out.append((conn.id, name))
    return out


def _owner(db: Session, conn: Connection) -> int:
    clients = clients_of_connection(db, conn)
    if len(clients) != 1:
        raise ValueError(
            f"connection {conn.id} is shared with {len(clients)} clients: "
            "pulls need it to belong to exactly one client"
        )
    return clients[0]


def _pull(rt: Runtime, job: str, connection_id: int, connector: str, work: Callable[..., int]) -> RunTally:
    with recorded(rt, job, connector=connector, connection_id=connection_id) as tally:
        try:
            with rt.sessions() as db:
                conn = db.get(Connection, connection_id)
                assert conn is not None
                impl, ctx = make_connector(rt, db, conn, connector)
                client_id = _owner(db, conn)
            tally.items = work(impl, ctx.access_token, client_id)
            with rt.sessions() as db:
                db.execute(
                    update(Connection).where(Connection.id == connection_id).values(last_sync_at=utcnow())
                )
                db.commit()
        except AuthRevoked as exc:
            mark_needs_reauth(rt, connection_id, f"authorisation revoked: {exc}")
            tally.error(f"authorisation revoked: {exc}")
        except Exception as exc:
            log.warning("%s for %s@%s failed: %s", job, connector, connection_id, type(exc).__name__)
            tally.error(f"{type(exc).__name__}: {exc}")
    return tally


def pull_spend(
    rt: Runtime,
    start: dt.date,
    end: dt.date,
    *,
    connector: str | None = None,
    connection_id: int | None = None,
) -> list[RunTally]:
    """Pull spend for [start, end] from every spend source; the days pulled are replaced, not added to."""
    tallies = []
    for cid, name in sources(rt, "spend", connector):
        if connection_id is not None and cid != connection_id:
            continue

        def work(impl: Any, token: Any, client_id: int, cid: int = cid, name: str = name) -> int:
            rows = with_token_retry(lambda: list(impl.pull_spend(start, end)), token)
            with rt.sessions() as db:
                db.execute(
                    delete(PlatformSpend).where(
                        PlatformSpend.connection_id == cid,
                        PlatformSpend.platform == name,
                        PlatformSpend.day >= start,
                        PlatformSpend.day <= end,
                    )
                )
                for r in rows:
                    db.add(
                        PlatformSpend(
                            client_id=client_id,
                            connection_id=cid,
                            platform=name,
                            day=r.day,
                            campaign_id=r.campaign_id,
                            campaign_name=r.campaign_name,
                            ad_group_id=r.ad_group_id,
                            ad_group_name=r.ad_group_name,
                            keyword_id=r.keyword_id,
                            keyword=r.keyword,
                            impressions=r.impressions,
                            clicks=r.clicks,
                            cost=r.cost,
                            currency=r.currency,
                        )
                    )
                db.commit()
            return len(rows)

        tallies.append(_pull(rt, "spend", cid, name, work))
    return tallies


def days(start: dt.date, end: dt.date, step: int) -> Iterator[tuple[dt.date, dt.date]]:
    """[start, end] in chunks of ``step`` days, for backfills that show progress."""
    day = start
    while day <= end:
        last = min(end, day + dt.timedelta(days=step - 1))
        yield day, last
        day = last + dt.timedelta(days=1)


def _client_call(db: Session, client_id: int, call_id: int) -> Call | None:
    call = db.get(Call, call_id)
    # A key the CRM hands back is data from outside: never link a deal to another client's call.
    return call if call is not None and call.client_id == client_id else None


def _call_we_sent(db: Session, conn: Connection, client_id: int, external_id: str) -> Call | None:
    """The first call whose delivery to this connection came back with this CRM id (we created the deal,
    or added that call to it)."""
    key = db.scalar(
        select(Delivery.key)
        .where(
            Delivery.connection_id == conn.id,
            Delivery.kind == "call",
            Delivery.external_id == external_id,
            Delivery.status == DeliveryStatus.DONE,
        )
        .order_by(Delivery.id)
        .limit(1)
    )
    m = CALL_KEY.fullmatch(key or "")
    return _client_call(db, client_id, int(m.group(1))) if m else None


def _first_call_of(db: Session, client_id: int, phones: tuple[str, ...]) -> Call | None:
    """The caller's earliest call to this client: the one that brought the deal."""
    if not phones:
        return None
    return db.scalar(
        select(Call)
        .where(Call.client_id == client_id, Call.caller.in_(phones))
        .order_by(Call.called_at, Call.id)
        .limit(1)
    )


def upsert_deal(db: Session, conn: Connection, client_id: int, update_: DealUpdate) -> Deal:
    """Store the CRM's view of a deal; on its first move to won, fire ``deal_won`` in this transaction."""
    status = DealStatus(update_.status)
    deal = db.scalar(
        select(Deal).where(Deal.connection_id == conn.id, Deal.external_id == update_.external_id)
    )
    was_won = deal is not None and deal.status == DealStatus.WON
    if deal is None:
        deal = Deal(client_id=client_id, connection_id=conn.id, external_id=update_.external_id)
        db.add(deal)
    deal.status = status
    deal.amount = Decimal(update_.amount).quantize(Decimal("0.01"))
    deal.currency = update_.currency
    deal.name = update_.name[:255]
    deal.pipeline_id = update_.pipeline_id
    deal.status_id = update_.status_id
    deal.updated_at = update_.updated_at
    deal.raw = dict(update_.raw)
    if update_.contact_phones:
        deal.contact_phone = update_.contact_phones[0]
    call = None
    for key in update_.call_keys:
        m = CALL_KEY.fullmatch(key)
        if m and (found := _client_call(db, client_id, int(m.group(1)))) is not None:
            call = found
            break
    if call is None and deal.call_id is not None:
        call = _client_call(db, client_id, deal.call_id)
    if call is None:
        call = _call_we_sent(db, conn, client_id, update_.external_id)
    if call is None:
        call = _first_call_of(db, client_id, update_.contact_phones)
    if call is not None:
        deal.call_id = call.id
        deal.session_id = call.session_id
    if status != DealStatus.OPEN:
        deal.closed_at = update_.closed_at or update_.updated_at
    if status == DealStatus.WON and not was_won:
        deal.won_at = deal.closed_at
        db.flush()
        client = db.get(Client, client_id)
        key = f"otkuda-deal-{deal.id}"
        payload = {
            "deal_id": deal.id,
            "client_id": client_id,
            "key": key,
            "external_id": deal.external_id,
            "amount": str(deal.amount),
            "currency": deal.currency,
            "won_at": deal.won_at.isoformat() if deal.won_at else None,
            "caller": (call.caller if call else None) or deal.contact_phone,
            "call": call_payload(db, call) if call is not None else None,
            "timezone": client.timezone if client else "Europe/Moscow",
        }
        hooks.deal_won.fire(db, hooks.DealWon(client_id=client_id, deal_id=deal.id, key=key, payload=payload))
    return deal


def pull_deals(
    rt: Runtime,
    *,
    since: dt.datetime | None = None,
    connector: str | None = None,
    connection_id: int | None = None,
    initial: dt.timedelta = dt.timedelta(days=30),
) -> list[RunTally]:
    """Pull deals changed since ``since`` (default: the newest one we hold, a little overlapped)."""
    tallies = []
    for cid, name in sources(rt, "deals", connector):
        if connection_id is not None and cid != connection_id:
            continue

        def work(impl: Any, token: Any, client_id: int, cid: int = cid) -> int:
            with rt.sessions() as db:
                cursor = since
                if cursor is None:
                    newest = db.scalar(select(func.max(Deal.updated_at)).where(Deal.connection_id == cid))
                    cursor = newest - DEALS_OVERLAP if newest else utcnow() - initial
            updates = with_token_retry(lambda: list(impl.pull_deals(cursor)), token)
            with rt.sessions() as db:
                conn = db.get(Connection, cid)
                assert conn is not None
                # One transaction: a deal and the deliveries its win queues commit together.
                for u in updates:
                    upsert_deal(db, conn, client_id, u)
                db.commit()
            return len(updates)

        tallies.append(_pull(rt, "deals", cid, name, work))
    return tallies
