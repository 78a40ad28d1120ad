"""Setting a client up: clients, sites, channels, tracking numbers, pools; and reading visitor sessions."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import abort, jsonify, request
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import BadRequest

from hub.api import bp
from hub.api.common import (
    INVALID,
    NOT_FOUND,
    PAGE_PARAMS,
    Invalid,
    body,
    field,
    id_param,
    ok,
    owned,
    page_of,
    paginate,
    require_editor,
)
from hub.api.openapi import register, schema
from hub.api.resources import CLIENT, client_json
from hub.auth import api_auth_required, client_or_404, current_user
from hub.extensions import db
from tracking import phones
from tracking.calls import SESSION_FIELDS
from tracking.models import Channel, Client, Pool, PoolChannel, Site, TrackingNumber, VisitSession
from tracking.models.numbers import NumberStatus

RULE_KEYS = {"utm_source", "utm_medium", "utm_campaign", "referrer_domain", "has_gclid", "has_yclid"}


def _e164(data: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    raw = field(data, name, str, required=required)
    if raw is None:
        return None
    try:
        return phones.normalize(raw)
    except phones.InvalidPhoneNumber as exc:
        raise Invalid(name, str(exc)) from None


def _commit() -> None:
    try:
        db().commit()
    except IntegrityError:
        db().rollback()
        raise Invalid("body", "conflicts with an existing object (a number or key already in use)") from None


# --- clients ---------------------------------------------------------------------------------------------


def _apply_client(client: Client, data: dict[str, Any]) -> None:
    if (name := field(data, "name", str)) is not None:
        client.name = name
    if (tz := field(data, "timezone", str)) is not None:
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise Invalid("timezone", f"unknown time zone {tz!r}") from None
        client.timezone = tz
    if (currency := field(data, "currency", str)) is not None:
        if len(currency) != 3 or not currency.isalpha():
            raise Invalid("currency", "must be an ISO 4217 code such as RUB")
        client.currency = currency.upper()


@bp.post("/clients")
@api_auth_required
def create_client() -> Any:
    require_editor()
    data = body()
    user = current_user()
    assert user is not None
    client = Client(agency_id=user.agency_id, name=field(data, "name", str, required=True))
    _apply_client(client, data)
    db().add(client)
    _commit()
    return jsonify(client_json(client)), 201


@bp.patch("/clients/<int:client_id>")
@api_auth_required
def update_client(client_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    _apply_client(client, body())
    _commit()
    return jsonify(client_json(client))


register("/clients", "post", {"summary": "Create a client", "responses": {"201": ok(CLIENT), "400": INVALID}})
register(
    "/clients/{client_id}",
    "patch",
    {
        "summary": "Change a client",
        "parameters": [id_param("client_id")],
        "responses": {"200": ok(CLIENT), "400": INVALID, "404": NOT_FOUND},
    },
)


# --- sites -----------------------------------------------------------------------------------------------

SITE = schema(
    "Site",
    {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "client_id": {"type": "integer"},
            "name": {"type": "string"},
            "domains": {"type": "array", "items": {"type": "string"}},
            "site_key": {"type": "string"},
            "replace_numbers": {"type": "array", "items": {"type": "string"}},
            "display_template": {"type": "string"},
            "promo_codes_enabled": {"type": "boolean"},
            "snippet_tag": {"type": "string"},
        },
    },
)


def site_json(site: Site) -> dict[str, Any]:
    from flask import current_app

    base = current_app.config["BASE_URL"]
    return {
        "id": site.id,
        "client_id": site.client_id,
        "name": site.name,
        "domains": site.domains,
        "site_key": site.site_key,
        "replace_numbers": site.replace_numbers,
        "display_template": site.display_template,
        "promo_codes_enabled": site.promo_codes_enabled,
        "snippet_tag": f'<script async src="{base}/t/v1/{site.site_key}.js"></script>',
    }


def _apply_site(site: Site, data: dict[str, Any]) -> None:
    if (name := field(data, "name", str)) is not None:
        site.name = name
    if (domains := field(data, "domains", list)) is not None:
        if not all(isinstance(d, str) and d.strip() for d in domains):
            raise Invalid("domains", "must be a list of host names")
        site.domains = [d.strip().lower() for d in domains]
    if (numbers := field(data, "replace_numbers", list)) is not None:
        normalised = []
        for i, raw in enumerate(numbers):
            normalised.append(_e164({f"replace_numbers[{i}]": raw}, f"replace_numbers[{i}]", required=True))
        site.replace_numbers = normalised
    if (template := field(data, "display_template", str)) is not None:
        if "X" not in template:
            raise Invalid("display_template", "must contain X for each digit, e.g. +7 (XXX) XXX-XX-XX")
        site.display_template = template
    if (promo := field(data, "promo_codes_enabled", bool)) is not None:
        site.promo_codes_enabled = promo


@bp.get("/clients/<int:client_id>/sites")
@api_auth_required
def list_sites(client_id: int) -> Any:
    client = client_or_404(client_id)
    return paginate(select(Site).where(Site.client_id == client.id).order_by(Site.id), site_json)


@bp.post("/clients/<int:client_id>/sites")
@api_auth_required
def create_site(client_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    data = body()
    site = Site(
        client_id=client.id, name=field(data, "name", str, required=True), site_key=secrets.token_urlsafe(12)
    )
    _apply_site(site, data)
    db().add(site)
    _commit()
    return jsonify(site_json(site)), 201


@bp.get("/sites/<int:site_id>")
@api_auth_required
def get_site(site_id: int) -> Any:
    return jsonify(site_json(owned(Site, site_id)[0]))


@bp.patch("/sites/<int:site_id>")
@api_auth_required
def update_site(site_id: int) -> Any:
    site, _ = owned(Site, site_id, edit=True)
    _apply_site(site, body())
    _commit()
    return jsonify(site_json(site))


@bp.delete("/sites/<int:site_id>")
@api_auth_required
def delete_site(site_id: int) -> Any:
    site, _ = owned(Site, site_id, edit=True)
    db().delete(site)
    _commit()
    return "", 204


# --- channels --------------------------------------------------------------------------------------------

CHANNEL = schema(
    "Channel",
    {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "client_id": {"type": "integer"},
            "name": {"type": "string"},
            "position": {"type": "integer"},
            "rules": {"type": "array", "items": {"type": "object"}},
            "is_default": {"type": "boolean"},
            "offline": {"type": "boolean"},
        },
    },
)


def channel_json(ch: Channel) -> dict[str, Any]:
    return {
        "id": ch.id,
        "client_id": ch.client_id,
        "name": ch.name,
        "position": ch.position,
        "rules": ch.rules,
        "is_default": ch.is_default,
        "offline": ch.offline,
    }


def _apply_channel(ch: Channel, data: dict[str, Any]) -> None:
    if (name := field(data, "name", str)) is not None:
        ch.name = name
    if (position := field(data, "position", int)) is not None:
        ch.position = position
    if (rules := field(data, "rules", list)) is not None:
        for i, rule in enumerate(rules):
            if not isinstance(rule, dict) or not rule:
                raise Invalid(f"rules[{i}]", "must be a non-empty object of conditions")
            unknown = set(rule) - RULE_KEYS
            if unknown:
                raise Invalid(f"rules[{i}]", "unknown condition(s): " + ", ".join(sorted(unknown)))
            for key in ("has_gclid", "has_yclid"):
                if key in rule and not isinstance(rule[key], bool):
                    raise Invalid(f"rules[{i}].{key}", "must be true or false")
        ch.rules = rules
    if (offline := field(data, "offline", bool)) is not None:
        ch.offline = offline
    if (default := field(data, "is_default", bool)) is not None:
        if default:
            # One default per client: taking it moves it.
            for other in db().scalars(
                select(Channel).where(Channel.client_id == ch.client_id, Channel.is_default)
            ):
                other.is_default = False
        ch.is_default = default


@bp.get("/clients/<int:client_id>/channels")
@api_auth_required
def list_channels(client_id: int) -> Any:
    client = client_or_404(client_id)
    query = select(Channel).where(Channel.client_id == client.id).order_by(Channel.position, Channel.id)
    return paginate(query, channel_json)


@bp.post("/clients/<int:client_id>/channels")
@api_auth_required
def create_channel(client_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    data = body()
    ch = Channel(client_id=client.id, name=field(data, "name", str, required=True))
    _apply_channel(ch, data)
    db().add(ch)
    _commit()
    return jsonify(channel_json(ch)), 201


@bp.get("/channels/<int:channel_id>")
@api_auth_required
def get_channel(channel_id: int) -> Any:
    return jsonify(channel_json(owned(Channel, channel_id)[0]))


@bp.patch("/channels/<int:channel_id>")
@api_auth_required
def update_channel(channel_id: int) -> Any:
    ch, _ = owned(Channel, channel_id, edit=True)
    _apply_channel(ch, body())
    _commit()
    return jsonify(channel_json(ch))


@bp.delete("/channels/<int:channel_id>")
@api_auth_required
def delete_channel(channel_id: int) -> Any:
    ch, _ = owned(Channel, channel_id, edit=True)
    db().delete(ch)
    _commit()
    return "", 204


# --- tracking numbers ------------------------------------------------------------------------------------

NUMBER = schema(
    "TrackingNumber",
    {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "client_id": {"type": "integer"},
            "e164": {"type": "string"},
            "provider": {"type": "string"},
            "forward_to": {"type": ["string", "null"]},
            "kind": {"type": "string", "enum": ["static", "pool", "unassigned"]},
            "channel_id": {"type": ["integer", "null"]},
            "pool_id": {"type": ["integer", "null"]},
            "status": {"type": "string", "enum": [s.value for s in NumberStatus]},
            "held": {"type": "boolean"},
        },
    },
)


def number_json(n: TrackingNumber) -> dict[str, Any]:
    from tracking.db import utcnow

    return {
        "id": n.id,
        "client_id": n.client_id,
        "e164": n.e164,
        "provider": n.provider,
        "forward_to": n.forward_to,
        "kind": "pool" if n.pool_id else ("static" if n.channel_id else "unassigned"),
        "channel_id": n.channel_id,
        "pool_id": n.pool_id,
        "status": n.status.value,
        "held": bool(n.held_by_session_id and n.held_until and n.held_until > utcnow()),
    }


def _same_client(model: type, object_id: int | None, client_id: int, name: str) -> None:
    if object_id is None:
        return
    obj = db().get(model, object_id)
    if obj is None or obj.client_id != client_id:
        raise Invalid(name, "no such object for this client")


def _apply_number(n: TrackingNumber, data: dict[str, Any]) -> None:
    if "e164" in data:
        n.e164 = _e164(data, "e164", required=True)  # type: ignore[assignment]
    if (provider := field(data, "provider", str)) is not None:
        n.provider = provider
    if "forward_to" in data:
        n.forward_to = _e164(data, "forward_to")
    if (status := field(data, "status", str)) is not None:
        try:
            n.status = NumberStatus(status)
        except ValueError:
            raise Invalid("status", "must be one of " + ", ".join(s.value for s in NumberStatus)) from None
    if "channel_id" in data:
        n.channel_id = field(data, "channel_id", int)
        _same_client(Channel, n.channel_id, n.client_id, "channel_id")
    if "pool_id" in data:
        n.pool_id = field(data, "pool_id", int)
        _same_client(Pool, n.pool_id, n.client_id, "pool_id")
    if n.channel_id is not None and n.pool_id is not None:
        raise Invalid("pool_id", "a number is either static (channel_id) or in a pool (pool_id), not both")


@bp.get("/clients/<int:client_id>/numbers")
@api_auth_required
def list_numbers(client_id: int) -> Any:
    client = client_or_404(client_id)
    query = select(TrackingNumber).where(TrackingNumber.client_id == client.id).order_by(TrackingNumber.e164)
    return paginate(query, number_json)


@bp.post("/clients/<int:client_id>/numbers")
@api_auth_required
def create_number(client_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    data = body()
    if "e164" not in data:
        raise Invalid("e164", "is required")
    n = TrackingNumber(client_id=client.id)
    _apply_number(n, data)
    db().add(n)
    _commit()
    return jsonify(number_json(n)), 201


@bp.get("/numbers/<int:number_id>")
@api_auth_required
def get_number(number_id: int) -> Any:
    return jsonify(number_json(owned(TrackingNumber, number_id)[0]))


@bp.patch("/numbers/<int:number_id>")
@api_auth_required
def update_number(number_id: int) -> Any:
    n, _ = owned(TrackingNumber, number_id, edit=True)
    _apply_number(n, body())
    _commit()
    return jsonify(number_json(n))


# --- pools -----------------------------------------------------------------------------------------------

POOL = schema(
    "Pool",
    {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "client_id": {"type": "integer"},
            "site_id": {"type": "integer"},
            "name": {"type": "string"},
            "hold_seconds": {"type": "integer"},
            "grace_seconds": {"type": "integer"},
            "max_hold_seconds": {"type": "integer"},
            "fallback_number_id": {"type": ["integer", "null"]},
            "channel_ids": {"type": "array", "items": {"type": "integer"}},
            "number_ids": {"type": "array", "items": {"type": "integer"}},
            "active": {"type": "boolean"},
            "channel_coherent": {
                "type": "boolean",
                "description": "Keep numbers within the channel of their last holder (default true)",
            },
            "utilisation": {"type": "number"},
        },
    },
)


def pool_json(pool: Pool) -> dict[str, Any]:
    from hub.overview import pool_usage
    from tracking.db import utcnow

    return {
        "id": pool.id,
        "client_id": pool.client_id,
        "site_id": pool.site_id,
        "name": pool.name,
        "hold_seconds": pool.hold_seconds,
        "grace_seconds": pool.grace_seconds,
        "max_hold_seconds": pool.max_hold_seconds,
        "fallback_number_id": pool.fallback_number_id,
        "channel_ids": sorted(pc.channel_id for pc in pool.served_channels),
        "number_ids": [n.id for n in pool.numbers],
        "active": pool.active,
        "channel_coherent": pool.channel_coherent,
        "utilisation": round(pool_usage(db(), pool, utcnow()).utilisation, 4),
    }


def _apply_pool(pool: Pool, data: dict[str, Any]) -> None:
    if (name := field(data, "name", str)) is not None:
        pool.name = name
    if "site_id" in data:
        pool.site_id = field(data, "site_id", int, required=True)
        _same_client(Site, pool.site_id, pool.client_id, "site_id")
    for key, lo in (("hold_seconds", 30), ("grace_seconds", 0), ("max_hold_seconds", 60)):
        if (value := field(data, key, int)) is not None:
            if value < lo:
                raise Invalid(key, f"must be at least {lo}")
            setattr(pool, key, value)
    if (
        pool.max_hold_seconds is not None
        and pool.hold_seconds is not None
        and pool.max_hold_seconds < pool.hold_seconds
    ):
        raise Invalid("max_hold_seconds", "must not be shorter than hold_seconds")
    if (active := field(data, "active", bool)) is not None:
        pool.active = active
    if (coherent := field(data, "channel_coherent", bool)) is not None:
        pool.channel_coherent = coherent
    if "fallback_number_id" in data:
        pool.fallback_number_id = field(data, "fallback_number_id", int)
        _same_client(TrackingNumber, pool.fallback_number_id, pool.client_id, "fallback_number_id")


def _set_members(pool: Pool, data: dict[str, Any]) -> None:
    """``channel_ids`` and ``number_ids`` replace the pool's served channels and member numbers."""
    if (channel_ids := field(data, "channel_ids", list)) is not None:
        for i, cid in enumerate(channel_ids):
            if not isinstance(cid, int) or isinstance(cid, bool):
                raise Invalid(f"channel_ids[{i}]", "must be an integer")
            _same_client(Channel, cid, pool.client_id, f"channel_ids[{i}]")
        db().execute(delete(PoolChannel).where(PoolChannel.pool_id == pool.id))
        db().add_all(PoolChannel(pool_id=pool.id, channel_id=cid) for cid in dict.fromkeys(channel_ids))
    if (number_ids := field(data, "number_ids", list)) is not None:
        wanted = set()
        for i, nid in enumerate(number_ids):
            if not isinstance(nid, int) or isinstance(nid, bool):
                raise Invalid(f"number_ids[{i}]", "must be an integer")
            _same_client(TrackingNumber, nid, pool.client_id, f"number_ids[{i}]")
            wanted.add(nid)
        if pool.fallback_number_id in wanted:
            raise Invalid("number_ids", "the fallback number cannot also be a pool member")
        for n in db().scalars(select(TrackingNumber).where(TrackingNumber.client_id == pool.client_id)):
            if n.id in wanted:
                if n.channel_id is not None:
                    raise Invalid("number_ids", f"{n.e164} is a static number of a channel")
                n.pool_id = pool.id
            elif n.pool_id == pool.id:
                n.pool_id = None
    db().flush()
    db().expire(pool)


@bp.get("/clients/<int:client_id>/pools")
@api_auth_required
def list_pools(client_id: int) -> Any:
    client = client_or_404(client_id)
    return paginate(select(Pool).where(Pool.client_id == client.id).order_by(Pool.id), pool_json)


@bp.post("/clients/<int:client_id>/pools")
@api_auth_required
def create_pool(client_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    data = body()
    if "site_id" not in data:
        raise Invalid("site_id", "is required")
    pool = Pool(client_id=client.id, name=field(data, "name", str, required=True))
    pool.hold_seconds, pool.grace_seconds, pool.max_hold_seconds = 900, 300, 4 * 3600
    _apply_pool(pool, data)
    db().add(pool)
    db().flush()
    _set_members(pool, data)
    _commit()
    return jsonify(pool_json(pool)), 201


@bp.get("/pools/<int:pool_id>")
@api_auth_required
def get_pool(pool_id: int) -> Any:
    return jsonify(pool_json(owned(Pool, pool_id)[0]))


@bp.patch("/pools/<int:pool_id>")
@api_auth_required
def update_pool(pool_id: int) -> Any:
    pool, _ = owned(Pool, pool_id, edit=True)
    data = body()
    _apply_pool(pool, data)
    _set_members(pool, data)
    _commit()
    return jsonify(pool_json(pool))


# --- visitor sessions ------------------------------------------------------------------------------------

SESSION = schema(
    "VisitSession",
    {
        "type": "object",
        "properties": {
            k: {"type": ["string", "null"]}
            for k in (
                "id",
                "visitor_id",
                "started_at",
                "last_seen_at",
                "left_at",
                "hold_until",
                *SESSION_FIELDS,
                "number",
                "promo_code",
            )
        }
        | {"site_id": {"type": "integer"}, "channel_id": {"type": ["integer", "null"]}},
    },
)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def session_json(s: VisitSession) -> dict[str, Any]:
    return {
        "id": s.public_id,
        "site_id": s.site_id,
        "channel_id": s.channel_id,
        "visitor_id": s.visitor_id,
        "started_at": _iso(s.started_at),
        "last_seen_at": _iso(s.last_seen_at),
        "left_at": _iso(s.left_at),
        "hold_until": _iso(s.hold_until),
        "landing_url": s.landing_url,
        "referrer": s.referrer,
        "utm_source": s.utm_source,
        "utm_medium": s.utm_medium,
        "utm_campaign": s.utm_campaign,
        "utm_content": s.utm_content,
        "utm_term": s.utm_term,
        "gclid": s.gclid,
        "yclid": s.yclid,
        "ym_client_id": s.ym_client_id,
        "ga_client_id": s.ga_client_id,
        "device": s.device,
        "number": s.number.e164 if s.number else None,
        "promo_code": s.promo_code,
    }


def _date_arg(name: str) -> dt.datetime | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{name} must be an ISO-8601 date or time") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


@bp.get("/clients/<int:client_id>/sessions")
@api_auth_required
def list_sessions(client_id: int) -> Any:
    client = client_or_404(client_id)
    query = select(VisitSession).where(VisitSession.client_id == client.id)
    for arg, column in (("site_id", VisitSession.site_id), ("channel_id", VisitSession.channel_id)):
        if (raw := request.args.get(arg)) is not None:
            if not raw.isdigit():
                raise BadRequest(f"{arg} must be an integer")
            query = query.where(column == int(raw))
    if (start := _date_arg("from")) is not None:
        query = query.where(VisitSession.started_at >= start)
    if (end := _date_arg("to")) is not None:
        query = query.where(VisitSession.started_at < end)
    return paginate(query.order_by(VisitSession.started_at.desc(), VisitSession.id.desc()), session_json)


@bp.get("/sessions/<session_id>")
@api_auth_required
def get_session(session_id: str) -> Any:
    s = db().scalar(select(VisitSession).where(VisitSession.public_id == session_id))
    if s is None:
        abort(404)
    client_or_404(s.client_id)
    return jsonify(session_json(s))


@bp.get("/me")
@api_auth_required
def me() -> Any:
    user = current_user()
    assert user is not None
    return jsonify(
        id=user.id,
        email=user.email,
        name=user.name,
        role=user.role.value,
        agency_id=user.agency_id,
        client_id=user.client_id,
    )


# --- OpenAPI ---------------------------------------------------------------------------------------------


def _describe(
    collection: str, item: str, name: str, ref: dict[str, Any], *, delete_: bool, list_params=()
) -> None:
    cid, oid = id_param("client_id"), id_param(f"{name}_id")
    register(
        collection,
        "get",
        {
            "summary": f"List {name}s",
            "parameters": [cid, *PAGE_PARAMS, *list_params],
            "responses": {"200": page_of(ref), "404": NOT_FOUND},
        },
    )
    register(
        collection,
        "post",
        {
            "summary": f"Create a {name}",
            "parameters": [cid],
            "responses": {"201": ok(ref, "Created"), "400": INVALID, "404": NOT_FOUND},
        },
    )
    register(
        item,
        "get",
        {"summary": f"One {name}", "parameters": [oid], "responses": {"200": ok(ref), "404": NOT_FOUND}},
    )
    register(
        item,
        "patch",
        {
            "summary": f"Change a {name}",
            "parameters": [oid],
            "responses": {"200": ok(ref), "400": INVALID, "404": NOT_FOUND},
        },
    )
    if delete_:
        register(
            item,
            "delete",
            {
                "summary": f"Delete a {name}",
                "parameters": [oid],
                "responses": {"204": {"description": "Deleted"}, "404": NOT_FOUND},
            },
        )


_describe("/clients/{client_id}/sites", "/sites/{site_id}", "site", SITE, delete_=True)
_describe("/clients/{client_id}/channels", "/channels/{channel_id}", "channel", CHANNEL, delete_=True)
_describe("/clients/{client_id}/numbers", "/numbers/{number_id}", "number", NUMBER, delete_=False)
_describe("/clients/{client_id}/pools", "/pools/{pool_id}", "pool", POOL, delete_=False)
register(
    "/clients/{client_id}/sessions",
    "get",
    {
        "summary": "Visitor sessions, newest first",
        "parameters": [
            id_param("client_id"),
            *PAGE_PARAMS,
            {"name": "site_id", "in": "query", "schema": {"type": "integer"}},
            {"name": "channel_id", "in": "query", "schema": {"type": "integer"}},
            {"name": "from", "in": "query", "schema": {"type": "string", "format": "date-time"}},
            {"name": "to", "in": "query", "schema": {"type": "string", "format": "date-time"}},
        ],
        "responses": {"200": page_of(SESSION), "404": NOT_FOUND},
    },
)
register(
    "/sessions/{session_id}",
    "get",
    {
        "summary": "One visitor session",
        "parameters": [{"name": "session_id", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {"200": ok(SESSION), "404": NOT_FOUND},
    },
)
register(
    "/me",
    "get",
    {
        "summary": "The caller",
        "responses": {
            "200": ok(
                {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer"},
                        "email": {"type": "string"},
                        "role": {"type": "string"},
                        "agency_id": {"type": "integer"},
                        "client_id": {"type": ["integer", "null"]},
                    },
                }
            )
        },
    },
)
