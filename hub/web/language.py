"""The language switch in the page header: remembered in a cookie for a year, then back to the same page."""

from __future__ import annotations

from flask import redirect, request, url_for
from werkzeug.wrappers import Response

from hub.auth import safe_next
from hub.i18n import COOKIE, LANGUAGES
from hub.web import bp

ONE_YEAR = 365 * 24 * 3600


@bp.post("/language")
def language() -> Response:
    chosen = request.form.get("lang", "")
    target = safe_next(request.form.get("next", "")) or url_for("web.clients")
    resp = redirect(target)
    if chosen in LANGUAGES:
        resp.set_cookie(
            COOKIE,
            chosen,
            max_age=ONE_YEAR,
            samesite="Lax",
            httponly=True,
            secure=request.is_secure,
        )
    return resp
