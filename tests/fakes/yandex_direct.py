"""Fake Direct Reports API v5: ``POST /json/v5/reports`` with Bearer auth, Client-Login for agency
logins, request validation, offline queueing (201 then 202 with ``retryIn``, identical request polls),
a queue limit of five reports per advertiser, money in micros unless ``returnMoneyInMicros: false``, the
skip* headers, and the JSON error shape.

As strict as Direct: any other path answers 404, a body that is not ``{"params": ReportDefinition}``, a
parameter or enum value the specification does not list, a field name the report type does not offer, and a
header value the headers page does not describe answer 400 with ``error_code``/``error_string``/
``error_detail``.

Sources: https://yandex.com/dev/direct/doc/en/spec (request body), https://yandex.com/dev/direct/doc/en/headers
(request and response headers), https://yandex.com/dev/direct/doc/en/mode (online/offline, 201/202,
retryIn), https://yandex.com/dev/direct/doc/en/codes (error body; 52 and 1000-1002 are "temporarily
unavailable" codes that may come under any status), https://yandex.com/dev/direct/doc/en/report-format,
https://yandex.com/dev/direct/doc/en/fields-list (which fields each report type has),
https://yandex.com/dev/direct/doc/en/concepts/errors-list (error codes).
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
# Fields the fake can fill that a report type does not offer (fields-list: the per-type compatibility table;
# only the report types and fields this fake serves are listed).
NOT_IN = {
    "ACCOUNT_PERFORMANCE_REPORT": {"CampaignId", "CampaignName", "AdGroupId", "AdGroupName"}
    | {"CriterionId", "Criterion"},
    "CAMPAIGN_PERFORMANCE_REPORT": {"AdGroupId", "AdGroupName", "CriterionId", "Criterion"},
    "ADGROUP_PERFORMANCE_REPORT": {"CriterionId", "Criterion"},
    "AD_PERFORMANCE_REPORT": {"CriterionId", "Criterion"},
    "CRITERIA_PERFORMANCE_REPORT": set(),
    "CUSTOM_REPORT": set(),
    "REACH_AND_FREQUENCY_PERFORMANCE_REPORT": {"CriterionId", "Criterion"},
    "SEARCH_QUERY_PERFORMANCE_REPORT": set(),
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
# ReportDefinition's parameters (spec page); anything else is refused.
PARAMS = set(REQUIRED) | {"Goals", "AttributionModels", "Page", "OrderBy", "IncludeDiscount"}
CRITERIA = {"DateFrom", "DateTo", "Filter"}
DATE_RANGES = {"TODAY", "YESTERDAY", "LAST_3_DAYS", "LAST_5_DAYS", "LAST_7_DAYS", "LAST_14_DAYS"}
DATE_RANGES |= {"LAST_30_DAYS", "LAST_90_DAYS", "LAST_365_DAYS", "THIS_WEEK_MON_TODAY", "THIS_WEEK_SUN_TODAY"}
DATE_RANGES |= {"LAST_WEEK", "LAST_BUSINESS_WEEK", "LAST_WEEK_SUN_SAT", "THIS_MONTH", "LAST_MONTH"}
DATE_RANGES |= {"ALL_TIME", "CUSTOM_DATE", "AUTO"}
ATTRIBUTION = {"FC", "LC", "LSC", "LYDC", "FCCD", "LSCCD", "LYDCCD", "AUTO"}
# Header values the headers page describes: only ``returnMoneyInMicros: false`` and ``skip*: true`` are
# documented (absent means the opposite). Whether Direct refuses or ignores the other word is UNCONFIRMED;
# the fake refuses it, so the hub keeps to the documented forms.
HEADER_VALUES = {
    "processingMode": {"online", "offline", "auto"},
    "returnMoneyInMicros": {"false"},
    "skipReportHeader": {"true"},
    "skipColumnHeader": {"true"},
    "skipReportSummary": {"true"},
}
# Error codes (concepts/errors-list): 8000 the request is malformed (not JSON, unknown or missing element,
# value outside its enum), 4000 the parameters are inconsistent; the split between the two for each case
# is UNCONFIRMED, the hub treats both as "will not succeed as sent".
MALFORMED, INCONSISTENT = 8000, 4000
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
        if not request.path.startswith(("/json/v5/", "/v5/")):
            return None
        if request.path != "/json/v5/reports":
            # Only Reports is served here; paths are case-sensitive and ``/v5/reports`` takes XML (protocol
            # notes C). The 404 body for an unknown service is UNCONFIRMED: Direct's error shape is used.
            response = error(404, MALFORMED, "Invalid request", f"No service at {request.path}")
            self.answers.append((404, MALFORMED))
            return response
        response = self._answer(request)
        self.answers.append((response.status_code, _code_of(response)))
        return response

    # POST /json/v5/reports — https://yandex.com/dev/direct/doc/en/spec (body),
    # https://yandex.com/dev/direct/doc/en/headers, https://yandex.com/dev/direct/doc/en/mode (201/202,
    # retryIn), https://yandex.com/dev/direct/doc/en/codes (error body).
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
        for name, allowed in HEADER_VALUES.items():
            value = request.headers.get(name)
            if value is not None and value.lower() not in allowed:
                return error(400, MALFORMED, "Invalid request", f"Invalid value of HTTP header {name}")
        try:
            body = json.loads(request.get_data())
        except ValueError:
            return error(400, MALFORMED, "Invalid request", "Request body is not valid JSON")
        # The Reports body is {"params": ReportDefinition} and nothing else: no "method" as in the other
        # services' {"method", "params"} (spec page; the official Python sample sends params alone).
        if not isinstance(body, dict) or set(body) != {"params"} or not isinstance(body["params"], dict):
            return error(400, MALFORMED, "Invalid request", "The request must be an object with params only")
        params = body["params"]
        self.requests.append({"headers": dict(request.headers), "params": params})
        with self.lock:
            if self.failures:
                status, code, text, headers = self.failures.pop(0)
                return error(status, code, text, headers=headers)
            code, problem = _validate(params)
            if problem:
                return error(400, code, "Invalid request", problem)
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
        if params["DateRangeType"] == "CUSTOM_DATE":
            start, end = (
                dt.date.fromisoformat(criteria["DateFrom"]),
                dt.date.fromisoformat(criteria["DateTo"]),
            )
        else:  # the named ranges are not modelled: the whole history stands in for them
            start, end = dt.date.min, dt.date.max
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


def _validate(params: dict[str, Any]) -> tuple[int, str]:
    """(error code, detail) of the first thing the specification refuses; (0, "") when all is well."""
    if missing := [name for name in REQUIRED if name not in params]:
        return MALFORMED, f"Required element missing: {missing}"
    if unknown := set(params) - PARAMS:
        return MALFORMED, f"Unknown element(s) in params: {sorted(unknown)}"
    criteria = params["SelectionCriteria"]
    if not isinstance(criteria, dict) or (unknown := set(criteria) - CRITERIA):
        return MALFORMED, "SelectionCriteria must be an object of DateFrom, DateTo, Filter"
    if params["Format"] != "TSV":
        return MALFORMED, "Format must be TSV"
    for name in ("IncludeVAT", "IncludeDiscount"):
        if name in params and params[name] not in ("YES", "NO"):
            return MALFORMED, f"{name} must be YES or NO"
    if params["ReportType"] not in NOT_IN:
        return MALFORMED, f"Unknown ReportType {params['ReportType']}"
    if params["DateRangeType"] not in DATE_RANGES:
        return MALFORMED, f"Unknown DateRangeType {params['DateRangeType']}"
    if set(params.get("AttributionModels") or []) - ATTRIBUTION:
        return MALFORMED, "Unknown AttributionModels value"
    if len(params.get("Goals") or []) > 10:
        return INCONSISTENT, "No more than 10 Goals"
    fields = params["FieldNames"]
    if not isinstance(fields, list) or not fields or len(set(fields)) != len(fields):
        return MALFORMED, "FieldNames must be a non-empty list without repeats"
    if unknown := set(fields) - KNOWN_FIELDS:
        return MALFORMED, f"Unknown FieldNames {sorted(unknown)}"
    if absent := set(fields) & NOT_IN[params["ReportType"]]:
        return INCONSISTENT, f"{sorted(absent)} not available in {params['ReportType']}"
    for order in params.get("OrderBy") or []:
        if set(order) - {"Field", "SortOrder"} or order.get("SortOrder", "ASCENDING") not in (
            "ASCENDING",
            "DESCENDING",
        ):
            return MALFORMED, "OrderBy items are {Field, SortOrder: ASCENDING|DESCENDING}"
        if order.get("Field") not in KNOWN_FIELDS:
            return MALFORMED, f"Unknown OrderBy field {order.get('Field')}"
    page = params.get("Page")
    if page is not None and (
        not isinstance(page, dict)
        or set(page) - {"Limit", "Offset"}
        or not isinstance(page.get("Limit"), int)
    ):
        return MALFORMED, "Page is {Limit (required), Offset}"
    if params["DateRangeType"] == "CUSTOM_DATE":
        try:
            start = dt.date.fromisoformat(criteria["DateFrom"])
            end = dt.date.fromisoformat(criteria["DateTo"])
        except (KeyError, ValueError):
            return MALFORMED, "DateFrom and DateTo (YYYY-MM-DD) are required with CUSTOM_DATE"
        if end < start:
            return INCONSISTENT, "DateTo is before DateFrom"
    elif "DateFrom" in criteria or "DateTo" in criteria:
        # Dates go only with CUSTOM_DATE (spec page); refusing them otherwise is UNCONFIRMED.
        return INCONSISTENT, "DateFrom and DateTo are only taken with CUSTOM_DATE"
    return 0, ""
