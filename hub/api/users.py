"""The agency's users: admins list them and add managers and client viewers."""

from __future__ import annotations

from typing import Any

from flask import abort, jsonify
from pydantic import Field
from sqlalchemy import select

from hub.api import bp
from hub.api.common import FORBIDDEN, INVALID, PAGE_PARAMS, ok, page_of, paginate, parse, request_body
from hub.api.openapi import register
from hub.auth import api_auth_required, current_user
from hub.extensions import db
from hub.schemas import In, Out, StrictInt, StrictStr
from tracking.accounts import InvalidAccount, add_user
from tracking.errors import Refused
from tracking.models import Agency, Client, Role, User


class UserOut(Out):
    id: int
    email: str
    name: str
    role: Role
    client_id: int | None


class UserCreate(In):
    email: StrictStr
    password: StrictStr = Field(json_schema_extra={"minLength": 10})
    role: Role
    client_id: StrictInt | None = Field(None, description="Required for a viewer: the one client they see")
    name: StrictStr = ""


def user_json(u: User) -> dict[str, Any]:
    return UserOut.of(u)


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
    given = parse(UserCreate)
    client = None
    if given.client_id is not None:
        client = db().get(Client, given.client_id)
        # Another agency's client is answered like a missing one: no hint that it exists.
        if client is None or client.agency_id != admin.agency_id:
            raise Refused("client_id", "no such client")
    agency = db().get(Agency, admin.agency_id)
    assert agency is not None
    try:
        user = add_user(db(), agency, given.email, given.password, given.role, client=client, name=given.name)
    except InvalidAccount as exc:
        name, _, message = str(exc).partition(": ")
        raise Refused(name, message) from None
    db().commit()
    return jsonify(user_json(user)), 201


register(
    "/users",
    "get",
    {
        "summary": "List the agency's users (admins only)",
        "parameters": PAGE_PARAMS,
        "responses": {"200": page_of(UserOut), "403": FORBIDDEN},
    },
)
register(
    "/users",
    "post",
    {
        "summary": "Add a user to the agency (admins only); viewers need a client_id",
        "requestBody": request_body(UserCreate),
        "responses": {"201": ok(UserOut, "Created"), "400": INVALID, "403": FORBIDDEN},
    },
)
