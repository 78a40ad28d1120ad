"""The application factory."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from hub.config import load_config
from hub.csrf import init_csrf
from hub.extensions import init_db


class DatabaseInt(IntegerConverter):
    """``<int:…>`` in routes, limited to the database's integer range: a larger id is a 404, not a 500."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:  # noqa: A002  (Werkzeug's name)
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(map, *args, **kwargs)


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    """Create the hub. ``overrides`` replaces configuration values (tests pass DATABASE_URL and such)."""
    app = Flask(__name__, instance_relative_config=False)
    app.url_map.converters["int"] = DatabaseInt
    app.config.update(load_config(overrides))
    logging.basicConfig(level=app.config.get("LOG_LEVEL", "INFO"))
    init_db(app)
    init_csrf(app)
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
    init_outage_snapshot(app)  # Twilio calls still connect while the database is down

    @app.errorhandler(HTTPException)
    def _json_errors_for_machines(exc: HTTPException) -> Any:
        # Machines (the API, the snippet, telephony webhooks) get JSON; people get Flask's HTML page.
        if request.path.startswith(("/api/", "/t/", "/hooks/")):
            resp = jsonify(error=(exc.name or "error").lower().replace(" ", "_"), message=exc.description)
            resp.status_code = exc.code or 500
            return resp
        return exc

    return app
