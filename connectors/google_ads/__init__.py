"""Google Ads: call and won-deal conversions pushed as offline conversions, spend pulled per day.

Importing this package is cheap: ``google.ads`` (tens of megabytes of generated protobuf code) is imported
only by ``make_connector``, so web workers that merely list connectors never load it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from connectors.base import AccountField
from connectors.google_ads.provider import PROVIDER

if TYPE_CHECKING:
    from connectors.base import AccountContext, Connector

_CUSTOMER = r"[0-9]{3}-?[0-9]{3}-?[0-9]{4}"
ACCOUNT_FIELDS = (
    AccountField("customer_id", _CUSTOMER, "a Google Ads customer id (123-456-7890)"),
    AccountField("login_customer_id", _CUSTOMER, "a Google Ads manager customer id (123-456-7890)"),
)
CAPABILITIES = frozenset({"push_calls", "push_deals", "spend"})


class Settings(BaseModel):
    """Per-connection choices: conversion actions, values and the developer token's limits."""

    model_config = ConfigDict(extra="forbid")

    call_conversion_action: str | None = None
    call_asset_conversion_action: str | None = None
    deal_conversion_action: str | None = None
    deal_call_asset_conversion_action: str | None = None
    call_asset_numbers: list[str] = Field(default_factory=list, description="Numbers shown in call assets")
    min_talk_seconds: int = Field(0, ge=0)
    call_value: float | str | None = None
    currency: str | None = Field(None, min_length=3, max_length=3)
    batch_size: int | None = Field(None, ge=1)
    timeout_seconds: float | None = Field(None, gt=0)
    access_level: Literal["test", "explorer", "basic", "standard"] = "basic"
    daily_operations: int | None = Field(None, ge=1)
    requests_per_second: float | None = Field(None, gt=0)
    burst: int | None = Field(None, ge=1)


__all__ = ["ACCOUNT_FIELDS", "CAPABILITIES", "PROVIDER", "Settings", "make_connector"]


def make_connector(ctx: AccountContext) -> Connector:
    from connectors.google_ads.connector import GoogleAdsConnector

    return GoogleAdsConnector(ctx)
