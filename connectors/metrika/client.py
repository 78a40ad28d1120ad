"""Wire calls to the Metrika Management API (offline conversions and calls). No mapping, no policy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests

from connectors.base import AuthRevoked, TokenExpired
from connectors.pacing import Throttle, retry_after_header

# Error types that mean "ask again later" (the protocol notes' error table: quotas, backend, timeout).
_TRANSIENT_STATUSES = {0, 409, 429, 500, 502, 503, 504}
# A 403 with these types means the token (not the grant) is bad: refreshing may cure it.
_TOKEN_ERRORS = {"unauthorized", "invalid_token"}


class MetrikaError(Exception):
    """A refused or failed request. ``status`` is 0 when no HTTP answer arrived."""

    def __init__(self, status: int, error_type: str, message: str, retry_after: float | None = None):
        super().__init__(f"{status} {error_type}: {message}")
        self.status = status
        self.error_type = error_type
        self.message = message
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        return self.status in _TRANSIENT_STATUSES


class MetrikaClient:
    def __init__(
        self,
        api_base: str,
        counter_id: str,
        access_token: Callable[[], str],
        *,
        throttle: Throttle | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.base = f"{api_base.rstrip('/')}/management/v1/counter/{counter_id}/offline_conversions"
        self._token = access_token
        self._throttle = throttle or Throttle(3.0)
        self._timeout = timeout
        self._http = requests.Session()

    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        self._throttle.wait()
        headers = {"Authorization": f"OAuth {self._token()}", "Accept": "application/json"}
        try:
            response = self._http.request(
                method, f"{self.base}/{path}", headers=headers, timeout=self._timeout, **kwargs
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise MetrikaError(0, "network", type(exc).__name__) from None
        if response.status_code == 200:
            return response.json()
        error_type, message = _error_of(response)
        if response.status_code == 401 or (response.status_code == 403 and error_type in _TOKEN_ERRORS):
            raise TokenExpired(message)
        if response.status_code == 403:
            # access_denied / counter_in_connect: this login may not write to the counter any more.
            raise AuthRevoked(f"{error_type}: {message}")
        raise MetrikaError(response.status_code, error_type, message, retry_after_header(response))

    # client_id_type: older docs require it (spelled client_id or CLIENT_ID), the current reference omits it
    # and reads the identifier column instead (the protocol notes: UNCONFIRMED). We send the upper-case
    # form, which both generations list, and the file's column always agrees with it.
    def _upload(self, path: str, csv_text: str, params: dict[str, str]) -> dict[str, Any]:
        files = {"file": ("data.csv", csv_text.encode("utf-8"), "text/csv")}
        return self._request("POST", path, params=params, files=files)["uploading"]

    def upload_calls(
        self, csv_text: str, *, client_id_type: str, comment: str, new_goal_name: str | None = None
    ) -> dict[str, Any]:
        params = {"client_id_type": client_id_type, "comment": comment}
        if new_goal_name:
            params["new_goal_name"] = new_goal_name
        return self._upload("upload_calls", csv_text, params)

    def upload_conversions(self, csv_text: str, *, client_id_type: str, comment: str) -> dict[str, Any]:
        return self._upload("upload", csv_text, {"client_id_type": client_id_type, "comment": comment})

    def uploading(self, upload_id: str) -> dict[str, Any]:
        return self._request("GET", f"uploading/{upload_id}")["uploading"]

    def uploadings(self, upload_type: str, *, page: int = 10000) -> list[dict[str, Any]]:
        """Every upload of one type (BASIC, CALLS), newest pages included."""
        found: list[dict[str, Any]] = []
        offset = 0
        while True:
            params = {"type": upload_type, "limit": str(page), "offset": str(offset)}
            batch = self._request("GET", "uploadings", params=params).get("uploadings", [])
            found.extend(batch)
            if len(batch) < page:
                return found
            offset += page


def _error_of(response: requests.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        return "http_error", (response.text or response.reason or "")[:300]
    errors = body.get("errors") or []
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    return str(first.get("error_type", "http_error")), str(
        first.get("message") or body.get("message") or response.reason
    )
