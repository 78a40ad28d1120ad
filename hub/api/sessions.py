"""Visitor sessions: one visit to a client's site, with its traffic source and the number it was shown."""

from __future__ import annotations

from typing import Any

from flask import abort, jsonify
from sqlalchemy import select

from hub.api import bp
from hub.api.common import NOT_FOUND, PAGE_PARAMS, id_param, ok, optional_int_arg, page, page_of, time_arg
from hub.api.openapi import register
from hub.auth import api_auth_required, client_or_404
from hub.call_views import SessionOut, session_json
from hub.extensions import db
from tracking.models import Channel, VisitSession


@bp.get("/clients/<int:client_id>/sessions")
@api_auth_required
def list_sessions(client_id: int) -> Any:
    client = client_or_404(client_id)
    query = select(VisitSession).where(VisitSession.client_id == client.id)
    for arg, column in (("site_id", VisitSession.site_id), ("channel_id", VisitSession.channel_id)):
        if (value := optional_int_arg(arg)) is not None:
            query = query.where(column == value)
    if (start := time_arg("from", client.timezone)) is not None:
        query = query.where(VisitSession.started_at >= start)
    if (end := time_arg("to", client.timezone)) is not None:
        query = query.where(VisitSession.started_at < end)
    rows, meta = page(query.order_by(VisitSession.started_at.desc(), VisitSession.id.desc()))
    channels = {c.id: c for c in db().scalars(select(Channel).where(Channel.client_id == client.id))}
    return jsonify(items=[session_json(s, channels) for s in rows], **meta)


@bp.get("/sessions/<session_id>")
@api_auth_required
def get_session(session_id: str) -> Any:
    s = db().scalar(select(VisitSession).where(VisitSession.public_id == session_id))
    if s is None:
        abort(404)
    client_or_404(s.client_id)
    return jsonify(session_json(s))


register(
    "/clients/{client_id}/sessions",
    "get",
    {
        "summary": "Visitor sessions, newest first",
        "parameters": [
            id_param("client_id"),
            *PAGE_PARAMS,
            {"name": "site_id", "in": "query", "schema": {"type": "integer"}},
            {"name": "channel_id", "in": "query", "schema": {"type": "integer"}},
            {
                "name": "from",
                "in": "query",
                "schema": {"type": "string"},
                "description": "time, or a date (client's zone)",
            },
            {
                "name": "to",
                "in": "query",
                "schema": {"type": "string"},
                "description": "exclusive time or date",
            },
        ],
        "responses": {"200": page_of(SessionOut), "404": NOT_FOUND},
    },
)
register(
    "/sessions/{session_id}",
    "get",
    {
        "summary": "One visitor session",
        "parameters": [{"name": "session_id", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {"200": ok(SessionOut), "404": NOT_FOUND},
    },
)
