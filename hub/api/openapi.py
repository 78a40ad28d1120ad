"""The OpenAPI document, assembled from the operations each API module registers and the schemas it uses.

Schemas are never written here by hand: each is the JSON Schema of the Pydantic model that validates or
serialises the body (OpenAPI 3.1 uses JSON Schema 2020-12, which is what Pydantic emits)."""

from __future__ import annotations

import re
from typing import Any, Literal

from flask import jsonify, make_response, render_template, url_for
from pydantic import BaseModel

from hub.api import bp
from hub.schemas import Error, In

PATHS: dict[str, dict[str, Any]] = {}
SCHEMAS: dict[str, Any] = {}
REF = "#/components/schemas/{model}"


def component(
    model: type[BaseModel], mode: Literal["validation", "serialization"] | None = None, *, name: str = ""
) -> dict[str, str]:
    """Add ``model`` (and the models it uses) to the document's schemas; answer a ``$ref`` to it.

    Request models are described as they validate, response models as they serialise. ``name`` tells
    apart models that share a class name (each telephony adapter's ``Secrets``)."""
    if mode is None:
        mode = "validation" if issubclass(model, In) else "serialization"
    definition = model.model_json_schema(ref_template=REF, mode=mode)
    for sub_name, sub in definition.pop("$defs", {}).items():
        SCHEMAS[sub_name] = sub
    # Named as Pydantic names the models it nests, so a model has one name wherever it appears.
    name = re.sub(r"[^a-zA-Z0-9.\-_]", "_", name or model.__name__)
    SCHEMAS[name] = definition
    return {"$ref": REF.format(model=name)}


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


ERROR = component(Error)


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR}}}


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Otkuda API", "version": "1"},
        "servers": [{"url": "/api/v1"}],
        "paths": dict(sorted(PATHS.items())),
        "webhooks": dict(sorted(WEBHOOKS.items())),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": dict(sorted(SCHEMAS.items())),
            "responses": {
                "Unauthorized": _error_response("Missing or unknown API token"),
                "NotFound": _error_response("No such object visible to the caller"),
            },
        },
    }


@bp.get("/openapi.json")
def openapi_json() -> Any:
    return jsonify(document())


@bp.get("/docs")
def docs() -> Any:
    """The document rendered for people (Redoc, served from the hub's own static files)."""
    resp = make_response(render_template("api_docs.html", spec_url=url_for("api.openapi_json")))
    # Redoc draws a vendor logo from its own CDN; the policy keeps the page to the hub (styles are injected
    # inline by Redoc's CSS-in-JS, its search runs in a blob: worker).
    resp.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "worker-src 'self' blob:; script-src 'self'; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'"
    )
    return resp
