"""Google Analytics 4: calls and won deals as events through the Measurement Protocol.

Account: ``measurement_id`` (``G-…``). The API secret is the connection's sealed token. Settings:
``call_event`` (default ``otkuda_call``), ``deal_event`` (default ``purchase``), ``validate`` (default on:
each event is checked by the validation server before it is sent). Events go only for visits that carried
a GA client id (the snippet reads the ``_ga`` cookie); other items are skipped with the reason.
Configuration: ``OTKUDA_GA4_API_BASE`` (default https://www.google-analytics.com).
"""

from __future__ import annotations

from connectors.base import AccountContext, configured_provider
from connectors.ga4.connector import Ga4Connector

PROVIDER = configured_provider("ga4", "Google Analytics 4", "GA4", "https://www.google-analytics.com")
CAPABILITIES = frozenset({"push_calls", "push_deals"})


def make_connector(ctx: AccountContext) -> Ga4Connector:
    return Ga4Connector(ctx)


__all__ = ["CAPABILITIES", "PROVIDER", "Ga4Connector", "make_connector"]
