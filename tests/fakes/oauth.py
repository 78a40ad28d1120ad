"""A fake OAuth 2 provider: an auto-consenting authorize endpoint and a token endpoint whose refresh
tokens are single-use (as amoCRM's and Yandex's are), counting how often each one is presented."""

from __future__ import annotations

import base64
import collections
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlencode

from tests.fakes.http import FakeServer, Response, json_response

CLIENT_ID = "fake-client-id"
CLIENT_SECRET = "fake-client-secret"


class FakeOAuthServer(FakeServer):
    def __init__(self, on_issue: Callable[[str], None] | None = None, expires_in: int = 3600) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.codes: dict[str, str] = {}  # code -> redirect_uri
        self.live_refresh: set[str] = set()
        self.refresh_uses: collections.Counter[str] = collections.Counter()
        self.refresh_delay = 0.0  # widens the window in which a second refresher could slip in
        self.revoked = False
        self.on_issue = on_issue
        self.expires_in = expires_in
        self.token_requests = 0

    def issue_pair(self) -> dict[str, Any]:
        access, refresh = "at-" + secrets.token_hex(8), "rt-" + secrets.token_hex(8)
        self.live_refresh.add(refresh)
        if self.on_issue:
            self.on_issue(access)
        return {
            "token_type": "Bearer",
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": self.expires_in,
            "server_time": int(time.time()),
        }

    def _client_ok(self, form: dict[str, str], headers: dict[str, str]) -> bool:
        auth = headers.get("Authorization", "")
        if auth.startswith("Basic "):
            cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        else:
            cid, secret = form.get("client_id", ""), form.get("client_secret", "")
        return cid == CLIENT_ID and secret == CLIENT_SECRET

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes, headers: dict[str, str]
    ) -> Response:
        if method == "GET" and path == "/authorize":
            q = {k: v[0] for k, v in query.items()}
            if q.get("client_id") != CLIENT_ID or q.get("response_type") != "code":
                return json_response(400, {"error": "invalid_request"})
            code = "code-" + secrets.token_hex(6)
            self.codes[code] = q.get("redirect_uri", "")
            target = (
                q["redirect_uri"]
                + "?"
                + urlencode({"code": code, "state": q.get("state", ""), "referer": "acme.fake.test"})
            )
            return 302, {"Location": target}, b""
        if method == "POST" and path == "/token":
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            with self.lock:
                self.token_requests += 1
            if not self._client_ok(form, headers):
                return json_response(401, {"error": "invalid_client"})
            grant = form.get("grant_type")
            if grant == "authorization_code":
                with self.lock:
                    redirect = self.codes.pop(form.get("code", ""), None)
                    if redirect is None or redirect != form.get("redirect_uri"):
                        return json_response(400, {"error": "invalid_grant", "error_description": "bad code"})
                    return json_response(200, {**self.issue_pair(), "scope": "read write"})
            if grant == "refresh_token":
                rt = form.get("refresh_token", "")
                time.sleep(self.refresh_delay)
                with self.lock:
                    self.refresh_uses[rt] += 1
                    if self.revoked or rt not in self.live_refresh:
                        return json_response(
                            400, {"error": "invalid_grant", "error_description": "token is used"}
                        )
                    self.live_refresh.discard(rt)  # single use
                    return json_response(200, self.issue_pair())
            return json_response(400, {"error": "unsupported_grant_type"})
        return json_response(404, {"error": "not_found"})
