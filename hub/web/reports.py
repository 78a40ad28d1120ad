"""The ROMI report page: a period, a model, the table with drill-down, top campaigns and keywords."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from hub import charts, dashboard, exports
from hub.auth import client_or_404, login_required
from hub.extensions import db, reports_db
from hub.formatting import CURRENCY_SIGNS
from hub.web import bp
from tracking import manual_spend, romi
from tracking.models import Channel, Client, ManualSpend
from tracking.romi import PRESETS
from tracking.values import id_arg, parse_date

# The engine's own row names (tracking/romi.py speaks English and knows no translation), in the reader's
# language: the rows of their own by key, the "(no …)" rows by level.
SPECIAL_ROWS = {
    romi.OVERFLOW: _l("Pool overflow"),
    romi.UNMATCHED: _l("Unmatched number"),
    romi.UNATTRIBUTED: _l("Unattributed"),
    romi.NO_CALL_DEALS: _l("Deals without a call"),
    romi.NO_CHANNEL_SPEND: _l("Spend without a channel"),
}
NONE_ROWS = {"campaign": _l("(no campaign)"), "ad_group": _l("(no ad group)"), "keyword": _l("(no keyword)")}
LEVEL_TITLES = {
    "channel": _l("Channel"),
    "campaign": _l("Campaign"),
    "ad_group": _l("Ad group"),
    "keyword": _l("Keyword"),
}


def shown(node: romi.Node) -> str:
    """A row's label as the page writes it."""
    if node.key in SPECIAL_ROWS:
        return str(SPECIAL_ROWS[node.key])
    level = romi.LEVELS[node.level - 1] if 0 < node.level <= len(romi.LEVELS) else ""
    if node.key == romi.NONE_KEY and node.label == romi.NONE_LABEL.get(level):
        return str(NONE_ROWS[level])
    return node.label


def _period(client: Client) -> tuple[dt.date, dt.date, str]:
    return period_from_args(romi.client_today(client))


def period_from_args(today: dt.date) -> tuple[dt.date, dt.date, str]:
    """The period a page asks for: a preset, or start and end (each defaulting like the API's)."""
    preset = request.args.get("preset", "")
    preset = preset if preset in dict(PRESETS) else "this_month"
    start, end = romi.preset_period(preset, today)
    if request.args.get("start") or request.args.get("end"):
        start = parse_date("start", request.args.get("start"), start)
        end = parse_date("end", request.args.get("end"), end)
        return start, end, "custom"
    return start, end, preset


def _report(client: Client) -> romi.Report:
    start, end, _ = _period(client)
    return romi.report(
        db(),
        client,
        start,
        end,
        model=request.args.get("model", romi.Model.LAST_NON_DIRECT),
        replica=reports_db(),
    )


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
    node_label = shown(crumbs[-1]) if crumbs else _("All channels")
    params: dict[str, Any] = {"start": start.isoformat(), "end": end.isoformat(), "model": rep.model.value}
    # Days for a month or less, weeks beyond; a person may ask for either. The breakdown is of the row
    # drilled into (a channel, a campaign …), not of the whole client.
    by = request.args.get("by", dashboard.chart_grain(start, end))
    by = by if by in ("day", "week") else "week"
    parts = (
        dashboard.breakdown(db(), client, start, end, by, rep.model, path) if (end - start).days < 400 else []
    )
    return render_template(
        "reports/romi.html",
        client=client,
        report=rep,
        node=node,
        crumbs=crumbs,
        path=path,
        level_title=LEVEL_TITLES[romi.LEVELS[min(node.level, len(romi.LEVELS) - 1)]],
        special_keys=tuple(SPECIAL_ROWS),
        shown=shown,
        currency_sign=CURRENCY_SIGNS.get(rep.currency.upper(), rep.currency.upper()),
        can_drill=node.level + 1 < len(romi.LEVELS),
        presets=PRESETS,
        preset=preset,
        params=params,
        models=[m.value for m in romi.Model],
        by=by,
        parts=parts,
        money_chart=charts.spend_vs_revenue(
            [dashboard.part_label(a, b, by) for a, b, _ in parts],
            [float(m.spend) for _, _, m in parts],
            [float(m.revenue) for _, _, m in parts],
            (
                _("Spend and revenue by day: %(row)s", row=node_label)
                if by == "day"
                else _("Spend and revenue by week: %(row)s", row=node_label)
            ),
        )
        if parts
        else None,
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
    db().add(manual_spend.build(db(), client, body))
    db().commit()
    return redirect(url_for("web.romi_page", client_id=client.id) + "#manual-spend")


@bp.post("/clients/<int:client_id>/manual-spend/<int:spend_id>/delete")
@login_required
def manual_spend_delete(client_id: int, spend_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    row = manual_spend.of_client(db(), client, spend_id)
    if row is None:
        abort(404)
    db().delete(row)
    db().commit()
    return redirect(url_for("web.romi_page", client_id=client.id) + "#manual-spend")


@bp.get("/clients/<int:client_id>/romi.<any(csv, xlsx):fmt>")
@login_required
def romi_download(client_id: int, fmt: str) -> Any:
    client = client_or_404(client_id)
    rep = _report(client)
    name = f"romi-{client.id}-{rep.start.isoformat()}-{rep.end.isoformat()}"
    return exports.download(name, fmt, romi.FLAT_COLUMNS, romi.flat_rows(rep), "ROMI")
