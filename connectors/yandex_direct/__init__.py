"""Yandex Direct: spend per day, campaign, ad group and keyword from the Reports service.

Account ids: ``client_login`` (agency accounts; empty for an advertiser's own login), optional ``currency``.
Settings: ``include_vat`` (default true), ``report_timeout_seconds``, ``max_poll_interval``.
Sessions are tied to campaigns by ``mapping.match_campaign`` with the client's editable table.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from connectors.base import AccountContext, AccountField
from connectors.yandex_direct.client import DirectError
from connectors.yandex_direct.connector import YandexDirectConnector
from connectors.yandex_direct.mapping import CampaignMatch, match_campaign, suggest_mapping
from connectors.yandex_direct.provider import PROVIDER

ACCOUNT_FIELDS = (
    # Yandex logins: Latin letters, digits, dots and hyphens.
    AccountField(
        "client_login", r"[A-Za-z0-9][A-Za-z0-9.-]{0,62}", "a Yandex login (letters, digits, . and -)"
    ),
    AccountField("currency", r"[A-Z]{3}", "a three-letter currency code"),
)
CAPABILITIES = frozenset({"spend"})


def make_connector(ctx: AccountContext) -> YandexDirectConnector:
    return YandexDirectConnector(ctx)


class Settings(BaseModel):
    """Per-connection choices."""

    model_config = ConfigDict(extra="forbid")

    include_vat: bool = True
    report_timeout_seconds: float = Field(900, gt=0)
    max_poll_interval: float = Field(120, gt=0)


__all__ = [
    "ACCOUNT_FIELDS",
    "CAPABILITIES",
    "PROVIDER",
    "Settings",
    "CampaignMatch",
    "DirectError",
    "YandexDirectConnector",
    "make_connector",
    "match_campaign",
    "suggest_mapping",
]
