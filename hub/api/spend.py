"""Hand-entered spend for offline channels, and which campaign a utm_campaign value stands for."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import abort, jsonify, request
from sqlalchemy import select

from connectors.base import MAX_AMOUNT
from hub.api import bp
from hub.api.common import plausible_date
from hub.api.openapi import register, schema
from hub.auth import api_auth_required, client_or_404
from hub.extensions import db
from tracking.models import CampaignMapping, Channel, Client, ManualSpend

CLIENT_ID = {"name": "client_id", "in": "path", "required": True, "schema": {"type": "integer"}}
NOT_FOUND = {"$ref": "#/components/responses/NotFound"}
BAD_REQUEST = {
    "description": "Invalid input; nothing changed",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}

MANUAL_SPEND = schema(
    "ManualSpend",
    {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "channel_id": {"type": ["integer", "null"]},
            "period_start": {"type": "string", "format": "date"},
            "period_end": {"type": "string", "format": "date"},
            "amount": {"type": "string", "description": 'Decimal, e.g. "15000.00"'},
            "currency": {"type": "string"},
            "note": {"type": "string"},
        },
        "required": ["period_start", "period_end", "amount"],
    },
)
MAPPING = schema(
    "CampaignMapping",
    {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "platform": {"type": "string"},
            "utm_campaign": {"type": "string"},
            "campaign_id": {"type": "string"},
        },
        "required": ["platform", "utm_campaign", "campaign_id"],
    },
)


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, description="a JSON object is required")
    return body


def _date(body: dict[str, Any], field: str) -> dt.date:
    try:
        day = dt.date.fromisoformat(str(body[field]))
    except (KeyError, ValueError):
        abort(400, description=f"{field} must be a date, YYYY-MM-DD")
    return plausible_date(day, field)


def _text(body: dict[str, Any], field: str, max_len: int, required: bool = True) -> str:
    value = body.get(field, None if required else "")
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > max_len:
        abort(400, description=f"{field} must be a non-empty string of at most {max_len} characters")
    return value.strip()


def spend_json(s: ManualSpend) -> dict[str, Any]:
    return {
        "id": s.id,
        "channel_id": s.channel_id,
        "period_start": s.period_start.isoformat(),
        "period_end": s.period_end.isoformat(),
        "amount": str(s.amount),
        "currency": s.currency,
        "note": s.note,
    }


def mapping_json(m: CampaignMapping) -> dict[str, Any]:
    return {"id": m.id, "platform": m.platform, "utm_campaign": m.utm_campaign, "campaign_id": m.campaign_id}


@bp.get("/clients/<int:client_id>/manual-spend")
@api_auth_required
def list_manual_spend(client_id: int) -> Any:
    client = client_or_404(client_id)
    rows = db().scalars(
        select(ManualSpend).where(ManualSpend.client_id == client.id).order_by(ManualSpend.period_start)
    )
    return jsonify(items=[spend_json(s) for s in rows])


def build_manual_spend(client: Client, body: dict[str, Any]) -> ManualSpend:
    """A hand-entered spend row from a request body; 400 (and nothing added) when any field is wrong."""
    start, end = _date(body, "period_start"), _date(body, "period_end")
    if end < start:
        abort(400, description="period_end is before period_start")
    try:
        amount = Decimal(str(body.get("amount")))
    except InvalidOperation:
        abort(400, description="amount must be a decimal number")
    if not amount.is_finite() or not 0 <= amount <= MAX_AMOUNT or amount != amount.quantize(Decimal("0.01")):
        abort(400, description=f"amount must be from 0 to {MAX_AMOUNT}, with at most two decimals")
    currency = str(body.get("currency") or client.currency)
    if len(currency) != 3 or not currency.isalpha():
        abort(400, description="currency must be a three-letter code")
    channel_id = body.get("channel_id")
    if channel_id is not None:
        channel = db().get(Channel, channel_id) if isinstance(channel_id, int) else None
        if channel is None or channel.client_id != client.id:
            abort(400, description="channel_id is not a channel of this client")
    return ManualSpend(
        client_id=client.id,
        channel_id=channel_id,
        period_start=start,
        period_end=end,
        amount=amount,
        currency=currency.upper(),
        note=_text(body, "note", 2000, required=False),
    )


def manual_spend_or_404(client: Client, spend_id: int) -> ManualSpend:
    row = db().get(ManualSpend, spend_id)
    if row is None or row.client_id != client.id:
        abort(404)
    return row


@bp.post("/clients/<int:client_id>/manual-spend")
@api_auth_required
def add_manual_spend(client_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    row = build_manual_spend(client, _body())
    db().add(row)
    db().commit()
    return jsonify(spend_json(row)), 201


@bp.delete("/clients/<int:client_id>/manual-spend/<int:spend_id>")
@api_auth_required
def delete_manual_spend(client_id: int, spend_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    db().delete(manual_spend_or_404(client, spend_id))
    db().commit()
    return "", 204


@bp.get("/clients/<int:client_id>/campaign-mappings")
@api_auth_required
def list_mappings(client_id: int) -> Any:
    client = client_or_404(client_id)
    rows = db().scalars(
        select(CampaignMapping)
        .where(CampaignMapping.client_id == client.id)
        .order_by(CampaignMapping.platform, CampaignMapping.utm_campaign)
    )
    return jsonify(items=[mapping_json(m) for m in rows])


@bp.put("/clients/<int:client_id>/campaign-mappings")
@api_auth_required
def put_mapping(client_id: int) -> Any:
    """Set (create or change) the campaign a utm_campaign value of a platform stands for."""
    client = client_or_404(client_id, edit=True)
    body = _body()
    platform = _text(body, "platform", 32)
    utm = _text(body, "utm_campaign", 255)
    campaign_id = _text(body, "campaign_id", 64)
    session = db()
    row = session.scalar(
        select(CampaignMapping).where(
            CampaignMapping.client_id == client.id,
            CampaignMapping.platform == platform,
            CampaignMapping.utm_campaign == utm,
        )
    )
    if row is None:
        row = CampaignMapping(client_id=client.id, platform=platform, utm_campaign=utm)
        session.add(row)
    row.campaign_id = campaign_id
    session.commit()
    return jsonify(mapping_json(row))


@bp.delete("/clients/<int:client_id>/campaign-mappings/<int:mapping_id>")
@api_auth_required
def delete_mapping(client_id: int, mapping_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    row = db().get(CampaignMapping, mapping_id)
    if row is None or row.client_id != client.id:
        abort(404)
    db().delete(row)
    db().commit()
    return "", 204


def _list(ref: dict[str, str]) -> dict[str, Any]:
    return {
        "description": "OK",
        "content": {
            "application/json": {
                "schema": {"type": "object", "properties": {"items": {"type": "array", "items": ref}}}
            }
        },
    }


def _id(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}


register(
    "/clients/{client_id}/manual-spend",
    "get",
    {
        "summary": "Hand-entered spend",
        "parameters": [CLIENT_ID],
        "responses": {"200": _list(MANUAL_SPEND), "404": NOT_FOUND},
    },
)
register(
    "/clients/{client_id}/manual-spend",
    "post",
    {
        "summary": "Enter spend for a period (offline channels)",
        "parameters": [CLIENT_ID],
        "requestBody": {"required": True, "content": {"application/json": {"schema": MANUAL_SPEND}}},
        "responses": {
            "201": {"description": "Created", "content": {"application/json": {"schema": MANUAL_SPEND}}},
            "400": BAD_REQUEST,
            "404": NOT_FOUND,
        },
    },
)
register(
    "/clients/{client_id}/manual-spend/{spend_id}",
    "delete",
    {
        "summary": "Remove hand-entered spend",
        "parameters": [CLIENT_ID, _id("spend_id")],
        "responses": {"204": {"description": "Removed"}, "404": NOT_FOUND},
    },
)
register(
    "/clients/{client_id}/campaign-mappings",
    "get",
    {
        "summary": "utm_campaign → campaign mappings",
        "parameters": [CLIENT_ID],
        "responses": {"200": _list(MAPPING), "404": NOT_FOUND},
    },
)
register(
    "/clients/{client_id}/campaign-mappings",
    "put",
    {
        "summary": "Set which campaign a utm_campaign value of a platform stands for",
        "parameters": [CLIENT_ID],
        "requestBody": {"required": True, "content": {"application/json": {"schema": MAPPING}}},
        "responses": {
            "200": {"description": "Set", "content": {"application/json": {"schema": MAPPING}}},
            "400": BAD_REQUEST,
            "404": NOT_FOUND,
        },
    },
)
register(
    "/clients/{client_id}/campaign-mappings/{mapping_id}",
    "delete",
    {
        "summary": "Remove a mapping",
        "parameters": [CLIENT_ID, _id("mapping_id")],
        "responses": {"204": {"description": "Removed"}, "404": NOT_FOUND},
    },
)
