"""Wire calls to the Yandex Direct Reports service (API v5, JSON request, TSV answer)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from connectors.http import ApiClient, ApiError, Problem, Verdict, json_body, raise_for, rule

# Direct error codes (https://yandex.com/dev/direct/doc/en/codes). The body decides, whatever HTTP status
# carries it: Direct answers some of these with 200-range or 400 statuses.
AUTH_CODES = {53}  # authorisation error: the token is refused
REVOKED_CODES = {54, 58, 513}  # no rights, registration incomplete, login not linked to Direct
LIMIT_CODES = {56, 152, 506, 9000}  # request/points/concurrency limits and the offline report queue
# 52 "server temporarily unavailable", 1000/1001 "service temporarily unavailable", 1002 "operation error"
# (a timeout inside Direct): all "try again later".
UNAVAILABLE_CODES = {52, 1000, 1001, 1002}

RULES = (
    rule(Verdict.TOKEN_EXPIRED, codes=AUTH_CODES),
    rule(Verdict.REVOKED, codes=REVOKED_CODES),
    rule(Verdict.RETRY, codes=LIMIT_CODES),
    rule(Verdict.RETRY, codes=UNAVAILABLE_CODES),
    rule(Verdict.REVOKED, (403,)),
)


class DirectError(ApiError):
    """A report request that failed. ``transient`` failures are worth repeating after ``retry_after``;
    ``code`` is Direct's ``error_code`` (0 when the answer had none)."""

    def __init__(self, problem: Problem, verdict: Verdict) -> None:
        super().__init__(problem, verdict)
        self.code = int(problem.code) if problem.code.isdigit() else 0  # type: ignore[assignment]


def read_problem(response: requests.Response) -> Problem:
    body = json_body(response)
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return Problem(response.status_code, "0", (response.text or response.reason or "")[:300])
    code = str(error.get("error_code", 0))
    text = " — ".join(str(p) for p in (error.get("error_string"), error.get("error_detail")) if p)
    return Problem(
        response.status_code,
        code if code.isdigit() else "0",
        text or response.reason or "",
        body,
        _number(response.headers.get("retryIn")),
    )


@dataclass(frozen=True)
class ReportAnswer:
    status: int  # 200 ready, 201 queued, 202 being built
    text: str
    retry_in: float | None
    reports_in_queue: int | None
    request_id: str


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class DirectClient:
    def __init__(
        self,
        api_base: str,
        access_token: Callable[[], str],
        *,
        client_login: str | None = None,
        timeout: float = 120.0,
        session: requests.Session | None = None,
    ) -> None:
        self._token = access_token
        self._client_login = client_login
        self.api = ApiClient(
            f"{api_base.rstrip('/')}/json/v5/reports",
            self._headers,
            read_problem,
            RULES,
            DirectError,
            timeout=timeout,
            ok_statuses=frozenset({200, 201, 202}),
            session=session or requests.Session(),
        )

    def _headers(self) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self._token()}",
            "Accept-Language": "en",
            "processingMode": "auto",
            "returnMoneyInMicros": "false",
            "skipReportHeader": "true",
            # No skipColumnHeader: the header row lets us read columns by name, and the headers page
            # documents only the value "true" for it.
            "skipReportSummary": "true",
            "Content-Type": "application/json; charset=utf-8",
        }
        if self._client_login:
            headers["Client-Login"] = self._client_login  # agency accounts act for one client login
        return headers

    def report(self, body: dict[str, Any]) -> ReportAnswer:
        """Send (or, with an identical body, poll) one report request."""
        response = self.api.send("POST", "", json=body)
        response.encoding = "utf-8"
        if response.headers.get("Content-Type", "").startswith("application/json"):
            # A report is TSV: a JSON answer under a success status is an error body, and the body decides.
            raise_for(read_problem(response), RULES, DirectError)
        queue = _number(response.headers.get("reportsInQueue"))
        return ReportAnswer(
            response.status_code,
            response.text if response.status_code == 200 else "",
            _number(response.headers.get("retryIn")),
            int(queue) if queue is not None else None,
            response.headers.get("RequestId", ""),
        )
