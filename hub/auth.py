"""Who is asking: a logged-in browser (session cookie) or an API client (bearer token)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

from flask import abort, g, jsonify, redirect, request, session, url_for
from sqlalchemy.orm import Session

from hub.extensions import db
from hub.formatting import use_client_zone
from hub.schemas import error_json
from tracking.accounts import can_edit, can_see_client, user_for_token
from tracking.models import Client, User

F = TypeVar("F", bound=Callable[..., Any])


def current_user() -> User | None:
    if "current_user" in g:
        return g.current_user
    user: User | None = None
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        user = user_for_token(db(), header[7:].strip())
        if user is not None:
            db().commit()
    elif "user_id" in session:
        user = db().get(User, session["user_id"])
        # A cookie from before the user's last logout is dead even if someone kept a copy.
        if user is not None and session.get("generation") != user.session_generation:
            session.clear()
            user = None
    g.current_user = user
    return user


_EDGES = "".join(chr(i) for i in range(0x21))  # C0 controls and space, stripped by browsers at both ends
_DROPPED = str.maketrans("", "", "\t\n\r")  # removed anywhere by browsers (WHATWG URL parser)
_PROBE = "http://hub.invalid/"


def safe_next(target: str) -> str | None:
    """The local path a browser would follow for ``target`` after login, or None if it could leave the hub.

    Read the way a browser reads it: surrounding controls and spaces dropped, tab/CR/LF removed anywhere,
    backslashes taken as slashes. So "/\t/evil.example" and "/\\evil.example" (both "//evil.example" to a
    browser) are refused, not only the plain "//evil.example".
    """
    cleaned = target.strip(_EDGES).translate(_DROPPED).replace("\\", "/")
    if not cleaned.startswith("/") or cleaned.startswith("//"):
        return None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in cleaned):
        return None
    resolved = urlsplit(urljoin(_PROBE, cleaned))
    if resolved.scheme != "http" or resolved.netloc != "hub.invalid":
        return None
    return cleaned


def may_see_secret_urls(user: User | None) -> bool:
    """Webhook URLs carry integration keys: whoever holds one can post calls or deals as the provider, so
    they are shown only to those who may edit the client, never to viewers."""
    return user is not None and can_edit(user)


def login_required(view: F) -> F:
    """For web pages: redirect anonymous visitors to the login page."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_user() is None:
            return redirect(url_for("web.login", next=request.full_path))
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def api_auth_required(view: F) -> F:
    """For the REST API: a missing or unknown token answers 401 JSON."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_user() is None:
            resp = jsonify(error_json("unauthorized", "A valid API token is required."))
            resp.status_code = 401
            resp.headers["WWW-Authenticate"] = "Bearer"
            return resp
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def client_or_404(client_id: int, *, edit: bool = False, session_: Session | None = None) -> Client:
    """The client if the caller may see it; otherwise 404, so a foreign id reveals nothing.

    ``edit=True`` also requires a role that may change things: a viewer asking to change its own client
    gets 403 (it already knows the client exists).
    """
    user = current_user()
    client = (session_ or db()).get(Client, client_id)
    if user is None or not can_see_client(user, client):
        abort(404)
    if edit and not can_edit(user):
        abort(403)
    assert client is not None
    use_client_zone(client.timezone)  # every time on a client's page is in the client's zone
    return client
