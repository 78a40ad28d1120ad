"""Public endpoints the snippet calls from visitors' browsers: /t/v1/<site_key>/...

Every request is checked before anything is written: body size (413), site key (404), the caller's
``Origin`` against the site's domains (403), then the JSON body (400). Browsers send ``Origin`` on every
POST, so a POST without one is refused too.

Allowed origins: an entry of ``sites.domains`` is a host name ("example.ru") and allows exactly that host,
over http or https, on any port; an entry starting with "*." ("*.example.ru") allows every subdomain of it
(but not the bare domain, which is listed on its own when wanted). An entry typed as a URL or with a port
means its host name.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, jsonify, request

from hub.extensions import db
from tracking import phones, visits
from tracking.models import Site

bp = Blueprint("public", __name__)

SNIPPET_PATH = Path(__file__).parent / "static" / "otkuda.js"
SNIPPET_MAX_AGE = 300  # seconds; short so a changed site key or hub URL reaches pages soon


def _error(status: int, error: str, message: str, origin: str | None = None) -> Response:
    resp = jsonify(error=error, message=message)
    resp.status_code = status
    if origin:
        _cors(resp, origin)
    return resp


def _cors(resp: Response, origin: str) -> Response:
    resp.headers["Access-Control-Allow-Origin"] = origin
    resp.headers["Vary"] = "Origin"
    return resp


def origin_allowed(site: Site, origin: str | None) -> bool:
    if not origin:
        return False
    try:
        parts = urlsplit(origin)
        host = (parts.hostname or "").rstrip(".").lower()
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not host:
        return False
    return visits.site_has_host(site, host)


def _read_json() -> Any:
    """The body as JSON, whatever the content type (sendBeacon sends text/plain)."""
    limit = current_app.config["TRACKING_MAX_BODY"]
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise _TooLarge
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise visits.InvalidVisit("the body must be JSON") from exc


class _TooLarge(Exception):
    pass


def _too_large() -> bool:
    length = request.content_length
    return length is not None and length > current_app.config["TRACKING_MAX_BODY"]


def _number_json(site: Site, e164: str) -> dict[str, str]:
    return {"e164": e164, "display": phones.format_display(e164, site.display_template)}


def replace_rules(site: Site, tracking_e164: str | None) -> list[dict[str, Any]]:
    """What the snippet swaps: each business number of the site (as digit patterns) → the session's number.

    The format allows a different number per business number; today a session holds one number, so every
    business number maps to it.
    """
    if not tracking_e164:
        return []
    rules = []
    for raw in site.replace_numbers or []:
        try:
            business = phones.normalize(str(raw))
        except phones.InvalidPhoneNumber:
            continue
        rules.append(
            {
                "business": business,
                "match": phones.digit_patterns(business),
                "number": _number_json(site, tracking_e164),
            }
        )
    return rules


def _result_json(result: visits.VisitResult, *, full: bool) -> dict[str, Any]:
    session = result.session
    body: dict[str, Any] = {
        "session_id": session.public_id,
        "live": result.live,
        "hold_until": result.hold_until.isoformat().replace("+00:00", "Z") if result.hold_until else None,
        "heartbeat_seconds": result.heartbeat_seconds,
    }
    if full:
        e164 = result.number.e164 if result.number is not None else None
        body["number"] = _number_json(result.site, e164) if e164 else None
        body["replace"] = replace_rules(result.site, e164)
        if session.promo_code:
            body["promo_code"] = session.promo_code
    return body


def _handle(site_key: str, action: str) -> Response:
    origin = request.headers.get("Origin")
    if _too_large():
        return _error(413, "body_too_large", "The request body is too large.")
    site = visits.site_by_key(db(), site_key)
    if site is None:
        return _error(404, "unknown_site", "No site has this key.")
    if not origin_allowed(site, origin):
        return _error(403, "origin_not_allowed", "This origin is not one of the site's domains.")
    if request.method == "OPTIONS":
        resp = Response(status=204)
        resp.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        resp.headers["Access-Control-Allow-Headers"] = "Content-Type"
        resp.headers["Access-Control-Max-Age"] = "86400"
        return _cors(resp, origin or "")
    try:
        data = _read_json()
        if action == "visit":
            result = visits.visit(db(), site, data, user_agent=request.headers.get("User-Agent"))
        elif action == "heartbeat":
            result = visits.heartbeat(db(), site, data)
        else:
            result = visits.release(db(), site, data)
    except _TooLarge:
        return _error(413, "body_too_large", "The request body is too large.", origin)
    except visits.VisitError as exc:
        return _error(exc.status, exc.error, str(exc), origin)
    resp = jsonify(_result_json(result, full=action == "visit" or result.renumbered))
    resp.headers["Cache-Control"] = "no-store"
    return _cors(resp, origin or "")


@bp.route("/<site_key>/visit", methods=["POST", "OPTIONS"])
def visit(site_key: str) -> Response:
    return _handle(site_key, "visit")


@bp.route("/<site_key>/heartbeat", methods=["POST", "OPTIONS"])
def heartbeat(site_key: str) -> Response:
    return _handle(site_key, "heartbeat")


@bp.route("/<site_key>/release", methods=["POST", "OPTIONS"])
def release(site_key: str) -> Response:
    return _handle(site_key, "release")


@lru_cache(maxsize=1)
def _snippet_source(mtime: float) -> str:
    return SNIPPET_PATH.read_text(encoding="utf-8")


def render_snippet(site_key: str, hub_url: str) -> str:
    source = _snippet_source(SNIPPET_PATH.stat().st_mtime)
    # json.dumps gives a JS string literal; "</" is escaped so the value can never close a script tag.
    return source.replace('"__OTKUDA_SITE_KEY__"', json.dumps(site_key).replace("</", "<\\/")).replace(
        '"__OTKUDA_HUB__"', json.dumps(hub_url).replace("</", "<\\/")
    )


@bp.get("/<site_key>.js")
def snippet(site_key: str) -> Response:
    site = visits.site_by_key(db(), site_key)
    if site is None:
        return _error(404, "unknown_site", "No site has this key.")
    body = render_snippet(site.site_key, current_app.config["BASE_URL"])
    etag = hashlib.sha256(body.encode()).hexdigest()[:32]
    resp = Response(body, mimetype="application/javascript")
    resp.charset = "utf-8"
    resp.set_etag(etag)
    resp.headers["Cache-Control"] = f"public, max-age={SNIPPET_MAX_AGE}"
    return resp.make_conditional(request)
