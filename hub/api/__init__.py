"""The REST API under /api/v1 (token auth): one module per resource, each adding its routes and describing
them in the OpenAPI document through the schemas that validate and serialise them."""

from flask import Blueprint

bp = Blueprint("api", __name__)

from hub.api import (  # noqa: E402,F401  (registers the routes)
    calls,
    campaign_mappings,
    channels,
    clients,
    common,
    connections,
    deliveries,
    ga4,
    me,
    notifications,
    numbers,
    openapi,
    outgoing_webhooks,
    pools,
    romi,
    sessions,
    sites,
    spend,
    sync_runs,
    target_rules,
    telephony,
    users,
)
