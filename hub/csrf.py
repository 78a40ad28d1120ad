"""CSRF protection: a per-session token, checked on every unsafe request that a browser cookie carries.

Forms send it as ``csrf_token``; scripts using the REST API with the session cookie send it as the
``X-CSRF-Token`` header. API calls with a bearer token ignore the cookie, so they need none; the snippet
endpoints and telephony webhooks are not cookie-authenticated and are exempt.
"""

from __future__ import annotations

import hmac
import secrets

from flask import Flask, abort, request, session

EXEMPT_PREFIXES = ("/t/", "/hooks/")


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def init_csrf(app: Flask) -> None:
    app.jinja_env.globals["csrf_token"] = csrf_token

    @app.before_request
    def _check_csrf() -> None:
        if request.method in ("GET", "HEAD", "OPTIONS") or request.path.startswith(EXEMPT_PREFIXES):
            return
        if request.path.startswith("/api/") and (
            request.headers.get("Authorization", "").startswith("Bearer ") or "user_id" not in session
        ):
            return  # a token (or nobody: the API answers 401) - no cookie is acting
        sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
        expected = session.get("csrf", "")
        if not expected or not hmac.compare_digest(sent, expected):
            if request.path.startswith("/api/"):
                abort(400, description="With the session cookie, send the page's CSRF token as X-CSRF-Token.")
            abort(
                400, description="The form has expired or did not come from this site; reload and try again."
            )
