"""Fake Direct Reports API v5: ``POST /json/v5/reports`` with Bearer auth, Client-Login for agency
logins, request validation, offline queueing (201 then 202 with ``retryIn``, identical request polls),
a queue limit of five reports per advertiser, money in micros unless ``returnMoneyInMicros: false``, the
skip* headers, and the JSON error shape.

Sources: https://yandex.com/dev/direct/doc/en/spec (request body), https://yandex.com/dev/direct/doc/en/headers
(request and response headers), https://yandex.com/dev/direct/doc/en/mode (online/offline, 201/202,
retryIn), https://yandex.com/dev/direct/doc/en/codes (error body; 52 and 1000-1002 are "temporarily
unavailable" codes that may come under any status), https://yandex.com/dev/direct/doc/en/report-format.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from werkzeug.wrappers import Request, Response

from tests.fakes.oauth import AccessTokens

KNOWN_FIELDS = {
    "Date",
    "CampaignId",
    "CampaignName",
    "AdGroupId",
    "AdGroupName",
    "CriterionId",
    "Criterion",
    "Impressions",
    "Clicks",
    "Cost",
    "Ctr",
}
REQUIRED = (
    "SelectionCriteria",
    "FieldNames",
    "ReportName",
    "ReportType",
    "DateRangeType",
    "Format",
    "IncludeVAT",
)
QUEUE_LIMIT = 5
VAT = Decimal("1.20")


def error(
    status: int, code: int, text: str, detail: str = "", headers: dict[str, str] | None = None
) -> Response:
    body = {
        "error": {"request_id": "fake-1", "error_code": code, "error_string": text, "error_detail": detail}
    }
    return Response(json.dumps(body), status, headers, mimetype="application/json")


@dataclass
class Stat:
    """One advertiser's statistics row (cost without VAT)."""

    day: dt.date
    campaign_id: int
    campaign_name: str
    ad_group_id: int | None
    ad_group_name: str | None
    criterion_id: int | None
    criterion: str | None
    impressions: int
    clicks: int
    cost: Decimal


@dataclass
class Queued:
    params: dict[str, Any]
    polls_left: int


@dataclass
class FakeDirect:
    tokens: AccessTokens
    # login -> its statistics; agency logins map to the client logins they serve
    stats: dict[str, list[Stat]] = field(default_factory=dict)
    agencies: dict[str, set[str]] = field(default_factory=dict)
    polls_to_ready: int = 2  # 201, then 202 (polls_to_ready - 1 times), then 200
    retry_in: int = 0
    queue: dict[tuple[str, str], Queued] = field(default_factory=dict)  # (advertiser, ReportName)
    requests: list[dict[str, Any]] = field(default_factory=list)  # headers and params of each request
    answers: list[tuple[int, int]] = field(default_factory=list)  # (HTTP status, error_code or 0)
    failures: list[tuple[int, int, str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(
        self, status: int, code: int, text: str = "injected", headers: dict[str, str] | None = None
    ) -> None:
        self.failures.append((status, code, text, headers or {}))

    def handle(self, request: Request) -> Response | None:
        if request.path != "/json/v5/reports":
            return None
        response = self._answer(request)
        self.answers.append((response.status_code, _code_of(response)))
        return response

    # POST /json/v5/reports — the one Reports endpoint (spec, headers, mode pages above).
    def _answer(self, request: Request) -> Response:
        if request.method != "POST":
            return error(405, 8000, "Invalid request", "POST only")
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        login = self.tokens.owner_of(token) if scheme == "Bearer" else None
        if login is None:
            return error(401, 53, "Authorization error", "Invalid or missing Bearer token")
        advertiser = login
        client_login = request.headers.get("Client-Login")
        if login in self.agencies:
            if not client_login:
                return error(400, 8000, "Invalid request", "Client-Login is required for agency requests")
            if client_login not in self.agencies[login]:
                return error(400, 513, "Your login is not connected to Yandex Direct", client_login)
            advertiser = client_login
        elif client_login and client_login != login:
            return error(403, 54, "No rights", f"{login} does not serve {client_login}")
        try:
            params = request.get_json()["params"]
        except (TypeError, KeyError, ValueError):
            return error(400, 8000, "Invalid request", "JSON body with params is required")
        self.requests.append({"headers": dict(request.headers), "params": params})
        with self.lock:
            if self.failures:
                status, code, text, headers = self.failures.pop(0)
                return error(status, code, text, headers=headers)
            problem = _validate(params)
            if problem:
                return error(400, 8000, "Invalid request", problem)
            key = (advertiser, params["ReportName"])
            queued = self.queue.get(key)
            if queued is not None and queued.params != params:
                return error(
                    400, 4000, "Invalid request", "a report with this name but other parameters exists"
                )
            if queued is None:
                mode = request.headers.get("processingMode", "auto")
                if mode == "online" or self.polls_to_ready == 0:
                    return self._report(request, advertiser, params)
                if sum(1 for (adv, _) in self.queue if adv == advertiser) >= QUEUE_LIMIT:
                    return error(
                        400, 9000, "Report queue limit exceeded", headers={"retryIn": str(self.retry_in)}
                    )
                self.queue[key] = Queued(params, self.polls_to_ready - 1)
                return self._waiting(201)
            if queued.polls_left > 0:
                queued.polls_left -= 1
                return self._waiting(202)
            del self.queue[key]
            return self._report(request, advertiser, params)

    def _waiting(self, status: int) -> Response:
        return Response(
            "",
            status,
            {"retryIn": str(self.retry_in), "reportsInQueue": str(len(self.queue)), "RequestId": "fake"},
        )

    def _report(self, request: Request, advertiser: str, params: dict[str, Any]) -> Response:
        criteria = params["SelectionCriteria"]
        start, end = dt.date.fromisoformat(criteria["DateFrom"]), dt.date.fromisoformat(criteria["DateTo"])
        fields = params["FieldNames"]
        micros = request.headers.get("returnMoneyInMicros", "true").lower() != "false"
        include_vat = params["IncludeVAT"] == "YES"
        lines = []
        if request.headers.get("skipReportHeader", "false").lower() != "true":
            lines.append(f"{params['ReportName']} ({start} - {end})")
        if request.headers.get("skipColumnHeader", "false").lower() != "true":
            lines.append("\t".join(fields))
        rows = [s for s in self.stats.get(advertiser, []) if start <= s.day <= end]
        for stat in sorted(rows, key=lambda s: s.day):
            cost = stat.cost * VAT if include_vat else stat.cost
            values = {
                "Date": stat.day.isoformat(),
                "CampaignId": stat.campaign_id,
                "CampaignName": stat.campaign_name,
                "AdGroupId": stat.ad_group_id,
                "AdGroupName": stat.ad_group_name,
                "CriterionId": stat.criterion_id,
                "Criterion": stat.criterion,
                "Impressions": stat.impressions,
                "Clicks": stat.clicks,
                "Cost": int(cost * 1_000_000) if micros else cost.quantize(Decimal("0.01"), ROUND_HALF_UP),
                "Ctr": "--",
            }
            lines.append("\t".join("--" if values[f] is None else str(values[f]) for f in fields))
        if request.headers.get("skipReportSummary", "false").lower() != "true":
            lines.append(f"Total rows: {len(rows)}")
        body = "\n".join(lines) + "\n"
        return Response(
            body.encode("utf-8"), 200, {"RequestId": "fake"}, mimetype="text/tab-separated-values"
        )


def _code_of(response: Response) -> int:
    if response.mimetype != "application/json":
        return 0
    return int(json.loads(response.get_data())["error"]["error_code"])


def _validate(params: dict[str, Any]) -> str:
    if missing := [name for name in REQUIRED if name not in params]:
        return f"missing {missing}"
    if params["Format"] != "TSV":
        return "Format must be TSV"
    if params["IncludeVAT"] not in ("YES", "NO"):
        return "IncludeVAT must be YES or NO"
    if unknown := set(params["FieldNames"]) - KNOWN_FIELDS:
        return f"unknown FieldNames {sorted(unknown)}"
    if params["DateRangeType"] == "CUSTOM_DATE":
        criteria = params["SelectionCriteria"]
        try:
            start = dt.date.fromisoformat(criteria["DateFrom"])
            end = dt.date.fromisoformat(criteria["DateTo"])
        except (KeyError, ValueError):
            return "DateFrom and DateTo (YYYY-MM-DD) are required with CUSTOM_DATE"
        if end < start:
            return "DateTo is before DateFrom"
    return ""
