"""How the hub's generic OAuth flow connects a Google account to Google Ads."""

from __future__ import annotations

from connectors.base import OAuthProvider

# gRPC host of the Google Ads API; the client adds :443. Tests point ``api_base`` at a local TLS fake.
DEFAULT_API_BASE = "https://googleads.googleapis.com"
SCOPE = "https://www.googleapis.com/auth/adwords"

PROVIDER = OAuthProvider(
    name="google",
    title="Google Ads",
    # Google documents /o/oauth2/v2/auth; the older /o/oauth2/auth (used by google-auth-oauthlib) answers
    # the same way. Either can be configured through OTKUDA_GOOGLE_AUTHORIZE_URL.
    authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
    token_url="https://oauth2.googleapis.com/token",  # noqa: S106  (an endpoint, not a secret)
    api_base=DEFAULT_API_BASE,
    scopes=(SCOPE,),
    config_prefix="GOOGLE",
    # Offline access is what yields a refresh token; ``prompt=consent`` makes Google issue one again when
    # the same user reconnects (otherwise only the first consent carries it).
    authorize_params={"access_type": "offline", "prompt": "consent", "include_granted_scopes": "true"},
    token_endpoint_auth_method="client_secret_post",  # noqa: S106  (a method name)
)
