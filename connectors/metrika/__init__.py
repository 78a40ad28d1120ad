"""Yandex Metrika: finalised calls (upload_calls) and won deals (offline conversions) per counter.

Account ids: ``counter_id``. Settings: ``deal_goal`` (goal identifier for won deals), optional
``calls_goal_name``, ``phone_number`` ("tracking" or "caller"), ``window_days``, ``max_rows_per_file``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from connectors.base import AccountContext, AccountField
from connectors.metrika.connector import MetrikaConnector
from connectors.metrika.provider import PROVIDER

ACCOUNT_FIELDS = (AccountField("counter_id", r"[0-9]{1,12}", "a Metrika counter number"),)
CAPABILITIES = frozenset({"push_calls", "push_deals"})


def make_connector(ctx: AccountContext) -> MetrikaConnector:
    return MetrikaConnector(ctx)


class Settings(BaseModel):
    """Per-connection choices."""

    model_config = ConfigDict(extra="forbid")

    deal_goal: str | None = Field(None, description="Goal identifier that won deals are sent as")
    calls_goal_name: str | None = None
    phone_number: Literal["tracking", "caller"] = "tracking"
    window_days: int = Field(21, ge=1, le=90)
    max_rows_per_file: int = Field(1000, ge=1)


__all__ = ["ACCOUNT_FIELDS", "CAPABILITIES", "PROVIDER", "Settings", "MetrikaConnector", "make_connector"]
