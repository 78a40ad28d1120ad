"""OAuth provider descriptions from the connectors, with endpoints and credentials from configuration.

Each setting comes from ``OTKUDA_<PREFIX>_<NAME>`` (app config or environment), falling back to the
connector's own default, so tests and self-hosters can point any provider at another host.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors import registry
from connectors.base import OAuthProvider
from jobs.runtime import setting

_STANDARD = ("CLIENT_ID", "CLIENT_SECRET", "AUTHORIZE_URL", "TOKEN_URL", "API_BASE")


@dataclass(frozen=True)
class ResolvedProvider:
    provider: OAuthProvider
    client_id: str
    client_secret: str = field(repr=False)
    authorize_url: str
    token_url: str
    api_base: str
    extra: Mapping[str, str] = field(default_factory=dict, repr=False)
    platform_urls: Mapping[str, str] = field(default_factory=dict)  # platform -> its consent page

    @property
    def name(self) -> str:
        return self.provider.name

    def authorize_url_for(self, platform: str | None) -> str:
        """The consent page for one of the provider's platforms (LookupError for one it does not serve)."""
        if not platform:
            return self.authorize_url
        if platform not in self.platform_urls:
            raise LookupError(f"{self.provider.title} has no platform {platform!r}")
        return self.platform_urls[platform]


def prefix_of(provider: OAuthProvider) -> str:
    return (provider.config_prefix or provider.name).upper()


def resolve(config: Mapping[str, Any], provider: OAuthProvider) -> ResolvedProvider:
    prefix = prefix_of(provider)

    def get(name: str, default: str = "") -> str:
        return str(setting(config, f"{prefix}_{name}", default))

    # Anything else under the prefix (a developer token, a login customer id) is handed to the connector.
    extra: dict[str, str] = {}
    wanted = f"OTKUDA_{prefix}_"
    for source in (os.environ, config):
        for key, value in source.items():
            for p in (wanted, f"{prefix}_"):
                if key.startswith(p) and key[len(p) :] not in _STANDARD and isinstance(value, str):
                    extra[key[len(p) :].lower()] = value
    return ResolvedProvider(
        provider=provider,
        client_id=get("CLIENT_ID"),
        client_secret=get("CLIENT_SECRET"),
        authorize_url=get("AUTHORIZE_URL", provider.authorize_url),
        token_url=get("TOKEN_URL", provider.token_url),
        api_base=get("API_BASE", provider.api_base).rstrip("/"),
        extra=extra,
        platform_urls={
            name: get(f"{name.upper()}_AUTHORIZE_URL", platform.authorize_url)
            for name, platform in provider.platforms.items()
        },
    )


def account_url(provider: ResolvedProvider, template: str, account: Mapping[str, Any]) -> str:
    """A URL whose host depends on the account (amoCRM's ``https://{host}``), filled in from it.

    The provider checks the account facts first (raising ``ValueError``), so a stored host that is not the
    provider's is never contacted. A template the account cannot fill is returned unchanged, and the
    connector refuses to use it.
    """
    if "{" not in template:
        return template
    if provider.provider.check_account is not None:
        provider.provider.check_account(account)
    try:
        return template.format_map({k: str(v) for k, v in account.items()})
    except (KeyError, ValueError):
        return template


def connector_provider(connector: str) -> OAuthProvider:
    return registry.load(connector).PROVIDER


def capabilities(connector: str) -> set[str] | None:
    """The connector's declared capabilities, or None when its module cannot be loaded here."""
    try:
        return set(registry.load(connector).CAPABILITIES)
    except (LookupError, ImportError):
        return None
