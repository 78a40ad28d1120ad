"""Push calls and won deals to GA4, one request per event, each checked by the validation server first.

Outcomes: sent → done; no GA client id or older than 72 hours → skipped with the reason; validation
messages or an invalid configured event name → dead with Google's words; 429/5xx/no answer → retry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from connectors.base import (
    AccountContext,
    DeliveryItem,
    DeliveryOutcome,
    DeliveryResult,
    PushOnly,
    RateLimit,
)
from connectors.ga4 import mapping
from connectors.ga4.client import Ga4Client, Ga4Error


def _messages(messages: list[dict]) -> str:
    return "; ".join(
        f"{m.get('validationCode', '?')} at {m.get('fieldPath', '?')}: {m.get('description', '')}"
        for m in messages
    )


class Ga4Connector(PushOnly):
    name = "ga4"
    max_batch = 1  # one request per event: its outcome is recorded before the next is sent

    def __init__(self, ctx: AccountContext, *, now: dt.datetime | None = None) -> None:
        self.ctx = ctx
        self._now = now
        self.validate = str(ctx.settings.get("validate", True)).lower() not in ("false", "0", "no")

    def rate_limit(self) -> RateLimit:
        return RateLimit(per_second=10.0, burst=10)

    def _client(self) -> Ga4Client:
        return Ga4Client(
            self.ctx.api_base,
            str(self.ctx.account.get("measurement_id", "")),
            self.ctx.access_token(),
            session=self.ctx.http,
        )

    def push(self, items: Sequence[DeliveryItem]) -> list[DeliveryResult]:
        now = self._now or dt.datetime.now(dt.UTC)
        client = self._client()
        results = []
        for item in items:
            planned = mapping.plan(item, dict(self.ctx.settings), now)
            if planned.skip:
                results.append(DeliveryResult(item.id, DeliveryOutcome.SKIPPED, error=planned.skip))
                continue
            if planned.invalid or planned.body is None:
                results.append(DeliveryResult(item.id, DeliveryOutcome.DEAD, error=planned.invalid))
                continue
            results.append(self._send(client, item, planned.body))
        return results

    def _send(self, client: Ga4Client, item: DeliveryItem, body: dict) -> DeliveryResult:
        try:
            if self.validate:
                messages = client.validate(body)
                if messages:
                    return DeliveryResult(
                        item.id, DeliveryOutcome.DEAD, error="GA4 refused: " + _messages(messages)
                    )
            client.collect(body)
        except Ga4Error as exc:
            outcome = DeliveryOutcome.RETRY if exc.transient else DeliveryOutcome.DEAD
            return DeliveryResult(item.id, outcome, error=f"GA4 HTTP {exc}", retry_after=exc.retry_after)
        return DeliveryResult(item.id, DeliveryOutcome.DONE, external_id=f"ga4:{body['client_id']}")
