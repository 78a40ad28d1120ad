"""Connections: the external accounts (CRM, analytics, ad platforms) a client's data flows to and from."""

from __future__ import annotations

from typing import Any

from flask import abort, jsonify
from pydantic import Field

from connectors import registry
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
    refused,
    request_body,
)
from hub.api.openapi import component, register
from hub.auth import api_auth_required, client_or_404
from hub.extensions import db
from hub.pipeline_queries import client_connections
from hub.plugins import connector_settings
from hub.resources import ConnectionPatch, connection_change
from hub.schemas import Out, UtcDateTime
from tracking.models import Connection, ConnectionClient, ConnectionStatus


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


@bp.patch("/clients/<int:client_id>/connections/<int:connection_id>")
@api_auth_required
def patch_connection(client_id: int, connection_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    session = db()
    conn = session.scalar(client_connections(client.id).where(Connection.id == connection_id))
    if conn is None:
        abort(404)
    changes = connection_change(conn, body())
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
