"""Pages for connections (with the OAuth connect flow), deliveries and sync history."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from authlib.integrations.base_client import OAuthError
from flask import abort, current_app, redirect, render_template, request, session, url_for
from sqlalchemy import select

from hub.auth import client_or_404, current_user, login_required, may_see_secret_urls
from hub.crm_webhooks import deal_webhook_url, register_deal_webhook, remove_deal_webhook
from hub.extensions import db
from hub.pipeline_queries import (
    DELIVERY_FILTERS,
    client_connections,
    client_deliveries,
    client_sync_runs,
)
from hub.plugins import FormField, connector_settings, form_fields, from_form
from hub.resources import connection_settings as checked_settings
from hub.ui_messages import refusal_text
from hub.web import bp
from jobs import providers
from jobs.outbox import retry_now
from jobs.tokens import oauth_session, redirect_uri, store_token
from tracking.crypto import SecretBox
from tracking.db import utcnow
from tracking.errors import Refused
from tracking.models import Connection, ConnectionClient, ConnectionStatus, Delivery

FLOW_KEY = "oauth_flow"


def _connectable() -> list[tuple[str, str | None, str]]:
    """(connector, platform, button title) for every connector whose module loads here: one button per
    platform when the provider serves several (amoCRM and Kommo)."""
    from connectors import registry

    out: list[tuple[str, str | None, str]] = []
    for name in sorted(registry.CONNECTORS):
        try:
            provider = registry.load(name).PROVIDER
        except (ImportError, AttributeError):
            continue  # not installed in this deployment
        if not provider.oauth:  # set up with their own forms (webhooks, notifications, GA4)
            continue
        if provider.platforms:
            out.extend((name, key, platform.title) for key, platform in provider.platforms.items())
        else:
            out.append((name, None, provider.title))
    return out


@bp.get("/clients/<int:client_id>/connections")
@login_required
def connections(client_id: int) -> Any:
    client = client_or_404(client_id)
    rows = db().scalars(client_connections(client.id)).all()
    amo = [c.id for c in rows if "amocrm" in (c.connectors or [])]
    # Where amoCRM sends deal changes: registered there at connect time, shown for pasting if that failed.
    # The URL is a secret of its own, so only those who may edit the client see it.
    hooks = {cid: deal_webhook_url(cid) for cid in amo} if may_see_secret_urls(current_user()) else {}
    from connectors.amocrm.settings import field_choices

    return render_template(
        "pipeline/connections.html",
        client=client,
        connections=rows,
        webhook_urls=hooks,
        amo_fields={c.id: field_choices(c.settings or {}) for c in rows if c.id in amo},
        settings_forms={c.id: fields for c in rows if (fields := _settings_form(c))},
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
    if not provider.provider.oauth:
        abort(404)  # set up with its own form (webhooks, notifications, GA4), not a consent page
    if not provider.client_id:
        # The setup page says which variables to set and which redirect URI to register.
        return redirect(url_for("web.setup_connections", client_id=client.id, provider=connector))
    try:
        authorize_url = provider.authorize_url_for(request.args.get("platform"))
    except LookupError:
        abort(404)
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
    url, _ = oauth.create_authorization_url(authorize_url, state=state, **provider.provider.authorize_params)
    oauth.close()
    return redirect(url)


def _connection_or_404(client_id: int, connection_id: int) -> Connection:
    """One of the client's connections (its own or shared with it); 404 for any other."""
    conn = db().get(Connection, connection_id)
    if conn is None or conn not in db().scalars(client_connections(client_id)).all():
        abort(404)
    return conn


# Connectors whose settings have a page of their own; the others get a form built from their declaration.
OWN_FORMS = {"amocrm"}


def _declared_models(conn: Connection) -> list[Any]:
    names = [n for n in (conn.connectors or []) if n not in OWN_FORMS]
    return [m for m in (connector_settings(n) for n in names) if m is not None]


def _settings_form(conn: Connection) -> list[FormField]:
    return [f for model in _declared_models(conn) for f in form_fields(model)]


@bp.post("/clients/<int:client_id>/connections/<int:connection_id>/settings")
@login_required
def connection_settings(client_id: int, connection_id: int) -> Any:
    """The settings form built from what the connection's connectors declare, checked like the API's."""
    client = client_or_404(client_id, edit=True)
    conn = db().get(Connection, connection_id)
    if conn is None or conn not in db().scalars(client_connections(client.id)).all():
        abort(404)
    models = _declared_models(conn)
    if not models:
        abort(404)
    shown = {f.name for model in models for f in form_fields(model)}
    # An emptied input unsets its setting (its default applies); settings the form does not show are kept,
    # and only what the form sends is checked.
    kept = {k: v for k, v in (conn.settings or {}).items() if k not in shown}
    sent: dict[str, Any] = {}
    for model in models:
        sent.update(from_form(model, request.form))
    try:
        conn.settings = {
            **kept,
            **checked_settings([m for m in conn.connectors if m not in OWN_FORMS], sent),
        }
    except Refused as exc:
        db().rollback()
        return redirect(
            url_for("web.connections", client_id=client.id, error=refusal_text(exc, field_as_written=True))
        )
    conn.updated_at = utcnow()
    db().commit()
    return redirect(url_for("web.connections", client_id=client.id))


@bp.post("/clients/<int:client_id>/connections/<int:connection_id>/amocrm-settings")
@login_required
def amocrm_settings(client_id: int, connection_id: int) -> Any:
    """Pipeline, status, responsible user, field map, tags and duplicate control of one amoCRM account."""
    from connectors.amocrm import settings as amo_settings

    client = client_or_404(client_id, edit=True)
    conn = _connection_or_404(client.id, connection_id)
    if "amocrm" not in (conn.connectors or []):
        abort(404)
    try:
        chosen = amo_settings.from_form(request.form)
        # The same check the API's PATCH makes, from what the connectors declare.
        settings = checked_settings(list(conn.connectors), {**(conn.settings or {}), **chosen})
    except Refused as exc:
        return redirect(
            url_for("web.connections", client_id=client.id, error=refusal_text(exc, field_as_written=True))
        )
    except amo_settings.InvalidSettings as exc:
        field, _, message = str(exc).partition(": ")
        error = refusal_text(Refused(field, message), field_as_written=True) if message else str(exc)
        return redirect(url_for("web.connections", client_id=client.id, error=error))
    conn.settings = settings
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
    if "amocrm" in (conn.connectors or []) and not (conn.settings or {}).get("deal_webhook"):
        register_deal_webhook(conn)
        session_.commit()
    return redirect(url_for("web.connections", client_id=client.id))


@bp.post("/clients/<int:client_id>/connections/<int:connection_id>/disconnect")
@login_required
def disconnect(client_id: int, connection_id: int) -> Any:
    """Switch a connection off: nothing more is sent or pulled, and amoCRM stops sending deal changes."""
    client = client_or_404(client_id, edit=True)
    conn = _connection_or_404(client.id, connection_id)
    problem = remove_deal_webhook(conn) if "amocrm" in (conn.connectors or []) else None
    conn.status = ConnectionStatus.DISABLED
    conn.status_reason = f"switched off; webhook not removed in amoCRM ({problem})"[:500] if problem else None
    conn.updated_at = utcnow()
    db().commit()
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
