"""The Yandex OAuth provider shared by Metrika and Direct: one connection (one Yandex login) serves both.

Both connector packages expose this provider under the same name, so the hub's connect flow asks once for
the union of scopes; only the API base differs per connector.
"""

from __future__ import annotations

from dataclasses import replace

from connectors.base import OAuthProvider

# Yandex accepts client credentials in the body or as HTTP Basic; the body form is the one both the
# refresh documentation and Authlib's default agree on.
YANDEX = OAuthProvider(
    name="yandex",
    title="Yandex (Metrika, Direct)",
    authorize_url="https://oauth.yandex.ru/authorize",
    token_url="https://oauth.yandex.ru/token",  # noqa: S106  (a URL)
    api_base="https://api-metrika.yandex.net",
    # metrika:offline_data is the narrowest Metrika scope that covers calls and offline conversions;
    # direct:api is what the Reports service requires.
    scopes=("metrika:offline_data", "direct:api"),
    config_prefix="YANDEX",
    # An agency connects many Yandex logins from one browser; without this Yandex silently reuses the
    # login that is signed in.
    authorize_params={"force_confirm": "yes"},
    token_endpoint_auth_method="client_secret_post",  # noqa: S106  (a method name)
)


def provider_for(api_base: str) -> OAuthProvider:
    """The shared provider with one API's base URL as its default."""
    return replace(YANDEX, api_base=api_base)
