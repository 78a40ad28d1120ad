"""The OpenAPI document, assembled from the paths each API module registers."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from hub.api import bp

PATHS: dict[str, dict[str, Any]] = {}
SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
        "required": ["error"],
    }
}


def register(path: str, method: str, operation: dict[str, Any]) -> None:
    """Describe one operation; ``path`` uses OpenAPI's ``{param}`` form, relative to /api/v1."""
    operation.setdefault("security", [{"bearer": []}])
    responses = operation.setdefault("responses", {})
    responses.setdefault("401", {"$ref": "#/components/responses/Unauthorized"})
    PATHS.setdefault(path, {})[method.lower()] = operation


WEBHOOKS: dict[str, dict[str, Any]] = {}


def register_webhook(event: str, operation: dict[str, Any]) -> None:
    """Describe a request the hub sends (OpenAPI 3.1 ``webhooks``), e.g. an outgoing webhook event."""
    WEBHOOKS[event] = {"post": operation}


def schema(name: str, definition: dict[str, Any]) -> dict[str, str]:
    SCHEMAS[name] = definition
    return {"$ref": f"#/components/schemas/{name}"}


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Otkuda API", "version": "1"},
        "servers": [{"url": "/api/v1"}],
        "paths": dict(sorted(PATHS.items())),
        "webhooks": dict(sorted(WEBHOOKS.items())),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": SCHEMAS,
            "responses": {
                "Unauthorized": {
                    "description": "Missing or unknown API token",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                },
                "NotFound": {
                    "description": "No such object visible to the caller",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                },
            },
        },
    }


@bp.get("/openapi.json")
def openapi_json() -> Any:
    return jsonify(document())
