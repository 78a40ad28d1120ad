"""A webhook receiver that does what docs/outgoing-webhooks.md asks of one.

It verifies ``Otkuda-Signature`` (HMAC-SHA256 over ``t + "." + raw body``, timestamp within 5 minutes)
and answers 401 when it does not match; it processes each ``Otkuda-Event-Id`` once and answers 200 to a
second copy without processing it again. Tests can queue answers (status, headers) and make it hang.
"""

from __future__ import annotations

import collections
import json
import threading
from typing import Any

from connectors.webhook.signing import SIGNATURE_HEADER, verify
from tests.fakes.http import FakeServer, Response, json_response


class WebhookReceiver(FakeServer):
    def __init__(self, secret: str = "") -> None:
        super().__init__()
        self.secret = secret
        self.secrets: dict[str, str] = {}  # per path, when several webhooks point here
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []  # every request, verified or not
        self.processed: list[dict[str, Any]] = []  # bodies processed, each event id once
        self.answers: list[tuple[int, dict[str, str]]] = []
        self.hang_on: str | None = None  # an event id to hang on (after recording it) until released
        self.hanging = threading.Event()
        self.release = threading.Event()

    def counts(self) -> collections.Counter[str]:
        with self.lock:
            return collections.Counter(p["id"] for p in self.processed)

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes, headers: dict[str, str]
    ) -> Response:
        if method != "POST":
            return json_response(405, {"error": "method"})
        signature = headers.get(SIGNATURE_HEADER, "")
        ok = verify(self.secrets.get(path, self.secret), body, signature)
        event_id = headers.get("Otkuda-Event-Id", "")
        with self.lock:
            self.requests.append({"headers": headers, "body": body, "verified": ok})
            if not ok:
                return json_response(401, {"error": "bad signature"})
            if self.answers:
                status, extra = self.answers.pop(0)
                return json_response(status, {"status": status}, extra)
            doc = json.loads(body)
            first = event_id not in {p["id"] for p in self.processed}
            if first:
                self.processed.append(doc)
        if event_id == self.hang_on:
            self.hanging.set()
            self.release.wait()
        return json_response(200, {"received": event_id, "duplicate": not first})
