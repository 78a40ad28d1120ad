"""E-mail notifications over SMTP: one message per notification to the address on the connection.

Account: ``to``. Configuration (``OTKUDA_SMTP_*``): ``HOST``, ``PORT`` (587), ``SECURITY`` (``starttls``
default, ``ssl`` or ``none``), ``USER``, ``PASSWORD``, ``FROM``.
"""

from __future__ import annotations

from connectors.base import AccountContext, configured_provider
from connectors.email.connector import EmailConnector

PROVIDER = configured_provider("email", "E-mail notifications", "SMTP")
CAPABILITIES = frozenset({"push_notifications"})


def make_connector(ctx: AccountContext) -> EmailConnector:
    return EmailConnector(ctx)


__all__ = ["CAPABILITIES", "PROVIDER", "EmailConnector", "make_connector"]
