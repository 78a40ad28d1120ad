"""Setting a client up in the browser: clients, sites, channels, numbers, pools, telephony and users.

Every form is validated by the schema the REST API uses and saved by the same functions
(``hub.resources``), so a form and an API call never disagree about what is allowed. A refusal is shown
beside its field and nothing is saved.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from hub import resources as rs
from hub.auth import client_or_404, current_user, login_required
from hub.extensions import db
from hub.overview import pool_usage
from hub.plugins import form_fields, from_form
from hub.public import snippet_tag
from hub.sample_calls import send_test_call
from hub.web import bp
from jobs import providers
from jobs.tokens import redirect_uri
from tracking.accounts import (
    MIN_PASSWORD,
    can_edit,
    hash_password,
    issue_api_token,
)
from tracking.channels import VisitSource, resolve_channel
from tracking.db import utcnow
from tracking.errors import Refused
from tracking.models import (
    ApiToken,
    Call,
    Channel,
    Client,
    Pool,
    Role,
    Site,
    TelephonyIntegration,
    TrackingNumber,
    User,
    VisitSession,
)
from tracking.models.numbers import NumberStatus
from tracking.settings import PREFIX
from tracking.telephony import PROVIDERS, adapter

Errors = dict[str, str]

# The usual channels, as rules a new client can take with one click and then adjust; the channel is named
# in the language of the person who adds it.
PRESET_NAMES = {
    "Yandex Direct": _l("Yandex Direct"),
    "Google Ads": _l("Google Ads"),
    "Yandex organic": _l("Yandex organic"),
    "Google organic": _l("Google organic"),
    "VK": _l("VK"),
    "Telegram": _l("Telegram"),
    "Email": _l("Email"),
    "Direct": _l("Direct"),
}
STATUS_LABELS = {
    NumberStatus.ACTIVE: _l("active"),
    NumberStatus.QUARANTINED: _l("quarantined"),
    NumberStatus.RETIRED: _l("retired"),
}
ROLE_LABELS = {Role.ADMIN: _l("admin"), Role.MANAGER: _l("manager"), Role.VIEWER: _l("viewer")}


def _role_label(role: Role) -> str:
    return str(ROLE_LABELS[role])


PRESETS: dict[str, list[dict[str, Any]]] = {
    "Yandex Direct": [{"has_yclid": True}, {"utm_source": "yandex", "utm_medium": "cpc"}],
    "Google Ads": [{"has_gclid": True}, {"utm_source": "google", "utm_medium": "cpc"}],
    "Yandex organic": [{"referrer_domain": "yandex.ru"}, {"referrer_domain": "ya.ru"}],
    "Google organic": [{"referrer_domain": "google.com"}, {"referrer_domain": "google.ru"}],
    "VK": [{"utm_source": "vk"}, {"referrer_domain": "vk.com"}],
    "Telegram": [{"utm_source": "telegram"}, {"referrer_domain": "t.me"}],
    "Email": [{"utm_medium": "email"}],
    "Direct": [],
}
RULE_KEYS = sorted(rs.RULE_KEYS)
_FLAGS = {"has_gclid", "has_yclid"}


def attempt(action: Callable[[], Any]) -> Errors:
    """Run ``action`` (validate, apply, commit); a refusal rolls everything back and becomes a form error."""
    try:
        action()
    except Refused as exc:
        db().rollback()
        return {exc.field.split(".")[0].split("[")[0]: exc.message, "_": f"{exc.field}: {exc.message}"}
    return {}


def submitted(save: Callable[[], Any], message: str, target: Callable[[], str]) -> tuple[Any, Errors]:
    """On a POST, ``save`` through ``attempt``: a redirect to ``target`` with ``message`` when it worked,
    else the errors to show beside the fields. A GET shows the form."""
    if request.method != "POST":
        return None, {}
    errors = attempt(save)
    if errors:
        return None, errors
    flash(message)
    return redirect(target()), {}


def _editor() -> User:
    user = current_user()
    if user is None or not can_edit(user):
        abort(403)
    return user


def _admin() -> User:
    user = current_user()
    if user is None or user.role != Role.ADMIN:
        abort(403)
    return user


def _lines(raw: str) -> list[str]:
    return [line.strip() for line in raw.replace(",", "\n").splitlines() if line.strip()]


def _optional_int(raw: str | None) -> int | None:
    raw = (raw or "").strip()
    return int(raw) if raw.isdigit() else None


def _page(template: str, client: Client, status: int = 200, **context: Any) -> Any:
    return render_template(f"setup/{template}", client=client, **context), status


# --- clients -------------------------------------------------------------------------------------------


@bp.route("/clients/new", methods=["GET", "POST"])
@login_required
def new_client() -> Any:
    user = _editor()
    form, errors = request.form, {}
    if request.method == "POST":
        made: list[Client] = []

        def save() -> None:
            made.append(rs.create_client(user.agency_id, rs.validate(rs.ClientCreate, _client_data(form))))

        errors = attempt(save)
        if not errors:
            return redirect(url_for("web.setup_client", client_id=made[0].id))
    return render_template("setup/new_client.html", form=form, errors=errors), (400 if errors else 200)


def _client_data(form: Any) -> dict[str, Any]:
    return {k: form.get(k, "").strip() for k in ("name", "timezone", "currency") if form.get(k, "").strip()}


@bp.route("/clients/<int:client_id>/settings", methods=["GET", "POST"])
@login_required
def setup_client(client_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    action = request.form.get("action")

    def save() -> None:
        # Archiving goes through the same schema and domain function as PATCH /clients/{id}.
        data = {"archived": action == "archive"} if action in ("archive", "unarchive") else None
        rs.apply_client(client, rs.validate(rs.ClientChange, data or _client_data(request.form)))
        rs.commit()

    message = {
        "archive": _("Client archived."),
        "unarchive": _("Client brought back from the archive."),
    }.get(action or "", _("Client saved."))
    done, errors = submitted(save, message, lambda: url_for("web.setup_client", client_id=client.id))
    if done is not None:
        return done
    return _page("client.html", client, 400 if errors else 200, errors=errors, form=request.form)


# --- sites ---------------------------------------------------------------------------------------------


def _site_data(form: Any) -> dict[str, Any]:
    return {
        "name": form.get("name", ""),
        "domains": _lines(form.get("domains", "")),
        "replace_numbers": _lines(form.get("replace_numbers", "")),
        "display_template": form.get("display_template", "") or "+7 (XXX) XXX-XX-XX",
        "promo_codes_enabled": form.get("promo_codes_enabled") == "on",
        "swap_attributes": _lines(form.get("swap_attributes", "")),
        "swap_local_numbers": form.get("swap_local_numbers") == "on",
    }


def last_seen(site: Site) -> VisitSession | None:
    """The latest visit the snippet reported for ``site``: proof the tag is installed."""
    return db().scalar(
        select(VisitSession)
        .where(VisitSession.site_id == site.id)
        .order_by(VisitSession.last_seen_at.desc(), VisitSession.id.desc())
        .limit(1)
    )


@bp.route("/clients/<int:client_id>/settings/sites", methods=["GET", "POST"])
@login_required
def setup_sites(client_id: int) -> Any:
    client = client_or_404(client_id, edit=True)

    def save() -> None:
        rs.create_site(client, rs.validate(rs.SiteCreate, _site_data(request.form)))

    done, errors = submitted(save, _("Site added."), lambda: url_for("web.setup_sites", client_id=client.id))
    if done is not None:
        return done
    sites = db().scalars(select(Site).where(Site.client_id == client.id).order_by(Site.id)).all()
    return _page(
        "sites.html",
        client,
        400 if errors else 200,
        sites=sites,
        errors=errors,
        form=request.form,
        tag=lambda s: snippet_tag(current_app.config["BASE_URL"], s.site_key),
        last_seen=last_seen,
    )


@bp.route("/settings/sites/<int:site_id>", methods=["GET", "POST"])
@login_required
def setup_site(site_id: int) -> Any:
    site, client = rs.owned(Site, site_id, edit=True)

    def save() -> None:
        rs.apply_site(site, rs.validate(rs.SiteChange, _site_data(request.form)))
        rs.commit()

    done, errors = submitted(save, _("Site saved."), lambda: url_for("web.setup_site", site_id=site.id))
    if done is not None:
        return done
    return _page(
        "site.html",
        client,
        400 if errors else 200,
        site=site,
        errors=errors,
        form=request.form if errors else None,
        tag=snippet_tag(current_app.config["BASE_URL"], site.site_key),
        seen=last_seen(site),
    )


# --- channels ------------------------------------------------------------------------------------------


def parse_rules(text: str) -> list[dict[str, Any]]:
    """The rule builder's text: one rule per line, its conditions joined by ``and`` (all must hold); a
    visit matching any line matches the channel. ``has_gclid = yes`` style flags become booleans."""
    rules: list[dict[str, Any]] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        rule: dict[str, Any] = {}
        for part in line.replace(" AND ", " and ").split(" and "):
            key, sep, value = part.partition("=")
            key, value = key.strip().lower(), value.strip()
            if not sep or not key or not value:
                raise Refused("rules", _("line %(n)s: write each condition as name = value", n=n))
            if key in _FLAGS:
                if value.lower() not in ("yes", "no", "true", "false"):
                    raise Refused("rules", _("line %(n)s: %(key)s takes yes or no", n=n, key=key))
                rule[key] = value.lower() in ("yes", "true")
            else:
                rule[key] = value
        rules.append(rule)
    return rules


def format_rules(rules: list[dict[str, Any]]) -> str:
    def value(v: Any) -> str:
        return ("yes" if v else "no") if isinstance(v, bool) else str(v)

    return "\n".join(" and ".join(f"{k} = {value(v)}" for k, v in r.items()) for r in rules)


def _channels(client: Client) -> list[Channel]:
    query = select(Channel).where(Channel.client_id == client.id).order_by(Channel.position, Channel.id)
    return list(db().scalars(query))


def _channel_data(form: Any) -> dict[str, Any]:
    return {
        "name": form.get("name", ""),
        "rules": parse_rules(form.get("rules", "")),
        "offline": form.get("offline") == "on",
    }


def channel_for_url(client: Client, landing: str, referrer: str) -> str:
    """The name of the channel a visit landing on ``landing`` from ``referrer`` would get; nothing is
    written."""
    query = {k: v[0] for k, v in parse_qs(urlsplit(landing.strip()).query).items()}
    source = VisitSource(
        utm_source=query.get("utm_source"),
        utm_medium=query.get("utm_medium"),
        utm_campaign=query.get("utm_campaign"),
        referrer=referrer.strip() or None,
        gclid=query.get("gclid"),
        yclid=query.get("yclid"),
        landing_url=landing.strip() or None,
    )
    channel = resolve_channel(db(), client.id, source)
    name = channel.name
    # Resolving may create the catch-all channel; a test must leave the client as it was.
    db().rollback()
    return name


@bp.route("/clients/<int:client_id>/settings/channels", methods=["GET", "POST"])
@login_required
def setup_channels(client_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    errors: Errors = {}
    tested = None
    if request.method == "POST" and request.form.get("action") == "test":
        tested = channel_for_url(client, request.form.get("landing", ""), request.form.get("referrer", ""))
    elif request.method == "POST":
        preset = request.form.get("preset", "")
        if preset and preset not in PRESETS:
            abort(400)

        def save() -> None:
            data = (
                {"name": str(PRESET_NAMES[preset]), "rules": PRESETS[preset]}
                if preset
                else _channel_data(request.form)
            )
            # A new channel goes last among the rules, above the catch-all default.
            last = max((c.position for c in _channels(client) if not c.is_default), default=0)
            rs.create_channel(client, rs.validate(rs.ChannelCreate, {"position": last + 10, **data}))

        errors = attempt(save)
        if not errors:
            flash(_("Channel added."))
            return redirect(url_for("web.setup_channels", client_id=client.id))
    return _page(
        "channels.html",
        client,
        400 if errors else 200,
        channels=_channels(client),
        errors=errors,
        form=request.form,
        presets=PRESETS,
        preset_names=PRESET_NAMES,
        rule_keys=RULE_KEYS,
        format_rules=format_rules,
        tested=tested,
    )


@bp.route("/settings/channels/<int:channel_id>", methods=["GET", "POST"])
@login_required
def setup_channel(channel_id: int) -> Any:
    ch, client = rs.owned(Channel, channel_id, edit=True)

    def save() -> None:
        rs.apply_channel(ch, rs.validate(rs.ChannelChange, _channel_data(request.form)))
        rs.commit()

    done, errors = submitted(
        save, _("Channel saved."), lambda: url_for("web.setup_channels", client_id=client.id)
    )
    if done is not None:
        return done
    return _page(
        "channel.html",
        client,
        400 if errors else 200,
        channel=ch,
        errors=errors,
        form=request.form if errors else None,
        rules_text=format_rules(ch.rules or []),
        rule_keys=RULE_KEYS,
    )


@bp.post("/settings/channels/<int:channel_id>/move")
@login_required
def move_channel(channel_id: int) -> Any:
    ch, client = rs.owned(Channel, channel_id, edit=True)
    order = [c for c in _channels(client) if not c.is_default]
    if ch in order:
        i = order.index(ch)
        j = i - 1 if request.form.get("direction") == "up" else i + 1
        if 0 <= j < len(order):
            order[i], order[j] = order[j], order[i]
        for pos, c in enumerate(order, start=1):
            c.position = pos * 10
        rs.commit()
    return redirect(url_for("web.setup_channels", client_id=client.id))


# --- numbers -------------------------------------------------------------------------------------------


@bp.route("/clients/<int:client_id>/settings/numbers", methods=["GET", "POST"])
@login_required
def setup_numbers(client_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    errors: Errors = {}
    bad: list[str] = []
    added = 0
    if request.method == "POST":
        target = request.form.get("assign", "")
        assign: dict[str, Any] = {}
        if target.startswith("channel:"):
            assign["channel_id"] = _optional_int(target[8:])
        elif target.startswith("pool:"):
            assign["pool_id"] = _optional_int(target[5:])
        forward = request.form.get("forward_to", "").strip()
        if forward:
            assign["forward_to"] = forward
        provider = request.form.get("provider", "").strip()
        if provider:
            assign["provider"] = provider
        for line in request.form.get("numbers", "").splitlines():
            if not line.strip():
                continue

            def save(raw: str = line.strip()) -> None:
                rs.create_number(client, rs.validate(rs.NumberCreate, {"e164": raw, **assign}))

            problem = attempt(save)
            if problem:
                bad.append(f"{line.strip()}: {problem['_']}")
            else:
                added += 1
        if not added and not bad:
            errors["numbers"] = _("is required")
        if bad:
            errors["numbers"] = _("some lines were not added")
        if added:
            flash(_("Numbers added: %(n)s.", n=added))
        if not errors:
            return redirect(url_for("web.setup_numbers", client_id=client.id))
    return _numbers_page(client, errors, bad)


def _numbers_page(client: Client, errors: Errors, bad: list[str] | None = None) -> Any:
    numbers = (
        db()
        .scalars(
            select(TrackingNumber).where(TrackingNumber.client_id == client.id).order_by(TrackingNumber.e164)
        )
        .all()
    )
    return _page(
        "numbers.html",
        client,
        400 if errors else 200,
        numbers=numbers,
        channels=_channels(client),
        pools=db().scalars(select(Pool).where(Pool.client_id == client.id).order_by(Pool.id)).all(),
        statuses=list(NumberStatus),
        status_labels={s.value: str(label) for s, label in STATUS_LABELS.items()},
        errors=errors,
        bad=bad or [],
        form=request.form,
    )


@bp.post("/settings/numbers/<int:number_id>")
@login_required
def setup_number(number_id: int) -> Any:
    n, client = rs.owned(TrackingNumber, number_id, edit=True)
    target = request.form.get("assign", "")
    data: dict[str, Any] = {
        "channel_id": _optional_int(target[8:]) if target.startswith("channel:") else None,
        "pool_id": _optional_int(target[5:]) if target.startswith("pool:") else None,
    }
    if request.form.get("status"):
        data["status"] = request.form["status"]

    def save() -> None:
        rs.apply_number(n, rs.validate(rs.NumberChange, data))
        rs.commit()

    errors = attempt(save)
    if errors:
        return _numbers_page(client, {"numbers": f"{n.e164}: {errors['_']}"})
    flash(_("%(number)s saved.", number=n.e164))
    return redirect(url_for("web.setup_numbers", client_id=client.id))


# --- pools ---------------------------------------------------------------------------------------------


def _pool_data(form: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"name": form.get("name", "")}
    for name in ("site_id", "hold_seconds", "grace_seconds", "max_hold_seconds", "fallback_number_id"):
        raw = form.get(name, "").strip()
        if raw:
            data[name] = int(raw) if raw.lstrip("-").isdigit() else raw
        elif name == "fallback_number_id":
            data[name] = None
    data["channel_ids"] = [int(v) for v in form.getlist("channel_ids") if v.isdigit()]
    data["number_ids"] = [int(v) for v in form.getlist("number_ids") if v.isdigit()]
    return data


def _pool_context(client: Client) -> dict[str, Any]:
    numbers = (
        db()
        .scalars(
            select(TrackingNumber).where(TrackingNumber.client_id == client.id).order_by(TrackingNumber.e164)
        )
        .all()
    )
    return {
        "sites": db().scalars(select(Site).where(Site.client_id == client.id).order_by(Site.id)).all(),
        "channels": _channels(client),
        "numbers": numbers,
    }


@bp.route("/clients/<int:client_id>/settings/pools", methods=["GET", "POST"])
@login_required
def setup_pools(client_id: int) -> Any:
    client = client_or_404(client_id, edit=True)

    def save() -> None:
        rs.create_pool(client, rs.validate(rs.PoolCreate, _pool_data(request.form)))

    done, errors = submitted(save, _("Pool added."), lambda: url_for("web.setup_pools", client_id=client.id))
    if done is not None:
        return done
    pools = db().scalars(select(Pool).where(Pool.client_id == client.id).order_by(Pool.id)).all()
    now = utcnow()
    return _page(
        "pools.html",
        client,
        400 if errors else 200,
        pools=[(p, pool_usage(db(), p, now)) for p in pools],
        errors=errors,
        form=request.form,
        **_pool_context(client),
    )


@bp.route("/settings/pools/<int:pool_id>", methods=["GET", "POST"])
@login_required
def setup_pool(pool_id: int) -> Any:
    pool, client = rs.owned(Pool, pool_id, edit=True)

    def save() -> None:
        change = rs.validate(rs.PoolChange, _pool_data(request.form))
        rs.apply_pool(pool, change)
        rs.set_pool_members(pool, change)
        rs.commit()

    done, errors = submitted(save, _("Pool saved."), lambda: url_for("web.setup_pools", client_id=client.id))
    if done is not None:
        return done
    return _page(
        "pool.html",
        client,
        400 if errors else 200,
        pool=pool,
        use=pool_usage(db(), pool, utcnow()),
        errors=errors,
        served={pc.channel_id for pc in pool.served_channels},
        members={n.id for n in pool.numbers},
        **_pool_context(client),
    )


# --- telephony -----------------------------------------------------------------------------------------


# The telephony adapters' own words (setup steps, secret and setting descriptions), named here so the
# catalogue holds them: tracking/ speaks English only, and the page translates at display.
PROVIDER_TEXTS = (
    _l("In the Twilio Console open Phone Numbers → Manage → Active numbers and pick each tracking number."),
    _l('Under Voice Configuration set "A call comes in" to Webhook, HTTP POST: {voice}'),
    _l('Set "Call status changes" to: {status_callback}'),
    _l("Copy the Auth Token from the Console's Account Info into the field below."),
    _l("The account's Auth Token: checks X-Twilio-Signature"),
    _l("A SharedKey secret, when webhooks are signed with one"),
    _l("In your personal account open Settings → Integrations and API → the notifications (API) section."),
    _l("Paste the notification link for PBX calls: {notify}"),
    _l(
        "Turn on the call start, answer, end and recording notifications (NOTIFY_START, NOTIFY_ANSWER, "
        "NOTIFY_END, NOTIFY_RECORD); the provider checks the link with a zd_echo request first."
    ),
    _l("Copy the API secret from the API keys section into the field below."),
    _l("The API secret: checks the Signature header"),
    _l("Zone of call_start (an IANA name; UTC when absent)"),
    _l("In the VPBX account open Integrations → API connection."),
    _l("Enter this as the external system's address: {base}"),
    _l("Copy the unique code (vpbx_api_key) and the signature key into the fields below."),
    _l("The VPBX's unique code (vpbx_api_key)"),
    _l("The VPBX's signing key"),
    _l("Make the PBX POST each call event (start, answer, end, recording) as JSON to: {notify}"),
    _l(
        "Sign each request: X-Otkuda-Timestamp (unix seconds) and X-Otkuda-Signature, sha256= and the hex "
        'HMAC-SHA256 of "<timestamp>.<body>" under the secret shown once below (see the generic PBX webhook '
        "document)."
    ),
    _l("Signs X-Otkuda-Signature; generated (and shown once) when absent"),
)


def provider_text(text: str | None) -> str:
    """An adapter's English text in the page's language (itself when the catalogue lacks it)."""
    return _(text) if text else ""


def provider_setup(provider: str, integ: TelephonyIntegration | None = None) -> dict[str, Any]:
    """What a provider declares, for its form: its secret and setting inputs and its own setup steps
    (with the integration's webhook URLs filled in once there is one)."""
    module = adapter(provider)
    urls = rs.webhook_urls(integ) if integ else {name: f"<{name} URL>" for name in module.WEBHOOKS}
    return {
        "secrets": form_fields(module.Secrets),
        "settings": form_fields(module.Settings),
        "steps": [provider_text(step).format(**urls) for step in getattr(module, "SETUP_STEPS", ())],
        "generated": getattr(module, "GENERATED_FIELD", None),
        "urls": urls if integ else {},
    }


def _integrations(client: Client) -> list[TelephonyIntegration]:
    query = select(TelephonyIntegration).where(TelephonyIntegration.client_id == client.id)
    return list(db().scalars(query.order_by(TelephonyIntegration.id)))


def last_event(integ: TelephonyIntegration) -> Call | None:
    """The latest call the integration reported, as "last event received"."""
    return db().scalar(select(Call).where(Call.integration_id == integ.id).order_by(Call.id.desc()).limit(1))


@bp.route("/clients/<int:client_id>/settings/telephony", methods=["GET", "POST"])
@login_required
def setup_telephony(client_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    errors: Errors = {}
    shown_once: dict[str, str] | None = None
    created: TelephonyIntegration | None = None
    if request.method == "POST":
        provider = request.form.get("provider", "")

        def save() -> None:
            nonlocal shown_once, created
            if provider not in PROVIDERS:
                raise Refused("provider", _("must be one of %(names)s", names=", ".join(PROVIDERS)))
            data = {"provider": provider, "name": request.form.get("name") or None}
            data |= _declared(provider, request.form)
            created, shown_once = rs.create_integration(client, rs.validate(rs.IntegrationCreate, data))

        errors = attempt(save)
    return _telephony_page(
        client,
        errors,
        shown_once=shown_once,
        created=created,
        status=400 if errors else (201 if created else 200),
    )


def _telephony_page(
    client: Client,
    errors: Errors,
    *,
    shown_once: dict[str, str] | None = None,
    created: TelephonyIntegration | None = None,
    status: int = 200,
) -> Any:
    providers = {p: provider_setup(p) for p in dict.fromkeys(PROVIDERS)}
    active = select(TrackingNumber).where(
        TrackingNumber.client_id == client.id, TrackingNumber.status == NumberStatus.ACTIVE
    )
    arrived = db().get(Call, _optional_int(request.args.get("arrived")) or 0)
    if arrived is not None and arrived.client_id != client.id:
        arrived = None
    return _page(
        "telephony.html",
        client,
        status,
        integrations=_integrations(client),
        providers=providers,
        provider_setup=provider_setup,
        provider_text=provider_text,
        last_event=last_event,
        arrived=arrived,
        numbers=db().scalars(active.order_by(TrackingNumber.id)).all(),
        arrived_channel=db().get(Channel, arrived.channel_id) if arrived and arrived.channel_id else None,
        errors=errors,
        form=request.form if errors else {},
        shown_once=shown_once,
        created=created,
    )


def _integration_or_404(client_id: int, integration_id: int) -> tuple[Client, TelephonyIntegration]:
    client = client_or_404(client_id, edit=True)
    integ = db().get(TelephonyIntegration, integration_id)
    if integ is None or integ.client_id != client.id:
        abort(404)
    return client, integ


def _declared(provider: str, form: Any, *, keep_empty_secrets: bool = False) -> dict[str, Any]:
    """The provider's declared inputs, named "secrets.<field>" and "settings.<field>" on the form. When
    editing, secrets left empty are not sent: the stored ones stay."""
    module = adapter(provider)
    data: dict[str, Any] = {}
    for part in ("secrets", "settings"):
        given = {k.split(".", 1)[1]: v for k, v in form.items() if k.startswith(f"{part}.")}
        if part == "secrets" and keep_empty_secrets and not any(v.strip() for v in given.values()):
            continue
        data[part] = from_form(getattr(module, part.title()), given)
    return data


@bp.post("/clients/<int:client_id>/settings/telephony/<int:integration_id>")
@login_required
def edit_integration(client_id: int, integration_id: int) -> Any:
    client, integ = _integration_or_404(client_id, integration_id)

    def save() -> None:
        data = {
            "name": request.form.get("name", "").strip() or integ.name,
            "active": "active" in request.form,
        }
        data |= _declared(integ.provider, request.form, keep_empty_secrets=True)
        rs.apply_integration(integ, rs.validate(rs.IntegrationChange, data))
        rs.commit()

    errors = attempt(save)
    if errors:
        flash(_("Nothing was saved: %(error)s", error=errors["_"]))
    else:
        flash(_("Integration %(name)s saved.", name=integ.name))
    return redirect(url_for("web.setup_telephony", client_id=client.id) + f"#integration-{integ.id}")


@bp.post("/clients/<int:client_id>/settings/telephony/<int:integration_id>/rotate")
@login_required
def rotate_integration_secret(client_id: int, integration_id: int) -> Any:
    client, integ = _integration_or_404(client_id, integration_id)
    shown_once: dict[str, str] = {}

    def save() -> None:
        shown_once.update(rs.rotate_secret(integ))
        rs.commit()

    errors = attempt(save)
    if errors:
        flash(_("Nothing was saved: %(error)s", error=errors["_"]))
        return redirect(url_for("web.setup_telephony", client_id=client.id))
    # Rendered, not redirected: the new secret is shown this once and never stored in a cookie or a URL.
    return _telephony_page(client, {}, shown_once=shown_once, status=201)


@bp.post("/clients/<int:client_id>/settings/telephony/<int:integration_id>/delete")
@login_required
def delete_integration(client_id: int, integration_id: int) -> Any:
    client, integ = _integration_or_404(client_id, integration_id)
    if request.form.get("confirm") != integ.name:
        flash(_("Not deleted: type the integration's name, %(name)s, to confirm.", name=integ.name))
        return redirect(url_for("web.setup_telephony", client_id=client.id) + f"#integration-{integ.id}")
    name = integ.name
    rs.delete_integration(integ)
    rs.commit()
    flash(_("Integration %(name)s deleted; the calls it reported are kept.", name=name))
    return redirect(url_for("web.setup_telephony", client_id=client.id))


@bp.post("/clients/<int:client_id>/settings/telephony/<int:integration_id>/test-call")
@login_required
def test_call(client_id: int, integration_id: int) -> Any:
    client, integ = _integration_or_404(client_id, integration_id)
    try:
        call = send_test_call(integ, _optional_int(request.form.get("number_id")))
    except Refused as exc:
        db().rollback()
        flash(_("The test call was refused: %(reason)s", reason=exc.message))
        return redirect(url_for("web.setup_telephony", client_id=client.id))
    flash(
        _(
            "Test call sent, signed as %(provider)s signs its webhooks, through the webhook URL.",
            provider=integ.provider,
        )
    )
    return redirect(url_for("web.setup_telephony", client_id=client.id, arrived=call.id))


# --- users and API tokens (admins) ---------------------------------------------------------------------


@bp.route("/settings/users", methods=["GET", "POST"])
@login_required
def setup_users() -> Any:
    admin = _admin()
    errors: Errors = {}
    if request.method == "POST":
        form = request.form

        def save() -> None:
            data: dict[str, Any] = {k: form.get(k, "") for k in ("email", "password", "role", "name")}
            data["client_id"] = _optional_int(form.get("client_id"))
            rs.create_user(admin, rs.validate(rs.UserCreate, data))

        errors = attempt(save)
        if not errors:
            flash(_("User added."))
            return redirect(url_for("web.setup_users"))
    return _users_page(admin, errors)


def _users_page(admin: User, errors: Errors, token: str | None = None, status: int | None = None) -> Any:
    users = db().scalars(select(User).where(User.agency_id == admin.agency_id).order_by(User.id)).all()
    clients = db().scalars(select(Client).where(Client.agency_id == admin.agency_id).order_by(Client.name))
    tokens = (
        db()
        .scalars(select(ApiToken).where(ApiToken.user_id.in_([u.id for u in users])).order_by(ApiToken.id))
        .all()
    )
    return render_template(
        "setup/users.html",
        users=users,
        clients=list(clients),
        tokens=tokens,
        roles=list(Role),
        role_label=_role_label,
        errors=errors,
        form=request.form,
        token=token,
    ), status or (400 if errors else 200)


def _agency_user(user_id: int) -> tuple[User, User]:
    admin = _admin()
    user = db().get(User, user_id)
    if user is None or user.agency_id != admin.agency_id:
        abort(404)
    return admin, user


@bp.post("/settings/users/<int:user_id>/password")
@login_required
def reset_password(user_id: int) -> Any:
    admin, user = _agency_user(user_id)
    password = request.form.get("password", "")
    # The same rule as a new account's (add_user), applied without creating anyone.
    if len(password) < MIN_PASSWORD:
        return _users_page(admin, {"password": _("must be at least %(n)s characters", n=MIN_PASSWORD)})
    user.password_hash = hash_password(password)
    rs.commit()
    flash(_("Password of %(email)s changed.", email=user.email))
    return redirect(url_for("web.setup_users"))


@bp.post("/settings/users/<int:user_id>/role")
@login_required
def change_user_role(user_id: int) -> Any:
    admin, user = _agency_user(user_id)

    def save() -> None:
        data = {
            "role": request.form.get("role", ""),
            "client_id": _optional_int(request.form.get("client_id")),
        }
        if data["role"] != Role.VIEWER:
            data["client_id"] = None  # the client select only matters for a viewer
        rs.apply_user(admin, user, rs.validate(rs.UserChange, data))
        rs.commit()

    errors = attempt(save)
    if errors:
        return _users_page(admin, {"role": f"{user.email}: {errors['_']}"})
    flash(_("%(email)s is now %(role)s.", email=user.email, role=_role_label(user.role)))
    return redirect(url_for("web.setup_users"))


@bp.post("/settings/users/<int:user_id>/tokens")
@login_required
def issue_token(user_id: int) -> Any:
    admin, user = _agency_user(user_id)
    token = issue_api_token(db(), user, request.form.get("name", "").strip()[:100])
    rs.commit()
    return _users_page(admin, {}, token=token, status=201)


@bp.post("/settings/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int) -> Any:
    admin = _admin()
    token = db().get(ApiToken, token_id)
    owner = db().get(User, token.user_id) if token is not None else None
    if token is None or owner is None or owner.agency_id != admin.agency_id:
        abort(404)
    db().delete(token)
    rs.commit()
    flash(_("Token revoked."))
    return redirect(url_for("web.setup_users"))


# --- connections: what an unconfigured provider needs ------------------------------------------------


def provider_setup_needs(connector: str) -> dict[str, Any]:
    """For one connector's OAuth provider: is it configured, which variables configure it, and the
    redirect URI to register in its developer console."""
    provider = providers.connector_provider(connector)
    resolved = providers.resolve(current_app.config, provider)
    prefix = f"{PREFIX}{providers.prefix_of(provider)}_"
    return {
        "title": provider.title,
        "configured": bool(resolved.client_id and resolved.client_secret),
        "required": [prefix + "CLIENT_ID", prefix + "CLIENT_SECRET"],
        "optional": [prefix + name for name in ("AUTHORIZE_URL", "TOKEN_URL", "API_BASE")],
        "redirect_uri": redirect_uri(current_app.config),
    }


@bp.get("/clients/<int:client_id>/settings/connections")
@login_required
def setup_connections(client_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    from hub.web.pipeline import _connectable

    rows = []
    for connector, platform, title in _connectable():
        try:
            needs = provider_setup_needs(connector)
        except (LookupError, ImportError, AttributeError):
            continue
        rows.append({"connector": connector, "platform": platform, "label": title, **needs})
    return _page("connections.html", client, rows=rows, wanted=request.args.get("provider"))
