"""Pieces every API module shares: body validation, pagination, tenant-checked object look-ups."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from flask import abort, jsonify, request
from sqlalchemy import Select, func, select
from werkzeug.exceptions import BadRequest

from hub.api import bp
from hub.auth import client_or_404, current_user
from hub.extensions import db
from tracking.accounts import can_edit
from tracking.models import Client

T = TypeVar("T")
MAX_PER_PAGE = 200


# The database's integer columns: a larger JSON number is refused here, not by the database.
INT_MIN, INT_MAX = -(2**31), 2**31 - 1


# Dates a report, filter or spend period can mean; others (year 1, year 9999) overflow date arithmetic.
EARLIEST_DATE, LATEST_DATE = dt.date(2000, 1, 1), dt.date(2100, 12, 31)


def plausible_date(value: dt.date, name: str) -> dt.date:
    """``value`` if it lies in the years the hub reports on, else a 400 naming ``name``."""
    day = value.date() if isinstance(value, dt.datetime) else value
    if not EARLIEST_DATE <= day <= LATEST_DATE:
        raise BadRequest(f"{name} must be between {EARLIEST_DATE} and {LATEST_DATE}")
    return value


def id_arg(raw: str) -> int | None:
    """An id typed in a query or form (ASCII digits in the database's range), or None."""
    if raw.isascii() and raw.isdigit() and int(raw) <= INT_MAX:
        return int(raw)
    return None


class Invalid(Exception):
    """A request field failed validation; answered 400 naming the field, nothing is changed."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@bp.errorhandler(Invalid)
def _invalid(exc: Invalid) -> Any:
    db().rollback()
    return jsonify(error="invalid", field=exc.field, message=f"{exc.field}: {exc.message}"), 400


def body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return data


def field(
    data: Mapping[str, Any], name: str, kind: type | tuple[type, ...], *, required: bool = False
) -> Any:
    if name not in data or data[name] is None:
        if required:
            raise Invalid(name, "is required")
        return None
    value = data[name]
    # bool is an int in Python; a JSON true is never a valid count or id.
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _tuple(kind)):
        raise Invalid(name, f"must be {_names(kind)}")
    if isinstance(value, int) and not isinstance(value, bool) and not INT_MIN <= value <= INT_MAX:
        raise Invalid(name, f"must be from {INT_MIN} to {INT_MAX}")
    if isinstance(value, str):
        if "\x00" in value:
            raise Invalid(name, "must not contain NUL characters")
        value = value.strip()
        if required and not value:
            raise Invalid(name, "must not be empty")
    return value


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _names(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", bool: "true or false", list: "a list", dict: "an object"}
    return " or ".join(names.get(k, k.__name__) for k in _tuple(kind))


def int_arg(name: str, default: int, lo: int, hi: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    # isdigit() alone lets "²" and other Unicode digits through to int(), which refuses them.
    if not (raw.isascii() and raw.isdigit()) or not lo <= int(raw) <= hi:
        raise BadRequest(f"{name} must be an integer from {lo} to {hi}")
    return int(raw)


def paginate(query: Select[Any], to_json: Callable[[Any], dict[str, Any]]) -> Any:
    page = int_arg("page", 1, 1, 10**6)
    per_page = int_arg("per_page", 50, 1, MAX_PER_PAGE)
    total = db().scalar(select(func.count()).select_from(query.subquery()))
    rows = db().scalars(query.limit(per_page).offset((page - 1) * per_page)).all()
    return jsonify(items=[to_json(r) for r in rows], page=page, per_page=per_page, total=total)


def owned(model: type[T], object_id: int, *, edit: bool = False) -> tuple[T, Client]:
    """An object by id whose client the caller may see (404 otherwise, whoever owns it)."""
    obj = db().get(model, object_id)
    if obj is None:
        abort(404)
    client = client_or_404(obj.client_id, edit=edit)  # type: ignore[attr-defined]
    return obj, client


def require_editor() -> None:
    user = current_user()
    if user is None or not can_edit(user):
        abort(403)


PAGE_PARAMS = [
    {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
    {"name": "per_page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE}},
]


def id_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}


def ok(schema_ref: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema_ref}}}


def page_of(schema_ref: dict[str, Any]) -> dict[str, Any]:
    return ok(
        {
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": schema_ref},
                "page": {"type": "integer"},
                "per_page": {"type": "integer"},
                "total": {"type": "integer"},
            },
        }
    )


NOT_FOUND = {"$ref": "#/components/responses/NotFound"}
INVALID = {
    "description": "A field failed validation; nothing changed",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
