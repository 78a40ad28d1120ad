"""The ROMI report page: a period, a model, the table with drill-down, top campaigns and keywords."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from flask import abort, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.exceptions import BadRequest

from hub.api import romi as romi_api
from hub.api.common import id_arg, plausible_date
from hub.api.spend import build_manual_spend, manual_spend_or_404
from hub.auth import client_or_404, login_required
from hub.extensions import db
from hub.web import bp
from tracking import romi
from tracking.models import Channel, Client, ManualSpend

PRESETS = (
    ("this_month", "This month"),
    ("last_month", "Last month"),
    ("last_30", "Last 30 days"),
    ("this_year", "This year"),
)


def preset_period(name: str, today: dt.date) -> tuple[dt.date, dt.date]:
    if name == "last_month":
        end = today.replace(day=1) - dt.timedelta(days=1)
        return end.replace(day=1), end
    if name == "last_30":
        return today - dt.timedelta(days=29), today
    if name == "this_year":
        return today.replace(month=1, day=1), today
    return today.replace(day=1), today


def _period(client: Client) -> tuple[dt.date, dt.date, str]:
    today = dt.datetime.now(ZoneInfo(client.timezone or "UTC")).date()
    preset = request.args.get("preset", "")
    if request.args.get("start") or request.args.get("end"):
        try:
            start = dt.date.fromisoformat(request.args.get("start", ""))
            end = dt.date.fromisoformat(request.args.get("end", ""))
        except ValueError:
            raise BadRequest("start and end must be dates, YYYY-MM-DD") from None
        plausible_date(start, "start"), plausible_date(end, "end")
        return start, end, "custom"
    preset = preset if preset in dict(PRESETS) else "this_month"
    start, end = preset_period(preset, today)
    return start, end, preset


def _report(client: Client) -> romi.Report:
    start, end, _ = _period(client)
    try:
        return romi.report(
            db(), client, start, end, model=request.args.get("model", romi.Model.LAST_NON_DIRECT)
        )
    except romi.InvalidReport as exc:
        raise BadRequest(str(exc)) from None


@bp.get("/clients/<int:client_id>/romi")
@login_required
def romi_page(client_id: int) -> Any:
    client = client_or_404(client_id)
    start, end, preset = _period(client)
    rep = _report(client)
    path = [p for p in request.args.get("path", "").split("/") if p][: len(romi.LEVELS) - 1]
    node = rep.total.find(path)
    if node is None:
        abort(404)
    crumbs = []
    walk = rep.total
    for key in path:
        walk = walk.children[key]
        crumbs.append(walk)
    params = {"start": start.isoformat(), "end": end.isoformat(), "model": rep.model.value}
    return render_template(
        "reports/romi.html",
        client=client,
        report=rep,
        node=node,
        crumbs=crumbs,
        path=path,
        level_name=romi.LEVELS[node.level] if node.level < len(romi.LEVELS) else None,
        can_drill=node.level + 1 < len(romi.LEVELS),
        presets=PRESETS,
        preset=preset,
        params=params,
        models=[(m.value, m.value.replace("_", " ")) for m in romi.Model],
        top_campaigns=rep.top("campaign"),
        top_keywords=rep.top("keyword"),
        drill=lambda keys: url_for("web.romi_page", client_id=client.id, path="/".join(keys), **params),
        channels=db()
        .scalars(select(Channel).where(Channel.client_id == client.id).order_by(Channel.position))
        .all(),
        manual=db()
        .scalars(
            select(ManualSpend)
            .where(ManualSpend.client_id == client.id)
            .order_by(ManualSpend.period_start.desc())
        )
        .all(),
    )


@bp.post("/clients/<int:client_id>/manual-spend")
@login_required
def manual_spend_add(client_id: int) -> Any:
    """Spend typed in for a channel without an API (a billboard's month, a print run)."""
    client = client_or_404(client_id, edit=True)
    form = request.form
    channel = form.get("channel_id", "")
    body = {
        "period_start": form.get("period_start", ""),
        "period_end": form.get("period_end", ""),
        "amount": form.get("amount", "").replace(" ", "").replace(",", "."),
        "channel_id": id_arg(channel),
        "note": form.get("note", ""),
    }
    db().add(build_manual_spend(client, body))
    db().commit()
    return redirect(url_for("web.romi_page", client_id=client.id) + "#manual-spend")


@bp.post("/clients/<int:client_id>/manual-spend/<int:spend_id>/delete")
@login_required
def manual_spend_delete(client_id: int, spend_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    db().delete(manual_spend_or_404(client, spend_id))
    db().commit()
    return redirect(url_for("web.romi_page", client_id=client.id) + "#manual-spend")


@bp.get("/clients/<int:client_id>/romi.<any(csv, xlsx):fmt>")
@login_required
def romi_download(client_id: int, fmt: str) -> Any:
    client = client_or_404(client_id)
    return romi_api.download(client, _report(client), fmt)
