"""One fake OAuth 2 authorisation server for every provider the hub connects to, configured per provider.

A ``Dialect`` says how a provider's consent page and token endpoint behave (paths, where client credentials
may travel, JSON or form bodies, whether a refresh rotates the refresh token, what the answers carry); a
``FakeOAuth`` keeps the grants and answers. It runs on its own local server (``start``) or inside another
fake that shares the provider's host (Yandex's fake API server, the amoCRM account fake) through ``handle``.
Issued access tokens go into an ``AccessTokens`` store that the provider's API fakes check.
"""

from __future__ import annotations

import base64
import collections
import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

from tests.fakes.http import FakeServer, Response, json_response


class AccessTokens:
    """Access tokens an API fake accepts, each with its owner (a login) and an optional expiry; tokens taken
    back are remembered as expired or revoked, so a fake can answer as its provider does for each."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owners: dict[str, str] = {}
        self._expires: dict[str, float] = {}
        self.expired: set[str] = set()
        self.revoked: set[str] = set()

    def add(self, token: str, owner: str, expires_in: float | None = None) -> None:
        with self._lock:
            self._owners[token] = owner
            if expires_in is not None:
                self._expires[token] = time.time() + expires_in

    def owner_of(self, token: str) -> str | None:
        """The owner of a token that is valid now; None otherwise."""
        with self._lock:
            if token in self._expires and self._expires[token] < time.time():
                return None
            return self._owners.get(token)

    def __contains__(self, token: object) -> bool:
        return isinstance(token, str) and self.owner_of(token) is not None

    def expire(self, token: str) -> None:
        with self._lock:
            if self._owners.pop(token, None) is not None:
                self.expired.add(token)

    def expire_login(self, owner: str) -> None:
        with self._lock:
            for token in [t for t, o in self._owners.items() if o == owner]:
                del self._owners[token]
                self.expired.add(token)

    def expire_all(self) -> None:
        with self._lock:
            self.expired |= set(self._owners)
            self._owners.clear()

    def revoke_all(self) -> None:
        with self._lock:
            self.revoked |= set(self._owners) | self.expired
            self._owners.clear()


@dataclass(frozen=True)
class Dialect:
    """How one provider's authorisation server behaves; ``source`` names the document it follows."""

    client_id: str
    client_secret: str
    source: str
    authorize_path: str | None = "/authorize"
    token_path: str = "/token"
    basic_auth: bool = True  # client credentials may come in an Authorization: Basic header (RFC 6749 2.3.1)
    json_body: bool = False  # the token request may be a JSON body
    rotate_refresh: bool = True  # a refresh answers a new refresh token and the old one dies
    offline_only: bool = False  # a refresh token only when the consent asked for access_type=offline
    check_redirect_uri: bool = True  # the code exchange must repeat the consent's redirect_uri
    required_scope: str | None = None
    callback_extra: Mapping[str, str] = field(default_factory=dict)  # more query on the redirect back
    token_type: str = "Bearer"
    expires_in: int = 3600
    server_time: bool = False  # the answer carries server_time (amoCRM)
    scope_in_answer: bool = True
    bad_code_error: str = "invalid_grant"
    access_prefix: str = "at-"
    refresh_prefix: str = "rt-"


GENERIC = Dialect(
    client_id="fake-client-id",
    client_secret="fake-client-secret",
    source="RFC 6749 sections 4.1 and 6, with single-use refresh tokens as amoCRM and Yandex issue them",
    callback_extra={"referer": "acme.fake.test"},
    server_time=True,
)
# https://yandex.com/dev/id/doc/en/codes/code-url (authorize), https://yandex.ru/dev/id/doc/en/tokens/refresh-client
# (token: form body, credentials in the body or Basic, a new refresh token on each refresh).
YANDEX = Dialect(
    client_id="app-id",
    client_secret="app-secret",
    source="Yandex ID: codes/code-url and tokens/refresh-client",
    check_redirect_uri=False,
    token_type="bearer",
    expires_in=31536000,
    bad_code_error="bad_verification_code",
    access_prefix="y0_",
    refresh_prefix="1:",
)
# google-auth-oauthlib flow.py (consent with access_type=offline), google/oauth2/credentials.py (refresh:
# form body with client credentials; Google keeps the refresh token, so refresh answers carry none).
GOOGLE = Dialect(
    client_id="cid.apps.googleusercontent.com",
    client_secret="csecret",
    source="google-auth-oauthlib flow.py and google/oauth2/credentials.py",
    authorize_path="/auth",
    basic_auth=False,
    rotate_refresh=False,
    offline_only=True,
    required_scope="https://www.googleapis.com/auth/adwords",
    expires_in=3599,
    access_prefix="ya29.",
    refresh_prefix="1//",
)
# https://developers.kommo.com/reference/get-token: POST {account}/oauth2/access_token with a JSON body
# (form-encoded, what OAuth libraries send, is taken as well); single-use refresh tokens; server_time.
AMOCRM = Dialect(
    client_id="amo-client-id",
    client_secret="amo-client-secret",
    source="developers.kommo.com/reference/get-token",
    authorize_path=None,
    token_path="/oauth2/access_token",
    basic_auth=False,
    json_body=True,
    check_redirect_uri=False,
    expires_in=86400,
    server_time=True,
    scope_in_answer=False,
    access_prefix="amo-at-",
    refresh_prefix="amo-rt-",
)


@dataclass
class Grant:
    owner: str
    scope: str = ""
    redirect_uri: str = ""
    offline: bool = True
    access: str = ""  # the access token issued with this refresh token


def _error(status: int, error: str, description: str = "") -> Response:
    body = {"error": error, "error_description": description} if description else {"error": error}
    return (
        status,
        {"Content-Type": "application/json", "Cache-Control": "no-store"},
        json.dumps(body).encode(),
    )


class FakeOAuth:
    def __init__(
        self,
        dialect: Dialect = GENERIC,
        tokens: AccessTokens | None = None,
        *,
        owner: str = "owner",
        on_issue: Callable[[str], None] | None = None,
    ) -> None:
        self.dialect = dialect
        self.tokens = tokens if tokens is not None else AccessTokens()
        self.owner = owner  # whose consent the authorize page gives
        self.on_issue = on_issue  # a fake that keeps its own token set hears of each token here
        self.lock = threading.Lock()
        self.codes: dict[str, Grant] = {}
        self.live_refresh: dict[str, Grant] = {}
        self.refresh_uses: collections.Counter[str] = collections.Counter()
        self.token_requests: list[dict[str, str]] = []
        self.refresh_delay = 0.0  # widens the window in which a second refresher could slip in
        self.revoked = False  # every refresh token refused from now on
        self.url = ""
        self._server: FakeServer | None = None

    # --- for tests -----------------------------------------------------------------------------------------

    def add_code(self, code: str, owner: str | None = None, redirect_uri: str = "") -> None:
        with self.lock:
            self.codes[code] = Grant(owner or self.owner, redirect_uri=redirect_uri)

    def issue_pair(self, grant: Grant | None = None) -> dict[str, Any]:
        """A fresh token answer, as the token endpoint would give it (callers hold ``lock`` or are tests)."""
        grant = grant or Grant(self.owner)
        d = self.dialect
        access = d.access_prefix + secrets.token_urlsafe(12)
        self.tokens.add(access, grant.owner, d.expires_in)
        if self.on_issue:
            self.on_issue(access)
        body: dict[str, Any] = {
            "token_type": d.token_type,
            "access_token": access,
            "expires_in": d.expires_in,
        }
        if grant.offline:
            refresh = d.refresh_prefix + secrets.token_urlsafe(12)
            self.live_refresh[refresh] = Grant(grant.owner, grant.scope, access=access)
            body["refresh_token"] = refresh
        if d.server_time:
            body["server_time"] = int(time.time())
        if d.scope_in_answer:
            body["scope"] = grant.scope or d.required_scope or "read write"
        return body

    def revoke_all(self) -> None:
        """The person withdrew consent: refresh tokens die and access tokens stop working."""
        with self.lock:
            self.live_refresh.clear()
            self.revoked = True
        self.tokens.revoke_all()

    # --- serving -------------------------------------------------------------------------------------------

    def start(self) -> FakeOAuth:
        fake = self

        class Server(FakeServer):
            def handle(self, method, path, query, body, headers):  # type: ignore[no-untyped-def]
                return fake.handle(method, path, query, body, headers) or json_response(
                    404, {"error": "not_found"}
                )

        self._server = Server().start()
        self.url = self._server.url
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def handle(
        self, method: str, path: str, query: Mapping[str, list[str]], body: bytes, headers: Mapping[str, str]
    ) -> Response | None:
        """The answer for a request to this provider's OAuth paths; None for any other path."""
        d = self.dialect
        if d.authorize_path is not None and path == d.authorize_path:
            return self._authorize(method, {k: v[0] for k, v in query.items()})
        if path == d.token_path:
            return self._token(method, body, headers)
        return None

    def _authorize(self, method: str, q: dict[str, str]) -> Response:
        d = self.dialect
        if method != "GET" or q.get("client_id") != d.client_id or q.get("response_type") != "code":
            return _error(400, "invalid_request", "response_type=code and a known client_id are required")
        if d.required_scope and d.required_scope not in q.get("scope", "").split():
            return _error(400, "invalid_scope")
        code = secrets.token_urlsafe(12)
        offline = not d.offline_only or q.get("access_type") == "offline"
        with self.lock:
            self.codes[code] = Grant(self.owner, q.get("scope", ""), q.get("redirect_uri", ""), offline)
        back = {"code": code, **({"state": q["state"]} if "state" in q else {}), **d.callback_extra}
        if d.required_scope:
            back["scope"] = q["scope"]
        return 302, {"Location": f"{q.get('redirect_uri', '')}?{urlencode(back)}"}, b""

    def _form(self, body: bytes, headers: Mapping[str, str]) -> dict[str, str] | None:
        content_type = headers.get("Content-Type", "")
        if self.dialect.json_body and content_type.startswith("application/json"):
            data = json.loads(body or b"{}")
            return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else None
        if not content_type.startswith("application/x-www-form-urlencoded"):
            return None
        return {k: v[0] for k, v in parse_qs(body.decode()).items()}

    def _client_ok(self, form: dict[str, str], headers: Mapping[str, str]) -> bool:
        auth = headers.get("Authorization", "")
        if self.dialect.basic_auth and auth.startswith("Basic "):
            # With the header present the body's credentials are ignored (Yandex says so; RFC 6749 2.3.1).
            ident, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        else:
            ident, secret = form.get("client_id", ""), form.get("client_secret", "")
        return ident == self.dialect.client_id and secret == self.dialect.client_secret

    def _token(self, method: str, body: bytes, headers: Mapping[str, str]) -> Response:
        if method != "POST":
            return _error(405, "invalid_request", "POST only")
        form = self._form(body, headers)
        if form is None:
            return _error(400, "invalid_request", "the token request must be form-encoded")
        with self.lock:
            self.token_requests.append(form)
        if not self._client_ok(form, headers):
            return _error(401, "invalid_client", "Client authentication failed")
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            with self.lock:
                grant = self.codes.pop(form.get("code", ""), None)
                if grant is None or (
                    self.dialect.check_redirect_uri and grant.redirect_uri != form.get("redirect_uri")
                ):
                    return _error(400, self.dialect.bad_code_error, "Invalid code")
                return json_response(200, self.issue_pair(grant))
        if grant_type == "refresh_token":
            refresh = form.get("refresh_token", "")
            time.sleep(self.refresh_delay)
            with self.lock:
                self.refresh_uses[refresh] += 1
                grant = None if self.revoked else self.live_refresh.get(refresh)
                if grant is None:
                    return _error(400, "invalid_grant", "Token has been revoked or used")
                answer = self.issue_pair(Grant(grant.owner, grant.scope, offline=self.dialect.rotate_refresh))
                if self.dialect.rotate_refresh:
                    del self.live_refresh[refresh]  # single use; the pair it came with is replaced
                    self.tokens.expire(grant.access)
                return json_response(200, answer)
        return _error(400, "unsupported_grant_type", str(grant_type))
