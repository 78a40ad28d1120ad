"""Finalised calls and won deals to one Metrika counter, one CSV upload per identifier type and chunk."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from connectors.base import (
    AccountContext,
    AuthRevoked,
    DealUpdate,
    DeliveryItem,
    DeliveryOutcome,
    DeliveryResult,
    ItemKind,
    PulledSpend,
    RateLimit,
    TokenExpired,
)
from connectors.metrika import mapping
from connectors.metrika.client import MetrikaClient, MetrikaError, UploadKind
from connectors.pacing import Throttle

# Metrika's Management API quotas (the protocol notes name the 429 error types, not the numbers): the
# documented figures are 30 requests a second per IP and 5000 a day per login; a push is a few requests,
# so the pipeline's bucket is kept well inside both.
PER_SECOND = 3.0
DAILY = 5000
# Statuses after which the counts are final.
FINAL_STATUSES = {"PROCESSED", "LINKAGE_FAILURE"}
UPLOAD_KIND = {ItemKind.CALL: UploadKind.CALLS, ItemKind.DEAL_WON: UploadKind.BASIC}


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class MetrikaConnector:
    name = "metrika"

    def __init__(
        self,
        ctx: AccountContext,
        *,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self.ctx = ctx
        self._now = now
        settings = ctx.settings
        self.window_days = int(settings.get("window_days", mapping.WINDOW_DAYS))
        self.max_rows = int(settings.get("max_rows_per_file", 1000))
        counter_id = str(ctx.account.get("counter_id") or "").strip()
        if not counter_id.isdigit():
            raise ValueError(f"Metrika connection {ctx.connection_id} has no numeric counter_id")
        self.client = MetrikaClient(
            ctx.api_base, counter_id, ctx.access_token, throttle=Throttle(PER_SECOND, sleep), session=ctx.http
        )

    def rate_limit(self) -> RateLimit:
        return RateLimit(per_second=PER_SECOND, burst=3, daily=DAILY)

    # --- push --------------------------------------------------------------------------------------

    def push(self, items: Sequence[DeliveryItem]) -> list[DeliveryResult]:
        results, items = self._already_uploaded(items)
        groups: dict[tuple[ItemKind, str], list[tuple[DeliveryItem, mapping.Row]]] = {}
        now = self._now()
        for item in items:
            try:
                row = self._row(item, now)
            except mapping.NotSendable as exc:
                outcome = DeliveryOutcome.SKIPPED if exc.skip else DeliveryOutcome.DEAD
                results.append(DeliveryResult(item.id, outcome, error=str(exc)))
                continue
            except (KeyError, TypeError, ValueError) as exc:
                results.append(
                    DeliveryResult(item.id, DeliveryOutcome.DEAD, error=f"malformed payload: {exc!r}")
                )
                continue
            groups.setdefault((item.kind, row.id_type), []).append((item, row))
        files = [
            (kind, id_type, [entries[i] for i in chunk])
            for (kind, id_type), entries in groups.items()
            for chunk in mapping.chunk_for_comments([item.key for item, _ in entries], self.max_rows)
        ]
        for n, (kind, id_type, entries) in enumerate(files):
            try:
                results.extend(self._upload(kind, id_type, entries))
            except (TokenExpired, AuthRevoked) as exc:
                if n == 0:
                    raise
                # Files already in must be reported as delivered; the rest wait for the next push,
                # whose first request raises again so the pipeline refreshes or re-authorises.
                rest = [item for _, _, later in files[n:] for item, _ in later]
                refused = f"token refused mid-batch: {type(exc).__name__}"
                results.extend(
                    DeliveryResult(i.id, DeliveryOutcome.RETRY, error=refused, retry_after=0) for i in rest
                )
                break
        return results

    def _already_uploaded(
        self, items: Sequence[DeliveryItem]
    ) -> tuple[list[DeliveryResult], list[DeliveryItem]]:
        """Items tried before may have arrived (a timeout or 5xx after Metrika stored the file): look
        their keys up first, so a retry never uploads a second copy."""
        retried = [item for item in items if item.attempts > 0]
        if not retried:
            return [], list(items)
        try:
            found = self.find_delivered(retried)
        except MetrikaError as exc:
            return [self._failure(item.id, exc) for item in retried], [i for i in items if i.attempts == 0]
        done = [
            DeliveryResult(
                item_id, DeliveryOutcome.DONE, external_id=upload_id, error=f"upload {upload_id} (found)"
            )
            for item_id, upload_id in found.items()
        ]
        return done, [item for item in items if item.id not in found]

    def _row(self, item: DeliveryItem, now: dt.datetime) -> mapping.Row:
        if item.kind == ItemKind.CALL:
            return mapping.call_row(
                item.payload,
                hub_base_url=self.ctx.hub_base_url,
                now=now,
                window_days=self.window_days,
                phone_column=str(self.ctx.settings.get("phone_number", "tracking")),
            )
        if item.kind == ItemKind.DEAL_WON:
            goal = str(self.ctx.settings.get("deal_goal") or "").strip()
            if not goal:
                raise mapping.NotSendable("no Metrika goal is set for won deals (deal_goal)", skip=True)
            return mapping.deal_row(item.payload, goal=goal, now=now, window_days=self.window_days)
        raise mapping.NotSendable(f"Metrika takes no {item.kind}", skip=True)

    def _upload(
        self, kind: ItemKind, id_type: str, entries: list[tuple[DeliveryItem, mapping.Row]]
    ) -> list[DeliveryResult]:
        items = [item for item, _ in entries]
        comment = mapping.encode_keys([item.key for item in items])
        if len(comment) > mapping.COMMENT_LIMIT:
            return [DeliveryResult(i.id, DeliveryOutcome.DEAD, error="delivery key too long") for i in items]
        rows = [row for _, row in entries]
        try:
            columns = mapping.CALL_COLUMNS if kind == ItemKind.CALL else mapping.DEAL_COLUMNS
            uploading = self.client.upload(
                UPLOAD_KIND[kind],
                mapping.to_csv(id_type, columns, rows),
                client_id_type=id_type,
                comment=comment,
                new_goal_name=self.ctx.settings.get("calls_goal_name"),
            )
        except MetrikaError as exc:
            return [self._failure(item.id, exc) for item in items]
        # Delivered once Metrika has stored the file: its processing takes minutes to hours and waiting for
        # it here would hold up every other destination's deliveries.
        upload_id = str(uploading.get("id"))
        note = summary(uploading)
        return [
            DeliveryResult(item.id, DeliveryOutcome.DONE, external_id=upload_id, error=note) for item in items
        ]

    def _failure(self, item_id: int, exc: MetrikaError) -> DeliveryResult:
        if exc.transient:
            return DeliveryResult(item_id, DeliveryOutcome.RETRY, error=str(exc), retry_after=exc.retry_after)
        return DeliveryResult(item_id, DeliveryOutcome.DEAD, error=str(exc))

    # --- recovery ----------------------------------------------------------------------------------

    def find_delivered(self, items: Sequence[DeliveryItem]) -> dict[int, str]:
        """Items whose key is in the comment of an upload already at Metrika (see mapping.encode_keys)."""
        found: dict[int, str] = {}
        for kind, upload_kind in UPLOAD_KIND.items():
            wanted = {item.key: item.id for item in items if item.kind == kind}
            if not wanted:
                continue
            # A failed listing raises: unknown is not "absent", and a guess would invite a duplicate.
            # Each family is listed through its own endpoint: call uploads are absent from the other list.
            for uploading in self.client.uploadings(upload_kind):
                for key in mapping.decode_keys(uploading.get("comment")):
                    if key in wanted:
                        found[wanted[key]] = str(uploading.get("id"))
        return found

    def pull_spend(self, start: dt.date, end: dt.date) -> Iterable[PulledSpend]:
        return []

    def pull_deals(self, since: dt.datetime) -> Iterable[DealUpdate]:
        return []


def summary(uploading: dict[str, Any]) -> str:
    """The upload's status and counts, kept on each delivery of the file."""
    parts = [f"upload {uploading.get('id')} {uploading.get('status')}"]
    for field, label in (
        ("source_quantity", "rows sent"),
        ("line_quantity", "rows valid"),
        ("linked_quantity", "linked"),
        ("user_not_found_quantity", "visitor not found"),
        ("goal_not_found_quantity", "goal not found"),
        ("static_calls_quantity", "static"),
        ("dynamic_calls_quantity", "dynamic"),
    ):
        if uploading.get(field) is not None:
            parts.append(f"{label} {uploading[field]}")
    if uploading.get("status") == "LINKAGE_FAILURE":
        parts.append("no row matched a Metrika visitor")
    elif uploading.get("status") not in FINAL_STATUSES:
        parts.append("processing at Metrika")
    return "; ".join(parts)
