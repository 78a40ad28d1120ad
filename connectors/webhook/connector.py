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
from typing import Any

import requests

from connectors.base import (
    AccountContext,
    DeliveryItem,
    DeliveryResult,
    ItemKind,
    Outcome,
    PushOnly,
    RateLimit,
)
from connectors.pacing import retry_after_header
from connectors.webhook import signing, urls

EVENT_FOR_KIND = {
    ItemKind.CALL: "call.finalised",
    ItemKind.CALL_ATTRIBUTED: "call.attributed",
    ItemKind.DEAL_WON: "deal.won",
}
RETRY_STATUSES = {408, 425, 429}
TIMEOUT = 15.0
USER_AGENT = "Otkuda-Webhooks/1"


def envelope(item: DeliveryItem) -> dict[str, Any]:
    """The JSON body: which event, its id (stable across re-sends), and the call or deal."""
    return {"id": item.key, "event": EVENT_FOR_KIND[item.kind], "data": item.payload}


class WebhookConnector(PushOnly):
    name = "webhook"
    # One event per claimed batch: each event's outcome is recorded before the next is sent, so a crash
    # leaves at most one event in doubt.
    max_batch = 1

    def __init__(self, ctx: AccountContext, *, http: requests.Session | None = None) -> None:
        self.ctx = ctx
        self.url = str(ctx.account.get("url", ""))
        self.allow_private = urls.allowed_private(ctx.extra.get("allow_private"))
        self._http = http or requests.Session()

    def rate_limit(self) -> RateLimit:
        return RateLimit(per_second=float(self.ctx.settings.get("requests_per_second", 5)), burst=5)

    def push(self, items: Sequence[DeliveryItem]) -> list[DeliveryResult]:
        try:
            urls.check(self.url, allow_private=self.allow_private)
        except urls.UnsafeURL as exc:
            return [DeliveryResult(i.id, Outcome.DEAD, error=f"webhook URL refused: {exc}") for i in items]
        secret = self.ctx.access_token()
        return [self._send(item, secret) for item in items]

    def _send(self, item: DeliveryItem, secret: str) -> DeliveryResult:
        if item.kind not in EVENT_FOR_KIND:
            return DeliveryResult(item.id, Outcome.SKIPPED, error=f"no webhook event for {item.kind}")
        body = json.dumps(envelope(item), ensure_ascii=False, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Otkuda-Event": EVENT_FOR_KIND[item.kind],
            "Otkuda-Event-Id": item.key,
            signing.SIGNATURE_HEADER: signing.sign(secret, body, int(time.time())),
        }
        try:
            resp = self._http.post(
                self.url, data=body, headers=headers, timeout=TIMEOUT, allow_redirects=False
            )
        except requests.RequestException as exc:
            return DeliveryResult(item.id, Outcome.RETRY, error=f"no answer: {type(exc).__name__}")
        status = resp.status_code
        if 200 <= status < 300:
            return DeliveryResult(item.id, Outcome.DONE, external_id=f"HTTP {status}")
        detail = f"HTTP {status}: {resp.text[:200]}"
        if status in RETRY_STATUSES or status >= 500:
            return DeliveryResult(item.id, Outcome.RETRY, error=detail, retry_after=retry_after_header(resp))
        if 300 <= status < 400:
            return DeliveryResult(item.id, Outcome.DEAD, error=f"{detail} (redirects are not followed)")
        return DeliveryResult(item.id, Outcome.DEAD, error=detail)
