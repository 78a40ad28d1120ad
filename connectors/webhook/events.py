"""The events an outgoing webhook receives, as the models that serialise them and describe them.

The connector sends each queued snapshot through its event's model, and the hub's OpenAPI document lists
the same models under ``webhooks``, so what arrives and what is documented cannot drift apart. Timestamps
are carried as the snapshot holds them (ISO 8601, UTC); money as a decimal string.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from connectors.base import ItemKind

EVENT_FOR_KIND = {
    ItemKind.CALL: "call.finalised",
    ItemKind.CALL_ATTRIBUTED: "call.attributed",
    ItemKind.DEAL_WON: "deal.won",
}

Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class _Payload(BaseModel):
    # A snapshot queued by an older release may carry a field no longer sent: it is left out rather than
    # sent undocumented. Every documented field is always present (null when empty).
    model_config = ConfigDict(extra="ignore")


class WebhookSession(_Payload):
    """The visit the call came from: where it landed and the marks it carried."""

    landing_url: str | None
    referrer: str | None
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    utm_content: str | None
    utm_term: str | None
    gclid: str | None
    gbraid: str | None
    wbraid: str | None
    yclid: str | None
    ym_client_id: str | None
    ga_client_id: str | None
    device: str | None


class WebhookTargetRule(_Payload):
    id: int
    name: str


class WebhookCall(_Payload):
    """A finalised call, with the visit it was attributed to."""

    call_id: int
    client_id: int
    key: str
    caller: str | None = Field(description="E.164; null when withheld")
    tracking_number: str | None
    static: bool
    called_at: Timestamp
    answered_at: Timestamp | None
    ended_at: Timestamp | None
    wait_seconds: int
    talk_seconds: int
    status: Literal["answered", "missed", "busy", "failed"]
    abandoned: bool
    first_time: bool
    recording_url: str | None
    call_path: str = Field(description="the call's page, relative to the hub's address")
    channel: str | None
    tags: list[str]
    is_target: bool
    target_rules: list[WebhookTargetRule] = Field(description="the target-call rules the call meets")
    timezone: str
    currency: str
    session: WebhookSession | None


class WebhookPrevious(_Payload):
    """Where the call was attributed before the change."""

    method: str | None
    channel: str | None


class WebhookCallAttributed(WebhookCall):
    """The call after its source changed, with what it was before and why."""

    previous: WebhookPrevious
    reason: str


class WebhookDeal(_Payload):
    """A deal won in the CRM, with the first call of the deal."""

    deal_id: int
    client_id: int
    key: str
    external_id: str = Field(description="the CRM's id of the deal")
    amount: str = Field(description="decimal, e.g. '12500.00'")
    currency: str
    won_at: Timestamp
    caller: str | None
    call: WebhookCall | None
    timezone: str


class _Envelope(_Payload):
    id: str = Field(description="stable per event: the same on every attempt")


class CallFinalised(_Envelope):
    event: Literal["call.finalised"]
    data: WebhookCall


class CallAttributed(_Envelope):
    event: Literal["call.attributed"]
    data: WebhookCallAttributed


class DealWon(_Envelope):
    event: Literal["deal.won"]
    data: WebhookDeal


EVENTS: dict[str, type[_Envelope]] = {
    "call.finalised": CallFinalised,
    "call.attributed": CallAttributed,
    "deal.won": DealWon,
}


def body(kind: ItemKind, key: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The JSON body of one event: which event, its id (stable across re-sends), and the call or deal,
    serialised through the event's model (``pydantic.ValidationError`` when the snapshot does not fit)."""
    name = EVENT_FOR_KIND[kind]
    return EVENTS[name].model_validate({"id": key, "event": name, "data": payload}).model_dump(mode="json")
