"""A fake GA4 Measurement Protocol endpoint and validation server.

Routes and shapes, from Google's developer guides (developers.google.com/analytics/devguides/collection/
protocol/ga4/…):
- ``POST /mp/collect?measurement_id=&api_secret=`` — sending-events: answers 2xx with no body, even for
  malformed events ("does not return HTTP error codes"), and silently drops what it would refuse;
- ``POST /debug/mp/collect`` — validating-events: same request, answers
  ``{"validationMessages": [{"fieldPath", "description", "validationCode"}]}`` and records nothing;
- what it refuses — sending-events "Limitations" and the reference: ``client_id`` required
  (VALUE_REQUIRED), at most 25 events and 25 params per event (EXCEEDED_MAX_ENTITIES), names that start
  with a letter, hold letters, digits and underscores, at most 40 long (NAME_INVALID), reserved names and
  prefixes (NAME_RESERVED), string values of at most 100 characters (VALUE_OUT_OF_BOUNDS), timestamps
  backdated over 72 hours (VALUE_OUT_OF_BOUNDS), bodies over 130 kB.
An unknown measurement id / api secret pair is accepted with 2xx and dropped, as the real one does.
"""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any

from tests.fakes.http import FakeServer, Response, json_response

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
RESERVED_PREFIXES = ("_", "firebase_", "ga_", "google_")
RESERVED_EVENTS = {"session_start", "first_visit", "first_open", "user_engagement", "ad_click", "app_remove"}
MAX_BODY = 130_000


def _msg(path: str, code: str, description: str) -> dict[str, str]:
    return {"fieldPath": path, "description": description, "validationCode": code}


class FakeGa4(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.streams: dict[str, str] = {}  # measurement_id -> api_secret
        self.collected: list[dict[str, Any]] = []  # accepted bodies, with the measurement id
        self.dropped: list[dict[str, Any]] = []
        self.validated = 0
        self.fail_next: list[tuple[int, dict[str, str]]] = []

    def validate(self, raw: bytes) -> list[dict[str, str]]:
        if len(raw) > MAX_BODY:
            return [_msg("", "VALUE_OUT_OF_BOUNDS", "Request body exceeds 130kB.")]
        try:
            body = json.loads(raw)
        except ValueError:
            return [_msg("", "VALUE_INVALID", "Unable to parse Measurement Protocol JSON payload.")]
        out: list[dict[str, str]] = []
        if not body.get("client_id"):
            out.append(_msg("client_id", "VALUE_REQUIRED", "client_id is required."))
        ts = body.get("timestamp_micros")
        if ts is not None and time.time() * 1e6 - int(ts) > 72 * 3600 * 1e6:
            out.append(
                _msg(
                    "timestamp_micros", "VALUE_OUT_OF_BOUNDS", "Timestamp is more than 72 hours in the past."
                )
            )
        events = body.get("events") or []
        if len(events) > 25:
            out.append(_msg("events", "EXCEEDED_MAX_ENTITIES", "A request can have at most 25 events."))
        for i, event in enumerate(events):
            name = str(event.get("name", ""))
            if not NAME.match(name) or len(name) > 40:
                out.append(
                    _msg("events", "NAME_INVALID", f"Event at index: [{i}] has invalid name [{name}].")
                )
            elif name in RESERVED_EVENTS or name.startswith(RESERVED_PREFIXES):
                out.append(
                    _msg("events", "NAME_RESERVED", f"Event at index: [{i}] has reserved name [{name}].")
                )
            params = event.get("params") or {}
            if len(params) > 25:
                out.append(
                    _msg(
                        f"events[{i}].params", "EXCEEDED_MAX_ENTITIES", "An event can have at most 25 params."
                    )
                )
            for key, value in params.items():
                if not NAME.match(key) or len(key) > 40 or key.startswith(RESERVED_PREFIXES):
                    out.append(
                        _msg(f"events[{i}].params", "NAME_INVALID", f"Param [{key}] has an invalid name.")
                    )
                if isinstance(value, str) and len(value) > 100:
                    out.append(
                        _msg(f"events[{i}].params.{key}", "VALUE_OUT_OF_BOUNDS", "Value is longer than 100.")
                    )
        return out

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes, headers: dict[str, str]
    ) -> Response:
        # POST /mp/collect — https://developers.google.com/analytics/devguides/collection/protocol/ga4/sending-events
        # POST /debug/mp/collect —
        # https://developers.google.com/analytics/devguides/collection/protocol/ga4/validating-events
        if method != "POST" or path not in ("/mp/collect", "/debug/mp/collect"):
            return json_response(404, {"error": "not found"})
        with self.lock:
            if self.fail_next:
                status, extra = self.fail_next.pop(0)
                return status, {"Content-Type": "text/plain", **extra}, b"error"
        messages = self.validate(body)
        if path == "/debug/mp/collect":
            with self.lock:
                self.validated += 1
            return json_response(200, {"validationMessages": messages})
        mid = (query.get("measurement_id") or [""])[0]
        secret = (query.get("api_secret") or [""])[0]
        record = {"measurement_id": mid, "body": json.loads(body) if not messages else body}
        with self.lock:
            if messages or self.streams.get(mid) != secret:
                self.dropped.append(record)
            else:
                self.collected.append(record)
        return 204, {}, b""
