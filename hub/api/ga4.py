"""GA4 connections of a client: a measurement id and a Measurement Protocol API secret (stored sealed)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, Field

from connectors.ga4 import mapping
from hub.api.crud import destination_routes
from hub.destinations import box
from hub.schemas import In, Out, StrictBool
from tracking.models import Connection, ConnectionStatus

CONNECTOR = "ga4"
MEASUREMENT_ID = re.compile(r"^G-[A-Z0-9]{4,20}$")
# Schema field -> the connection setting the connector reads.
SETTINGS = {
    "call_event": "call_event",
    "deal_event": "deal_event",
    "validate_events": "validate",
    "target_calls_only": "target_calls_only",
}


def _measurement_id(value: str) -> str:
    if not MEASUREMENT_ID.match(value):
        raise ValueError("must be a web stream's measurement id such as G-ABC123XYZ")
    return value


def _event_name(value: str) -> str:
    if problem := mapping.check_name(value, "event name"):
        raise ValueError(problem)
    return value


MeasurementId = Annotated[
    str,
    Field(strict=True, json_schema_extra={"pattern": MEASUREMENT_ID.pattern}),
    AfterValidator(_measurement_id),
]
EventName = Annotated[str, Field(strict=True, max_length=40), AfterValidator(_event_name)]
Secret = Annotated[
    str, Field(strict=True, min_length=1, max_length=200, description="stored encrypted, never returned")
]


class Ga4ConnectionOut(Out):
    id: int
    client_id: int
    name: str | None
    measurement_id: str | None
    call_event: str
    deal_event: str
    validate_events: bool = Field(serialization_alias="validate", description="check each event first")
    target_calls_only: bool
    enabled: bool


class Ga4ConnectionChange(In):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Annotated[str, Field(strict=True, max_length=200)] | None = None
    measurement_id: MeasurementId | None = None
    api_secret: Secret | None = None
    call_event: EventName | None = Field(None, description=f"default {mapping.DEFAULT_CALL_EVENT}")
    deal_event: EventName | None = Field(None, description=f"default {mapping.DEFAULT_DEAL_EVENT}")
    validate_events: StrictBool | None = Field(
        None, alias="validate", description="check each event with the validation server first (default)"
    )
    target_calls_only: StrictBool | None = None
    enabled: StrictBool | None = None


class Ga4ConnectionCreate(Ga4ConnectionChange):
    measurement_id: MeasurementId
    api_secret: Secret


def ga4_json(conn: Connection) -> dict[str, Any]:
    settings = conn.settings or {}
    return Ga4ConnectionOut.build(
        id=conn.id,
        client_id=conn.client_id,
        name=conn.name,
        measurement_id=(conn.account or {}).get("measurement_id"),
        call_event=settings.get("call_event", mapping.DEFAULT_CALL_EVENT),
        deal_event=settings.get("deal_event", mapping.DEFAULT_DEAL_EVENT),
        validate_events=settings.get("validate", True),
        target_calls_only=bool(settings.get("target_calls_only")),
        enabled=conn.status != ConnectionStatus.DISABLED,
    )


def _apply(conn: Connection, change: Ga4ConnectionChange) -> None:
    values = {k: v for k, v in change.given().items() if v is not None}
    conn.name = values.get("name") or conn.name or values["measurement_id"]
    if "measurement_id" in values:
        conn.account = {**(conn.account or {}), "measurement_id": values["measurement_id"]}
    if "api_secret" in values:
        conn.access_token_enc = box().seal(values["api_secret"])
    settings = dict(conn.settings or {})
    for name, key in SETTINGS.items():
        if name in values:
            settings[key] = values[name]
    conn.settings = settings
    if "enabled" in values:
        conn.status = ConnectionStatus.ACTIVE if values["enabled"] else ConnectionStatus.DISABLED


destination_routes(
    CONNECTOR,
    "stream",  # a GA4 web stream: its item path reads /ga4-connections/{stream_id}
    Ga4ConnectionOut,
    Ga4ConnectionCreate,
    Ga4ConnectionChange,
    to_json=ga4_json,
    apply=_apply,
    plural="ga4-connections",
)
