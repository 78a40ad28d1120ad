"""The transactional outbox: events become Delivery rows in the same transaction that produced them.

``install()`` subscribes to ``tracking.hooks``; every process that finalises calls or wins deals (the hub,
the scheduler) calls it once. A listener that fails raises, and the caller's transaction rolls back with it:
the event and its deliveries commit together or not at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from connectors.base import ItemKind
from connectors.webhook.events import EVENT_FOR_KIND
from jobs.contexts import connections_of_client
from jobs.providers import capabilities
from tracking import hooks
from tracking.db import rowcount, utcnow
from tracking.models import Call, Connection, ConnectionStatus, Delivery, DeliveryStatus

log = logging.getLogger(__name__)

CAPABILITY_FOR_KIND = {
    ItemKind.CALL: "push_calls",
    ItemKind.DEAL_WON: "push_deals",
    ItemKind.CALL_ATTRIBUTED: "push_attributions",
    ItemKind.NOTIFICATION: "push_notifications",
}


def accepts(conn: Connection, kind: ItemKind, payload: dict[str, Any]) -> bool:
    """The connection's own choices about what it receives, applied when deliveries are planned.

    ``target_calls_only``: calls go out only once they meet a target rule (conversion uploads).
    ``events``: the event names it subscribed to (webhooks: ``call.finalised``…; notifications:
    ``missed_call``…). A connection without ``events`` takes everything its connectors can take.
    """
    settings = conn.settings or {}
    if kind == ItemKind.CALL and settings.get("target_calls_only") and not payload.get("is_target"):
        return False
    events = settings.get("events")
    if events is None:
        return True
    if kind == ItemKind.NOTIFICATION and payload.get("event") == "test":
        return True  # a test goes to the one channel it was asked for, whatever that channel subscribes to
    name = payload.get("event") if kind == ItemKind.NOTIFICATION else EVENT_FOR_KIND.get(kind)
    return name in events


def enqueue(
    db: Session,
    *,
    client_id: int,
    kind: ItemKind,
    key: str,
    payload: dict[str, Any],
    only: Callable[[Connection], bool] | None = None,
) -> list[Delivery]:
    """Queue ``payload`` for every destination of the client that takes this kind (in ``db``'s transaction).

    Destinations are the client's connections that are not disabled (own and agency-shared) and, on each,
    the connectors that declare the capability. A connector whose module cannot be loaded here is still
    queued: the item then fails visibly in the worker instead of vanishing.
    """
    wanted = CAPABILITY_FOR_KIND[kind]
    created: list[Delivery] = []
    # A connection waiting for re-authorisation still gets its items: they wait, and go once it is back.
    waiting_ok = (ConnectionStatus.ACTIVE, ConnectionStatus.NEEDS_REAUTH)
    for conn in connections_of_client(db, client_id, statuses=waiting_ok):
        if (only is not None and not only(conn)) or not accepts(conn, kind, payload):
            continue
        for connector in conn.connectors or []:
            caps = capabilities(connector)
            if caps is not None and wanted not in caps:
                continue
            exists = db.scalar(
                select(Delivery.id).where(
                    Delivery.connection_id == conn.id, Delivery.connector == connector, Delivery.key == key
                )
            )
            if exists is not None:
                continue  # the same event queued twice: the key keeps it single
            delivery = Delivery(
                client_id=client_id,
                connection_id=conn.id,
                connector=connector,
                kind=kind.value,
                key=key,
                payload=payload,
                status=DeliveryStatus.PENDING,
                next_attempt_at=utcnow(),
            )
            db.add(delivery)
            created.append(delivery)
    if created:
        db.flush()
    return created


def _on_call_finalised(db: Session, event: hooks.CallFinalised) -> None:
    enqueue(db, client_id=event.client_id, kind=ItemKind.CALL, key=event.key, payload=event.payload)


def _on_deal_won(db: Session, event: hooks.DealWon) -> None:
    enqueue(db, client_id=event.client_id, kind=ItemKind.DEAL_WON, key=event.key, payload=event.payload)


def _on_call_attributed(db: Session, event: hooks.CallAttributed) -> None:
    enqueue(
        db, client_id=event.client_id, kind=ItemKind.CALL_ATTRIBUTED, key=event.key, payload=event.payload
    )


def _on_call_became_target(db: Session, event: hooks.CallBecameTarget) -> None:
    """A call met a target rule after it was finalised: the uploads that wait for target calls get it now.

    Other destinations were planned at finalisation (and their key keeps them single anyway).
    """
    from tracking.calls import call_payload, delivery_key

    call = db.get(Call, event.call_id)
    if call is None:
        return
    enqueue(
        db,
        client_id=event.client_id,
        kind=ItemKind.CALL,
        key=delivery_key(call),
        payload=call_payload(db, call),
        only=lambda conn: bool((conn.settings or {}).get("target_calls_only")),
    )


LISTENERS = (
    (hooks.call_finalised, _on_call_finalised),
    (hooks.deal_won, _on_deal_won),
    (hooks.call_attributed, _on_call_attributed),
    (hooks.call_became_target, _on_call_became_target),
)


def install() -> None:
    for hook, listener in LISTENERS:
        hook.connect(listener)
    from jobs import notify  # notifications plan their own outbox rows from the same events

    notify.install()


def uninstall() -> None:
    for hook, listener in LISTENERS:
        hook.disconnect(listener)
    from jobs import notify

    notify.uninstall()


RETRYABLE = (DeliveryStatus.DEAD, DeliveryStatus.RETRY, DeliveryStatus.SKIPPED)


def retry_now(db: Session, delivery: Delivery) -> bool:
    """A person asks to try again: dead, failing or skipped items go back to the queue, attempts reset.

    Items that are done or being sent are left alone (a retry must never cause a second delivery).
    """
    if delivery.status not in RETRYABLE:
        return False
    n = rowcount(
        db.execute(
            update(Delivery)
            .where(Delivery.id == delivery.id, Delivery.status.in_(RETRYABLE))
            .values(status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=utcnow(), claimed_by=None)
        )
    )
    db.refresh(delivery)
    return bool(n)
