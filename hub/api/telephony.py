"""Telephony integrations: a client's account at a telephony provider, and the webhook URLs it reports to.

Nothing here knows a provider: each adapter in ``tracking.telephony`` declares the secrets and settings it
takes (Pydantic models) and its webhook paths, and this module validates, documents and shows those."""

from __future__ import annotations

from typing import Any

from flask import abort, jsonify
from pydantic import Field
from sqlalchemy import select

from hub import resources
from hub.api import bp
from hub.api.common import (
    FORBIDDEN,
    INVALID,
    NOT_FOUND,
    PAGE_PARAMS,
    body,
    id_param,
    ok,
    page_of,
    paginate,
    parse,
    refused,
    request_body,
)
from hub.api.openapi import component, register
from hub.auth import api_auth_required, client_or_404, current_user, may_see_secret_urls
from hub.extensions import db
from hub.resources import IntegrationChange, IntegrationCreate, webhook_urls
from hub.schemas import Out, UtcDateTime
from tracking.models import TelephonyIntegration
from tracking.telephony import PROVIDERS, adapter


class IntegrationOut(Out):
    id: int
    provider: str
    name: str
    active: bool
    settings: dict[str, Any]
    webhook_urls: dict[str, str] | None = Field(
        description="The URLs to give the provider; they carry the integration key, so only roles that may "
        "edit the client see them (null for viewers)"
    )
    created_at: UtcDateTime


class CreatedIntegrationOut(IntegrationOut):
    generated_secrets: dict[str, str] | None = Field(
        description="Only when the hub made the secret: shown once"
    )


def _fields(integ: TelephonyIntegration) -> dict[str, Any]:
    return {
        "id": integ.id,
        "provider": integ.provider,
        "name": integ.name,
        "active": integ.active,
        "settings": integ.settings,
        "webhook_urls": webhook_urls(integ) if may_see_secret_urls(current_user()) else None,
        "created_at": integ.created_at,
    }


def integration_json(integ: TelephonyIntegration) -> dict[str, Any]:
    return IntegrationOut.build(**_fields(integ))


def _integration_or_404(client_id: int, integration_id: int, *, edit: bool = False) -> TelephonyIntegration:
    client = client_or_404(client_id, edit=edit)
    integ = db().get(TelephonyIntegration, integration_id)
    if integ is None or integ.client_id != client.id:
        abort(404)
    return integ


@bp.get("/clients/<int:client_id>/telephony-integrations")
@api_auth_required
def list_integrations(client_id: int) -> Any:
    client = client_or_404(client_id)
    query = (
        select(TelephonyIntegration)
        .where(TelephonyIntegration.client_id == client.id)
        .order_by(TelephonyIntegration.id)
    )
    return paginate(query, integration_json)


@bp.post("/clients/<int:client_id>/telephony-integrations")
@api_auth_required
def create_integration(client_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    integ, shown_once = resources.create_integration(client, parse(IntegrationCreate))
    return jsonify(CreatedIntegrationOut.build(**_fields(integ), generated_secrets=shown_once)), 201


@bp.get("/clients/<int:client_id>/telephony-integrations/<int:integration_id>")
@api_auth_required
def get_integration(client_id: int, integration_id: int) -> Any:
    return jsonify(integration_json(_integration_or_404(client_id, integration_id)))


@bp.patch("/clients/<int:client_id>/telephony-integrations/<int:integration_id>")
@api_auth_required
def update_integration(client_id: int, integration_id: int) -> Any:
    integ = _integration_or_404(client_id, integration_id, edit=True)
    resources.apply_integration(integ, parse(IntegrationChange, body()))
    db().commit()
    return jsonify(integration_json(integ))


@bp.post("/clients/<int:client_id>/telephony-integrations/<int:integration_id>/rotate-secret")
@api_auth_required
def rotate_integration_secret(client_id: int, integration_id: int) -> Any:
    integ = _integration_or_404(client_id, integration_id, edit=True)
    shown_once = resources.rotate_secret(integ)
    db().commit()
    return jsonify(CreatedIntegrationOut.build(**_fields(integ), generated_secrets=shown_once))


@bp.delete("/clients/<int:client_id>/telephony-integrations/<int:integration_id>")
@api_auth_required
def delete_integration(client_id: int, integration_id: int) -> Any:
    integ = _integration_or_404(client_id, integration_id, edit=True)
    resources.delete_integration(integ)
    db().commit()
    return "", 204


for _provider in dict.fromkeys(PROVIDERS):
    _module = adapter(_provider)
    component(_module.Secrets, "validation", name=f"TelephonySecrets_{_provider}")
    component(_module.Settings, "validation", name=f"TelephonySettings_{_provider}")

_PATH = "/clients/{client_id}/telephony-integrations"
_IDS = [id_param("client_id"), id_param("integration_id")]
register(
    _PATH,
    "get",
    {
        "summary": "Telephony integrations of a client (secrets are never returned)",
        "parameters": [id_param("client_id"), *PAGE_PARAMS],
        "responses": {"200": page_of(IntegrationOut), "404": NOT_FOUND},
    },
)
register(
    _PATH,
    "post",
    {
        "summary": "Connect a telephony account; answers with the webhook URLs to configure at the provider",
        "parameters": [id_param("client_id")],
        "requestBody": request_body(IntegrationCreate),
        "responses": {"201": ok(CreatedIntegrationOut, "Created"), "400": INVALID, "404": NOT_FOUND},
    },
)
register(
    _PATH + "/{integration_id}",
    "get",
    {
        "summary": "One telephony integration",
        "parameters": _IDS,
        "responses": {"200": ok(IntegrationOut), "404": NOT_FOUND},
    },
)
register(
    _PATH + "/{integration_id}",
    "patch",
    {
        "summary": "Rename, pause, re-key or re-configure a telephony integration",
        "parameters": _IDS,
        "requestBody": request_body(IntegrationChange),
        "responses": {"200": ok(IntegrationOut), "400": INVALID, "404": NOT_FOUND},
    },
)
register(
    _PATH + "/{integration_id}",
    "delete",
    {
        "summary": "Remove a telephony integration: its webhook URLs stop answering; its calls are kept",
        "parameters": _IDS,
        "responses": {"204": {"description": "Removed"}, "403": FORBIDDEN, "404": NOT_FOUND},
    },
)
register(
    _PATH + "/{integration_id}/rotate-secret",
    "post",
    {
        "summary": "A new hub-made webhook secret, shown once in generated_secrets; the old one stops "
        "verifying at once",
        "parameters": _IDS,
        "responses": {
            "200": ok(CreatedIntegrationOut),
            "400": refused(
                "The provider's secret is its own (enter the new one with PATCH); nothing changed"
            ),
            "403": FORBIDDEN,
            "404": NOT_FOUND,
        },
    },
)
