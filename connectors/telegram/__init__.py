"""Telegram notifications: a bot (``OTKUDA_TELEGRAM_BOT_TOKEN``) posts to a chat linked to a client.

Account: ``chat_id`` (a user, group or channel id, or ``@channelname``). ``OTKUDA_TELEGRAM_API_BASE``
defaults to https://api.telegram.org.
"""

from __future__ import annotations

from connectors.base import AccountContext, configured_provider
from connectors.telegram.connector import TelegramConnector

PROVIDER = configured_provider("telegram", "Telegram notifications", "TELEGRAM", "https://api.telegram.org")
CAPABILITIES = frozenset({"push_notifications"})


def make_connector(ctx: AccountContext) -> TelegramConnector:
    return TelegramConnector(ctx)


__all__ = ["CAPABILITIES", "PROVIDER", "TelegramConnector", "make_connector"]
