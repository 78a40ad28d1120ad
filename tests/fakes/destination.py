"""A fake delivery destination (CRM / analytics API) that records every event that arrives.

Wire protocol (what ``tests.fakes.connector`` speaks):
- ``POST /v1/events`` ``{"events": [{"uid": key, "kind": ..., "data": {...}}]}`` with a bearer token →
  ``{"results": [{"uid", "status": "ok", "id"} | {"uid", "status": "error", "code", "message"}]}``;
  401 for an unknown token, 429 with Retry-After or 5xx when told to.
- ``GET /v1/events?uid=…&uid=…`` → ``{"found": [{"uid", "id"}]}`` (how a re-send is avoided).
- ``GET /v1/spend?from=YYYY-MM-DD&to=YYYY-MM-DD`` and ``GET /v1/deals?since=ISO`` → ``{"rows": [...]}``.
"""

from __future__ import annotations

import collections
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from tests.fakes.http import FakeServer, Response, json_response


class FakeDestination(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.valid_tokens: set[str] = set()
        self.arrivals: list[str] = []  # uids, in arrival order, duplicates included
        self.pushes: list[tuple[str, str, int]] = []  # (uid, bearer token, client port) of each arrival
        self.refused = 0  # requests refused for their token
        self.after_push: Callable[[], None] | None = None  # runs after each accepted push, before the answer
        self.ids: dict[str, str] = {}
        self.push_requests = 0
        self.fail_next: list[tuple[int, dict[str, str]]] = []  # whole-request failures to answer, in order
        self.invalid_uids: set[str] = set()  # answered with a validation error (permanent)
        self.busy_uids: set[str] = set()  # answered with a passing per-item error
        # Crash simulation: in the push request number ``hang_on_request``, store ``hang_after`` events,
        # then block until ``release`` is set (the client is killed meanwhile) and drop the rest.
        self.hang_on_request: int | None = None
        self.hang_after = 0
        self.hanging = threading.Event()
        self.release = threading.Event()
        self.latency = 0.0  # seconds every push request takes, as a distant API would
        # Who pushes at once: requests under way now and at most, in all and per account (bearer token),
        # and when each account's requests came in.
        self.active: collections.Counter[str] = collections.Counter()
        self.max_active = 0
        self.max_active_per_account = 0
        self.push_times: dict[str, list[float]] = collections.defaultdict(list)
        self.spend_rows: list[dict[str, Any]] = []
        self.deals: list[dict[str, Any]] = []

    def counts(self) -> collections.Counter[str]:
        with self.lock:
            return collections.Counter(self.arrivals)

    def _auth_ok(self, headers: dict[str, str]) -> bool:
        auth = headers.get("Authorization", "")
        return auth.startswith("Bearer ") and auth[7:] in self.valid_tokens

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes, headers: dict[str, str]
    ) -> Response:
        if not self._auth_ok(headers):
            with self.lock:
                self.refused += 1
            return json_response(401, {"error": "unauthorized"})
        if method == "POST" and path == "/v1/events":
            account = headers.get("Authorization", "")
            with self.lock:
                self.active[account] += 1
                self.max_active = max(self.max_active, sum(self.active.values()))
                self.max_active_per_account = max(self.max_active_per_account, self.active[account])
                self.push_times[account].append(time.monotonic())
            try:
                doc = json.loads(body or b"{}")
                answer = self._push(doc)
                with self.lock:
                    port = self.current.peer[1]
                    for r in json.loads(answer[2]).get("results", []):
                        if r.get("status") == "ok":
                            self.pushes.append((r["uid"], account[7:], port))
                if self.after_push is not None:
                    self.after_push()
                return answer
            finally:
                with self.lock:
                    self.active[account] -= 1
        if method == "GET" and path == "/v1/events":
            with self.lock:
                found = [{"uid": u, "id": self.ids[u]} for u in query.get("uid", []) if u in self.ids]
            return json_response(200, {"found": found})
        if method == "GET" and path == "/v1/spend":
            lo, hi = query["from"][0], query["to"][0]
            return json_response(200, {"rows": [r for r in self.spend_rows if lo <= r["day"] <= hi]})
        if method == "GET" and path == "/v1/deals":
            since = query["since"][0]
            return json_response(200, {"rows": [d for d in self.deals if d["updated_at"] >= since]})
        return json_response(404, {"error": "not_found"})

    def _push(self, doc: dict[str, Any]) -> Response:
        if self.latency:
            time.sleep(self.latency)
        with self.lock:
            self.push_requests += 1
            number = self.push_requests
            if self.fail_next:
                status, headers = self.fail_next.pop(0)
                return json_response(status, {"error": "failure"}, headers)
        results = []
        for n, event in enumerate(doc.get("events", [])):
            if number == self.hang_on_request and n == self.hang_after:
                self.hanging.set()
                self.release.wait()
                # The client went away mid-request: the rest of the batch is dropped, the first part kept.
                return json_response(500, {"error": "client gone"})
            uid = event["uid"]
            if uid in self.invalid_uids:
                results.append({"uid": uid, "status": "error", "code": "validation", "message": "bad phone"})
                continue
            if uid in self.busy_uids:
                results.append({"uid": uid, "status": "error", "code": "busy", "message": "try later"})
                continue
            with self.lock:
                self.arrivals.append(uid)
                self.ids.setdefault(uid, f"ext-{len(self.ids) + 1}")
                results.append({"uid": uid, "status": "ok", "id": self.ids[uid]})
        return json_response(200, {"results": results})
