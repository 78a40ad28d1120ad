"""In-process hooks fired by the domain inside its own database transaction.

The delivery pipeline subscribes to them to queue outbox rows in the *same* transaction as the event,
so no event can be lost between a call being finalised and its deliveries being queued; the domain
itself never imports the pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class CallFinalised:
    client_id: int
    call_id: int
    key: str  # stable delivery key, "otkuda-call-<id>"
    payload: dict[str, Any]  # the CallPayload documented in connectors.base


@dataclass(frozen=True)
class DealWon:
    client_id: int
    deal_id: int
    key: str  # "otkuda-deal-<id>"
    payload: dict[str, Any]  # the DealPayload documented in connectors.base


@dataclass(frozen=True)
class CallAttributed:
    """A finalised call's source changed (an operator's promo code or channel, a late event)."""

    client_id: int
    call_id: int
    key: str  # "otkuda-attribution-<attribution change id>": one per change
    payload: dict[str, Any]  # the CallPayload after the change, plus "previous": {method, channel}


@dataclass(frozen=True)
class CallBecameTarget:
    """A finalised call met a target rule after it was finalised (tags added, a rule changed)."""

    client_id: int
    call_id: int


Listener = Callable[[Session, Any], None]


class Hook:
    def __init__(self, name: str) -> None:
        self.name = name
        self._listeners: list[Listener] = []

    def connect(self, listener: Listener) -> Listener:
        if listener not in self._listeners:
            self._listeners.append(listener)
        return listener

    def disconnect(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def fire(self, db: Session, event: Any) -> None:
        # An exception propagates and rolls the caller's transaction back: the event and its
        # deliveries commit together or not at all.
        for listener in list(self._listeners):
            listener(db, event)


call_finalised = Hook("call_finalised")  # event: CallFinalised
deal_won = Hook("deal_won")  # event: DealWon
call_attributed = Hook("call_attributed")  # event: CallAttributed
call_became_target = Hook("call_became_target")  # event: CallBecameTarget
