"""Fake Yandex OAuth (oauth.yandex.ru): /authorize redirects with a code, /token exchanges codes and
single-use refresh tokens (each refresh returns a new refresh token), client auth in body or Basic."""

from __future__ import annotations

import base64
import json
import secrets
import threading
from dataclasses import dataclass, field
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response


@dataclass
class Grant:
    login: str
    scope: str
    access_token: str
    refresh_token: str


class TokenStore:
    """Access tokens the API fakes accept, each tied to a Yandex login."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._access: dict[str, str] = {}

    def add(self, token: str, login: str) -> None:
        with self._lock:
            self._access[token] = login

    def expire(self, token: str) -> None:
        with self._lock:
            self._access.pop(token, None)

    def expire_login(self, login: str) -> None:
        with self._lock:
            for token in [t for t, owner in self._access.items() if owner == login]:
                del self._access[token]

    def login_of(self, token: str) -> str | None:
        with self._lock:
            return self._access.get(token)


def _error(status: int, error: str, description: str) -> Response:
    body = json.dumps({"error": error, "error_description": description})
    return Response(body, status, mimetype="application/json")


@dataclass
class FakeYandexOAuth:
    tokens: TokenStore
    client_id: str = "app-id"
    client_secret: str = "app-secret"
    login: str = "agency-login"
    codes: dict[str, tuple[str, str]] = field(default_factory=dict)  # code -> (login, scope)
    refresh_tokens: dict[str, Grant] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, request: Request) -> Response | None:
        if request.path == "/authorize":
            return self._authorize(request)
        if request.path == "/token":
            return self._token(request)
        return None

    def _authorize(self, request: Request) -> Response:
        args = request.args
        if args.get("response_type") != "code" or args.get("client_id") != self.client_id:
            return _error(400, "invalid_request", "response_type=code and a known client_id are required")
        code = secrets.token_hex(8)
        with self.lock:
            self.codes[code] = (self.login, args.get("scope", ""))
        query = {"code": code}
        if "state" in args:
            query["state"] = args["state"]
        return Response("", 302, {"Location": f"{args['redirect_uri']}?{urlencode(query)}"})

    def _client_ok(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            # When the header is present Yandex ignores credentials in the body.
            ident, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        else:
            ident, secret = request.form.get("client_id", ""), request.form.get("client_secret", "")
        return ident == self.client_id and secret == self.client_secret

    def _issue(self, login: str, scope: str) -> Grant:
        grant = Grant(login, scope, secrets.token_hex(16), secrets.token_hex(16))
        self.refresh_tokens[grant.refresh_token] = grant
        self.tokens.add(grant.access_token, login)
        return grant

    def _token(self, request: Request) -> Response:
        if request.method != "POST":
            return _error(405, "invalid_request", "POST only")
        if request.mimetype != "application/x-www-form-urlencoded":
            return _error(400, "invalid_request", "form-encoded body required")
        self.token_requests.append(dict(request.form))
        if not self._client_ok(request):
            return _error(401, "invalid_client", "Client authentication failed")
        grant_type = request.form.get("grant_type")
        with self.lock:
            if grant_type == "authorization_code":
                found = self.codes.pop(request.form.get("code", ""), None)
                if found is None:
                    return _error(400, "bad_verification_code", "Invalid code")
                grant = self._issue(*found)
            elif grant_type == "refresh_token":
                old = self.refresh_tokens.pop(request.form.get("refresh_token", ""), None)
                if old is None:
                    return _error(400, "invalid_grant", "Refresh token expired or revoked")
                self.tokens.expire(old.access_token)
                grant = self._issue(old.login, old.scope)
            else:
                return _error(400, "unsupported_grant_type", str(grant_type))
        body = {
            "token_type": "bearer",
            "access_token": grant.access_token,
            "expires_in": 31536000,
            "refresh_token": grant.refresh_token,
            "scope": grant.scope,
        }
        return Response(json.dumps(body), 200, mimetype="application/json")

    def revoke_all(self) -> None:
        with self.lock:
            for grant in self.refresh_tokens.values():
                self.tokens.expire(grant.access_token)
            self.refresh_tokens.clear()
