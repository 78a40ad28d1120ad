"""Outgoing webhooks: a client's own URLs receive signed JSON for its calls and deals.

Account: ``url``. Settings: ``events`` (any of ``call.finalised``, ``call.attributed``, ``deal.won``). The
signing secret is the connection's sealed token (shown once when the webhook is made). Configuration:
``OTKUDA_WEBHOOK_ALLOW_PRIVATE`` lets URLs reach loopback and private networks (tests, trusted set-ups).
The wire format is documented in docs/outgoing-webhooks.md.
"""

from __future__ import annotations

from connectors.base import AccountContext, configured_provider
from connectors.webhook.connector import WebhookConnector

PROVIDER = configured_provider("webhook", "Outgoing webhook", "WEBHOOK")
CAPABILITIES = frozenset({"push_calls", "push_deals", "push_attributions"})


def make_connector(ctx: AccountContext) -> WebhookConnector:
    return WebhookConnector(ctx)


__all__ = ["CAPABILITIES", "PROVIDER", "WebhookConnector", "make_connector"]
