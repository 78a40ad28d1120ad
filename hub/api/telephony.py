"""Telephony integrations: a client's account at a telephony provider, and the webhook URLs it reports to."""

from __future__ import annotations

import secrets as secrets_mod
from typing import Any

from flask import current_app, jsonify
from pydantic import ConfigDict, Field
from sqlalchemy import select

from hub.api import bp
from hub.api.clients import TimeZone
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
from hub.schemas import In, Out, UtcDateTime
from tracking.crypto import encrypt_json
from tracking.errors import Refused
from tracking.models import TelephonyIntegration
from tracking.telephony import PROVIDERS

REQUIRED_SECRETS: dict[str, tuple[str, ...]] = {
    "twilio": ("auth_token",),
    "zadarma": ("api_secret",),
    "novofon": ("api_secret",),
    "mango": ("api_key", "api_salt"),
    "generic": (),  # generated when not given, and shown once
}
ALLOWED_SECRETS: dict[str, tuple[str, ...]] = {
    "twilio": ("auth_token", "shared_key_secret"),
    "zadarma": ("api_secret",),
    "novofon": ("api_secret",),
    "mango": ("api_key", "api_salt"),
    "generic": ("secret",),
}


class IntegrationSettings(In):
    model_config = ConfigDict(extra="forbid")

    timezone: TimeZone | None = Field(None, description="Zone of the provider's local timestamps")


class IntegrationCreate(In):
    provider: str = Field(json_schema_extra={"enum": list(PROVIDERS)})
    name: str | None = Field(None, max_length=200)
    secrets: dict[str, str] = Field(
        default_factory=dict,
        description="twilio: auth_token[, shared_key_secret]; zadarma/novofon: api_secret; mango: api_key, "
        "api_salt; generic: secret (generated if absent)",
        json_schema_extra={"writeOnly": True},
    )
    settings: IntegrationSettings = Field(default_factory=IntegrationSettings)


class IntegrationOut(Out):
    id: int
    provider: str
    name: str
    active: bool
    settings: dict[str, Any]
    webhook_urls: dict[str, str]
    created_at: UtcDateTime


class CreatedIntegrationOut(IntegrationOut):
    generated_secrets: dict[str, str] | None = Field(
        description="Only when the hub made the secret: shown once"
    )


def webhook_urls(integ: TelephonyIntegration) -> dict[str, str]:
    base = f"{current_app.config['BASE_URL']}/hooks/v1/{integ.provider}/{integ.integration_key}"
    if integ.provider == "twilio":
        return {"voice": f"{base}/voice", "status_callback": f"{base}/status"}
    if integ.provider == "mango":
        # Mango appends events/call, events/summary and ping to the base URL it is given.
        return {"base": base}
    return {"notify": base}


def _fields(integ: TelephonyIntegration) -> dict[str, Any]:
    return {
        "id": integ.id,
        "provider": integ.provider,
        "name": integ.name,
        "active": integ.active,
        "settings": integ.settings,
        "webhook_urls": webhook_urls(integ),
        "created_at": integ.created_at,
    }


def integration_json(integ: TelephonyIntegration) -> dict[str, Any]:
    return IntegrationOut.build(**_fields(integ))


def _check_secrets(provider: str, given: dict[str, str]) -> None:
    if not all(given.values()):
        raise Refused("secrets", "must be an object of non-empty strings")
    extra = set(given) - set(ALLOWED_SECRETS[provider])
    missing = [name for name in REQUIRED_SECRETS[provider] if not given.get(name)]
    if extra or missing:
        raise Refused(
            "secrets",
            f"{provider} takes secrets {', '.join(ALLOWED_SECRETS[provider]) or 'none'}"
            + (f"; missing {', '.join(missing)}" if missing else ""),
        )


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
    given = parse(IntegrationCreate)
    if given.provider not in PROVIDERS:
        raise Refused("provider", "must be one of " + ", ".join(PROVIDERS))
    _check_secrets(given.provider, given.secrets)
    secrets, shown_once = dict(given.secrets), None
    if given.provider == "generic" and not secrets.get("secret"):
        secrets = shown_once = {"secret": secrets_mod.token_urlsafe(32)}
    integ = TelephonyIntegration(
        client_id=client.id,
        provider=given.provider,
        name=given.name or given.provider,
        integration_key=secrets_mod.token_urlsafe(24),
        secrets_encrypted=encrypt_json(current_app.config["ENCRYPTION_KEY"], secrets),
        settings=given.settings.model_dump(exclude_none=True),
    )
    db().add(integ)
    db().commit()
    return jsonify(CreatedIntegrationOut.build(**_fields(integ), generated_secrets=shown_once)), 201


register(
    "/clients/{client_id}/telephony-integrations",
    "get",
    {
        "summary": "Telephony integrations of a client (secrets are never returned)",
        "parameters": [id_param("client_id"), *PAGE_PARAMS],
        "responses": {"200": page_of(IntegrationOut), "404": NOT_FOUND},
    },
)
register(
    "/clients/{client_id}/telephony-integrations",
    "post",
    {
        "summary": "Connect a telephony account; answers with the webhook URLs to configure at the provider",
        "parameters": [id_param("client_id")],
        "requestBody": request_body(IntegrationCreate),
        "responses": {"201": ok(CreatedIntegrationOut, "Created"), "400": INVALID, "404": NOT_FOUND},
    },
)
