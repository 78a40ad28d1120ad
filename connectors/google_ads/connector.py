"""The Google Ads connector: one instance per connected customer account."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Sequence
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from connectors.base import (
    AccountContext,
    AuthRevoked,
    DealUpdate,
    DeliveryItem,
    DeliveryOutcome,
    DeliveryResult,
    PulledSpend,
    RateLimit,
    TokenExpired,
)
from connectors.google_ads import mapping
from connectors.google_ads.client import ApiError, GoogleAdsApi, UploadResult
from connectors.google_ads.mapping import CALL, CLICK, MAX_PER_REQUEST, Planned

# gRPC statuses worth another try later; everything else about a request is permanent.
_TRANSIENT = frozenset(
    {"UNAVAILABLE", "INTERNAL", "DEADLINE_EXCEEDED", "UNKNOWN", "ABORTED", "RESOURCE_EXHAUSTED"}
)
_QUOTA = "quota exhausted"
# UNAUTHENTICATED with these codes means the grant itself is gone, not just the hour-long token.
_GRANT_GONE = frozenset(
    {
        "OAUTH_TOKEN_REVOKED",
        "OAUTH_TOKEN_DISABLED",
        "GOOGLE_ACCOUNT_DELETED",
        "NOT_ADS_USER",
        "DEVELOPER_TOKEN_INVALID",
        "CUSTOMER_NOT_FOUND",
    }
)


def _endpoint(api_base: str) -> str:
    """``https://host[:port]`` or bare ``host[:port]`` → the gRPC target (the client adds :443)."""
    if "//" not in api_base:
        return api_base.rstrip("/")
    return urlsplit(api_base).netloc


def _until_quota_reset(now: dt.datetime) -> float:
    """Google resets daily quotas at midnight Pacific Time."""
    pacific = now.astimezone(ZoneInfo("America/Los_Angeles"))
    midnight = (pacific + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max((midnight - pacific).total_seconds(), 60.0)


class GoogleAdsConnector:
    name = "google_ads"

    def __init__(
        self,
        ctx: AccountContext,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.ctx = ctx
        # Unset only while connecting, before the user has picked an account (accessible_customers).
        raw_customer = ctx.account.get("customer_id") or ""
        self.customer_id = mapping.customer_id(raw_customer) if raw_customer else ""
        manager = ctx.account.get("login_customer_id") or ""
        self.login_customer_id = mapping.customer_id(manager) if manager else None
        developer_token = ctx.extra.get("developer_token") or ""
        if not developer_token:
            raise ValueError("Google Ads needs the agency's developer token (extra['developer_token'])")
        self.batch_size = max(1, min(int(ctx.settings.get("batch_size") or MAX_PER_REQUEST), MAX_PER_REQUEST))
        self._sleep = sleep
        self.api = GoogleAdsApi(
            endpoint=_endpoint(ctx.api_base),
            developer_token=developer_token,
            token_source=ctx.access_token,
            login_customer_id=self.login_customer_id,
            timeout=float(ctx.settings.get("timeout_seconds") or 120.0),
        )

    # --- limits -------------------------------------------------------------------------------------

    def rate_limit(self) -> RateLimit:
        """Requests per second (Google publishes no fixed QPS; 1/s with a small burst stays far below the
        per-token limits) and daily operations by the developer token's access level."""
        settings = self.ctx.settings
        level = str(settings.get("access_level") or "basic").lower()
        if level not in mapping.DAILY_OPERATIONS:
            raise ValueError(f"unknown developer-token access level {level!r}")
        daily = settings.get("daily_operations")
        return RateLimit(
            per_second=float(settings.get("requests_per_second") or 1.0),
            burst=int(settings.get("burst") or 5),
            daily=int(daily) if daily else mapping.DAILY_OPERATIONS[level],
        )

    # --- push ---------------------------------------------------------------------------------------

    def _require_customer(self) -> str:
        if not self.customer_id:
            raise ValueError("no Google Ads customer id chosen for this connection")
        return self.customer_id

    def push(self, items: Sequence[DeliveryItem]) -> list[DeliveryResult]:
        self._require_customer()
        results: list[DeliveryResult] = []
        queues: dict[str, list[Planned]] = {CLICK: [], CALL: []}
        for item in items:
            try:
                planned = mapping.plan(item, self.ctx, self.customer_id)
            except (KeyError, ValueError, TypeError) as exc:
                results.append(DeliveryResult(item.id, DeliveryOutcome.DEAD, error=f"bad payload: {exc!r}"))
                continue
            if planned.skip_reason:
                results.append(DeliveryResult(item.id, DeliveryOutcome.SKIPPED, error=planned.skip_reason))
            elif planned.service:
                queues[planned.service].append(planned)

        limit = self.rate_limit()
        self._cap_to_daily_quota(queues, results, limit.daily)
        gap = 1.0 / limit.per_second
        stop: DeliveryResult | None = None  # after a quota error the rest waits for the same delay
        sent = 0
        for service, planned_rows in queues.items():
            for start in range(0, len(planned_rows), self.batch_size):
                batch = planned_rows[start : start + self.batch_size]
                if stop is not None:
                    results.extend(
                        DeliveryResult(
                            p.item.id, stop.outcome, error=stop.error, retry_after=stop.retry_after
                        )
                        for p in batch
                    )
                    continue
                if sent:
                    self._sleep(gap)
                sent += 1
                try:
                    batch_results = self._send(service, batch)
                except (TokenExpired, AuthRevoked) as exc:
                    if sent == 1:
                        raise
                    # Earlier batches arrived: report them, and let the rest come back on the next push,
                    # which meets the same refusal first and raises it to the pipeline.
                    stop = DeliveryResult(0, DeliveryOutcome.RETRY, error=f"{type(exc).__name__}: {exc}")
                    batch_results = [
                        DeliveryResult(p.item.id, DeliveryOutcome.RETRY, error=stop.error) for p in batch
                    ]
                    results.extend(batch_results)
                    continue
                results.extend(batch_results)
                stop = next((r for r in batch_results if r.error and r.error.startswith(_QUOTA)), stop)
        return results

    def _cap_to_daily_quota(
        self, queues: dict[str, list[Planned]], results: list[DeliveryResult], daily: int | None
    ) -> None:
        """One push never spends more than a day's operations; the excess waits for the quota reset.
        (Across pushes the pipeline enforces ``rate_limit().daily``.)"""
        if daily is None:
            return
        room = daily
        wait = _until_quota_reset(dt.datetime.now(dt.UTC))
        for service, planned_rows in queues.items():
            keep, over = planned_rows[:room], planned_rows[room:]
            room -= len(keep)
            queues[service] = keep
            results.extend(
                DeliveryResult(
                    p.item.id,
                    DeliveryOutcome.RETRY,
                    error=f"{_QUOTA}: over {daily} operations a day",
                    retry_after=wait,
                )
                for p in over
            )

    def _send(self, service: str, batch: list[Planned], *, resend: bool = True) -> list[DeliveryResult]:
        upload = self.api.upload_click_conversions if service == CLICK else self.api.upload_call_conversions
        try:
            outcome = upload(self.customer_id, [p.conversion for p in batch])  # type: ignore[misc]
        except ApiError as exc:
            self._raise_auth(exc)
            located = [e for e in exc.errors if e.index is not None and 0 <= e.index < len(batch)]
            if resend and exc.status == "INVALID_ARGUMENT" and located and len(located) == len(exc.errors):
                return self._drop_and_resend(service, batch, exc)
            return [self._whole_request_result(p.item, exc) for p in batch]
        return self._per_row(batch, outcome)

    def _drop_and_resend(self, service: str, batch: list[Planned], exc: ApiError) -> list[DeliveryResult]:
        """A whole request refused for specific rows (validation before partial failure applies): those
        rows are dead, the others go again once in the same push."""
        bad: dict[int, list[mapping.RowError]] = {}
        for err in exc.errors:
            bad.setdefault(int(err.index or 0), []).append(err)
        results = [
            DeliveryResult(batch[i].item.id, DeliveryOutcome.DEAD, error="; ".join(map(str, errs)))
            for i, errs in sorted(bad.items())
        ]
        rest = [p for i, p in enumerate(batch) if i not in bad]
        if rest:
            self._sleep(1.0 / self.rate_limit().per_second)
            results.extend(self._send(service, rest, resend=False))
        return results

    def _per_row(self, batch: list[Planned], result: UploadResult) -> list[DeliveryResult]:
        out: list[DeliveryResult] = []
        for i, p in enumerate(batch):
            errors = result.row_errors.get(i)
            if not errors:
                if result.request_errors:
                    # A failure that names no row leaves every row without a verdict: try them again
                    # (rows that did apply come back as "already exists" and turn DONE then).
                    text = "; ".join(map(str, result.request_errors))
                    out.append(DeliveryResult(p.item.id, DeliveryOutcome.RETRY, error=text))
                else:
                    out.append(DeliveryResult(p.item.id, DeliveryOutcome.DONE, external_id=p.external_id))
                continue
            verdict, retry_after = mapping.row_outcome(errors)
            text = "; ".join(map(str, errors))
            if verdict == DeliveryOutcome.DONE:
                out.append(
                    DeliveryResult(p.item.id, DeliveryOutcome.DONE, external_id=p.external_id, error=text)
                )
            else:
                out.append(DeliveryResult(p.item.id, verdict, error=text, retry_after=retry_after))
        return out

    def _raise_auth(self, exc: ApiError) -> None:
        names = {e.name for e in exc.errors}
        if exc.status == "UNAUTHENTICATED":
            if names & _GRANT_GONE:
                raise AuthRevoked(str(exc))
            raise TokenExpired(str(exc))
        if exc.status == "PERMISSION_DENIED":
            raise AuthRevoked(str(exc))

    def _whole_request_result(self, item: DeliveryItem, exc: ApiError) -> DeliveryResult:
        quota = exc.status == "RESOURCE_EXHAUSTED" or any(e.category == "quota_error" for e in exc.errors)
        if quota:
            wait = exc.retry_after or _until_quota_reset(dt.datetime.now(dt.UTC))
            return DeliveryResult(item.id, DeliveryOutcome.RETRY, error=f"{_QUOTA}: {exc}", retry_after=wait)
        if exc.status in _TRANSIENT:
            return DeliveryResult(item.id, DeliveryOutcome.RETRY, error=str(exc), retry_after=exc.retry_after)
        return DeliveryResult(item.id, DeliveryOutcome.DEAD, error=str(exc))

    def find_delivered(self, items: Sequence[DeliveryItem]) -> dict[int, str]:
        """Google offers no look-up of uploaded conversions by our id, so nothing is known here; a re-send
        is safe instead: click conversions carry ``order_id`` = item key and a repeat comes back as
        ORDER_ID_ALREADY_IN_USE (call conversions as CALL_CONVERSION_ALREADY_EXISTS), which ``push``
        reports as DONE without a second conversion at Google."""
        return {}

    # --- pull ---------------------------------------------------------------------------------------

    def _search(self, query: str) -> list[dict[str, object]]:
        fields = [f.strip() for f in query.split("SELECT", 1)[1].split("FROM", 1)[0].split(",")]
        try:
            return list(self.api.search_stream(self._require_customer(), query, fields))
        except ApiError as exc:
            self._raise_auth(exc)
            raise

    def pull_spend(self, start: dt.date, end: dt.date) -> Iterable[PulledSpend]:
        levels = {level: self._search(query) for level, query in mapping.spend_queries(start, end).items()}
        return mapping.spend_rows(
            levels["campaign"], levels["ad_group"], levels["keyword"], self.ctx.currency
        )

    def pull_deals(self, since: dt.datetime) -> Iterable[DealUpdate]:
        return []

    # --- connect-time helpers (not part of the Connector protocol) ---------------------------------

    def accessible_customers(self) -> list[str]:
        """Customer ids (digits) the authorising user can reach directly, for the account picker."""
        try:
            names = self.api.list_accessible_customers()
        except ApiError as exc:
            self._raise_auth(exc)
            raise
        return [name.rsplit("/", 1)[-1] for name in names]

    def conversion_actions(self) -> list[dict[str, str]]:
        """Enabled import actions of the account: ``{"id", "name", "kind"}`` with kind ``click`` (for
        call_conversion_action / deal_conversion_action) or ``call`` (for the call-asset settings)."""
        rows = self._search(mapping.CONVERSION_ACTIONS_QUERY)
        kinds = {"UPLOAD_CLICKS": "click", "UPLOAD_CALLS": "call"}
        return [
            {
                "id": str(r["conversion_action.id"]),
                "name": str(r["conversion_action.name"]),
                "kind": kinds[str(r["conversion_action.type"])],
            }
            for r in rows
            if str(r["conversion_action.type"]) in kinds
        ]
