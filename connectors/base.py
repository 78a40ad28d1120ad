"""The one interface every connector implements, and the plain records that cross it.

The delivery pipeline (jobs) owns the database: it claims deliveries, hands a connector plain
``DeliveryItem`` records, and stores the ``DeliveryResult`` each one comes back with. Connectors never
touch the database; they turn our records into wire calls (client) through a mapping, and back.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from tracking.values import MAX_AMOUNT

if TYPE_CHECKING:
    import requests


def bounded_amount(value: Any) -> tuple[Decimal, str | None]:
    """A money amount from outside as a finite Decimal in [0, MAX_AMOUNT] with two decimals, or zero
    ("unknown") and the reason when it is not one (NaN, infinity, negative, absurd, not a number)."""
    if value in (None, ""):
        return Decimal(0), None
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return Decimal(0), f"amount {str(value)[:32]!r} is not a number"
    if not amount.is_finite() or not 0 <= amount <= MAX_AMOUNT:
        return Decimal(0), f"amount {str(value)[:32]!r} is out of range"
    return amount.quantize(Decimal("0.01")), None


class ItemKind(StrEnum):
    CALL = "call"  # a finalised call (payload: CallPayload below)
    DEAL_WON = "deal_won"  # a deal won in the CRM (payload: DealPayload below)
    CALL_ATTRIBUTED = "call_attributed"  # a finalised call's source changed (CallPayload + "previous")
    NOTIFICATION = "notification"  # a message for a person (NotificationPayload below)


class DeliveryOutcome(StrEnum):
    """What became of one delivered item (a ``DeliveryResult``'s verdict)."""

    DONE = "done"  # arrived; external_id says where
    RETRY = "retry"  # a passing failure (429, 5xx, timeout, "too recent"); retry_after when known
    DEAD = "dead"  # permanent (validation error, expired click); error says why
    SKIPPED = "skipped"  # deliberately not sent (e.g. older than the platform's window); error says why


@dataclass(frozen=True)
class DeliveryItem:
    """One thing to deliver to one destination account.

    ``key`` is stable for the life of the item (e.g. ``otkuda-call-42``): connectors send it where the
    platform keeps an id of ours (amoCRM ``uniq``/``source_uid``, Google ``order_id``) so a re-send after a
    crash can be recognised. ``payload`` is a JSON-able snapshot taken when the item was queued.
    """

    id: int
    kind: ItemKind
    key: str
    payload: dict[str, Any]
    attempts: int = 0


@dataclass(frozen=True)
class DeliveryResult:
    id: int
    outcome: DeliveryOutcome
    external_id: str | None = None
    error: str | None = None
    retry_after: float | None = None  # seconds


@dataclass(frozen=True)
class RateLimit:
    """Enforced by the pipeline with a token bucket per destination account."""

    per_second: float
    burst: int = 1
    daily: int | None = None  # requests (or operations) per day, when the platform counts them


@dataclass(frozen=True)
class PulledSpend:
    """Ad spend as a platform reports it, for one day and one campaign (ad group and keyword when the
    platform reports them).

    The pipeline stores these as ``tracking.models.PlatformSpend`` rows keyed by (platform, account, day,
    campaign_id, ad_group_id, keyword_id): a re-pull replaces.
    """

    day: dt.date
    campaign_id: str
    campaign_name: str
    cost: Decimal  # in ``currency``, VAT as configured on the connection
    currency: str
    impressions: int = 0
    clicks: int = 0
    ad_group_id: str = ""
    ad_group_name: str = ""
    keyword_id: str = ""
    keyword: str = ""


@dataclass(frozen=True)
class DealUpdate:
    """A deal as the CRM sees it now. ``status`` is ``open``, ``won`` or ``lost``."""

    external_id: str
    status: str
    amount: Decimal
    currency: str
    updated_at: dt.datetime
    name: str = ""
    pipeline_id: str = ""
    status_id: str = ""
    contact_phones: tuple[str, ...] = ()
    # Our ids the CRM carries back (the call key we sent), so the deal links to its call and session.
    call_keys: tuple[str, ...] = ()
    closed_at: dt.datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict)


class TokenExpired(Exception):
    """The access token was refused (401); the pipeline refreshes the connection and retries."""


class AuthRevoked(Exception):
    """The grant is gone (invalid_grant, 403 block): the connection needs re-authorisation."""


@dataclass(frozen=True)
class AccountContext:
    """Everything a connector needs to talk to one destination account, built by the pipeline."""

    connection_id: int
    provider: str  # OAuth provider name, e.g. "amocrm", "yandex", "google"
    api_base: str  # the API's base URL (configurable: tests point it at local fakes)
    account: Mapping[str, str]  # external ids: subdomain, counter_id, client_login, customer_id, ...
    settings: Mapping[str, Any]  # per-connection choices: pipeline/status ids, goal ids, field ids, ...
    access_token: Callable[[], str]  # a currently valid token; the pipeline refreshes behind it
    hub_base_url: str = "http://127.0.0.1:5000"  # for links back to the hub (call pages)
    timezone: str = "Europe/Moscow"
    currency: str = "RUB"
    extra: Mapping[str, str] = field(default_factory=dict)  # e.g. Google developer token
    # An HTTP session the pipeline keeps for this account between runs (its connection stays open); the
    # connector's HTTP requests go through it. None: the connector makes its own.
    http: requests.Session | None = None


@dataclass(frozen=True)
class Platform:
    """One of several products behind one OAuth provider (amoCRM, Kommo), each with its own consent page."""

    title: str
    authorize_url: str


@dataclass(frozen=True)
class AccountField:
    """An account id a person types (a counter, a customer id), as opposed to facts the provider tells us.

    Connector packages list theirs in ``ACCOUNT_FIELDS``; nothing else in a connection's ``account`` may be
    edited after the OAuth callback wrote it.
    """

    name: str
    pattern: str  # the whole value must match
    hint: str  # what a valid value looks like, for the error message

    def clean(self, value: str) -> str:
        text = value.strip()
        if not re.fullmatch(self.pattern, text):
            raise ValueError(f"{self.name} must be {self.hint}")
        return text


@dataclass(frozen=True)
class OAuthProvider:
    """How the hub's generic connect flow talks to one OAuth 2 provider.

    Endpoints and credentials come from configuration under ``OTKUDA_<PREFIX>_…`` (CLIENT_ID, CLIENT_SECRET,
    AUTHORIZE_URL, TOKEN_URL, API_BASE), defaulting to the values here, so tests can point them at fakes.
    """

    name: str
    title: str
    authorize_url: str
    token_url: str
    api_base: str
    scopes: tuple[str, ...] = ()
    config_prefix: str = ""
    authorize_params: Mapping[str, str] = field(default_factory=dict)
    token_endpoint_auth_method: str = "client_secret_post"  # noqa: S105  (a method name)
    # False for destinations set up with a form instead of a consent page (a webhook URL, an API secret).
    oauth: bool = True
    # Learns account facts from the callback (e.g. amoCRM's ``referer`` gives the account host).
    account_from_callback: Callable[[Mapping[str, str], Mapping[str, Any]], dict[str, str]] | None = None
    # Products served by one deployment of this provider, by name; the person picks one when connecting
    # and its consent page replaces ``authorize_url`` (configurable: OTKUDA_<PREFIX>_<NAME>_AUTHORIZE_URL).
    platforms: Mapping[str, Platform] = field(default_factory=dict)
    # Checks the stored account facts before a URL is built from them (raises ValueError when they are not
    # the provider's): stored data is not trusted to name the host that secrets are sent to.
    check_account: Callable[[Mapping[str, Any]], None] | None = None


def configured_provider(name: str, title: str, config_prefix: str, api_base: str = "") -> OAuthProvider:
    """A destination set up with a form, not a consent page: configuration under ``OTKUDA_<PREFIX>_…``."""
    return OAuthProvider(
        name=name,
        title=title,
        authorize_url="",
        token_url="",
        api_base=api_base,
        config_prefix=config_prefix,
        oauth=False,
    )


class PushOnly:
    """For connectors that only send: no look-up of what arrived, no spend, no deals."""

    def find_delivered(self, items: Sequence[DeliveryItem]) -> dict[int, str]:
        return {}

    def pull_spend(self, start: dt.date, end: dt.date) -> Iterable[PulledSpend]:
        return []

    def pull_deals(self, since: dt.datetime) -> Iterable[DealUpdate]:
        return []


class Connector(Protocol):
    """What the pipeline calls. Each method may raise TokenExpired / AuthRevoked; other failures
    of a whole request are reported per item as RETRY (transient) or DEAD (permanent)."""

    name: str

    def rate_limit(self) -> RateLimit: ...

    def push(self, items: Sequence[DeliveryItem]) -> list[DeliveryResult]:
        """Send a batch; return one result per item, in any order."""
        ...

    def find_delivered(self, items: Sequence[DeliveryItem]) -> dict[int, str]:
        """For items in doubt (sent, outcome unknown): those that did arrive, item id -> external id."""
        ...

    def pull_spend(self, start: dt.date, end: dt.date) -> Iterable[PulledSpend]:
        """Spend rows for every day in [start, end]. Connectors without spend return nothing."""
        ...

    def pull_deals(self, since: dt.datetime) -> Iterable[DealUpdate]:
        """Deals changed since ``since``. Connectors that are not CRMs return nothing."""
        ...


# --- Payload shapes (documented as TypedDict-free dict keys to stay JSON-able) -------------------------
#
# CallPayload: {
#   "call_id": int, "client_id": int, "key": str,
#   "caller": "+79991234567" | None, "tracking_number": "+74950000000", "static": bool,
#   "called_at": ISO-8601 UTC, "answered_at": ISO | None, "ended_at": ISO | None,
#   "wait_seconds": int, "talk_seconds": int,
#   "status": "answered" | "missed" | "busy" | "failed", "abandoned": bool, "first_time": bool,
#   "recording_url": str | None, "call_path": "/clients/<cid>/calls/<id>" (prefix ctx.hub_base_url),
#   "channel": str | None, "tags": [str],
#   "is_target": bool, "target_rules": [{"id": int, "name": str}] (the target-call rules it meets),
#   "timezone": "Europe/Moscow", "currency": "RUB",
#   "session": None | {
#       "landing_url", "referrer", "utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term",
#       "gclid", "gbraid", "wbraid", "yclid", "ym_client_id", "ga_client_id", "device"
#   },
# }
# DealPayload: {
#   "deal_id": int, "client_id": int, "key": str, "external_id": str (CRM id),
#   "amount": "12500.00", "currency": "RUB", "won_at": ISO-8601 UTC,
#   "caller": str | None, "call": CallPayload | None (the first call of the deal, with its session),
#   "timezone": "Europe/Moscow",
# }
# NotificationPayload: {
#   "event": "missed_call" | "target_call" | "daily_digest" | "pool_exhausted" | "reauth_needed"
#            | "deliveries_dead" | "test",
#   "client_id": int, "subject": str, "text": str (plain text, already rendered),
#   "path": str | None (a hub page; prefix ctx.hub_base_url),
# }
