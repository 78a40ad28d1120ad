"""Wire calls to one amoCRM account's API v4: requests with a bearer token, errors turned into types.

No mapping and no policy here: the connector decides what to send and what a failure means for an item.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import requests

from connectors.http import ApiClient, ApiError, Problem, Verdict, json_body, rule
from connectors.pacing import Throttle

PER_SECOND = 7.0  # amoCRM's limit per account
PAGE = 250  # the largest page amoCRM serves
IP_REFUSED_WAIT = 3600.0  # until a person adds our address to the account's IP whitelist
BLOCKED_WAIT = 900.0  # amoCRM blocks an account that kept exceeding the limit for a while


# What a 403 means is read from the answer's structure first, its words last (docs/decisions.md):
#  1. a numeric error code: 113 is the account's IP whitelist (amoCRM's error reference,
#     https://www.amocrm.com/developers/content/api/errors, in the {"response": {"error_code"}} shape);
#  2. no JSON at all: the web server's own 403 page, which is what a blocked account answers to every request
#     (amocrm-api-php issues #434 and #563; https://www.amocrm.ru/developers/content/api/recommendations);
#  3. problem+json ({title, type, status, detail}, the official libraries read ``title``, ``detail`` and
#     ``hint``) carries no code for these cases, so only then do the words of ``detail`` decide.
IP_REFUSED_CODES = {"113"}


def _text(problem: Problem) -> str:
    return f"{problem.code} {problem.message}".lower()


def _not_json(problem: Problem) -> bool:
    return problem.body is None


def _ip_words(problem: Problem) -> bool:
    # Last resort: a problem+json form of error 113 would say so only in words.
    return " ip " in f" {_text(problem)} " or "ip address" in _text(problem)


def _blocked_words(problem: Problem) -> bool:
    return "blocked" in _text(problem)


def _integration_gone(problem: Problem) -> bool:
    # The integration was removed from the account or switched off there: nothing works until it is
    # installed and authorised again. No code or field marks it: only the words do.
    words = ("integration", "disabled", "not installed", "revoked")
    return any(w in _text(problem) for w in words)


RULES = (
    rule(Verdict.RETRY, (403,), IP_REFUSED_CODES, retry_after=IP_REFUSED_WAIT),
    rule(Verdict.RETRY, (403,), when=_not_json, retry_after=BLOCKED_WAIT),
    rule(Verdict.RETRY, (403,), when=_ip_words, retry_after=IP_REFUSED_WAIT),
    rule(Verdict.RETRY, (403,), when=_blocked_words, retry_after=BLOCKED_WAIT),
    rule(Verdict.REVOKED, (403,), when=_integration_gone),
    # Any other 403 refuses this one request (a record the integration's user may not touch), not the
    # connection: the items it carried fail, the rest go on.
    rule(Verdict.DEAD, (403,)),
)


class AmoError(ApiError):
    """A refused or failed request; ``status`` is 0 when no HTTP answer arrived."""

    @property
    def validation(self) -> list[dict[str, Any]]:
        """[{"request_id": "0", "errors": [{"code", "path", "detail"}]}] on a 400."""
        body = self.problem.body
        return list(body.get("validation-errors") or []) if isinstance(body, dict) else []

    @property
    def account_wide(self) -> bool:
        """A refusal of every request to the account for now (rate limit, block, IP whitelist)."""
        return self.transient and self.status in (403, 429)


def read_problem(response: requests.Response) -> Problem:
    body = json_body(response)
    if not isinstance(body, dict):
        return Problem(response.status_code, "", response.reason or "error", None)
    # API v4 answers application/problem+json ({title, type, status, detail}, sometimes a ``hint``: the
    # official OAuth client, amocrm-oauth-client src/AmoCRMException.php, reads these three); the
    # account-level refusals (error codes 110-113) keep the older {"response": {"error", "error_code"}} shape.
    nested = body.get("response")
    old: dict[str, Any] = nested if isinstance(nested, dict) else {}
    code = str(old.get("error_code") or body.get("error_code") or "")
    detail = old.get("error") or body.get("detail") or body.get("title") or "error"
    if body.get("hint"):
        detail = f"{detail} ({body['hint']})"
    return Problem(response.status_code, code, str(detail), body)


class AmoClient:
    def __init__(
        self,
        base_url: str,
        access_token: Callable[[], str],
        *,
        throttle: Throttle | None = None,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        session: requests.Session | None = None,
    ) -> None:
        self.api = ApiClient(
            base_url,
            lambda: {"Authorization": f"Bearer {access_token()}", "Accept": "application/hal+json"},
            read_problem,
            RULES,
            AmoError,
            throttle or Throttle(PER_SECOND, sleep),
            timeout,
            frozenset({200, 201, 202, 204}),
            session=session or requests.Session(),
        )

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """The decoded JSON answer; None for 204 (amoCRM's "nothing found")."""
        response = self.api.send(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    # --- the calls the connector makes --------------------------------------------------------------------

    def add_webhook(self, destination: str, events: list[str]) -> dict[str, Any]:
        return dict(
            self.request("POST", "/api/v4/webhooks", json={"destination": destination, "settings": events})
        )

    def delete_webhook(self, destination: str) -> None:
        self.request("DELETE", "/api/v4/webhooks", json={"destination": destination})

    def lead_field_codes(self) -> set[str]:
        """The codes of the account's lead custom fields (the tracking fields among them)."""
        fields = self._pages("/api/v4/leads/custom_fields", [("limit", "50")], "custom_fields")
        return {str(f["code"]) for f in fields if f.get("code")}

    def find_contacts(self, query: str) -> list[dict[str, Any]]:
        body = self.request("GET", "/api/v4/contacts", params={"query": query, "limit": "50"})
        return list(((body or {}).get("_embedded") or {}).get("contacts") or [])

    def contact_leads(self, contact_id: int) -> list[int]:
        body = self.request("GET", f"/api/v4/contacts/{contact_id}", params={"with": "leads"})
        return [int(lead["id"]) for lead in ((body or {}).get("_embedded") or {}).get("leads") or []]

    def leads_by_id(self, ids: list[int]) -> list[dict[str, Any]]:
        if not ids:
            return []
        params = [("filter[id][]", str(i)) for i in ids] + [("limit", str(PAGE))]
        return list(self._pages("/api/v4/leads", params, "leads"))

    def add_unsorted_sip(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        body = self.request("POST", "/api/v4/leads/unsorted/sip", json=items)
        return list(((body or {}).get("_embedded") or {}).get("unsorted") or [])

    def add_complex(self, leads: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return list(self.request("POST", "/api/v4/leads/complex", json=leads) or [])

    def add_notes(self, notes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        body = self.request("POST", "/api/v4/leads/notes", json=notes)
        return list(((body or {}).get("_embedded") or {}).get("notes") or [])

    def call_notes_since(self, since: int) -> Iterator[dict[str, Any]]:
        params = [
            ("filter[note_type][]", "call_in"),
            ("filter[updated_at][from]", str(since)),
            ("limit", str(PAGE)),
        ]
        return self._pages("/api/v4/leads/notes", params, "notes")

    def unsorted_sip(self) -> Iterator[dict[str, Any]]:
        params = [("filter[category][]", "sip"), ("limit", str(PAGE))]
        return self._pages("/api/v4/leads/unsorted", params, "unsorted")

    def leads_updated_since(self, since: int) -> Iterator[dict[str, Any]]:
        params = [("filter[updated_at][from]", str(since)), ("with", "contacts"), ("limit", str(PAGE))]
        return self._pages("/api/v4/leads", params, "leads")

    def _pages(self, path: str, params: list[tuple[str, str]], key: str) -> Iterator[dict[str, Any]]:
        page = 1
        while True:
            body = self.request("GET", path, params=[*params, ("page", str(page))])
            items = ((body or {}).get("_embedded") or {}).get(key) or []
            yield from items
            if not items or not ((body or {}).get("_links") or {}).get("next"):
                return
            page += 1
