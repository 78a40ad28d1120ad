"""Public endpoints the snippet calls from visitors' browsers: /t/v1/<site_key>/..., and the snippet itself.

The snippet is one file for every site, served minified and compressed at an immutable, content-hashed
address; the tag a site carries (``snippet_tag``) inserts it after the page's load event.

Every request is checked before anything is written: body size (413), site key (404), the caller's
``Origin`` against the site's domains (403), then the JSON body (400). Browsers send ``Origin`` on every
POST, so a POST without one is refused too.

Allowed origins: an entry of ``sites.domains`` is a host name ("example.ru") and allows exactly that host,
over http or https, on any port; an entry starting with "*." ("*.example.ru") allows every subdomain of it
(but not the bare domain, which is listed on its own when wanted). An entry typed as a URL or with a port
means its host name. Hosts are compared in IDNA ASCII form, so "окна.рф" and "xn--80atjc.xn--p1ai" are one.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import brotli
import rjsmin
from flask import Blueprint, Response, current_app, jsonify, redirect, request
from sqlalchemy.exc import DBAPIError

from hub.extensions import db, tracking_engine
from hub.ratelimit import client_ip, source_key
from hub.schemas import error_json
from tracking import abuse, phones, visit_path, visits
from tracking.db import iso, utcnow
from tracking.hosts import canonical_host
from tracking.models import Site
from tracking.visit_config import SiteConfig

bp = Blueprint("public", __name__)

SNIPPET_PATH = Path(__file__).parent / "static" / "otkuda.js"
SNIPPET_MAX_AGE = 300  # seconds; for the addresses that move (the loader, the latest build)


def _error(status: int, error: str, message: str, origin: str | None = None) -> Response:
    resp = jsonify(error_json(error, message))
    resp.status_code = status
    if origin:
        _cors(resp, origin)
    return resp


def _cors(resp: Response, origin: str) -> Response:
    resp.headers["Access-Control-Allow-Origin"] = origin
    resp.headers["Vary"] = "Origin"
    return resp


def origin_allowed(site: Site | SiteConfig, origin: str | None) -> bool:
    if not origin:
        return False
    host = _origin_host(origin)
    return host is not None and visits.site_has_host(site, host)


@lru_cache(maxsize=4096)
def _origin_host(origin: str) -> str | None:
    """The canonical host of an http(s) ``Origin``; None for anything else. A site's visitors send the same
    few origins, so each is parsed once per process."""
    try:
        parts = urlsplit(origin)
    except ValueError:
        return None
    # One canonical form on both sides (IDNA ASCII, lower-case, no trailing dot), whatever form was typed.
    host = canonical_host(parts.hostname)
    if parts.scheme not in ("http", "https") or not host:
        return None
    return host


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


def _requester() -> abuse.Requester:
    cfg = current_app.config
    return abuse.Requester(
        key=source_key(cfg["SECRET_KEY"], client_ip()),
        holds_per_source=cfg["POOL_HOLDS_PER_SOURCE"],
        holds_per_visitor=cfg["POOL_HOLDS_PER_VISITOR"],
    )


def _number_json(site: Site | SiteConfig, e164: str) -> dict[str, str]:
    return {"e164": e164, "display": phones.format_display(e164, site.display_template)}


def replace_rules(site: Site | SiteConfig, tracking_e164: str | None) -> list[dict[str, Any]]:
    """What the snippet swaps: each business number of the site (as digit patterns) → the session's number.

    ``match`` lists the digit forms the business number may be written in and ``to`` the same form of the
    tracking number (None where it has none), so the snippet keeps each occurrence's shape digit for digit.
    ``local`` pairs the numbers without their area code when the site opted in and both share it.
    The format allows a different number per business number; today a session holds one number, so every
    business number maps to it.
    """
    if not tracking_e164:
        return []
    tracking = dict(phones.digit_forms(tracking_e164))
    tracking_local = phones.local_form(tracking_e164) if site.swap_local_numbers else None
    rules = []
    for raw in site.replace_numbers or []:
        try:
            business = phones.normalize(str(raw))
        except phones.InvalidPhoneNumber:
            continue
        forms = phones.digit_forms(business)
        rule: dict[str, Any] = {
            "business": business,
            "match": [digits for _, digits in forms],
            "to": [tracking.get(kind) for kind, _ in forms],
            "number": _number_json(site, tracking_e164),
        }
        local = phones.local_form(business) if tracking_local else None
        if local and tracking_local and local[0] == tracking_local[0]:
            rule["local"] = [local[1], tracking_local[1]]
        rules.append(rule)
    return rules


def _swap(site: Site | SiteConfig, e164: str | None) -> tuple[dict[str, str] | None, list[dict[str, Any]]]:
    """The number and swap rules a visit answers with; formatted once per number and setup (the rules of
    a number depend on nothing else)."""
    memo = site.memo if isinstance(site, SiteConfig) else None
    key = ("swap", e164)
    if memo is not None and key in memo:
        return memo[key]
    swap = (_number_json(site, e164) if e164 else None, replace_rules(site, e164))
    if memo is not None:
        memo[key] = swap
    return swap


def _result_json(result: visits.VisitResult | visit_path.Answer, *, full: bool) -> dict[str, Any]:
    session = result.session
    body: dict[str, Any] = {
        "session_id": session.public_id,
        "live": result.live,
        "hold_until": iso(result.hold_until),
        "heartbeat_seconds": result.heartbeat_seconds,
    }
    if full:
        e164 = result.number.e164 if result.number is not None else None
        body["number"], body["replace"] = _swap(result.site, e164)
        body["attributes"] = list(result.site.swap_attributes or [])
        if session.promo_code:
            body["promo_code"] = session.promo_code
    return body


def _handle(site_key: str, action: str) -> Response:
    origin = request.headers.get("Origin")
    if _too_large():
        return _error(413, "body_too_large", "The request body is too large.")
    # The body is read before the site (its visitor or session id goes into the first query), but its
    # errors are reported in the usual order: unknown site, then origin, then the body.
    data: Any = None
    body_error: Exception | None = None
    by: dict[str, str] = {}
    parsed: visits.VisitInput | None = None
    if request.method != "OPTIONS":
        try:
            data = _read_json()
            if action == "visit":
                parsed = visits.parse_visit(data, request.headers.get("User-Agent"))
                by = {"visitor_id": parsed.visitor_id}
            elif isinstance(data, dict) and "session_id" in data:
                by = {"public_id": visits.session_id_of(data)}
        except (_TooLarge, visits.VisitError) as exc:
            body_error = exc
    for attempt in (1, 2):
        try:
            return _answer(site_key, action, origin, data, parsed, body_error, by)
        except DBAPIError as exc:
            # The hot path's pool does not ping on checkout: a connection the server dropped fails here once.
            if not exc.connection_invalidated or attempt == 2:
                raise
    raise AssertionError("unreachable")


def _answer(
    site_key: str,
    action: str,
    origin: str | None,
    data: Any,
    parsed: visits.VisitInput | None,
    body_error: Exception | None,
    by: dict[str, str],
) -> Response:
    with visit_path.connect(tracking_engine()) as conn:
        found = visit_path.lookup(
            conn, site_key, visitor_id=by.get("visitor_id"), public_id=by.get("public_id")
        )
        site = found.site
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
            if isinstance(body_error, _TooLarge):
                raise body_error
            if body_error is not None:
                raise body_error
            now = utcnow()
            result: Any
            if action == "visit":
                assert parsed is not None  # the body parsed without error
                requester = _requester()
                result = visit_path.visit(conn, found, parsed, now, requester) or visits.visit_full(
                    db(), site_key, data, now, request.headers.get("User-Agent"), requester
                )
            elif action == "release" and isinstance(data, dict) and "session_id" not in data:
                # The snippet gave up waiting for its visit answer: it never learnt a session id.
                released = visits.release_unseen(db(), site_key, data, now)
                return _cors(_no_store(jsonify(released=released)), origin or "")
            else:
                visits.session_id_of(data)
                leaving = action == "release"
                result = visit_path.keep(conn, found, now, leaving=leaving) or visits.keep_full(
                    db(), site_key, data, now, leaving=leaving, requester=None if leaving else _requester()
                )
        except _TooLarge:
            return _error(413, "body_too_large", "The request body is too large.", origin)
        except visits.VisitError as exc:
            return _error(exc.status, exc.error, str(exc), origin)
    # A heartbeat answers with the number only when it moved the session off the fallback number, and only
    # to the visitor the session belongs to: a session id alone never reveals a number.
    renumbered = (
        result.renumbered and isinstance(data, dict) and data.get("visitor_id") == result.session.visitor_id
    )
    full = action == "visit" or renumbered
    return _cors(_no_store(jsonify(_result_json(result, full=full))), origin or "")


def _no_store(resp: Response) -> Response:
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.route("/<site_key>/visit", methods=["POST", "OPTIONS"])
def visit(site_key: str) -> Response:
    return _handle(site_key, "visit")


@bp.route("/<site_key>/heartbeat", methods=["POST", "OPTIONS"])
def heartbeat(site_key: str) -> Response:
    return _handle(site_key, "heartbeat")


@bp.route("/<site_key>/release", methods=["POST", "OPTIONS"])
def release(site_key: str) -> Response:
    return _handle(site_key, "release")


@dataclass(frozen=True)
class SnippetBuild:
    """The snippet as served: minified once per source change, with its compressed forms and digest."""

    body: bytes
    gzip: bytes
    brotli: bytes
    digest: str

    @property
    def path(self) -> str:
        return f"/t/v1/otkuda.{self.digest}.js"


@lru_cache(maxsize=1)
def _build(mtime: float) -> SnippetBuild:
    body = rjsmin.jsmin(SNIPPET_PATH.read_text(encoding="utf-8")).encode()
    return SnippetBuild(
        body=body,
        # mtime=0: the same source always gives the same bytes, whichever worker built them.
        gzip=gzip.compress(body, compresslevel=9, mtime=0),
        brotli=brotli.compress(body, mode=brotli.MODE_TEXT, quality=11),
        digest=hashlib.sha256(body).hexdigest()[:16],
    )


def snippet_build() -> SnippetBuild:
    return _build(SNIPPET_PATH.stat().st_mtime)


def _js(text: str) -> str:
    # A JS string literal that can never close the script element it sits in.
    return json.dumps(text).replace("</", "<\\/")


def loader_js(site_key: str, hub_url: str) -> str:
    """Inserts the snippet once the page has loaded, so a slow or hung hub can never hold its load event."""
    hub = hub_url.rstrip("/")
    return (
        "(function(w,d){function l(){var s=d.createElement('script');s.async=true;"
        f"s.src={_js(hub + '/t/v1/otkuda.js')};s.setAttribute('data-site',{_js(site_key)});"
        f"s.setAttribute('data-hub',{_js(hub)});(d.head||d.documentElement).appendChild(s)}}"
        "if(d.readyState==='complete')l();else w.addEventListener('load',l)})(window,document);"
    )


@bp.app_template_global()
def snippet_tag(hub_url: str, site_key: str) -> str:
    """The tag a site puts on its pages: an inline loader, no request to the hub before ``load``."""
    return f"<script>{loader_js(site_key, hub_url)}</script>"


@bp.get("/otkuda.js")
def snippet_latest() -> Any:
    # The tag names this stable address; it moves to the current immutable build.
    resp = redirect(snippet_build().path, code=302)
    resp.headers["Cache-Control"] = f"public, max-age={SNIPPET_MAX_AGE}"
    return resp


@bp.get("/otkuda.<digest>.js")
def snippet_file(digest: str) -> Any:
    build = snippet_build()
    if digest != build.digest:
        return snippet_latest()  # a build this hub no longer has: the current one
    encodings = request.accept_encodings
    body, encoding = build.body, None
    if encodings["br"]:
        body, encoding = build.brotli, "br"
    elif encodings["gzip"]:
        body, encoding = build.gzip, "gzip"
    resp = Response(body, mimetype="application/javascript")
    if encoding:
        resp.headers["Content-Encoding"] = encoding
    resp.headers["Vary"] = "Accept-Encoding"
    resp.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.set_etag(f"{build.digest}-{encoding or 'identity'}")
    return resp.make_conditional(request)


@bp.get("/<site_key>.js")
def snippet(site_key: str) -> Any:
    """The hosted loader, for tags written as ``<script async src=".../<site_key>.js">``."""
    site = visits.site_by_key(db(), site_key)
    if site is None:
        return _error(404, "unknown_site", "No site has this key.")
    body = loader_js(site.site_key, current_app.config["BASE_URL"])
    resp = Response(body, mimetype="application/javascript")
    resp.set_etag(hashlib.sha256(body.encode()).hexdigest()[:32])
    resp.headers["Cache-Control"] = f"public, max-age={SNIPPET_MAX_AGE}"
    return resp.make_conditional(request)
