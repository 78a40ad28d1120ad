"""Tracking numbers: static ones that stand for a channel, and pool members handed to visitors."""

from __future__ import annotations

from typing import Any, Literal

from flask import jsonify
from sqlalchemy import select

from hub import resources
from hub.api import bp
from hub.api.common import commit, owned, paginate, parse
from hub.api.crud import describe
from hub.auth import api_auth_required, client_or_404
from hub.resources import NumberChange, NumberCreate, apply_number
from hub.schemas import Out
from tracking.db import utcnow
from tracking.models import TrackingNumber
from tracking.models.numbers import NumberStatus


class NumberOut(Out):
    id: int
    client_id: int
    e164: str
    provider: str
    forward_to: str | None
    kind: Literal["static", "pool", "unassigned"]
    channel_id: int | None
    pool_id: int | None
    status: NumberStatus
    held: bool


def number_json(n: TrackingNumber) -> dict[str, Any]:
    return NumberOut.build(
        id=n.id,
        client_id=n.client_id,
        e164=n.e164,
        provider=n.provider,
        forward_to=n.forward_to,
        kind="pool" if n.pool_id else ("static" if n.channel_id else "unassigned"),
        channel_id=n.channel_id,
        pool_id=n.pool_id,
        status=n.status,
        held=bool(n.held_by_session_id and n.held_until and n.held_until > utcnow()),
    )


@bp.get("/clients/<int:client_id>/numbers")
@api_auth_required
def list_numbers(client_id: int) -> Any:
    client = client_or_404(client_id)
    query = select(TrackingNumber).where(TrackingNumber.client_id == client.id).order_by(TrackingNumber.e164)
    return paginate(query, number_json)


@bp.post("/clients/<int:client_id>/numbers")
@api_auth_required
def create_number(client_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    n = resources.create_number(client, parse(NumberCreate))
    return jsonify(number_json(n)), 201


@bp.get("/numbers/<int:number_id>")
@api_auth_required
def get_number(number_id: int) -> Any:
    return jsonify(number_json(owned(TrackingNumber, number_id)[0]))


@bp.patch("/numbers/<int:number_id>")
@api_auth_required
def update_number(number_id: int) -> Any:
    n, _ = owned(TrackingNumber, number_id, edit=True)
    apply_number(n, parse(NumberChange))
    commit()
    return jsonify(number_json(n))


describe("number", NumberOut, NumberCreate, NumberChange, delete=False)
