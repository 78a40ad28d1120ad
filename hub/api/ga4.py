"""GA4 connections of a client: a measurement id and a Measurement Protocol API secret (stored sealed)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from flask import jsonify
from pydantic import AfterValidator, ConfigDict, Field

from connectors.ga4 import mapping
from hub.api import bp
from hub.api.common import commit, paginate, parse
from hub.api.crud import describe
from hub.auth import api_auth_required, client_or_404
from hub.destinations import box, destination_or_404, new, of_client_query
from hub.extensions import db
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
    if "measurement_id" in values:
        conn.account = {**(conn.account or {}), "measurement_id": values["measurement_id"]}
    if "api_secret" in values:
        conn.access_token_enc = box().seal(values["api_secret"])
    settings = dict(conn.settings or {})
    for name, key in SETTINGS.items():
        if name in values:
            settings[key] = values[name]
    conn.settings = settings
    if "name" in values:
        conn.name = values["name"]
    if "enabled" in values:
        conn.status = ConnectionStatus.ACTIVE if values["enabled"] else ConnectionStatus.DISABLED


@bp.get("/clients/<int:client_id>/ga4-connections")
@api_auth_required
def list_ga4(client_id: int) -> Any:
    client = client_or_404(client_id)
    return paginate(of_client_query(client, CONNECTOR), ga4_json)


@bp.post("/clients/<int:client_id>/ga4-connections")
@api_auth_required
def create_ga4(client_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    change = parse(Ga4ConnectionCreate)
    conn = new(
        client,
        CONNECTOR,
        name=change.name or change.measurement_id,
        account={},
        settings={},
        secret=None,
    )
    _apply(conn, change)
    commit()
    return jsonify(ga4_json(conn)), 201


@bp.get("/ga4-connections/<int:stream_id>")
@api_auth_required
def get_ga4(stream_id: int) -> Any:
    conn, _ = destination_or_404(stream_id, CONNECTOR)
    return jsonify(ga4_json(conn))


@bp.patch("/ga4-connections/<int:stream_id>")
@api_auth_required
def update_ga4(stream_id: int) -> Any:
    conn, _ = destination_or_404(stream_id, CONNECTOR, edit=True)
    _apply(conn, parse(Ga4ConnectionChange))
    commit()
    return jsonify(ga4_json(conn))


@bp.delete("/ga4-connections/<int:stream_id>")
@api_auth_required
def delete_ga4(stream_id: int) -> Any:
    conn, _ = destination_or_404(stream_id, CONNECTOR, edit=True)
    db().delete(conn)
    commit()
    return "", 204


describe(
    "stream",  # a GA4 web stream: its item path reads /ga4-connections/{stream_id}
    Ga4ConnectionOut,
    Ga4ConnectionCreate,
    Ga4ConnectionChange,
    delete=True,
    plural="ga4-connections",
)
