"""Posting events to a webhook URL, one request per event, and reading the receiver's answer.

Status → outcome: 2xx done; 410 Gone dead (the receiver asks us to stop); 408, 425, 429 and 5xx retry
(after Retry-After when given); 3xx dead (redirects are not followed: they could lead inside the network);
other 4xx dead with the status and the start of the body. No answer (refused, timed out) → retry: the
event id lets the receiver drop a second copy when the first did arrive.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

import requests
from pydantic import ValidationError

from connectors.base import (
    AccountContext,
    DeliveryItem,
    DeliveryOutcome,
    DeliveryResult,
    PushOnly,
    RateLimit,
)
from connectors.http import ApiClient, ApiError, Problem, Verdict, rule
from connectors.webhook import signing, urls
from connectors.webhook.events import EVENT_FOR_KIND, body

TIMEOUT = 15.0
USER_AGENT = "Otkuda-Webhooks/1"
# A receiver is no OAuth API: 401 is a refusal like any 4xx. What is not listed (and not in the common
# rules: no answer, 429, 5xx) is dead.
RULES = (
    rule(Verdict.DEAD, (401,)),
    rule(Verdict.RETRY, (408, 425)),
    rule(Verdict.RETRY, (), when=lambda p: p.status >= 500),
)


def read_problem(response: requests.Response) -> Problem:
    message = response.text[:200]
    if 300 <= response.status_code < 400:
        message += " (redirects are not followed)"
    return Problem(response.status_code, message=message)


class WebhookConnector(PushOnly):
    name = "webhook"
    # One event per claimed batch: each event's outcome is recorded before the next is sent, so a crash
    # leaves at most one event in doubt.
    max_batch = 1

    def __init__(self, ctx: AccountContext, *, http: requests.Session | None = None) -> None:
        self.ctx = ctx
        self.url = str(ctx.account.get("url", ""))
        self.allow_private = urls.allowed_private(ctx.extra.get("allow_private"))
        self.api = ApiClient(
            self.url,
            dict,
            read_problem,
            RULES,
            timeout=TIMEOUT,
            ok_statuses=frozenset(range(200, 300)),
            session=http or ctx.http or requests.Session(),
        )

    def rate_limit(self) -> RateLimit:
        return RateLimit(per_second=float(self.ctx.settings.get("requests_per_second", 5)), burst=5)

    def push(self, items: Sequence[DeliveryItem]) -> list[DeliveryResult]:
        try:
            urls.check(self.url, allow_private=self.allow_private)
        except urls.UnsafeURL as exc:
            return [
                DeliveryResult(i.id, DeliveryOutcome.DEAD, error=f"webhook URL refused: {exc}") for i in items
            ]
        secret = self.ctx.access_token()
        return [self._send(item, secret) for item in items]

    def _send(self, item: DeliveryItem, secret: str) -> DeliveryResult:
        if item.kind not in EVENT_FOR_KIND:
            return DeliveryResult(item.id, DeliveryOutcome.SKIPPED, error=f"no webhook event for {item.kind}")
        try:
            event = body(item.kind, item.key, item.payload)
        except ValidationError as exc:
            # A snapshot that does not fit the documented event is never sent in another shape.
            problem = exc.errors(include_url=False)[0]
            where = ".".join(str(part) for part in problem["loc"])
            return DeliveryResult(
                item.id, DeliveryOutcome.DEAD, error=f"not a documented event: {where}: {problem['msg']}"
            )
        raw = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Otkuda-Event": EVENT_FOR_KIND[item.kind],
            "Otkuda-Event-Id": item.key,
            signing.SIGNATURE_HEADER: signing.sign(secret, raw, int(time.time())),
        }
        try:
            resp = self.api.send("POST", self.url, data=raw, headers=headers, allow_redirects=False)
        except ApiError as exc:
            p = exc.problem
            if p.status == 0:
                return DeliveryResult(item.id, DeliveryOutcome.RETRY, error=f"no answer: {p.message}")
            outcome = DeliveryOutcome.RETRY if exc.transient else DeliveryOutcome.DEAD
            return DeliveryResult(
                item.id, outcome, error=f"HTTP {p.status}: {p.message}", retry_after=exc.retry_after
            )
        return DeliveryResult(item.id, DeliveryOutcome.DONE, external_id=f"HTTP {resp.status_code}")
