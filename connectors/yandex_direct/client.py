"""Wire calls to the Yandex Direct Reports service (API v5, JSON request, TSV answer)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from connectors.base import AuthRevoked, TokenExpired

# Direct error codes (the protocol notes; meanings partly unconfirmed, so unknown codes are permanent).
AUTH_CODES = {53}  # authorisation error: the token is refused
REVOKED_CODES = {54, 58, 513}  # no rights, registration incomplete, login not linked to Direct
LIMIT_CODES = {56, 152, 506, 9000}  # request/points/concurrency limits and the offline report queue


class DirectError(Exception):
    """A report request that failed. ``transient`` failures are worth repeating after ``retry_after``."""

    def __init__(self, status: int, code: int, message: str, *, transient: bool, retry_after: float | None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.transient = transient
        self.retry_after = retry_after


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
    ) -> None:
        self.url = f"{api_base.rstrip('/')}/json/v5/reports"
        self._token = access_token
        self._client_login = client_login
        self._timeout = timeout
        self._http = requests.Session()

    def report(self, body: dict[str, Any]) -> ReportAnswer:
        """Send (or, with an identical body, poll) one report request."""
        headers = {
            "Authorization": f"Bearer {self._token()}",
            "Accept-Language": "en",
            "processingMode": "auto",
            "returnMoneyInMicros": "false",
            "skipReportHeader": "true",
            "skipColumnHeader": "false",  # the header row lets us read columns by name
            "skipReportSummary": "true",
            "Content-Type": "application/json; charset=utf-8",
        }
        if self._client_login:
            headers["Client-Login"] = self._client_login  # agency accounts act for one client login
        try:
            response = self._http.post(self.url, json=body, headers=headers, timeout=self._timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise DirectError(0, 0, type(exc).__name__, transient=True, retry_after=None) from None
        response.encoding = "utf-8"
        retry_in = _number(response.headers.get("retryIn"))
        if response.status_code in (200, 201, 202):
            queue = _number(response.headers.get("reportsInQueue"))
            return ReportAnswer(
                response.status_code,
                response.text if response.status_code == 200 else "",
                retry_in,
                int(queue) if queue is not None else None,
                response.headers.get("RequestId", ""),
            )
        code, message = _error_of(response)
        if response.status_code == 401 or code in AUTH_CODES:
            raise TokenExpired(message)
        if response.status_code == 403 or code in REVOKED_CODES:
            raise AuthRevoked(f"{code}: {message}")
        retry_after = _number(response.headers.get("Retry-After")) or retry_in
        transient = response.status_code >= 500 or response.status_code == 429 or code in LIMIT_CODES
        raise DirectError(response.status_code, code, message, transient=transient, retry_after=retry_after)


def _error_of(response: requests.Response) -> tuple[int, str]:
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        return 0, (response.text or response.reason or "")[:300]
    try:
        code = int(error.get("error_code", 0))
    except (TypeError, ValueError):
        code = 0
    text = " — ".join(str(p) for p in (error.get("error_string"), error.get("error_detail")) if p)
    return code, text or response.reason or ""
