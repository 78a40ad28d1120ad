"""Login and the clients list (first cut)."""

from __future__ import annotations

from typing import Any

from flask import redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from hub import charts, dashboard
from hub.auth import client_or_404, current_user, login_required, safe_next
from hub.extensions import db
from hub.overview import client_overview
from hub.ratelimit import login_blocked, login_failed, too_many
from hub.web import bp
from tracking import romi
from tracking.accounts import authenticate, visible_clients
from tracking.db import utcnow


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    error = None
    if request.method == "POST":
        email = request.form.get("email", "")
        wait = login_blocked(email)
        if wait is not None:
            return too_many(wait)
        user = authenticate(db(), email, request.form.get("password", ""))
        if user is None:
            login_failed(email)
        else:
            session.clear()
            session["user_id"] = user.id
            session["generation"] = user.session_generation
            return redirect(safe_next(request.args.get("next", "")) or url_for("web.clients"))
        error = _("Wrong email or password.")
    return render_template("login.html", error=error), (401 if error else 200)


@bp.post("/logout")
def logout() -> Any:
    user = current_user()
    if user is not None and "user_id" in session:
        # Every cookie of this user issued so far stops working, including copies taken elsewhere.
        user.session_generation += 1
        db().commit()
    session.clear()
    return redirect(url_for("web.login"))


@bp.get("/")
@login_required
def clients() -> Any:
    """The agency home: every client's figures for one period, from the ROMI engine."""
    from hub.web.reports import period_from_args

    user = current_user()
    assert user is not None
    start, end, preset = period_from_args(utcnow().date())  # the agency's pages speak UTC
    model = request.args.get("model", romi.Model.LAST_NON_DIRECT)
    sort = request.args.get("sort", "revenue")
    sort = sort if sort in dashboard.SORTS else "revenue"
    query = request.args.get("q", "")
    # Archived clients are left out unless asked for.
    show_archived = request.args.get("archived") == "1"
    everyone = db().scalars(visible_clients(user, archived=show_archived)).all()
    rows = dashboard.agency_rows(db(), everyone, start, end, model=model, query=query, sort=sort)
    params = {"start": start.isoformat(), "end": end.isoformat(), "model": str(model), "q": query}
    if show_archived:
        params["archived"] = "1"
    return render_template(
        "clients.html",
        rows=rows,
        any_clients=bool(everyone),
        archived_hidden=not show_archived and db().scalar(visible_clients(user).limit(1)) is not None,
        start=start,
        end=end,
        preset=preset,
        presets=romi.PRESETS,
        sort=sort,
        params=params,
        models=[m.value for m in romi.Model],
        spark=lambda row: charts.sparkline(
            row.calls_by_day, _("Calls per day, %(client)s", client=row.client.name)
        ),
    )


@bp.get("/clients/<int:client_id>")
@login_required
def client(client_id: int) -> Any:
    from hub.web.journal import pool_charts
    from hub.web.reports import period_from_args

    c = client_or_404(client_id)
    start, end, preset = period_from_args(romi.client_today(c))
    prev_start, prev_end = dashboard.previous_period(start, end)
    chart_by, calls_chart = dashboard.calls_chart(db(), c, start, end)
    return render_template(
        "client.html",
        client=c,
        start=start,
        end=end,
        prev_start=prev_start,
        prev_end=prev_end,
        preset=preset,
        presets=romi.PRESETS,
        headlines=dashboard.headlines(db(), c, start, end),
        calls_chart=calls_chart,
        chart_by=chart_by,
        pool_charts=pool_charts(c),
        **client_overview(db(), c, utcnow()),
    )


@bp.get("/clients/<int:client_id>/pool-advice")
@login_required
def pool_advice_page(client_id: int) -> Any:
    from tracking.pool_advice import pool_advice

    c = client_or_404(client_id)
    report = pool_advice(db(), c.id)
    verdict = dashboard.pool_verdict(report.observed_sessions, report.current_size, report.advice)
    return render_template("pool_advice.html", client=c, report=report, verdict=verdict)
