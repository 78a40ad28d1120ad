"""Deliveries: what the outbox sent (or will send) to each connection, with a retry action."""

from __future__ import annotations

from typing import Any

from flask import abort, jsonify, request
from pydantic import Field

from hub.api import bp
from hub.api.common import FORBIDDEN, NOT_FOUND, PAGE_PARAMS, id_param, ok, page_of, paginate, refused
from hub.api.openapi import register
from hub.auth import api_auth_required, client_or_404
from hub.extensions import db
from hub.pipeline_queries import DELIVERY_FILTERS, client_deliveries
from hub.schemas import Out, UtcDateTime
from jobs.outbox import retry_now
from tracking.errors import Refused
from tracking.models import Delivery, DeliveryStatus


class DeliveryOut(Out):
    id: int
    connection_id: int
    connector: str
    kind: str = Field(description="What is delivered: call, deal_won, …")
    key: str
    status: DeliveryStatus
    in_doubt: bool = Field(
        description="Sent, outcome unknown: looked up at the destination, never re-sent blindly"
    )
    attempts: int
    next_attempt_at: UtcDateTime | None
    external_id: str | None
    last_error: str | None
    created_at: UtcDateTime
    done_at: UtcDateTime | None


def delivery_json(d: Delivery) -> dict[str, Any]:
    return DeliveryOut.build(
        id=d.id,
        connection_id=d.connection_id,
        connector=d.connector,
        kind=d.kind,
        key=d.key,
        status=d.status,
        in_doubt=d.status == DeliveryStatus.IN_FLIGHT and d.claimed_by is None,
        attempts=d.attempts,
        next_attempt_at=d.next_attempt_at,
        external_id=d.external_id,
        last_error=d.last_error,
        created_at=d.created_at,
        done_at=d.done_at,
    )


@bp.get("/clients/<int:client_id>/deliveries")
@api_auth_required
def list_deliveries(client_id: int) -> Any:
    client = client_or_404(client_id)
    status = request.args.get("status") or None
    if status is not None and status not in DELIVERY_FILTERS:
        raise Refused("status", f"must be one of {', '.join(sorted(DELIVERY_FILTERS))}", "bad_request")
    return paginate(client_deliveries(client.id, status, limit=None), delivery_json)


@bp.post("/clients/<int:client_id>/deliveries/<int:delivery_id>/retry")
@api_auth_required
def retry_delivery(client_id: int, delivery_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    session = db()
    delivery = session.get(Delivery, delivery_id)
    if delivery is None or delivery.client_id != client.id:
        abort(404)
    if not retry_now(session, delivery):
        abort(409, description=f"a {delivery.status.value} delivery cannot be retried")
    session.commit()
    return jsonify(delivery_json(delivery))


LIMIT_PARAM = {
    "name": "limit",
    "in": "query",
    "deprecated": True,
    "description": "The older name of per_page",
    "schema": {"type": "integer", "minimum": 1, "maximum": 200},
}
register(
    "/clients/{client_id}/deliveries",
    "get",
    {
        "summary": "Deliveries of the client, newest first",
        "parameters": [
            id_param("client_id"),
            {
                "name": "status",
                "in": "query",
                "description": "failing (retry or in doubt), dead, problems (both), or any delivery status",
                "schema": {"type": "string", "enum": sorted(DELIVERY_FILTERS)},
            },
            *PAGE_PARAMS,
            LIMIT_PARAM,
        ],
        "responses": {"200": page_of(DeliveryOut), "400": refused("Bad filter"), "404": NOT_FOUND},
    },
)
register(
    "/clients/{client_id}/deliveries/{delivery_id}/retry",
    "post",
    {
        "summary": "Queue a dead, failing or skipped delivery again now (attempts start over)",
        "parameters": [id_param("client_id"), id_param("delivery_id")],
        "responses": {
            "200": ok(DeliveryOut, "Queued"),
            "403": FORBIDDEN,
            "404": NOT_FOUND,
            "409": refused("Done or in-flight deliveries are never re-sent"),
        },
    },
)
