"""Connections: the external accounts (CRM, analytics, ad platforms) a client's data flows to and from."""

from __future__ import annotations

from typing import Any

from flask import abort, jsonify, request
from pydantic import ConfigDict, Field
from sqlalchemy import select

from connectors import registry
from hub.api import bp
from hub.api.common import (
    FORBIDDEN,
    INVALID,
    NOT_FOUND,
    PAGE_PARAMS,
    id_param,
    ok,
    page_of,
    paginate,
    refused,
    request_body,
)
from hub.api.openapi import component, register
from hub.auth import api_auth_required, client_or_404
from hub.extensions import db
from hub.pipeline_queries import client_connections
from hub.plugins import connector_settings, validate_connection_settings
from hub.schemas import In, Out, UtcDateTime
from tracking.errors import Refused
from tracking.models import Client, Connection, ConnectionClient, ConnectionStatus


class ConnectionOut(Out):
    """An authorised external account. Tokens are never returned."""

    id: int
    provider: str
    name: str
    connectors: list[str]
    account: dict[str, Any]
    scopes: list[str]
    shared: bool = Field(description="Owned by the agency and shared with this client")
    status: ConnectionStatus
    status_reason: str | None
    needs_reauth: bool
    has_token: bool
    expires_at: UtcDateTime | None
    last_sync_at: UtcDateTime | None


class ConnectionPatch(In):
    """Described here; checked field by field by ``_validate_patch`` before anything changes."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=200)
    connectors: list[str] | None = Field(None, min_length=1)
    account: dict[str, str] | None = Field(
        None,
        description="Typed ids only (counter_id, customer_id, login_customer_id, client_login, currency); "
        "facts learned when the account was connected cannot be changed",
    )
    settings: dict[str, Any] | None = Field(
        None, description="Replaces the settings; each connector's are ConnectorSettings_<connector>"
    )
    status: ConnectionStatus | None = Field(None, json_schema_extra={"enum": ["active", "disabled"]})
    shared_with: list[int] | None = Field(
        None, description="Clients of the agency that use an agency-shared connection"
    )


def connection_json(conn: Connection) -> dict[str, Any]:
    # Tokens are never part of this: only whether the connection holds one.
    return ConnectionOut.build(
        id=conn.id,
        provider=conn.provider,
        name=conn.name,
        connectors=list(conn.connectors or []),
        account=dict(conn.account or {}),
        scopes=list(conn.scopes or []),
        shared=conn.client_id is None,
        status=conn.status,
        status_reason=conn.status_reason,
        needs_reauth=conn.status == ConnectionStatus.NEEDS_REAUTH,
        has_token=conn.access_token_enc is not None,
        expires_at=conn.expires_at,
        last_sync_at=conn.last_sync_at,
    )


@bp.get("/clients/<int:client_id>/connections")
@api_auth_required
def list_connections(client_id: int) -> Any:
    client = client_or_404(client_id)
    return paginate(client_connections(client.id), connection_json)


def _validate_patch(body: Any, conn: Connection, agency_id: int) -> dict[str, Any]:
    """Check every field before anything changes; a bad field answers 400 and changes nothing."""
    if not isinstance(body, dict):
        abort(400, description="a JSON object is required")
    unknown = set(body) - set(ConnectionPatch.model_fields)
    if unknown:
        abort(400, description=f"unknown field(s): {', '.join(sorted(unknown))}")
    out: dict[str, Any] = {}
    if "name" in body:
        if not isinstance(body["name"], str) or len(body["name"]) > 200:
            abort(400, description="name must be a string of at most 200 characters")
        out["name"] = body["name"].strip()
    if "connectors" in body:
        names = body["connectors"]
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            abort(400, description="connectors must be a non-empty list of connector names")
        bad = [n for n in names if n not in registry.CONNECTORS]
        if bad:
            abort(400, description=f"unknown connector(s): {', '.join(bad)}")
        out["connectors"] = list(dict.fromkeys(names))
    if "account" in body:
        # Only ids a person types may change; facts learned when the account was connected may not.
        try:
            out["account"] = registry.edited_account(
                out.get("connectors", conn.connectors or []), conn.account or {}, body["account"]
            )
        except registry.InvalidAccount as exc:
            raise Refused("account", str(exc), "bad_request") from None
    if "settings" in body:
        # Checked against what the connectors declare (those given in this change, else the connection's).
        connectors = out.get("connectors") or list(conn.connectors or [])
        out["settings"] = validate_connection_settings(connectors, body["settings"])
    if "status" in body:
        if body["status"] not in ("active", "disabled"):
            abort(400, description="status must be active or disabled")
        if body["status"] == "active" and conn.status == ConnectionStatus.NEEDS_REAUTH:
            abort(409, description="this connection needs re-authorisation: reconnect it instead")
        out["status"] = ConnectionStatus(body["status"])
    if "shared_with" in body:
        ids = body["shared_with"]
        if conn.client_id is not None:
            abort(400, description="only an agency-shared connection can be shared with clients")
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
            abort(400, description="shared_with must be a list of client ids")
        found = set(db().scalars(select(Client.id).where(Client.id.in_(ids), Client.agency_id == agency_id)))
        if found != set(ids):
            abort(400, description="shared_with lists clients that are not in this agency")
        out["shared_with"] = sorted(found)
    return out


@bp.patch("/clients/<int:client_id>/connections/<int:connection_id>")
@api_auth_required
def patch_connection(client_id: int, connection_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    session = db()
    conn = session.scalar(client_connections(client.id).where(Connection.id == connection_id))
    if conn is None:
        abort(404)
    changes = _validate_patch(request.get_json(silent=True), conn, client.agency_id)
    shared_with = changes.pop("shared_with", None)
    for field, value in changes.items():
        setattr(conn, field, value)
    if shared_with is not None:
        keep = set(shared_with)
        for link in list(conn.shared_with):
            if link.client_id not in keep:
                conn.shared_with.remove(link)
        have = {link.client_id for link in conn.shared_with}
        conn.shared_with.extend(ConnectionClient(client_id=cid) for cid in shared_with if cid not in have)
    session.commit()
    return jsonify(connection_json(conn))


for _name in registry.CONNECTORS:
    if (_model := connector_settings(_name)) is not None:
        component(_model, "validation", name=f"ConnectorSettings_{_name}")

register(
    "/clients/{client_id}/connections",
    "get",
    {
        "summary": "The client's connections (own and agency-shared) with status and last sync",
        "parameters": [id_param("client_id"), *PAGE_PARAMS],
        "responses": {"200": page_of(ConnectionOut), "404": NOT_FOUND},
    },
)
register(
    "/clients/{client_id}/connections/{connection_id}",
    "patch",
    {
        "summary": "Set a connection's account ids, settings, connectors, status or sharing",
        "parameters": [id_param("client_id"), id_param("connection_id")],
        "requestBody": request_body(ConnectionPatch),
        "responses": {
            "200": ok(ConnectionOut, "Changed"),
            "400": INVALID,
            "403": FORBIDDEN,
            "404": NOT_FOUND,
            "409": refused("Needs re-authorisation: reconnect instead"),
        },
    },
)
