"""The one set of request helpers every API module uses: bodies through schemas, query arguments (ints,
booleans, dates, times), paging, tenant-checked look-ups, and the mapping of refusals to the error shape."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

from flask import abort, jsonify, request
from pydantic import BaseModel
from sqlalchemy import Select, func, select

from hub.api import bp
from hub.api.openapi import ERROR, component
from hub.auth import current_user
from hub.extensions import db
from hub.resources import commit, owned, validate  # noqa: F401  (the API modules' names for them)
from hub.schemas import In, Page, error_json
from tracking.accounts import can_edit
from tracking.errors import Refused
from tracking.values import id_arg, parse_bool, parse_date, parse_moment

T = TypeVar("T")
M = TypeVar("M", bound=In)
MAX_PER_PAGE = 200
DEFAULT_PER_PAGE = 50

# A refusal's code -> HTTP status; any other code is a plain 400.
STATUS = {"unknown_promo_code": 422, "unknown_channel": 422, "conflict": 409}


@bp.errorhandler(Refused)
def _refused(exc: Refused) -> Any:
    db().rollback()
    message = exc.message if exc.field in ("body", "query") else f"{exc.field}: {exc.message}"
    return jsonify(error_json(exc.code, message, exc.field)), STATUS.get(exc.code, 400)


def body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise Refused("body", "the body must be a JSON object", "bad_request")
    return data


def parse(model: type[M], data: Any = None) -> M:
    """The request body (or ``data``) validated through ``model``; a refusal names the first bad field."""
    return validate(model, body() if data is None else data)


def _bad_arg(name: str, message: str) -> Refused:
    return Refused(name, message, "bad_request")


def int_arg(name: str, default: int, lo: int, hi: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    # isdigit() alone lets "²" and other Unicode digits through to int(), which refuses them.
    if not (raw.isascii() and raw.isdigit()) or not lo <= int(raw) <= hi:
        raise _bad_arg(name, f"must be an integer from {lo} to {hi}")
    return int(raw)


def optional_int_arg(name: str) -> int | None:
    raw = request.args.get(name)
    if not raw:
        return None
    if (value := id_arg(raw)) is None:
        raise _bad_arg(name, "must be an integer")
    return value


def bool_arg(name: str) -> bool | None:
    return parse_bool(name, request.args.get(name))


def date_arg(name: str, default: dt.date) -> dt.date:
    return parse_date(name, request.args.get(name), default)


def time_arg(name: str, zone: str = "UTC", *, end_of_day: bool = False) -> dt.datetime | None:
    """A moment: a time with its zone, or a date meaning a day in ``zone`` (see ``parse_moment``)."""
    return parse_moment(name, request.args.get(name), zone, end_of_day=end_of_day)


def page_args() -> tuple[int, int]:
    # ``limit`` is the older name some lists took; it still sets the page size.
    per_page = int_arg("limit", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE) if "limit" in request.args else None
    return int_arg("page", 1, 1, 10**6), int_arg("per_page", per_page or DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)


def page(query: Select[Any]) -> tuple[list[Any], dict[str, int]]:
    """One page of ``query``'s rows (which must be ordered) and the paging fields of the answer."""
    number, per_page = page_args()
    total = db().scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    rows = list(db().scalars(query.limit(per_page).offset((number - 1) * per_page)))
    return rows, {"page": number, "per_page": per_page, "total": total}


def paginate(query: Select[Any], to_json: Callable[[Any], dict[str, Any]]) -> Any:
    rows, meta = page(query)
    return jsonify(items=[to_json(r) for r in rows], **meta)


def require_editor() -> None:
    user = current_user()
    if user is None or not can_edit(user):
        abort(403)


# --- pieces of the OpenAPI description -------------------------------------------------------------------

PAGE_PARAMS = [
    {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
    {"name": "per_page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE}},
]


def id_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}


def _ref(schema: type[BaseModel] | dict[str, Any]) -> dict[str, Any]:
    return component(schema) if isinstance(schema, type) else schema


def ok(schema: type[BaseModel] | dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def page_of(model: type[BaseModel] | dict[str, Any]) -> dict[str, Any]:
    """A page of ``model`` (a schema's ``$ref`` is taken too, for hand-written schemas)."""
    if isinstance(model, dict):
        fields = {"page": {"type": "integer"}, "per_page": {"type": "integer"}, "total": {"type": "integer"}}
        properties = {"items": {"type": "array", "items": model}, **fields}
        return ok({"type": "object", "properties": properties, "required": list(properties)})
    return ok(Page[model])  # type: ignore[valid-type]


def request_body(model: type[In] | dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(model)}}}


def refused(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR}}}


NOT_FOUND = {"$ref": "#/components/responses/NotFound"}
INVALID = refused("A field failed validation; nothing changed")
FORBIDDEN = refused("The caller may not do this")
