"""amoCRM (and Kommo): finalised calls become incoming SIP leads or deals, and deals come back with status
and revenue, by periodic pull and by webhook.

Account ids: ``host``, ``subdomain``. Settings: ``mode`` ("unsorted" or "lead"), ``pipeline_id``,
``status_id``, ``responsible_user_id``, ``field_map`` (our field -> custom field id or code), ``tags``,
``dedupe_open_deals`` (default true), ``source_name``, ``service_code``.
"""

from __future__ import annotations

from connectors.amocrm.connector import AmoConnector
from connectors.amocrm.provider import PROVIDER
from connectors.base import AccountContext

CAPABILITIES = frozenset({"push_calls", "deals"})


def make_connector(ctx: AccountContext) -> AmoConnector:
    return AmoConnector(ctx)


__all__ = ["CAPABILITIES", "PROVIDER", "AmoConnector", "make_connector"]
