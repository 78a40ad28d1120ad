"""The caller: who the API token belongs to."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from hub.api import bp
from hub.api.common import ok
from hub.api.openapi import register
from hub.auth import api_auth_required, current_user
from hub.schemas import Out
from tracking.models import Role


class MeOut(Out):
    id: int
    email: str
    name: str
    role: Role
    agency_id: int
    client_id: int | None


@bp.get("/me")
@api_auth_required
def me() -> Any:
    user = current_user()
    assert user is not None
    return jsonify(MeOut.of(user))


register("/me", "get", {"summary": "The caller", "responses": {"200": ok(MeOut)}})
