"""The agency's users: admins list them and add managers and client viewers."""

from __future__ import annotations

from typing import Any

from flask import abort, jsonify
from sqlalchemy import select

from hub import resources
from hub.api import bp
from hub.api.common import (
    FORBIDDEN,
    INVALID,
    NOT_FOUND,
    PAGE_PARAMS,
    commit,
    id_param,
    ok,
    page_of,
    paginate,
    parse,
    request_body,
)
from hub.api.openapi import register
from hub.auth import api_auth_required, current_user
from hub.extensions import db
from hub.resources import UserChange, UserCreate
from hub.schemas import Out
from tracking.models import Role, User


class UserOut(Out):
    id: int
    email: str
    name: str
    role: Role
    client_id: int | None


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
    user = resources.create_user(admin, parse(UserCreate))
    return jsonify(user_json(user)), 201


@bp.patch("/users/<int:user_id>")
@api_auth_required
def update_user(user_id: int) -> Any:
    admin = _admin()
    user = db().get(User, user_id)
    if user is None or user.agency_id != admin.agency_id:
        abort(404)
    resources.apply_user(admin, user, parse(UserChange))
    commit()
    return jsonify(user_json(user))


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
register(
    "/users/{user_id}",
    "patch",
    {
        "summary": "Change a user's role and, for a viewer, client (admins only); the last admin cannot be "
        "demoted and nobody raises their own role",
        "parameters": [id_param("user_id")],
        "requestBody": request_body(UserChange),
        "responses": {"200": ok(UserOut), "400": INVALID, "403": FORBIDDEN, "404": NOT_FOUND},
    },
)
