"""Wire calls to the Measurement Protocol: ``POST /mp/collect`` and the validation server.

``POST {base}/mp/collect?measurement_id=…&api_secret=…`` answers 2xx with no body whatever it thinks
of the events; ``POST {base}/debug/mp/collect`` (same query and body) answers
``{"validationMessages": [{"fieldPath", "description", "validationCode"}]}`` and records nothing —
developers.google.com/analytics/devguides/collection/protocol/ga4/validating-events.
"""

from __future__ import annotations

from typing import Any

import requests

from connectors.http import ApiClient, ApiError, Problem, Verdict, json_body, rule


class Ga4Error(ApiError):
    """A refused or unanswered request; ``transient`` when it is worth repeating."""


# No OAuth here: the secret is in the query, so a 401/403 is a wrong secret or id, not a token to refresh.
RULES = (
    rule(Verdict.RETRY, (408,)),
    rule(Verdict.DEAD, (401, 403)),
)


def read_problem(response: requests.Response) -> Problem:
    return Problem(response.status_code, message=response.text[:200], body=json_body(response))


class Ga4Client:
    def __init__(
        self,
        api_base: str,
        measurement_id: str,
        api_secret: str,
        *,
        timeout: float = 20.0,
        session: requests.Session | None = None,
    ) -> None:
        # The secret travels in the query string, as the protocol requires; it is never logged here.
        self._params = {"measurement_id": measurement_id, "api_secret": api_secret}
        self.api = ApiClient(
            api_base,
            dict,
            read_problem,
            RULES,
            error=Ga4Error,
            timeout=timeout,
            ok_statuses=frozenset(range(200, 300)),
            session=session or requests.Session(),
        )

    def _post(self, path: str, body: dict[str, Any]) -> requests.Response:
        return self.api.send("POST", path, params=self._params, json=body)

    def validate(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        resp = self._post("/debug/mp/collect", body)
        answer = json_body(resp)
        if not isinstance(answer, dict):
            raise Ga4Error(
                Problem(resp.status_code, message="the validation server's answer is not JSON"), Verdict.DEAD
            )
        return list(answer.get("validationMessages") or [])

    def collect(self, body: dict[str, Any]) -> None:
        self._post("/mp/collect", body)
