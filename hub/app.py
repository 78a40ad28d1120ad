"""The application factory."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from hub.config import load_config
from hub.csrf import init_csrf
from hub.extensions import init_db
from hub.formatting import init_formatting
from hub.i18n import init_i18n
from hub.ratelimit import MACHINE_PREFIXES, init_ratelimit, install_proxy_fix
from hub.schemas import error_json

# Dashboard pages load only their own scripts, styles and images; recordings play from the provider's
# host. No page may be framed (clickjacking), and forms post only back to the hub.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' https: http:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# JSON answers are never rendered; nothing in them may load or frame anything.
DATA_CSP = "default-src 'none'; frame-ancestors 'none'"


class DatabaseInt(IntegerConverter):
    """``<int:…>`` in routes, limited to the database's integer range: a larger id is a 404, not a 500."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(map, *args, **kwargs)


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    """Create the hub. ``overrides`` replaces configuration values (tests pass DATABASE_URL and such)."""
    app = Flask(__name__, instance_relative_config=False)
    app.url_map.converters["int"] = DatabaseInt
    app.config.update(load_config(overrides))
    logging.basicConfig(level=app.config["LOG_LEVEL"])
    init_db(app)
    init_csrf(app)
    init_formatting(app)
    init_i18n(app)
    from jobs.outbox import install as install_outbox

    install_outbox()  # finalised calls and won deals queue their deliveries in the same transaction

    from hub import crm_webhooks  # noqa: F401  (adds the CRM routes to the webhooks blueprint)
    from hub.api import bp as api_bp
    from hub.public import bp as public_bp
    from hub.web import bp as web_bp
    from hub.webhooks import bp as hooks_bp
    from hub.webhooks import init_outage_snapshot

    app.register_blueprint(web_bp)
    app.register_blueprint(api_bp, url_prefix="/api/v1")
    app.register_blueprint(public_bp, url_prefix="/t/v1")
    app.register_blueprint(hooks_bp, url_prefix="/hooks/v1")
    install_proxy_fix(app)
    init_ratelimit(app)

    @app.after_request
    def _security_headers(resp: Response) -> Response:
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        # The snippet and its endpoints are made to be used from other sites' pages; webhooks are
        # server to server. Everything else is the hub's own pages and API.
        if not request.path.startswith(("/t/", "/hooks/")):
            resp.headers.setdefault("X-Frame-Options", "DENY")
            html = resp.mimetype == "text/html"
            resp.headers.setdefault("Content-Security-Policy", PAGE_CSP if html else DATA_CSP)
        return resp

    init_outage_snapshot(app)  # Twilio calls still connect while the database is down

    @app.errorhandler(HTTPException)
    def _errors(exc: HTTPException) -> Any:
        if exc.response is not None:
            return exc.response  # already answered in full (a rate limit's 429 with its Retry-After)
        # Machines (the API, the snippet, telephony webhooks) get JSON; people get the hub's own page.
        if request.path.startswith(MACHINE_PREFIXES):
            code = (exc.name or "error").lower().replace(" ", "_")
            resp = jsonify(error_json(code, exc.description))
            resp.status_code = exc.code or 500
            return resp
        if exc.code is None or exc.code < 400 or exc.code == 405:
            return exc  # redirects and method errors keep Flask's own answer
        # The page names the status in the person's language (error.html), not werkzeug's English name.
        return render_template("error.html", status=exc.code), exc.code

    @app.errorhandler(500)
    def _server_error(exc: Exception) -> Any:
        # An unexpected failure: no details for the person (they are in the log), the JSON shape for machines.
        if request.path.startswith(MACHINE_PREFIXES):
            resp = jsonify(error_json("internal_server_error", "Something went wrong on the hub."))
            resp.status_code = 500
            return resp
        return render_template("error.html", status=500), 500

    return app
