"""amoCRM's OAuth description. The account's own host (``<sub>.amocrm.ru`` or ``<sub>.kommo.com``) comes
back in the callback's ``referer``; tokens are exchanged and refreshed there and the API lives there too."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from connectors.base import OAuthProvider, Platform

# Only real account hosts: the referer is part of a URL anyone can forge, and the client secret and the
# code are sent to the host it names.
ACCOUNT_HOST = re.compile(r"^(?P<sub>[a-z0-9][a-z0-9-]{0,62})\.(?:amocrm\.ru|amocrm\.com|kommo\.com)\Z")


class BadAccountHost(ValueError):
    """The callback named a host that is not an amoCRM or Kommo account."""


def account_from_callback(args: Mapping[str, str], token: Mapping[str, Any]) -> dict[str, str]:
    host = (args.get("referer") or "").strip().lower().removeprefix("https://").rstrip("/")
    m = ACCOUNT_HOST.match(host)
    if m is None:
        raise BadAccountHost(f"not an amoCRM or Kommo account host: {host!r}")
    platform = "kommo" if host.endswith(".kommo.com") else "amocrm"
    return {"host": host, "subdomain": m.group("sub"), "platform": platform}


def check_account(account: Mapping[str, Any]) -> None:
    """The stored host is a real account host (and agrees with the subdomain), else nothing is sent to it."""
    host = str(account.get("host") or "")
    m = ACCOUNT_HOST.match(host)
    if m is None or str(account.get("subdomain") or m.group("sub")) != m.group("sub"):
        raise BadAccountHost(f"not an amoCRM or Kommo account host: {host!r}")


PROVIDER = OAuthProvider(
    name="amocrm",
    title="amoCRM / Kommo",
    authorize_url="https://www.amocrm.ru/oauth",
    # The consent page lives on each platform's own www host (amocrm/amocrm-oauth-client: urlAccount() .
    # "oauth/"), so an amoCRM account and a Kommo account are sent to different pages.
    platforms={
        "amocrm": Platform("amoCRM", "https://www.amocrm.ru/oauth"),
        "kommo": Platform("Kommo", "https://www.kommo.com/oauth"),
    },
    # Placeholders are filled from the connection's account; configuration may name a fixed URL instead.
    token_url="https://{host}/oauth2/access_token",  # noqa: S106  (a URL)
    api_base="https://{host}",
    config_prefix="AMOCRM",
    # "popup" makes amoCRM redirect the window to our callback; the default posts a message to an opener.
    authorize_params={"mode": "popup"},
    token_endpoint_auth_method="client_secret_post",  # noqa: S106  (a method name)
    account_from_callback=account_from_callback,
    check_account=check_account,
)
