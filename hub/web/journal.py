"""The calls journal: filters, a player for recordings, the session behind each call and the operator's
tools (promo code, source by hand, notes, tags), with the same filters and rules as the API."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from flask import abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select

from hub import charts, dashboard, exports
from hub.auth import client_or_404, current_user, login_required
from hub.call_views import CSV_COLUMNS, call_detail, call_json, client_call, export_rows, lookups
from hub.extensions import db
from hub.ui_messages import refusal_text
from hub.web import bp
from tracking import call_journal, romi
from tracking.call_journal import CallFilter
from tracking.errors import Refused
from tracking.models import Call, CallStatus, Channel, Client, Connection, Deal, Pool, PoolStat
from tracking.values import id_arg

PER_PAGE = 50
MAX_PAGE = 1_000_000  # far past any journal; keeps the offset within the database's integers


def _filtered(client: Client) -> Any:
    return CallFilter.from_args(request.args, client.timezone or "UTC").query(client.id)


def call_or_404(client: Client, call_id: int) -> Call:
    call = client_call(db(), client, call_id)
    if call is None:
        abort(404)
    return call


def _arg_day(name: str) -> dt.date | None:
    value = request.args.get(name) or ""
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def chart_period(client: Client, days: int = 30) -> tuple[dt.date, dt.date]:
    """The local days the journal's chart covers: the filter's dates, and the last ``days`` days up to the
    filter's end (today without one) for a side left open."""
    today = dt.datetime.now(ZoneInfo(client.timezone or "UTC")).date()
    end = _arg_day("to") or today
    start = _arg_day("from") or end - dt.timedelta(days=days - 1)
    return (start, end) if start <= end else (end, start)


def calls_chart(client: Client) -> Any:
    """Calls of the journal's period stacked by channel, by day up to a month and by week beyond, as on the
    client's overview."""
    start, end = chart_period(client)
    return dashboard.calls_chart(db(), client, start, end)[1]


def pool_charts(client: Client, days: int = 7) -> list[tuple[Pool, Any, float]]:
    """(pool, utilisation chart, fallback rate) from the hourly pool statistics."""
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    tz = ZoneInfo(client.timezone or "UTC")
    out = []
    for pool in db().scalars(select(Pool).where(Pool.client_id == client.id).order_by(Pool.id)):
        stats = (
            db()
            .scalars(
                select(PoolStat)
                .where(PoolStat.pool_id == pool.id, PoolStat.hour >= since)
                .order_by(PoolStat.hour)
            )
            .all()
        )
        points = [
            (s.hour.astimezone(tz).strftime("%m-%d %H:00"), s.peak_held / s.numbers if s.numbers else 0.0)
            for s in stats
        ]
        sessions = sum(s.sessions for s in stats)
        rate = sum(s.fallbacks for s in stats) / sessions if sessions else 0.0
        out.append(
            (
                pool,
                charts.line(points, _("%(pool)s: peak share of numbers held per hour", pool=pool.name)),
                rate,
            )
        )
    return out


def _deals_by_call(call_ids: list[int]) -> dict[int, Deal]:
    if not call_ids:
        return {}
    deals = db().scalars(select(Deal).where(Deal.call_id.in_(call_ids)).order_by(Deal.id))
    return {d.call_id: d for d in deals if d.call_id is not None}


@bp.get("/clients/<int:client_id>/calls")
@login_required
def journal(client_id: int) -> Any:
    client = client_or_404(client_id)
    query = _filtered(client)
    page = min(max(request.args.get("page", 1, type=int) or 1, 1), MAX_PAGE)
    total = db().scalar(select(func.count()).select_from(query.subquery())) or 0
    calls = list(
        db().scalars(
            query.order_by(Call.called_at.desc(), Call.id.desc())
            .limit(PER_PAGE)
            .offset((page - 1) * PER_PAGE)
        )
    )
    found = lookups(db(), client, calls)
    _, channels, sessions = found
    rows = [
        (call, call_json(call, found), sessions.get(call.session_id) if call.session_id else None)
        for call in calls
    ]
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template(
        "journal/calls.html",
        client=client,
        rows=rows,
        deals=_deals_by_call([c.id for c in calls]),
        channels=sorted(channels.values(), key=lambda c: (c.position, c.name)),
        statuses=[s.value for s in CallStatus if s != CallStatus.IN_PROGRESS],
        total=total,
        page=page,
        pages=max((total + PER_PAGE - 1) // PER_PAGE, 1),
        args=args,
        chart=calls_chart(client),
        names=romi.dimension_names(db(), client),
    )


@bp.get("/clients/<int:client_id>/calls.<any(csv, xlsx):fmt>")
@login_required
def journal_download(client_id: int, fmt: str) -> Any:
    client = client_or_404(client_id)
    rows = export_rows(db(), client, _filtered(client))
    return exports.download(f"calls-{client.id}", fmt, CSV_COLUMNS, rows, "Calls")


@bp.get("/clients/<int:client_id>/calls/<int:call_id>")
@login_required
def call_page(client_id: int, call_id: int) -> Any:
    client = client_or_404(client_id)
    call = call_or_404(client, call_id)
    return _render_call(client, call)


def _render_call(client: Client, call: Call, error: str | None = None, status: int = 200) -> Any:
    channels = (
        db()
        .scalars(
            select(Channel).where(Channel.client_id == client.id).order_by(Channel.position, Channel.name)
        )
        .all()
    )
    deal = _deals_by_call([call.id]).get(call.id)
    earlier: Sequence[Call] = ()
    if call.caller and call.called_at:
        earlier = (
            db()
            .scalars(
                select(Call)
                .where(
                    Call.client_id == client.id, Call.caller == call.caller, Call.called_at < call.called_at
                )
                .order_by(Call.called_at.desc())
                .limit(10)
            )
            .all()
        )
    html = render_template(
        "journal/call.html",
        client=client,
        call=call,
        data=call_detail(db(), client, call),
        channels=channels,
        channel_names={c.id: c.name for c in channels},
        deal=deal,
        deal_url=_deal_url(deal),
        earlier=earlier,
        credits=[(m.value, romi.credited_to(db(), client, call.id, m)) for m in romi.Model],
        error=error,
    )
    return html, status


def _deal_url(deal: Deal | None) -> str | None:
    """The deal's page in the CRM, when the CRM says where it lives (amoCRM: its account host)."""
    if deal is None:
        return None
    conn = db().get(Connection, deal.connection_id)
    host = (conn.account or {}).get("host") if conn is not None and conn.provider == "amocrm" else None
    return f"https://{host}/leads/detail/{deal.external_id}" if host else None


@bp.post("/clients/<int:client_id>/calls/<int:call_id>")
@login_required
def call_edit(client_id: int, call_id: int) -> Any:
    """One form per operator action, told apart by ``action``: notes, promo, channel."""
    client = client_or_404(client_id, edit=True)
    call = call_or_404(client, call_id)
    action = request.form.get("action", "")
    form = request.form
    try:
        if action == "notes":
            tags = [t for t in (p.strip() for p in form.get("tags", "").split(",")) if t]
            call_journal.set_tags_notes(db(), call, current_user(), tags, form.get("notes", ""))
        elif action == "promo":
            call_journal.set_promo_code(db(), call, form.get("code", "").strip(), current_user())
        elif action == "channel":
            raw = form.get("channel_id", "")
            channel_id = id_arg(raw)
            call_journal.set_channel_by_hand(
                db(), call, raw if channel_id is None else channel_id, current_user(), form.get("reason", "")
            )
        else:
            raise Refused("action", "unknown action")
    except Refused as exc:
        # The same refusals the API answers with, shown on the page beside the form.
        db().rollback()
        return _render_call(client, db().get(Call, call.id) or call, error=refusal_text(exc), status=400)
    db().commit()
    return redirect(url_for("web.call_page", client_id=client.id, call_id=call.id))
