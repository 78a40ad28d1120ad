"""Tracking numbers: static ones that stand for a channel, and pool members handed to visitors."""

from __future__ import annotations

from typing import Any, Literal

from flask import jsonify
from sqlalchemy import select

from hub.api import bp
from hub.api.common import commit, owned, paginate, parse
from hub.api.crud import describe
from hub.api.sites import E164
from hub.auth import api_auth_required, client_or_404
from hub.extensions import db
from hub.schemas import In, Out, StrictInt, StrictStr
from tracking.accounts import number_used_in_agency
from tracking.db import utcnow
from tracking.errors import Refused
from tracking.models import Channel, Pool, TrackingNumber
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


class NumberChange(In):
    e164: E164 | None = None
    provider: StrictStr | None = None
    forward_to: E164 | None = None
    status: NumberStatus | None = None
    channel_id: StrictInt | None = None
    pool_id: StrictInt | None = None


class NumberCreate(NumberChange):
    e164: E164


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


def same_client(model: type, object_id: int | None, client_id: int, name: str) -> None:
    """Refuse an id of another client's object (or of none) without saying which."""
    if object_id is None:
        return
    obj = db().get(model, object_id)
    if obj is None or obj.client_id != client_id:
        raise Refused(name, "no such object for this client")


def _apply(n: TrackingNumber, change: NumberChange) -> None:
    given = change.given()
    for name in ("e164", "provider", "status"):
        if given.get(name) is not None:
            setattr(n, name, given[name])
    if given.get("e164") is not None and number_used_in_agency(db(), n):
        raise Refused("e164", "is already a number of a client of this agency")
    if "forward_to" in given:
        n.forward_to = given["forward_to"]
    if "channel_id" in given:
        n.channel_id = given["channel_id"]
        same_client(Channel, n.channel_id, n.client_id, "channel_id")
    if "pool_id" in given:
        n.pool_id = given["pool_id"]
        same_client(Pool, n.pool_id, n.client_id, "pool_id")
    if n.channel_id is not None and n.pool_id is not None:
        raise Refused("pool_id", "a number is either static (channel_id) or in a pool (pool_id), not both")


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
    n = TrackingNumber(client_id=client.id)
    _apply(n, parse(NumberCreate))
    db().add(n)
    commit()
    return jsonify(number_json(n)), 201


@bp.get("/numbers/<int:number_id>")
@api_auth_required
def get_number(number_id: int) -> Any:
    return jsonify(number_json(owned(TrackingNumber, number_id)[0]))


@bp.patch("/numbers/<int:number_id>")
@api_auth_required
def update_number(number_id: int) -> Any:
    n, _ = owned(TrackingNumber, number_id, edit=True)
    _apply(n, parse(NumberChange))
    commit()
    return jsonify(number_json(n))


describe("number", NumberOut, NumberCreate, NumberChange, delete=False)
