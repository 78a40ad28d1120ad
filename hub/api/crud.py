"""The OpenAPI description of a resource that lives under a client (list, create, one, change, delete),
and the routes themselves for the destinations made with a form."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import jsonify
from pydantic import BaseModel

from hub.api import bp
from hub.api.common import (
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
from hub.auth import api_auth_required, client_or_404
from hub.destinations import destination_or_404, new, of_client_query
from hub.extensions import db
from hub.schemas import In
from tracking.models import Connection


def describe(
    name: str,
    out: type[BaseModel],
    create: type[In],
    change: type[In],
    *,
    delete: bool,
    plural: str | None = None,
    list_params: tuple[dict[str, Any], ...] = (),
) -> None:
    plural = plural or f"{name}s"
    collection, item = f"/clients/{{client_id}}/{plural}", f"/{plural}/{{{name}_id}}"
    cid, oid = id_param("client_id"), id_param(f"{name}_id")
    register(
        collection,
        "get",
        {
            "summary": f"List {plural}",
            "parameters": [cid, *PAGE_PARAMS, *list_params],
            "responses": {"200": page_of(out), "404": NOT_FOUND},
        },
    )
    register(
        collection,
        "post",
        {
            "summary": f"Create a {name}",
            "parameters": [cid],
            "requestBody": request_body(create),
            "responses": {"201": ok(out, "Created"), "400": INVALID, "404": NOT_FOUND},
        },
    )
    register(
        item,
        "get",
        {"summary": f"One {name}", "parameters": [oid], "responses": {"200": ok(out), "404": NOT_FOUND}},
    )
    register(
        item,
        "patch",
        {
            "summary": f"Change a {name}",
            "parameters": [oid],
            "requestBody": request_body(change),
            "responses": {"200": ok(out), "400": INVALID, "404": NOT_FOUND},
        },
    )
    if delete:
        register(
            item,
            "delete",
            {
                "summary": f"Delete a {name}",
                "parameters": [oid],
                "responses": {"204": {"description": "Deleted"}, "404": NOT_FOUND},
            },
        )


def destination_routes(
    connector: str,
    name: str,
    out: type[BaseModel],
    create: type[In],
    change: type[In],
    *,
    to_json: Callable[..., dict[str, Any]],
    apply: Callable[[Connection, Any], str | None],
    plural: str | None = None,
) -> None:
    """The routes (and their description) of a destination made with a form: list, create, one, change and
    delete a client's connections of one connector (``hub.destinations``). ``apply`` sets a validated body
    on the connection and answers a secret to show once (or None); ``to_json`` takes that secret too."""
    plural = plural or f"{name}s"
    collection, item = f"/clients/<int:client_id>/{plural}", f"/{plural}/<int:{name}_id>"
    endpoint = name.replace("-", "_")

    def answer(conn: Connection, secret: str | None) -> dict[str, Any]:
        return to_json(conn) if secret is None else to_json(conn, secret)

    def list_all(client_id: int) -> Any:
        client = client_or_404(client_id)
        return paginate(of_client_query(client, connector), to_json)

    def make(client_id: int) -> Any:
        client = client_or_404(client_id, edit=True)
        given = parse(create)
        conn = new(client, connector, name="", account={}, settings={}, secret=None)
        secret = apply(conn, given)
        commit()
        return jsonify(answer(conn, secret)), 201

    def one(**ids: int) -> Any:
        conn, _ = destination_or_404(ids[f"{name}_id"], connector)
        return jsonify(to_json(conn))

    def edit(**ids: int) -> Any:
        conn, _ = destination_or_404(ids[f"{name}_id"], connector, edit=True)
        secret = apply(conn, parse(change))
        commit()
        return jsonify(answer(conn, secret))

    def remove(**ids: int) -> Any:
        conn, _ = destination_or_404(ids[f"{name}_id"], connector, edit=True)
        db().delete(conn)
        commit()
        return "", 204

    for rule, verb, view in (
        (collection, "GET", list_all),
        (collection, "POST", make),
        (item, "GET", one),
        (item, "PATCH", edit),
        (item, "DELETE", remove),
    ):
        bp.add_url_rule(rule, f"{view.__name__}_{endpoint}", api_auth_required(view), methods=[verb])
    describe(name, out, create, change, delete=True, plural=plural)
