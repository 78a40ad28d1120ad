"""Wire calls to the Measurement Protocol: ``POST /mp/collect`` and the validation server.

``POST {base}/mp/collect?measurement_id=…&api_secret=…`` answers 2xx with no body whatever it thinks
of the events; ``POST {base}/debug/mp/collect`` (same query and body) answers
``{"validationMessages": [{"fieldPath", "description", "validationCode"}]}`` and records nothing —
developers.google.com/analytics/devguides/collection/protocol/ga4/validating-events.
"""

from __future__ import annotations

from typing import Any

import requests

from connectors.pacing import retry_after_header


class Ga4Error(Exception):
    """A failed request; ``status`` is 0 when no answer arrived."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        return self.status in (0, 408, 429) or self.status >= 500


class Ga4Client:
    def __init__(self, api_base: str, measurement_id: str, api_secret: str, *, timeout: float = 20.0) -> None:
        self.base = api_base.rstrip("/")
        # The secret travels in the query string, as the protocol requires; it is never logged here.
        self._params = {"measurement_id": measurement_id, "api_secret": api_secret}
        self._timeout = timeout
        self._http = requests.Session()

    def _post(self, path: str, body: dict[str, Any]) -> requests.Response:
        try:
            resp = self._http.post(
                f"{self.base}{path}", params=self._params, json=body, timeout=self._timeout
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise Ga4Error(0, type(exc).__name__) from None
        if resp.status_code >= 300:
            raise Ga4Error(resp.status_code, resp.text[:200], retry_after_header(resp))
        return resp

    def validate(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        resp = self._post("/debug/mp/collect", body)
        try:
            return list(resp.json().get("validationMessages") or [])
        except ValueError:
            raise Ga4Error(resp.status_code, "the validation server's answer is not JSON") from None

    def collect(self, body: dict[str, Any]) -> None:
        self._post("/mp/collect", body)
