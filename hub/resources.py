"""What the REST API and the setup pages accept for each resource, and how it is applied.

The input schemas (Pydantic) and the functions that apply a validated change live here, below both
the API (``hub.api``) and the web pages (``hub.web``), so a form and an API call are checked by the
same rules and refused with the same message."""

from __future__ import annotations

import functools
import re
import secrets as secrets_mod
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import abort, current_app
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    create_model,
    model_validator,
)
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from connectors import registry
from connectors.base import AccountField
from hub.auth import client_or_404
from hub.extensions import db
from hub.plugins import connector_settings
from hub.schemas import In, StrictBool, StrictInt, StrictStr, refusal
from tracking import phones
from tracking.accounts import (
    InvalidAccount,
    add_user,
    change_role,
    number_used_in_agency,
    set_archived,
)
from tracking.crypto import decrypt_json, encrypt_json
from tracking.db import utcnow
from tracking.errors import Refused
from tracking.hosts import canonical_domain_entry
from tracking.models import (
    Agency,
    Channel,
    Client,
    Connection,
    ConnectionStatus,
    Pool,
    PoolChannel,
    Role,
    Site,
    TelephonyIntegration,
    TrackingNumber,
    User,
)
from tracking.models.numbers import NumberStatus
from tracking.telephony import PROVIDERS, adapter

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], data: Any) -> M:
    """``data`` validated through ``model``; a refusal names the first bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise refusal(exc) from None


# --- clients ---------------------------------------------------------------------------------------------


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None
    return name


def _currency(code: str) -> str:
    if len(code) != 3 or not code.isalpha():
        raise ValueError("must be an ISO 4217 code such as RUB")
    return code.upper()


TimeZone = Annotated[str, Field(strict=True), AfterValidator(_zone)]


Currency = Annotated[str, Field(strict=True), AfterValidator(_currency)]


Name = Annotated[str, Field(strict=True, min_length=1, max_length=200)]


class ClientChange(In):
    name: Name | None = None
    timezone: TimeZone | None = None
    currency: Currency | None = None
    archived: StrictBool | None = Field(
        None,
        description="Archive (true) or unarchive (false): an archived client is left out of client lists "
        "unless asked for, keeps all its data and reports, still records calls from its telephony webhooks, "
        "and its sites show their own numbers (no tracking number is handed out)",
    )


class ClientCreate(ClientChange):
    name: Name


def apply_client(client: Client, change: ClientChange) -> None:
    for name, value in change.given().items():
        if value is None:
            continue
        if name == "archived":
            set_archived(client, value, utcnow())
        else:
            setattr(client, name, value)


# --- sites -----------------------------------------------------------------------------------------------


def _e164(raw: str) -> str:
    try:
        return phones.normalize(raw)
    except phones.InvalidPhoneNumber as exc:
        raise ValueError(str(exc)) from None


def _host(raw: str) -> str:
    # One canonical form (IDNA, lower case, no scheme/port/path), so the Origin check compares like with like.
    canonical = canonical_domain_entry(raw)
    if not canonical:
        raise ValueError("must be a host name (e.g. example.ru, *.example.ru, окна.рф)")
    return canonical


def _template(raw: str) -> str:
    if "X" not in raw:
        raise ValueError("must contain X for each digit, e.g. +7 (XXX) XXX-XX-XX")
    return raw


# Event handlers and URLs other than tel: are never the snippet's to rewrite.
SWAP_ATTRIBUTE = re.compile(r"(?!on)[a-z][a-z0-9_.:-]{0,63}", re.IGNORECASE)


def _swap_attribute(raw: str) -> str:
    if not SWAP_ATTRIBUTE.fullmatch(raw) or raw.lower() in ("href", "src", "style"):
        raise ValueError("must be an attribute name such as data-phone (not on*, href, src or style)")
    return raw.lower()


SwapAttribute = Annotated[str, Field(strict=True), AfterValidator(_swap_attribute)]


E164 = Annotated[str, Field(strict=True), AfterValidator(_e164)]


Host = Annotated[str, Field(strict=True), AfterValidator(_host)]


class SiteChange(In):
    name: Name | None = None
    domains: list[Host] | None = None
    replace_numbers: list[E164] | None = None
    display_template: Annotated[str, Field(strict=True), AfterValidator(_template)] | None = None
    promo_codes_enabled: StrictBool | None = None
    swap_attributes: (
        Annotated[
            list[Annotated[str, Field(strict=True), AfterValidator(_swap_attribute)]], Field(max_length=20)
        ]
        | None
    ) = None
    swap_local_numbers: StrictBool | None = None


class SiteCreate(SiteChange):
    name: Name


def apply_site(site: Site, change: SiteChange) -> None:
    for name, value in change.given().items():
        if value is not None:
            setattr(site, name, value)
    if change.domains is not None:
        site.domains = list(dict.fromkeys(change.domains))  # "окна.рф" and its punycode are one domain


# --- channels --------------------------------------------------------------------------------------------

RULE_KEYS = {
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "referrer_domain",
    "has_gclid",
    "has_yclid",
    "landing_path",
}


def _rule(rule: dict[str, Any]) -> dict[str, Any]:
    if not rule:
        raise ValueError("must be a non-empty object of conditions")
    unknown = set(rule) - RULE_KEYS
    if unknown:
        raise ValueError("unknown condition(s): " + ", ".join(sorted(unknown)))
    for key in ("has_gclid", "has_yclid"):
        if key in rule and not isinstance(rule[key], bool):
            raise ValueError(f"{key} must be true or false")
    return rule


# All conditions of a rule must hold; a visit takes the first channel (by position) with a matching rule.
Rule = Annotated[dict[str, Any], AfterValidator(_rule)]


class ChannelChange(In):
    name: Name | None = None
    position: StrictInt | None = None
    rules: list[Rule] | None = None
    is_default: StrictBool | None = None
    offline: StrictBool | None = None


class ChannelCreate(ChannelChange):
    name: Name


def apply_channel(ch: Channel, change: ChannelChange) -> None:
    for name, value in change.given().items():
        if value is None:
            continue
        if name == "is_default" and value:
            # One default per client: taking it moves it.
            for other in db().scalars(
                select(Channel).where(Channel.client_id == ch.client_id, Channel.is_default)
            ):
                other.is_default = False
        setattr(ch, name, value)


# --- numbers ---------------------------------------------------------------------------------------------


class NumberChange(In):
    e164: E164 | None = None
    provider: StrictStr | None = None
    forward_to: E164 | None = None
    status: NumberStatus | None = None
    channel_id: StrictInt | None = None
    pool_id: StrictInt | None = None


class NumberCreate(NumberChange):
    e164: E164


def same_client(model: type, object_id: int | None, client_id: int, name: str) -> None:
    """Refuse an id of another client's object (or of none) without saying which."""
    if object_id is None:
        return
    obj = db().get(model, object_id)
    if obj is None or obj.client_id != client_id:
        raise Refused(name, "no such object for this client")


def apply_number(n: TrackingNumber, change: NumberChange) -> None:
    given = change.given()
    for name in ("e164", "provider", "status"):
        if given.get(name) is not None:
            setattr(n, name, given[name])
    if given.get("e164") is not None and number_used_in_agency(db(), n):
        raise Refused("e164", "is already a number of a client of this agency")
    if "forward_to" in given:
        n.forward_to = given["forward_to"]
    if "channel_id" in given:
        n.channel_id = given["channel_id"]
        same_client(Channel, n.channel_id, n.client_id, "channel_id")
    if "pool_id" in given:
        n.pool_id = given["pool_id"]
        same_client(Pool, n.pool_id, n.client_id, "pool_id")
    if n.channel_id is not None and n.pool_id is not None:
        raise Refused("pool_id", "a number is either static (channel_id) or in a pool (pool_id), not both")


# --- pools -----------------------------------------------------------------------------------------------


class PoolChange(In):
    name: Name | None = None
    site_id: StrictInt | None = None
    # A hold is minutes to hours; a day is the most any visitor keeps a number.
    hold_seconds: Annotated[int, Field(strict=True, ge=30, le=86_400)] | None = None
    grace_seconds: Annotated[int, Field(strict=True, ge=0, le=86_400)] | None = None
    max_hold_seconds: Annotated[int, Field(strict=True, ge=60, le=86_400)] | None = None
    active: StrictBool | None = None
    channel_coherent: StrictBool | None = Field(
        None,
        description="Keep numbers within the channel of their last holder and, within it, with their "
        "campaign (default true)",
    )
    fallback_number_id: StrictInt | None = None
    channel_ids: list[StrictInt] | None = Field(None, description="Replaces the channels the pool serves")
    number_ids: list[StrictInt] | None = Field(None, description="Replaces the pool's member numbers")


class PoolCreate(PoolChange):
    name: Name
    site_id: StrictInt


def apply_pool(pool: Pool, change: PoolChange) -> None:
    given = change.given()
    for name in (
        "name",
        "site_id",
        "hold_seconds",
        "grace_seconds",
        "max_hold_seconds",
        "active",
        "channel_coherent",
    ):
        if given.get(name) is not None:
            setattr(pool, name, given[name])
    if "site_id" in given:
        same_client(Site, pool.site_id, pool.client_id, "site_id")
    if (
        pool.max_hold_seconds is not None
        and pool.hold_seconds is not None
        and pool.max_hold_seconds < pool.hold_seconds
    ):
        raise Refused("max_hold_seconds", "must not be shorter than hold_seconds")
    if "fallback_number_id" in given:
        pool.fallback_number_id = given["fallback_number_id"]
        same_client(TrackingNumber, pool.fallback_number_id, pool.client_id, "fallback_number_id")


def set_pool_members(pool: Pool, change: PoolChange) -> None:
    """``channel_ids`` and ``number_ids`` replace the pool's served channels and member numbers."""
    if change.channel_ids is not None:
        for i, cid in enumerate(change.channel_ids):
            same_client(Channel, cid, pool.client_id, f"channel_ids[{i}]")
        db().execute(delete(PoolChannel).where(PoolChannel.pool_id == pool.id))
        db().add_all(
            PoolChannel(pool_id=pool.id, channel_id=cid) for cid in dict.fromkeys(change.channel_ids)
        )
    if change.number_ids is not None:
        wanted = set()
        for i, nid in enumerate(change.number_ids):
            same_client(TrackingNumber, nid, pool.client_id, f"number_ids[{i}]")
            wanted.add(nid)
        if pool.fallback_number_id in wanted:
            raise Refused("number_ids", "the fallback number cannot also be a pool member")
        for n in db().scalars(select(TrackingNumber).where(TrackingNumber.client_id == pool.client_id)):
            if n.id in wanted:
                if n.channel_id is not None:
                    raise Refused("number_ids", f"{n.e164} is a static number of a channel")
                n.pool_id = pool.id
            elif n.pool_id == pool.id:
                n.pool_id = None
    db().flush()
    db().expire(pool)


# --- connections -----------------------------------------------------------------------------------------


def _known_connector(name: str) -> str:
    if name not in registry.CONNECTORS:
        raise ValueError(f"unknown connector {name!r}")
    return name


class ConnectionPatch(In):
    """What a connection's PATCH (and its settings forms) may change. Each kind of connection (its set of
    connectors) checks ``account`` and ``settings`` through its own model, ``connection_patch(connectors)``,
    built from what those connectors declare; this base describes the shape they share."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=200)
    connectors: list[Annotated[StrictStr, AfterValidator(_known_connector)]] | None = Field(
        None, min_length=1
    )
    account: dict[str, StrictStr] | None = Field(
        None,
        description="Typed ids only (counter_id, customer_id, login_customer_id, client_login, currency); "
        "facts learned when the account was connected cannot be changed",
    )
    settings: dict[str, Any] | None = Field(
        None, description="Replaces the settings; each connector's are ConnectorSettings_<connector>"
    )
    status: Literal["active", "disabled"] | None = None
    shared_with: list[StrictInt] | None = Field(
        None, description="Clients of the agency that use an agency-shared connection"
    )


class _Account(BaseModel):
    """A connection's account ids: the typed ones its connectors declare, checked by their rules, and the
    facts the provider told us at connect time, which may only be repeated unchanged (so a read-modify-write
    of the whole object works) — the current account comes in the validation context."""

    # Extra keys are the learned facts; they are checked below rather than typed through
    # ``__pydantic_extra__``, which the oldest Pydantic this project supports cannot declare.
    model_config = ConfigDict(extra="allow")

    @model_validator(mode="after")
    def _learned_facts_unchanged(self, info: ValidationInfo) -> _Account:
        current = (info.context or {}).get("account") or {}
        for key, value in (self.model_extra or {}).items():
            if not isinstance(value, str):
                raise ValueError(f"{key}: must be a string")
            if key not in current:
                typed = ", ".join(sorted(type(self).model_fields)) or "none"
                raise ValueError(f"{key}: is not an account field a person sets (these are: {typed})")
            if str(current[key]) != value:
                raise ValueError(f"{key}: is learned when the account is connected: reconnect to change it")
        return self


def _typed_id(field: AccountField) -> Any:
    """One account id a connector declares: an empty value removes it, any other must match its pattern."""
    return Annotated[StrictStr, AfterValidator(lambda value: field.clean(value) if value.strip() else "")]


def _settings_model(connectors: tuple[str, ...]) -> Any:
    """The connectors' declared settings as one model (one connection can serve several connectors, a Yandex
    account Metrika and Direct: each keeps its own fields and rules); any object when one declares none."""
    models = [m for m in (connector_settings(name) for name in connectors) if m is not None]
    if not models or len(models) < len(connectors):
        return dict[str, Any]
    if len(models) == 1:
        return models[0]
    return create_model(f"ConnectorSettings_{'_'.join(connectors)}", __base__=tuple(models))


def connection_patch(connectors: tuple[str, ...]) -> type[ConnectionPatch]:
    """The PATCH schema of a connection that serves these connectors, built from their declarations."""
    # One model per set of connectors whatever their order, so a body cannot make models without end.
    return _connection_patch(tuple(sorted(set(connectors))))


@functools.cache
def _connection_patch(connectors: tuple[str, ...]) -> type[ConnectionPatch]:
    kind = "_".join(connectors)
    ids: Any = {
        name: (_typed_id(field), Field(None, description=field.hint))
        for name, field in registry.account_fields(connectors).items()
    }
    account = create_model(f"ConnectionAccount_{kind}", __base__=_Account, **ids)
    return create_model(
        f"ConnectionPatch_{kind}",
        __base__=ConnectionPatch,
        account=(account | None, None),
        settings=(_settings_model(connectors) | None, None),
    )


def _patch_kind(conn: Connection, data: Any) -> tuple[str, ...]:
    """The connectors whose declarations check this body: those it names (when they all exist), else the
    connection's own."""
    named = data.get("connectors") if isinstance(data, dict) else None
    if (
        isinstance(named, list)
        and named
        and all(isinstance(n, str) and n in registry.CONNECTORS for n in named)
    ):
        return tuple(dict.fromkeys(named))
    return tuple(conn.connectors or ())


def connection_change(conn: Connection, data: Any) -> dict[str, Any]:
    """A PATCH body checked through the schema of the connection's kind, as the attributes to set (and
    ``shared_with``). Every field is checked before anything changes; a refusal names the first bad one."""
    try:
        change = connection_patch(_patch_kind(conn, data)).model_validate(
            data, context={"account": conn.account or {}}
        )
    except ValidationError as exc:
        raise refusal(exc) from None
    out: dict[str, Any] = {k: v for k, v in change.given().items() if v is not None}
    if "connectors" in out:
        out["connectors"] = list(dict.fromkeys(out["connectors"]))
    if isinstance(change.account, BaseModel):
        # The typed ids are replaced by those given; the facts learned at connect time stay.
        typed = type(change.account).model_fields
        kept = {k: str(v) for k, v in (conn.account or {}).items() if k not in typed}
        given = {k: getattr(change.account, k) for k in change.account.model_fields_set if k in typed}
        out["account"] = kept | {k: v for k, v in given.items() if v}
    if isinstance(change.settings, BaseModel):
        # Stored as given (after the declaration's coercion), without the defaults written in.
        out["settings"] = change.settings.model_dump(mode="json", include=change.settings.model_fields_set)
    if out.get("status") == "active" and conn.status == ConnectionStatus.NEEDS_REAUTH:
        raise Refused("status", "this connection needs re-authorisation: reconnect it instead", "conflict")
    if "status" in out:
        out["status"] = ConnectionStatus(out["status"])
    if "shared_with" in out:
        if conn.client_id is not None:
            raise Refused("shared_with", "only an agency-shared connection can be shared with clients")
        ids = set(out["shared_with"])
        found = set(
            db().scalars(select(Client.id).where(Client.id.in_(ids), Client.agency_id == conn.agency_id))
        )
        if found != ids:
            raise Refused("shared_with", "lists clients that are not in this agency")
        out["shared_with"] = sorted(found)
    return out


def connection_settings(connectors: list[str], settings: dict[str, Any]) -> dict[str, Any]:
    """Settings from a page's form, checked through the same schema as the API's PATCH."""
    kind = tuple(connectors)
    try:
        change = connection_patch(kind).model_validate({"settings": settings})
    except ValidationError as exc:
        raise refusal(exc) from None
    if isinstance(change.settings, BaseModel):
        return change.settings.model_dump(mode="json", include=change.settings.model_fields_set)
    return dict(change.settings or {})


# --- telephony -------------------------------------------------------------------------------------------


class IntegrationCreate(In):
    model_config = ConfigDict(extra="forbid")

    provider: str = Field(json_schema_extra={"enum": list(PROVIDERS)})
    name: str | None = Field(None, max_length=200)
    secrets: dict[str, Any] = Field(
        default_factory=dict, description="As the provider declares: see TelephonySecrets_<provider>"
    )
    settings: dict[str, Any] = Field(
        default_factory=dict, description="As the provider declares: see TelephonySettings_<provider>"
    )


class IntegrationChange(In):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=200)
    active: StrictBool | None = None
    secrets: dict[str, Any] | None = Field(None, description="Replaces every secret of the integration")
    settings: dict[str, Any] | None = Field(None, description="Replaces the integration's settings")


def apply_integration(integ: TelephonyIntegration, change: IntegrationChange) -> None:
    """Rename, pause, re-key or re-configure ``integ``, through what its provider declares."""
    if change.secrets is not None:
        secrets = declared_config(integ.provider, "secrets", change.secrets)
        key = current_app.config["ENCRYPTION_KEY"]
        generated = getattr(adapter(integ.provider), "GENERATED_FIELD", None)
        if generated and not secrets.get(generated):
            # A hub-made secret is kept unless a new one is given.
            secrets[generated] = decrypt_json(key, integ.secrets_encrypted).get(generated)
        integ.secrets_encrypted = encrypt_json(key, secrets)
    if change.settings is not None:
        integ.settings = declared_config(integ.provider, "settings", change.settings)
    if change.name is not None:
        integ.name = change.name
    if change.active is not None:
        integ.active = change.active


def rotate_secret(integ: TelephonyIntegration) -> dict[str, str]:
    """A new hub-made secret for ``integ`` (to be shown once); the old one stops verifying at once."""
    generated = getattr(adapter(integ.provider), "GENERATED_FIELD", None)
    if not generated:
        raise Refused("secrets", "this provider's secret is its own: enter the new one from its cabinet")
    key = current_app.config["ENCRYPTION_KEY"]
    secrets = decrypt_json(key, integ.secrets_encrypted)
    shown_once = {generated: secrets_mod.token_urlsafe(32)}
    integ.secrets_encrypted = encrypt_json(key, {**secrets, **shown_once})
    return shown_once


def delete_integration(integ: TelephonyIntegration) -> None:
    """Remove ``integ``: its webhook URLs stop answering; the calls it reported are kept."""
    db().delete(integ)


def declared_config(provider: str, part: str, data: Any) -> dict[str, Any]:
    """``data`` validated through what the provider's adapter declares as its ``Secrets`` or ``Settings``."""
    model: type[BaseModel] = getattr(adapter(provider), part.title())
    try:
        return model.model_validate(data).model_dump(exclude_none=True)
    except ValidationError as exc:
        raise refusal(exc, part) from None


def webhook_urls(integ: TelephonyIntegration) -> dict[str, str]:
    base = f"{current_app.config['BASE_URL']}/hooks/v1/{integ.provider}/{integ.integration_key}"
    return {name: base + path for name, path in adapter(integ.provider).WEBHOOKS.items()}


# --- users -----------------------------------------------------------------------------------------------


class UserCreate(In):
    email: StrictStr
    password: StrictStr = Field(json_schema_extra={"minLength": 10})
    role: Role
    client_id: StrictInt | None = Field(None, description="Required for a viewer: the one client they see")
    name: StrictStr = ""


class UserChange(In):
    role: Role
    client_id: StrictInt | None = Field(None, description="Required for a viewer: the one client they see")


def apply_user(actor: User, user: User, change: UserChange) -> None:
    """A new role (and, for a viewer, client) for ``user``, by the rules of ``tracking.accounts``."""
    client = None
    if change.client_id is not None:
        client = db().get(Client, change.client_id)
        # Another agency's client is answered like a missing one: no hint that it exists.
        if client is None or client.agency_id != actor.agency_id:
            raise Refused("client_id", "no such client")
    try:
        change_role(db(), actor, user, change.role, client)
    except InvalidAccount as exc:
        name, _, message = str(exc).partition(": ")
        raise Refused(name, message) from None


# --- common ----------------------------------------------------------------------------------------------


def owned(model: type[T], object_id: int, *, edit: bool = False) -> tuple[T, Client]:
    """An object by id whose client the caller may see (404 otherwise, whoever owns it)."""
    obj = db().get(model, object_id)
    if obj is None:
        abort(404)
    client = client_or_404(obj.client_id, edit=edit)  # type: ignore[attr-defined]
    return obj, client


def commit() -> None:
    try:
        db().commit()
    except IntegrityError:
        db().rollback()
        raise Refused("body", "conflicts with an existing object (a number or key already in use)") from None


# --- creating: one way for the API and the pages ------------------------------------------------------


def create_client(agency_id: int, change: ClientCreate) -> Client:
    client = Client(agency_id=agency_id, name=change.name)
    apply_client(client, change)
    db().add(client)
    commit()
    return client


def create_site(client: Client, change: SiteCreate) -> Site:
    site = Site(client_id=client.id, name=change.name, site_key=secrets_mod.token_urlsafe(12))
    apply_site(site, change)
    db().add(site)
    commit()
    return site


def create_channel(client: Client, change: ChannelCreate) -> Channel:
    ch = Channel(client_id=client.id, name=change.name)
    apply_channel(ch, change)
    db().add(ch)
    commit()
    return ch


def create_number(client: Client, change: NumberCreate) -> TrackingNumber:
    n = TrackingNumber(client_id=client.id)
    apply_number(n, change)
    db().add(n)
    commit()
    return n


def create_pool(client: Client, change: PoolCreate) -> Pool:
    pool = Pool(client_id=client.id, name=change.name)
    pool.hold_seconds, pool.grace_seconds, pool.max_hold_seconds = 900, 300, 4 * 3600
    apply_pool(pool, change)
    db().add(pool)
    db().flush()
    set_pool_members(pool, change)
    commit()
    return pool


def create_integration(
    client: Client, given: IntegrationCreate
) -> tuple[TelephonyIntegration, dict[str, str] | None]:
    """A new integration and, when the hub made its secret, that secret (to be shown once)."""
    if given.provider not in PROVIDERS:
        raise Refused("provider", "must be one of " + ", ".join(PROVIDERS))
    secrets = declared_config(given.provider, "secrets", given.secrets)
    settings = declared_config(given.provider, "settings", given.settings)
    shown_once = None
    generated = getattr(adapter(given.provider), "GENERATED_FIELD", None)
    if generated and not secrets.get(generated):
        secrets = shown_once = {generated: secrets_mod.token_urlsafe(32)}
    integ = TelephonyIntegration(
        client_id=client.id,
        provider=given.provider,
        name=given.name or given.provider,
        integration_key=secrets_mod.token_urlsafe(24),
        secrets_encrypted=encrypt_json(current_app.config["ENCRYPTION_KEY"], secrets),
        settings=settings,
    )
    db().add(integ)
    commit()
    return integ, shown_once


def create_user(admin: User, given: UserCreate) -> User:
    """A user of the admin's agency; a viewer's client must be one of the agency's."""
    client = None
    if given.client_id is not None:
        client = db().get(Client, given.client_id)
        # Another agency's client is answered like a missing one: no hint that it exists.
        if client is None or client.agency_id != admin.agency_id:
            raise Refused("client_id", "no such client")
    agency = db().get(Agency, admin.agency_id)
    assert agency is not None
    try:
        user = add_user(db(), agency, given.email, given.password, given.role, client=client, name=given.name)
    except InvalidAccount as exc:
        name, _, message = str(exc).partition(": ")
        raise Refused(name, message) from None
    commit()
    return user
