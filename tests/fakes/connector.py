"""A connector for the fake destination, built exactly as a real one is (client calls + mapping).

Registered by tests as ``connectors.registry.CONNECTORS["fakedest"] = "tests.fakes.connector"``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal

import requests

from connectors.base import (
    AccountContext,
    AccountField,
    AuthRevoked,
    DealUpdate,
    DeliveryItem,
    DeliveryOutcome,
    DeliveryResult,
    OAuthProvider,
    PulledSpend,
    RateLimit,
    TokenExpired,
)

NAME = "fakedest"
PROVIDER = OAuthProvider(
    name="fakeoauth",
    title="Fake CRM",
    authorize_url="http://127.0.0.1:9/authorize",
    token_url="http://127.0.0.1:9/token",
    api_base="http://127.0.0.1:9",
    scopes=("read", "write"),
    config_prefix="FAKE",
    account_from_callback=lambda args, token: {"subdomain": args.get("referer", "")},
)
ACCOUNT_FIELDS = (AccountField("counter_id", r"[0-9]{1,12}", "a counter number"),)
CAPABILITIES = {"push_calls", "push_deals", "spend", "deals"}


class FakeDestConnector:
    name = NAME

    def __init__(self, ctx: AccountContext) -> None:
        self.ctx = ctx
        self.http = ctx.http or requests.Session()

    def rate_limit(self) -> RateLimit:
        daily = self.ctx.settings.get("daily")
        return RateLimit(
            per_second=float(self.ctx.settings.get("per_second", 50)),
            burst=5,
            daily=int(daily) if daily is not None else None,
        )

    def _call(self, method: str, path: str, **kwargs: object) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.ctx.access_token()}"}
        resp = self.http.request(method, self.ctx.api_base + path, headers=headers, timeout=60, **kwargs)  # type: ignore[arg-type]
        if resp.status_code == 401:
            raise TokenExpired()
        if resp.status_code == 403:
            raise AuthRevoked("account blocked")
        return resp

    def push(self, items: Sequence[DeliveryItem]) -> list[DeliveryResult]:
        body = {"events": [{"uid": i.key, "kind": i.kind.value, "data": i.payload} for i in items]}
        resp = self._call("POST", "/v1/events", json=body)
        by_key = {i.key: i.id for i in items}
        if resp.status_code == 429 or resp.status_code >= 500:
            after = resp.headers.get("Retry-After")
            return [
                DeliveryResult(
                    i.id,
                    DeliveryOutcome.RETRY,
                    error=f"HTTP {resp.status_code}",
                    retry_after=float(after) if after else None,
                )
                for i in items
            ]
        if resp.status_code >= 400:
            return [
                DeliveryResult(i.id, DeliveryOutcome.DEAD, error=f"HTTP {resp.status_code}") for i in items
            ]
        out = []
        for r in resp.json()["results"]:
            item_id = by_key[r["uid"]]
            if r["status"] == "ok":
                out.append(DeliveryResult(item_id, DeliveryOutcome.DONE, external_id=r["id"]))
            elif r["code"] == "validation":
                out.append(DeliveryResult(item_id, DeliveryOutcome.DEAD, error=r["message"]))
            else:
                out.append(DeliveryResult(item_id, DeliveryOutcome.RETRY, error=r["message"]))
        return out

    def find_delivered(self, items: Sequence[DeliveryItem]) -> dict[int, str]:
        resp = self._call("GET", "/v1/events", params=[("uid", i.key) for i in items])
        resp.raise_for_status()
        by_key = {i.key: i.id for i in items}
        return {by_key[f["uid"]]: f["id"] for f in resp.json()["found"]}

    def pull_spend(self, start: dt.date, end: dt.date) -> Iterable[PulledSpend]:
        resp = self._call("GET", "/v1/spend", params={"from": start.isoformat(), "to": end.isoformat()})
        resp.raise_for_status()
        for r in resp.json()["rows"]:
            yield PulledSpend(
                day=dt.date.fromisoformat(r["day"]),
                campaign_id=r["campaign_id"],
                campaign_name=r["campaign_name"],
                cost=Decimal(r["cost"]),
                currency=r["currency"],
                impressions=r.get("impressions", 0),
                clicks=r.get("clicks", 0),
                keyword_id=r.get("keyword_id", ""),
                keyword=r.get("keyword", ""),
            )

    def pull_deals(self, since: dt.datetime) -> Iterable[DealUpdate]:
        resp = self._call("GET", "/v1/deals", params={"since": since.isoformat()})
        resp.raise_for_status()
        for d in resp.json()["rows"]:
            yield DealUpdate(
                external_id=d["id"],
                status=d["status"],
                amount=Decimal(d["amount"]),
                currency=d["currency"],
                updated_at=dt.datetime.fromisoformat(d["updated_at"]),
                name=d.get("name", ""),
                contact_phones=tuple(d.get("phones", ())),
                call_keys=tuple(d.get("call_keys", ())),
                closed_at=dt.datetime.fromisoformat(d["closed_at"]) if d.get("closed_at") else None,
            )


def make_connector(ctx: AccountContext) -> FakeDestConnector:
    return FakeDestConnector(ctx)
