"""CRM webhooks: /hooks/v1/amocrm/<connection_id>/<token>.

amoCRM signs nothing, so the URL itself is the secret: the token is an HMAC of the connection id under the
hub's secret key. The hub registers it in the account (POST /api/v4/webhooks) when the connection is made
and removes it when the connection is switched off; the page shows it for pasting by hand only when the
registration failed. A wrong token answers 404 like an unknown connection; an unreadable body answers 400;
neither changes anything.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

from flask import current_app, jsonify, request

from connectors.amocrm.webhooks import WebhookInvalid, deal_updates
from hub.extensions import db
from hub.webhooks import Refused, bp
from jobs.contexts import clients_of_connection
from jobs.pulls import upsert_deal
from tracking.models import Client, Connection, ConnectionStatus

log = logging.getLogger(__name__)


def webhook_token(secret_key: str, connection_id: int) -> str:
    mac = hmac.new(secret_key.encode(), f"amocrm-webhook:{connection_id}".encode(), hashlib.sha256)
    return mac.hexdigest()[:40]


def webhook_path(secret_key: str, connection_id: int) -> str:
    return f"/hooks/v1/amocrm/{connection_id}/{webhook_token(secret_key, connection_id)}"


def deal_webhook_url(connection_id: int) -> str:
    base = str(current_app.config.get("BASE_URL", "")).rstrip("/")
    return base + webhook_path(current_app.config["SECRET_KEY"], connection_id)


def _amo_connector(conn: Connection) -> Any:
    from sqlalchemy.engine import Engine

    from jobs.contexts import make_connector
    from jobs.runtime import Runtime

    bind = db().get_bind()
    rt = Runtime.from_config(current_app.config, engine=bind if isinstance(bind, Engine) else bind.engine)
    return make_connector(rt, db(), conn, "amocrm")[0]


def register_deal_webhook(conn: Connection) -> str | None:
    """Subscribe the hub to the account's deal changes; the reason when that failed (the caller commits).

    A failure does not undo the connection: deals are still pulled on schedule, and the page shows the
    address to paste in amoCRM by hand."""
    url = deal_webhook_url(conn.id)
    try:
        hook_id = _amo_connector(conn).register_deal_webhook(url)
    except Exception as exc:  # the connection stands; only the push of deal changes is missing
        log.warning("amoCRM webhook for connection %s not registered: %s", conn.id, type(exc).__name__)
        conn.settings = {**(conn.settings or {}), "deal_webhook": None}
        return f"{type(exc).__name__}: {exc}"
    conn.settings = {**(conn.settings or {}), "deal_webhook": {"id": hook_id, "destination": url}}
    return None


def remove_deal_webhook(conn: Connection) -> str | None:
    """Unsubscribe the hub from the account's deal changes; the reason when that failed."""
    registered = (conn.settings or {}).get("deal_webhook")
    if not registered:
        return None
    try:
        _amo_connector(conn).remove_deal_webhook(str(registered["destination"]))
    except Exception as exc:
        log.warning("amoCRM webhook for connection %s not removed: %s", conn.id, type(exc).__name__)
        return f"{type(exc).__name__}: {exc}"
    conn.settings = {**(conn.settings or {}), "deal_webhook": None}
    return None


@bp.post("/amocrm/<int:connection_id>/<token>")
def amocrm_webhook(connection_id: int, token: str) -> Any:
    expected = webhook_token(current_app.config["SECRET_KEY"], connection_id)
    conn = db().get(Connection, connection_id)
    if not hmac.compare_digest(expected, token) or conn is None or "amocrm" not in (conn.connectors or []):
        raise Refused(404, "unknown_hook", "no CRM connection with this address")
    if conn.status == ConnectionStatus.DISABLED:
        raise Refused(404, "unknown_hook", "no CRM connection with this address")
    clients = clients_of_connection(db(), conn)
    if len(clients) != 1:
        raise Refused(409, "shared_connection", "deals of a shared CRM connection cannot be told apart")
    client = db().get(Client, clients[0])
    assert client is not None
    try:
        updates = deal_updates(request.form.items(multi=True), client.currency)
    except WebhookInvalid as exc:
        raise Refused(400, "invalid_payload", str(exc)) from None
    if not updates and not any(k.startswith(("leads[", "account[")) for k in request.form):
        raise Refused(400, "invalid_payload", "not an amoCRM webhook")
    for update in updates:
        upsert_deal(db(), conn, client.id, update)
    db().commit()
    log.info("amoCRM webhook for connection %s: %d deal(s)", connection_id, len(updates))
    return jsonify(deals=len(updates))
