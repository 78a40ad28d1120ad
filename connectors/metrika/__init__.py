"""Yandex Metrika: finalised calls (upload_calls) and won deals (offline conversions) per counter.

Account ids: ``counter_id``. Settings: ``deal_goal`` (goal identifier for won deals), optional
``calls_goal_name``, ``phone_number`` ("tracking" or "caller"), ``window_days``, ``max_rows_per_file``.
"""

from __future__ import annotations

from connectors.base import AccountContext
from connectors.metrika.connector import MetrikaConnector
from connectors.metrika.provider import PROVIDER

CAPABILITIES = frozenset({"push_calls", "push_deals"})


def make_connector(ctx: AccountContext) -> MetrikaConnector:
    return MetrikaConnector(ctx)


__all__ = ["CAPABILITIES", "PROVIDER", "MetrikaConnector", "make_connector"]
