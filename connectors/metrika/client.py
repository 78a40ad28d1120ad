"""Wire calls to the Metrika Management API (offline conversions and calls). No mapping, no policy.

Conversion uploads and call uploads are two families with their own endpoints: ``upload`` /
``uploading/{id}`` / ``uploadings`` for conversions and ``upload_calls`` / ``calls_uploading/{id}`` /
``calls_uploadings`` for calls (the Management API reference, "Offline conversions" and "Calls"). A call
upload is not visible through the conversion endpoints, so every call below names its family.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import requests

from connectors.http import ApiClient, ApiError, Problem, Verdict, json_body, rule
from connectors.pacing import Throttle


class UploadKind(enum.StrEnum):
    BASIC = "BASIC"  # offline conversions (goals)
    CALLS = "CALLS"


# (upload, the list) per family. The one-upload status endpoints are not needed: an upload is delivered
# once Metrika has stored the file, and the list carries the same status and counts.
_PATHS = {
    UploadKind.BASIC: ("upload", "uploadings"),
    UploadKind.CALLS: ("upload_calls", "calls_uploadings"),
}

# The quota error types (Management API "Errors" table). The Russian quotas page answers them with HTTP 429,
# the English one with 420: both are "retry later". The per-login and per-counter ones are daily.
_DAILY_QUOTAS = {"quota_requests_by_uid", "quota_requests_by_counter_id"}
RULES = (
    rule(Verdict.RETRY, (420, 429), _DAILY_QUOTAS, retry_after=3600.0),
    rule(Verdict.RETRY, (420, 429), retry_after=1.0),
    # A 403 with these types means the token (not the grant) is bad: refreshing may cure it.
    rule(Verdict.TOKEN_EXPIRED, (403,), ("unauthorized", "invalid_token")),
    # access_denied / counter_in_connect: this login may not write to the counter any more.
    rule(Verdict.REVOKED, (403,)),
    rule(Verdict.RETRY, (409,)),  # conflict: another upload of the counter is being taken in
)


class MetrikaError(ApiError):
    """A refused or failed Management API request; ``code`` is Metrika's ``error_type``."""


def read_problem(response: requests.Response) -> Problem:
    body = json_body(response)
    if not isinstance(body, dict):
        return Problem(response.status_code, "http_error", (response.text or response.reason or "")[:300])
    errors = body.get("errors") or []
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    message = first.get("message") or body.get("message") or response.reason or ""
    return Problem(response.status_code, str(first.get("error_type", "http_error")), str(message), body)


class MetrikaClient:
    def __init__(
        self,
        api_base: str,
        counter_id: str,
        access_token: Callable[[], str],
        *,
        throttle: Throttle | None = None,
        timeout: float = 60.0,
        session: requests.Session | None = None,
    ) -> None:
        self.api = ApiClient(
            f"{api_base.rstrip('/')}/management/v1/counter/{counter_id}/offline_conversions",
            lambda: {"Authorization": f"OAuth {access_token()}", "Accept": "application/json"},
            read_problem,
            RULES,
            MetrikaError,
            throttle or Throttle(3.0),
            timeout,
            session=session or requests.Session(),
        )

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return self.api.send(method, f"/{path}", **kwargs).json()

    def upload(
        self,
        kind: UploadKind,
        csv_text: str,
        *,
        client_id_type: str,
        comment: str,
        new_goal_name: str | None = None,
    ) -> dict[str, Any]:
        # client_id_type: older docs require it, the current reference reads the identifier column instead;
        # the upper-case form is listed by both generations and the file's column always agrees with it.
        params = {"client_id_type": client_id_type, "comment": comment}
        if new_goal_name and kind == UploadKind.CALLS:
            params["new_goal_name"] = new_goal_name
        files = {"file": ("data.csv", csv_text.encode("utf-8"), "text/csv")}
        return self._json("POST", _PATHS[kind][0], params=params, files=files)["uploading"]

    def uploadings(self, kind: UploadKind, *, page: int = 10000) -> list[dict[str, Any]]:
        """Every upload of one family, all pages."""
        found: list[dict[str, Any]] = []
        offset = 0
        while True:
            params = {"limit": str(page), "offset": str(offset)}
            batch = self._json("GET", _PATHS[kind][1], params=params).get("uploadings", [])
            found.extend(batch)
            if len(batch) < page:
                return found
            offset += page
