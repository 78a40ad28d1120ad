"""Login and the clients list (first cut)."""

from __future__ import annotations

from typing import Any

from flask import redirect, render_template, request, session, url_for

from hub.auth import client_or_404, current_user, login_required, safe_next
from hub.extensions import db
from hub.overview import client_overview
from hub.ratelimit import login_blocked, login_failed, too_many
from hub.web import bp
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
        error = "Wrong email or password."
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
    user = current_user()
    assert user is not None
    return render_template("clients.html", clients=db().scalars(visible_clients(user)).all())


@bp.get("/clients/<int:client_id>")
@login_required
def client(client_id: int) -> Any:
    from hub.web.journal import calls_per_day_chart, pool_charts

    c = client_or_404(client_id)
    return render_template(
        "client.html",
        client=c,
        calls_chart=calls_per_day_chart(c),
        pool_charts=pool_charts(c),
        **client_overview(db(), c, utcnow()),
    )


@bp.get("/clients/<int:client_id>/pool-advice")
@login_required
def pool_advice_page(client_id: int) -> Any:
    from tracking.pool_advice import pool_advice

    c = client_or_404(client_id)
    return render_template("pool_advice.html", client=c, report=pool_advice(db(), c.id))
