"""Which advertising campaign a utm_campaign value of a platform stands for."""

from __future__ import annotations

from typing import Annotated, Any

from flask import abort, jsonify
from pydantic import Field
from sqlalchemy import select

from hub.api import bp
from hub.api.common import (
    INVALID,
    NOT_FOUND,
    PAGE_PARAMS,
    id_param,
    ok,
    page_of,
    paginate,
    parse,
    request_body,
)
from hub.api.openapi import register
from hub.auth import api_auth_required, client_or_404
from hub.extensions import db
from hub.schemas import In, Out
from tracking.models import CampaignMapping

Platform = Annotated[str, Field(strict=True, min_length=1, max_length=32)]
UtmCampaign = Annotated[str, Field(strict=True, min_length=1, max_length=255)]
CampaignId = Annotated[str, Field(strict=True, min_length=1, max_length=64)]


class MappingOut(Out):
    id: int
    platform: str
    utm_campaign: str
    campaign_id: str


class MappingIn(In):
    platform: Platform
    utm_campaign: UtmCampaign
    campaign_id: CampaignId


def mapping_json(m: CampaignMapping) -> dict[str, Any]:
    return MappingOut.of(m)


@bp.get("/clients/<int:client_id>/campaign-mappings")
@api_auth_required
def list_mappings(client_id: int) -> Any:
    client = client_or_404(client_id)
    query = (
        select(CampaignMapping)
        .where(CampaignMapping.client_id == client.id)
        .order_by(CampaignMapping.platform, CampaignMapping.utm_campaign)
    )
    return paginate(query, mapping_json)


@bp.put("/clients/<int:client_id>/campaign-mappings")
@api_auth_required
def put_mapping(client_id: int) -> Any:
    """Set (create or change) the campaign a utm_campaign value of a platform stands for."""
    client = client_or_404(client_id, edit=True)
    given = parse(MappingIn)
    session = db()
    row = session.scalar(
        select(CampaignMapping).where(
            CampaignMapping.client_id == client.id,
            CampaignMapping.platform == given.platform,
            CampaignMapping.utm_campaign == given.utm_campaign,
        )
    )
    if row is None:
        row = CampaignMapping(client_id=client.id, platform=given.platform, utm_campaign=given.utm_campaign)
        session.add(row)
    row.campaign_id = given.campaign_id
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


register(
    "/clients/{client_id}/campaign-mappings",
    "get",
    {
        "summary": "utm_campaign → campaign mappings",
        "parameters": [id_param("client_id"), *PAGE_PARAMS],
        "responses": {"200": page_of(MappingOut), "404": NOT_FOUND},
    },
)
register(
    "/clients/{client_id}/campaign-mappings",
    "put",
    {
        "summary": "Set which campaign a utm_campaign value of a platform stands for",
        "parameters": [id_param("client_id")],
        "requestBody": request_body(MappingIn),
        "responses": {"200": ok(MappingOut, "Set"), "400": INVALID, "404": NOT_FOUND},
    },
)
register(
    "/clients/{client_id}/campaign-mappings/{mapping_id}",
    "delete",
    {
        "summary": "Remove a mapping",
        "parameters": [id_param("client_id"), id_param("mapping_id")],
        "responses": {"204": {"description": "Removed"}, "404": NOT_FOUND},
    },
)
