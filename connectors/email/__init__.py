"""E-mail notifications over SMTP: one message per notification to the address on the connection.

Account: ``to``. Configuration (``OTKUDA_SMTP_*``): ``HOST``, ``PORT`` (587), ``SECURITY`` (``starttls``
default, ``ssl`` or ``none``), ``USER``, ``PASSWORD``, ``FROM``.
"""

from __future__ import annotations

from connectors.base import AccountContext, OAuthProvider
from connectors.email.connector import EmailConnector

PROVIDER = OAuthProvider(
    name="email",
    title="E-mail notifications",
    authorize_url="",
    token_url="",
    api_base="",
    config_prefix="SMTP",
    oauth=False,
)
CAPABILITIES = frozenset({"push_notifications"})


def make_connector(ctx: AccountContext) -> EmailConnector:
    return EmailConnector(ctx)


__all__ = ["CAPABILITIES", "PROVIDER", "EmailConnector", "make_connector"]
