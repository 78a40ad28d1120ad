"""Yandex Metrika: finalised calls (upload_calls) and won deals (offline conversions) per counter.

Account ids: ``counter_id``. Settings: ``deal_goal`` (goal identifier for won deals), optional
``calls_goal_name``, ``phone_number`` ("tracking" or "caller"), ``window_days``, ``max_rows_per_file``,
``status_poll_seconds``, ``status_poll_interval``.
"""

from __future__ import annotations

from connectors.base import AccountContext, AccountField
from connectors.metrika.connector import MetrikaConnector
from connectors.metrika.provider import PROVIDER

ACCOUNT_FIELDS = (AccountField("counter_id", r"[0-9]{1,12}", "a Metrika counter number"),)
CAPABILITIES = frozenset({"push_calls", "push_deals"})


def make_connector(ctx: AccountContext) -> MetrikaConnector:
    return MetrikaConnector(ctx)


__all__ = ["ACCOUNT_FIELDS", "CAPABILITIES", "PROVIDER", "MetrikaConnector", "make_connector"]
