"""Every ``OTKUDA_*`` environment variable in one typed object, with its default and meaning.

The web app (``hub.config``), the scheduler and jobs (``jobs.runtime.setting``) and the command line read
their configuration through ``Settings``; the README's table is generated from it (``markdown_table``) and a
test keeps the two equal. OAuth applications of the connectors are a family rather than fields:
``OTKUDA_<PROVIDER>_CLIENT_ID``, ``_CLIENT_SECRET``, ``_AUTHORIZE_URL``, ``_TOKEN_URL``, ``_API_BASE`` and
any provider extra (``OTKUDA_GOOGLE_DEVELOPER_TOKEN``), read by ``jobs.providers``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PREFIX = "OTKUDA_"
PROVIDER_FAMILY = "OTKUDA_<PROVIDER>_*"


def _shown(default: str) -> Any:
    return {"shown_default": default}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", validate_default=True)

    # --- the hub ------------------------------------------------------------------------------------------
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL; PostgreSQL in production",
        json_schema_extra=_shown("sqlite:///instance/otkuda.db"),
    )
    secret_key: str | None = Field(
        None,
        description="signs session cookies",
        json_schema_extra=_shown("generated into instance/secret_key"),
    )
    encryption_key: str | None = Field(
        None,
        description="Fernet key for secrets kept in the database",
        json_schema_extra=_shown("generated into instance/encryption_key"),
    )
    base_url: str = Field(
        "http://127.0.0.1:5000",
        description="the hub's public address (snippet tags, webhooks, OAuth callbacks)",
    )
    instance_dir: str = Field("./instance", description="where generated secrets and the SQLite file live")
    tracking_max_body: int = Field(
        16 * 1024, gt=0, description="largest JSON body (bytes) the snippet may send"
    )
    log_level: str = Field("INFO", description="logging level of the hub and the scheduler")
    reports_database_url: str | None = Field(
        None, description="a read replica for ROMI reports, read once it has caught up"
    )
    default_language: Literal["ru", "en"] = Field(
        "ru",
        description="the web UI's language when the browser asks for neither Russian nor English",
    )

    twilio_fallback_dial: str | None = Field(
        None,
        description="where a Twilio call is dialled when the database is down and the outage file does not "
        "know the number (E.164)",
    )

    # --- abuse limits (docs/security.md) -------------------------------------------------------------------
    trusted_proxies: int = Field(
        0,
        ge=0,
        description="reverse proxies of our own in front of the hub whose X-Forwarded-For is believed",
    )
    ratelimit_storage_url: str | None = Field(
        None, description="Redis URL for rate-limit counters (else OTKUDA_REDIS_URL, else the database)"
    )
    redis_url: str | None = Field(None, description="Redis URL, used for rate-limit counters when set")
    ratelimit_enabled: bool = Field(True, description="rate limits on the public endpoints, login and API")
    ratelimit_visit: str = Field(
        "120 per minute;2000 per hour", description="snippet visits per client address"
    )
    ratelimit_visit_per_site: str = Field("6000 per minute", description="snippet visits per site")
    ratelimit_beacon: str = Field("600 per minute", description="heartbeats and releases per client address")
    ratelimit_login: str = Field(
        "30 per minute;300 per hour", description="login form posts per client address"
    )
    ratelimit_api: str = Field("1200 per minute", description="API requests per client address")
    login_failures_per_account: str = Field(
        "10 per 15 minutes", description="failed logins per account before it is throttled"
    )
    login_failures_per_ip: str = Field("50 per hour", description="failed logins per client address")
    pool_holds_per_source: int = Field(
        3, ge=0, description="live pool numbers one client address may hold in one pool (0: no cap)"
    )
    pool_holds_per_visitor: int = Field(
        1, ge=0, description="live pool numbers one visitor may hold in one pool (0: no cap)"
    )

    # --- the scheduler: how often each job runs (0, or a cron of "off", turns a job off) ------------------
    schedule_spend_today_minutes: float = Field(60, ge=0, description="today's spend from the ad platforms")
    schedule_spend_yesterday_cron: str = Field(
        "30 5 * * *", description="yesterday's final spend (cron, UTC)"
    )
    schedule_deals_minutes: float = Field(5, ge=0, description="deals pulled from the CRM")
    schedule_tokens_minutes: float = Field(10, ge=0, description="OAuth tokens refreshed before they expire")
    schedule_pool_stats_minutes: float = Field(60, ge=0, description="hourly pool statistics")
    schedule_romi_rollup_minutes: float = Field(
        5, ge=0, description="ROMI roll-up days rebuilt ahead of reports"
    )
    schedule_notify_minutes: float = Field(
        5, ge=0, description="how often digests and alerts are planned (sent by the workers)"
    )
    scheduler_threads: int = Field(4, ge=1, description="jobs run at once")
    scheduler_lease_seconds: float = Field(
        30, gt=0, description="how long one scheduler process holds the lead"
    )
    tokens_refresh_ahead_minutes: float = Field(
        60, ge=0, description="refresh a token this long before expiry"
    )

    # --- deliveries ---------------------------------------------------------------------------------------
    delivery_batch_size: int = Field(50, ge=1, description="items sent to a destination at once")
    delivery_max_attempts: int = Field(10, ge=1, description="attempts before a delivery is dead")
    delivery_backoff_base: float = Field(
        30.0, gt=0, description="seconds before the first retry; doubles each time"
    )
    delivery_backoff_cap: float = Field(
        6 * 3600.0, gt=0, description="longest wait between retries (seconds)"
    )
    delivery_stale_after: float = Field(
        600, gt=0, description="seconds after which a claimed delivery belongs to a dead worker"
    )

    delivery_hold_seconds: float = Field(
        60, gt=0, description="how long a worker's hold on a destination lasts unless renewed"
    )
    delivery_max_pacing_seconds: float = Field(
        1.0, ge=0, description="a rate-limit wait up to this is waited out; a longer one frees the thread"
    )
    worker_threads: int = Field(8, ge=1, description="destinations one `otkuda worker` serves at once")
    worker_poll_seconds: float = Field(0.5, gt=0, description="how often an idle worker looks for due work")

    # --- notifications, outgoing webhooks, GA4 -------------------------------------------------------------
    smtp_host: str | None = Field(
        None,
        description="SMTP server for e-mail notifications",
        json_schema_extra=_shown("(none: no e-mail)"),
    )
    smtp_port: int = Field(587, gt=0, lt=65536, description="its port")
    smtp_security: Literal["starttls", "ssl", "none"] = Field(
        "starttls", description="`starttls`, `ssl` or `none`"
    )
    smtp_user: str | None = Field(None, description="SMTP login, when the server asks for one")
    smtp_password: str | None = Field(None, repr=False, description="its password")
    smtp_from: str = Field("otkuda@localhost", description="sender address of notifications")
    telegram_bot_token: str | None = Field(
        None,
        repr=False,
        description="the bot that posts notifications to linked chats",
        json_schema_extra=_shown("(none: no Telegram)"),
    )
    telegram_api_base: str = Field(
        "https://api.telegram.org", description="Bot API address (a local Bot API server, tests)"
    )
    ga4_api_base: str = Field(
        "https://www.google-analytics.com",
        description="GA4 Measurement Protocol host (`region1.google-analytics.com` for EU collection)",
    )
    webhook_allow_private: bool = Field(
        False,
        description="let outgoing webhooks reach loopback and private addresses (tests, trusted networks)",
    )
    notify_pool_fallback_share: float = Field(
        0.2,
        ge=0,
        le=1,
        description="a pool is running out when more than this share of an hour's visitors saw the fallback",
    )

    # --- the command line ---------------------------------------------------------------------------------
    admin_password: str | None = Field(
        None, repr=False, description="password of `otkuda agency create` (asked for when absent)"
    )
    user_password: str | None = Field(
        None, repr=False, description="password of `otkuda user add` (asked for when absent)"
    )


def env_name(field: str) -> str:
    return PREFIX + field.upper()


def variables() -> list[tuple[str, str, str]]:
    """(variable, default as shown to people, meaning) for every field, in declaration order."""
    out = []
    for name, info in Settings.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        shown = extra.get("shown_default")
        if shown is None:
            shown = "(none)" if info.default is None else str(info.default)
        out.append((env_name(name), str(shown), info.description or ""))
    return out


def markdown_table() -> str:
    """The README's configuration table."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [f"| `{var}` | `{default}` | {meaning} |" for var, default, meaning in variables()]
    rows.append(
        f"| `{PROVIDER_FAMILY}` | the connector's | OAuth application of a connector: `CLIENT_ID`, "
        "`CLIENT_SECRET`, `AUTHORIZE_URL`, `TOKEN_URL`, `API_BASE` and extras such as "
        "`OTKUDA_GOOGLE_DEVELOPER_TOKEN` |"
    )
    return "\n".join(rows)
