"""The REST API under /api/v1 (token auth). Each module adds its routes and its OpenAPI paths."""

from flask import Blueprint

bp = Blueprint("api", __name__)

from hub.api import calls, common, openapi, pipeline, resources, romi, setup, spend, users  # noqa: E402,F401  (registers the routes)
