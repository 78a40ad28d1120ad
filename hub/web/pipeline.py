"""Pages for connections (with the OAuth connect flow), deliveries and sync history."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from authlib.integrations.base_client import OAuthError
from flask import abort, current_app, redirect, render_template, request, session, url_for
from sqlalchemy import select

from hub.auth import client_or_404, current_user, login_required, may_see_secret_urls
from hub.crm_webhooks import webhook_path
from hub.extensions import db
from hub.pipeline_queries import (
    DELIVERY_FILTERS,
    client_connections,
    client_deliveries,
    client_sync_runs,
)
from hub.web import bp
from jobs import providers
from jobs.outbox import retry_now
from jobs.tokens import oauth_session, redirect_uri, store_token
from tracking.crypto import SecretBox
from tracking.db import utcnow
from tracking.models import Connection, ConnectionClient, ConnectionStatus, Delivery

FLOW_KEY = "oauth_flow"


def _connectable() -> list[tuple[str, str]]:
    """(connector, button title) for every connector whose module loads here."""
    from connectors import registry

    out = []
    for name in sorted(registry.CONNECTORS):
        try:
            out.append((name, registry.load(name).PROVIDER.title))
        except (ImportError, AttributeError):
            continue  # not installed in this deployment
    return out


@bp.get("/clients/<int:client_id>/connections")
@login_required
def connections(client_id: int) -> Any:
    client = client_or_404(client_id)
    rows = db().scalars(client_connections(client.id)).all()
    base = str(current_app.config.get("BASE_URL", "")).rstrip("/")
    amo = [c.id for c in rows if "amocrm" in (c.connectors or [])]
    # Where amoCRM should send deal status changes (Settings → Integrations → Webhooks in amoCRM).
    hooks = {}
    if may_see_secret_urls(current_user()):
        hooks = {cid: base + webhook_path(current_app.config["SECRET_KEY"], cid) for cid in amo}
    from connectors.amocrm.settings import field_choices

    return render_template(
        "pipeline/connections.html",
        client=client,
        connections=rows,
        webhook_urls=hooks,
        amo_fields={c.id: field_choices(c.settings or {}) for c in rows if c.id in amo},
        connectable=_connectable(),
        error=request.args.get("error"),
    )


@bp.get("/clients/<int:client_id>/connections/connect/<connector>")
@login_required
def connect(client_id: int, connector: str) -> Any:
    """Send the person to the provider's consent page; the state in their session guards the callback."""
    client = client_or_404(client_id, edit=True)
    try:
        provider = providers.resolve(current_app.config, providers.connector_provider(connector))
    except (LookupError, ImportError, AttributeError):
        abort(404)
    if not provider.client_id:
        return redirect(
            url_for(
                "web.connections", client_id=client.id, error=f"{provider.provider.title} is not configured"
            )
        )
    reconnect = request.args.get("connection", type=int)
    if reconnect is not None:
        conn = db().get(Connection, reconnect)
        if conn is None or conn not in db().scalars(client_connections(client.id)).all():
            abort(404)
    state = secrets.token_urlsafe(32)
    session[FLOW_KEY] = {
        "state": state,
        "connector": connector,
        "client_id": client.id,
        "connection_id": reconnect,
        # An agency-wide account (an MCC, a shared CRM) is kept once and shared with the clients that use it.
        "shared": request.args.get("shared") == "1" and reconnect is None,
    }
    oauth = oauth_session(
        provider,
        scope=" ".join(provider.provider.scopes) or None,
        redirect_uri=redirect_uri(current_app.config),
    )
    url, _ = oauth.create_authorization_url(
        provider.authorize_url, state=state, **provider.provider.authorize_params
    )
    oauth.close()
    return redirect(url)


@bp.post("/clients/<int:client_id>/connections/<int:connection_id>/amocrm-settings")
@login_required
def amocrm_settings(client_id: int, connection_id: int) -> Any:
    """Pipeline, status, responsible user, field map, tags and duplicate control of one amoCRM account."""
    from connectors.amocrm import settings as amo_settings

    client = client_or_404(client_id, edit=True)
    conn = db().get(Connection, connection_id)
    if conn is None or conn not in db().scalars(client_connections(client.id)).all():
        abort(404)
    if "amocrm" not in (conn.connectors or []):
        abort(404)
    try:
        chosen = amo_settings.from_form(request.form)
    except amo_settings.InvalidSettings as exc:
        return redirect(url_for("web.connections", client_id=client.id, error=str(exc)))
    conn.settings = {**(conn.settings or {}), **chosen}
    conn.updated_at = utcnow()
    db().commit()
    return redirect(url_for("web.connections", client_id=client.id))


@bp.get("/oauth/callback")
@login_required
def oauth_callback() -> Any:
    flow = session.pop(FLOW_KEY, None)
    state = request.args.get("state", "")
    if not flow or not state or not hmac.compare_digest(str(flow["state"]), state):
        abort(400, description="The authorisation answer does not match a request from this browser.")
    client = client_or_404(int(flow["client_id"]), edit=True)
    if request.args.get("error"):
        abort(400, description=f"The provider refused: {request.args.get('error')}")
    code = request.args.get("code")
    if not code:
        abort(400, description="The provider sent no authorisation code.")
    module_provider = providers.connector_provider(flow["connector"])
    provider = providers.resolve(current_app.config, module_provider)
    account: dict[str, str] = {}
    if module_provider.account_from_callback is not None:
        # Read (and check) the account before the code is spent: some providers (amoCRM) name the account's
        # own host here, and the code and the client secret are sent there.
        try:
            account = module_provider.account_from_callback(request.args.to_dict(), {})
        except ValueError as exc:
            abort(400, description=str(exc))
    try:
        token_url = providers.account_url(provider, provider.token_url, account)
    except ValueError as exc:
        abort(400, description=str(exc))
    if "{" in token_url:
        abort(400, description="The provider's answer did not say which account was connected.")
    oauth = oauth_session(provider, redirect_uri=redirect_uri(current_app.config))
    try:
        token = dict(oauth.fetch_token(token_url, code=code, grant_type="authorization_code"))
    except OAuthError as exc:
        abort(400, description=f"The provider did not issue a token: {exc.error}")
    except Exception as exc:  # network trouble: nothing is stored, the person may try again
        abort(502, description=f"The provider could not be reached ({type(exc).__name__}).")
    finally:
        oauth.close()
    if module_provider.account_from_callback is not None:
        try:
            account = module_provider.account_from_callback(request.args.to_dict(), token)
        except ValueError as exc:
            abort(400, description=str(exc))
    session_ = db()
    conn = session_.get(Connection, flow["connection_id"]) if flow.get("connection_id") else None
    if conn is None:
        conn = Connection(
            agency_id=client.agency_id,
            client_id=None if flow.get("shared") else client.id,
            provider=module_provider.name,
            name=module_provider.title,
            connectors=[flow["connector"]],
            scopes=list(module_provider.scopes),
        )
        if flow.get("shared"):
            conn.shared_with = [ConnectionClient(client_id=client.id)]
        session_.add(conn)
    conn.account = {**(conn.account or {}), **account}
    store_token(SecretBox(current_app.config["ENCRYPTION_KEY"]), conn, token)
    conn.status = ConnectionStatus.ACTIVE
    conn.updated_at = utcnow()
    session_.commit()
    return redirect(url_for("web.connections", client_id=client.id))


@bp.get("/clients/<int:client_id>/deliveries")
@login_required
def deliveries(client_id: int) -> Any:
    client = client_or_404(client_id)
    status = request.args.get("status") or None
    if status is not None and status not in DELIVERY_FILTERS:
        abort(400)
    rows = db().scalars(client_deliveries(client.id, status)).all()
    names = {c.id: c.name for c in db().scalars(client_connections(client.id))}
    return render_template(
        "pipeline/deliveries.html",
        client=client,
        deliveries=rows,
        status=status,
        filters=["problems", "failing", "dead", "pending", "in_flight", "done", "skipped"],
        connection_names=names,
    )


@bp.post("/clients/<int:client_id>/deliveries/<int:delivery_id>/retry")
@login_required
def retry_delivery_page(client_id: int, delivery_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    session_ = db()
    delivery = session_.scalar(
        select(Delivery).where(Delivery.id == delivery_id, Delivery.client_id == client.id)
    )
    if delivery is None:
        abort(404)
    retry_now(session_, delivery)
    session_.commit()
    return redirect(url_for("web.deliveries", client_id=client.id, status=request.form.get("status") or None))


@bp.get("/clients/<int:client_id>/sync-history")
@login_required
def sync_history(client_id: int) -> Any:
    client = client_or_404(client_id)
    return render_template(
        "pipeline/sync_history.html", client=client, runs=db().scalars(client_sync_runs(client.id)).all()
    )
