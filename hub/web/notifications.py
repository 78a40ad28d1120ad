"""The notifications settings page of a client: one's own e-mail events, the Telegram chats, a test button."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from hub import notification_channels as channels
from hub.auth import client_or_404, current_user, login_required
from hub.extensions import db
from hub.formatting import event_label
from hub.ui_messages import refusal_text
from hub.web import bp
from jobs import notify
from jobs.runtime import setting
from tracking.accounts import can_edit
from tracking.errors import Refused


def _events_from_form() -> list[str]:
    return channels.check_events(request.form.getlist("events"))


def _back(client_id: int) -> Any:
    return redirect(url_for("web.notifications_page", client_id=client_id))


@bp.get("/clients/<int:client_id>/notifications")
@login_required
def notifications_page(client_id: int) -> Any:
    client = client_or_404(client_id)
    user = current_user()
    assert user is not None
    own = channels.own_email(client, user)
    config = current_app.config
    return render_template(
        "notifications.html",
        client=client,
        events={key: event_label(key) for key in notify.EVENTS},
        own=channels.channel_json(own) if own else None,
        chats=[channels.channel_json(c) for c in channels.visible(client, user) if c.provider == "telegram"],
        others=[
            channels.channel_json(c)
            for c in channels.visible(client, user)
            if c.provider == "email" and c is not own
        ],
        can_edit=can_edit(user),
        smtp_ready=bool(setting(config, "SMTP_HOST")),
        telegram_ready=bool(setting(config, "TELEGRAM_BOT_TOKEN")),
        error=request.args.get("error"),
    )


@bp.post("/clients/<int:client_id>/notifications/email")
@login_required
def notifications_email(client_id: int) -> Any:
    client = client_or_404(client_id)
    user = current_user()
    assert user is not None
    try:
        channels.subscribe_email(client, user, _events_from_form())
    except Refused as exc:
        return redirect(url_for("web.notifications_page", client_id=client.id, error=refusal_text(exc)))
    db().commit()
    return _back(client.id)


@bp.post("/clients/<int:client_id>/notifications/telegram")
@login_required
def notifications_telegram(client_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    try:
        channels.add_telegram(client, request.form.get("chat_id", ""), _events_from_form())
    except Refused as exc:
        return redirect(url_for("web.notifications_page", client_id=client.id, error=refusal_text(exc)))
    db().commit()
    return _back(client.id)


@bp.post("/clients/<int:client_id>/notifications/<int:notification_channel_id>/<action>")
@login_required
def notifications_channel(client_id: int, notification_channel_id: int, action: str) -> Any:
    user = current_user()
    assert user is not None
    conn, client = channels.channel_or_404(notification_channel_id, user, change=True)
    if client.id != client_id or action not in ("events", "test", "delete"):
        abort(404)
    if action == "events":
        try:
            conn.settings = {**(conn.settings or {}), "events": _events_from_form()}
        except Refused as exc:
            return redirect(url_for("web.notifications_page", client_id=client.id, error=refusal_text(exc)))
    elif action == "test":
        if notify.send_test(db(), conn) is not None:
            flash(_("A test message is queued; it shows on the Deliveries page."))
    else:
        db().delete(conn)
    db().commit()
    return _back(client.id)
