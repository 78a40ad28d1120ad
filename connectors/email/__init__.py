"""E-mail notifications over SMTP: one message per notification to the address on the connection.

Account: ``to``. Configuration: the ``smtp_*`` fields of ``tracking.settings.Settings`` (``OTKUDA_SMTP_HOST``,
``OTKUDA_SMTP_PORT``, ``OTKUDA_SMTP_SECURITY``, ``OTKUDA_SMTP_USER``, ``OTKUDA_SMTP_PASSWORD``,
``OTKUDA_SMTP_FROM``), handed over by ``jobs.providers``.
"""

from __future__ import annotations

from connectors.base import AccountContext, configured_provider
from connectors.email.connector import EmailConnector

PROVIDER = configured_provider("email", "E-mail notifications", "SMTP")
CAPABILITIES = frozenset({"push_notifications"})


def make_connector(ctx: AccountContext) -> EmailConnector:
    return EmailConnector(ctx)


__all__ = ["CAPABILITIES", "PROVIDER", "EmailConnector", "make_connector"]
