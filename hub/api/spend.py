"""Hand-entered spend for offline channels."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from flask import abort, jsonify
from pydantic import Field
from sqlalchemy import select

from hub.api import bp
from hub.api.common import (
    INVALID,
    NOT_FOUND,
    PAGE_PARAMS,
    body,
    id_param,
    ok,
    page_of,
    paginate,
    request_body,
)
from hub.api.openapi import register
from hub.auth import api_auth_required, client_or_404
from hub.extensions import db
from hub.schemas import In, Out
from tracking import manual_spend
from tracking.models import ManualSpend


class ManualSpendOut(Out):
    id: int
    channel_id: int | None
    period_start: dt.date
    period_end: dt.date
    amount: str = Field(description='Decimal, e.g. "15000.00"')
    currency: str
    note: str


class ManualSpendIn(In):
    """Described here; checked by ``tracking.manual_spend`` so the web form takes the same rules."""

    channel_id: int | None = None
    period_start: dt.date
    period_end: dt.date
    amount: Decimal | str = Field(description='Decimal, e.g. "15000.00", at most two decimals')
    currency: str | None = Field(None, description="Three letters; the client's currency when absent")
    note: str = Field("", max_length=manual_spend.MAX_NOTE)


def spend_json(s: ManualSpend) -> dict[str, Any]:
    return ManualSpendOut.build(
        id=s.id,
        channel_id=s.channel_id,
        period_start=s.period_start,
        period_end=s.period_end,
        amount=str(s.amount),
        currency=s.currency,
        note=s.note,
    )


@bp.get("/clients/<int:client_id>/manual-spend")
@api_auth_required
def list_manual_spend(client_id: int) -> Any:
    client = client_or_404(client_id)
    query = (
        select(ManualSpend)
        .where(ManualSpend.client_id == client.id)
        .order_by(ManualSpend.period_start, ManualSpend.id)
    )
    return paginate(query, spend_json)


@bp.post("/clients/<int:client_id>/manual-spend")
@api_auth_required
def add_manual_spend(client_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    row = manual_spend.build(db(), client, body())
    db().add(row)
    db().commit()
    return jsonify(spend_json(row)), 201


@bp.delete("/clients/<int:client_id>/manual-spend/<int:spend_id>")
@api_auth_required
def delete_manual_spend(client_id: int, spend_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    row = manual_spend.of_client(db(), client, spend_id)
    if row is None:
        abort(404)
    db().delete(row)
    db().commit()
    return "", 204


register(
    "/clients/{client_id}/manual-spend",
    "get",
    {
        "summary": "Hand-entered spend",
        "parameters": [id_param("client_id"), *PAGE_PARAMS],
        "responses": {"200": page_of(ManualSpendOut), "404": NOT_FOUND},
    },
)
register(
    "/clients/{client_id}/manual-spend",
    "post",
    {
        "summary": "Enter spend for a period (offline channels)",
        "parameters": [id_param("client_id")],
        "requestBody": request_body(ManualSpendIn),
        "responses": {"201": ok(ManualSpendOut, "Created"), "400": INVALID, "404": NOT_FOUND},
    },
)
register(
    "/clients/{client_id}/manual-spend/{spend_id}",
    "delete",
    {
        "summary": "Remove hand-entered spend",
        "parameters": [id_param("client_id"), id_param("spend_id")],
        "responses": {"204": {"description": "Removed"}, "404": NOT_FOUND},
    },
)
