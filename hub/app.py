"""The application factory."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from hub.config import load_config
from hub.csrf import init_csrf
from hub.extensions import init_db
from hub.formatting import init_formatting
from hub.schemas import error_json


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    """Create the hub. ``overrides`` replaces configuration values (tests pass DATABASE_URL and such)."""
    app = Flask(__name__, instance_relative_config=False)
    app.config.update(load_config(overrides))
    logging.basicConfig(level=app.config["LOG_LEVEL"])
    init_db(app)
    init_csrf(app)
    init_formatting(app)
    from jobs.outbox import install as install_outbox

    install_outbox()  # finalised calls and won deals queue their deliveries in the same transaction

    from hub import crm_webhooks  # noqa: F401  (adds the CRM routes to the webhooks blueprint)
    from hub.api import bp as api_bp
    from hub.public import bp as public_bp
    from hub.web import bp as web_bp
    from hub.webhooks import bp as hooks_bp

    app.register_blueprint(web_bp)
    app.register_blueprint(api_bp, url_prefix="/api/v1")
    app.register_blueprint(public_bp, url_prefix="/t/v1")
    app.register_blueprint(hooks_bp, url_prefix="/hooks/v1")

    @app.errorhandler(HTTPException)
    def _errors(exc: HTTPException) -> Any:
        # Machines (the API, the snippet, telephony webhooks) get JSON; people get the hub's own page.
        if request.path.startswith(("/api/", "/t/", "/hooks/")):
            code = (exc.name or "error").lower().replace(" ", "_")
            resp = jsonify(error_json(code, exc.description))
            resp.status_code = exc.code or 500
            return resp
        if exc.code is None or exc.code < 400 or exc.code == 405:
            return exc  # redirects and method errors keep Flask's own answer
        return render_template("error.html", status=exc.code, title=exc.name), exc.code

    @app.errorhandler(500)
    def _server_error(exc: Exception) -> Any:
        # An unexpected failure: no details for the person (they are in the log), the JSON shape for machines.
        if request.path.startswith(("/api/", "/t/", "/hooks/")):
            resp = jsonify(error_json("internal_server_error", "Something went wrong on the hub."))
            resp.status_code = 500
            return resp
        return render_template("error.html", status=500, title="Something went wrong"), 500

    return app
