"""The OpenAPI description of a resource that lives under a client: list, create, one, change, delete."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from hub.api.common import INVALID, NOT_FOUND, PAGE_PARAMS, id_param, ok, page_of, request_body
from hub.api.openapi import register
from hub.schemas import In


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
