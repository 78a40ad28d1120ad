"""Spend from one Direct account (an agency's client login, or the advertiser itself) via Reports."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Sequence

from connectors.base import (
    AccountContext,
    DealUpdate,
    DeliveryItem,
    DeliveryOutcome,
    DeliveryResult,
    PulledSpend,
    RateLimit,
)
from connectors.http import Problem, Verdict
from connectors.yandex_direct import mapping
from connectors.yandex_direct.client import LIMIT_CODES, DirectClient, DirectError

DEFAULT_RETRY_IN = 10.0  # when Direct queues a report without saying when to ask again
QUEUE_WAIT = 60.0  # when the offline queue (5 reports per advertiser) is full
MIN_WAIT = 1.0  # a retryIn of 0 must not turn polling into a busy loop against the API


class YandexDirectConnector:
    name = "yandex_direct"

    def __init__(self, ctx: AccountContext, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.ctx = ctx
        self._sleep = sleep
        settings = ctx.settings
        self.include_vat = bool(settings.get("include_vat", True))
        self.budget = float(settings.get("report_timeout_seconds", 900))
        self.max_wait = float(settings.get("max_poll_interval", 120))
        self.currency = str(ctx.account.get("currency") or ctx.currency)
        self.client = DirectClient(
            ctx.api_base,
            ctx.access_token,
            client_login=ctx.account.get("client_login") or None,
            session=ctx.http,
        )

    def rate_limit(self) -> RateLimit:
        # Reports are few and slow; Direct's own limits are points and queue slots, handled in pull_spend.
        return RateLimit(per_second=1.0, burst=1)

    def push(self, items: Sequence[DeliveryItem]) -> list[DeliveryResult]:
        return [
            DeliveryResult(i.id, DeliveryOutcome.SKIPPED, error="Direct takes no deliveries") for i in items
        ]

    def find_delivered(self, items: Sequence[DeliveryItem]) -> dict[int, str]:
        return {}

    def pull_deals(self, since: dt.datetime) -> Iterable[DealUpdate]:
        return []

    def pull_spend(self, start: dt.date, end: dt.date) -> list[PulledSpend]:
        """Every spend row in [start, end]; raises DirectError when the report cannot be had in time."""
        body = mapping.report_body(start, end, include_vat=self.include_vat)
        deadline = time.monotonic() + self.budget
        while True:
            try:
                answer = self.client.report(body)
            except DirectError as exc:
                if not exc.transient:
                    raise
                wait = exc.retry_after
                if wait is None:
                    wait = QUEUE_WAIT if exc.code in LIMIT_CODES else DEFAULT_RETRY_IN
                self._pause(wait, deadline, exc)
                continue
            if answer.status == 200:
                return mapping.parse_report(answer.text, self.currency)
            # 201 queued / 202 building: repeat the identical request after retryIn.
            wait = answer.retry_in if answer.retry_in is not None else DEFAULT_RETRY_IN
            self._pause(wait, deadline, None)

    def _pause(self, wait: float, deadline: float, cause: DirectError | None) -> None:
        wait = min(max(wait, MIN_WAIT), self.max_wait)
        if time.monotonic() + wait > deadline:
            if cause is not None:
                raise cause
            raise DirectError(
                Problem(202, "0", "report not ready within the time budget", retry_after=wait), Verdict.RETRY
            )
        self._sleep(wait)
