"""The REST API under /api/v1 (token auth). Each module adds its routes and its OpenAPI paths."""

from flask import Blueprint

bp = Blueprint("api", __name__)

from hub.api import (  # noqa: E402,F401  (registers the routes)
    calls,
    common,
    ga4,
    notifications,
    openapi,
    outgoing_webhooks,
    pipeline,
    resources,
    romi,
    setup,
    spend,
    target_rules,  # noqa: E402,F401
    users,
)
