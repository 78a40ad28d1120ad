"""The agency's users: admins list them and add managers and client viewers."""

from __future__ import annotations

from typing import Any

from flask import abort, jsonify
from sqlalchemy import select

from hub.api import bp
from hub.api.common import INVALID, PAGE_PARAMS, Invalid, body, field, ok, page_of, paginate
from hub.api.openapi import register, schema
from hub.auth import api_auth_required, current_user
from hub.extensions import db
from tracking.accounts import InvalidAccount, add_user
from tracking.models import Agency, Client, Role, User

USER = schema(
    "User",
    {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "email": {"type": "string"},
            "name": {"type": "string"},
            "role": {"type": "string", "enum": [r.value for r in Role]},
            "client_id": {"type": ["integer", "null"]},
        },
    },
)


def user_json(u: User) -> dict[str, Any]:
    return {"id": u.id, "email": u.email, "name": u.name, "role": u.role.value, "client_id": u.client_id}


def _admin() -> User:
    user = current_user()
    if user is None or user.role != Role.ADMIN:
        abort(403)
    return user


@bp.get("/users")
@api_auth_required
def list_users() -> Any:
    admin = _admin()
    return paginate(select(User).where(User.agency_id == admin.agency_id).order_by(User.id), user_json)


@bp.post("/users")
@api_auth_required
def create_user() -> Any:
    admin = _admin()
    data = body()
    role_name = field(data, "role", str, required=True)
    if role_name not in {r.value for r in Role}:
        raise Invalid("role", "must be admin, manager or viewer")
    client_id = field(data, "client_id", int)
    client = None
    if client_id is not None:
        client = db().get(Client, client_id)
        # Another agency's client is answered like a missing one: no hint that it exists.
        if client is None or client.agency_id != admin.agency_id:
            raise Invalid("client_id", "no such client")
    agency = db().get(Agency, admin.agency_id)
    assert agency is not None
    try:
        user = add_user(
            db(),
            agency,
            field(data, "email", str, required=True),
            field(data, "password", str, required=True),
            Role(role_name),
            client=client,
            name=field(data, "name", str) or "",
        )
    except InvalidAccount as exc:
        name, _, message = str(exc).partition(": ")
        raise Invalid(name, message) from None
    db().commit()
    return jsonify(user_json(user)), 201


register(
    "/users",
    "get",
    {
        "summary": "List the agency's users (admins only)",
        "parameters": PAGE_PARAMS,
        "responses": {"200": page_of(USER), "403": {"description": "Not an admin"}},
    },
)
register(
    "/users",
    "post",
    {
        "summary": "Add a user to the agency (admins only); viewers need a client_id",
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["email", "password", "role"],
                        "properties": {
                            "email": {"type": "string"},
                            "password": {"type": "string", "minLength": 10},
                            "role": {"type": "string", "enum": [r.value for r in Role]},
                            "client_id": {"type": "integer"},
                            "name": {"type": "string"},
                        },
                    }
                }
            },
        },
        "responses": {
            "201": ok(USER, "Created"),
            "400": INVALID,
            "403": {"description": "Not an admin"},
        },
    },
)
