"""Wire calls to one amoCRM account's API v4: requests with a bearer token, errors turned into types.

No mapping and no policy here: the connector decides what to send and what a failure means for an item.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import requests

from connectors.base import AuthRevoked, TokenExpired
from connectors.pacing import Throttle, retry_after_header

PER_SECOND = 7.0  # amoCRM's limit per account
PAGE = 250  # the largest page amoCRM serves


class AmoError(Exception):
    """A refused or failed request; ``status`` is 0 when no HTTP answer arrived."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        retry_after: float | None = None,
        validation: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.retry_after = retry_after
        # [{"request_id": "0", "errors": [{"code", "path", "detail"}]}] on a 400
        self.validation = validation or []

    @property
    def transient(self) -> bool:
        return self.status in (0, 429) or self.status >= 500


def _problem(response: requests.Response) -> tuple[str, list[dict[str, Any]]]:
    try:
        body = response.json()
    except ValueError:
        return response.reason or "error", []
    if not isinstance(body, dict):
        return str(body)[:200], []
    return str(body.get("detail") or body.get("title") or "error"), list(body.get("validation-errors") or [])


class AmoClient:
    def __init__(
        self,
        base_url: str,
        access_token: Callable[[], str],
        *,
        throttle: Throttle | None = None,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base = base_url.rstrip("/")
        self._token = access_token
        self._throttle = throttle or Throttle(PER_SECOND, sleep)
        self._timeout = timeout
        self._http = requests.Session()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """The decoded JSON answer; None for 204 (amoCRM's "nothing found")."""
        self._throttle.wait()
        headers = {"Authorization": f"Bearer {self._token()}", "Accept": "application/hal+json"}
        try:
            response = self._http.request(
                method, f"{self.base}{path}", headers=headers, timeout=self._timeout, **kwargs
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise AmoError(0, type(exc).__name__) from None
        if response.status_code == 204:
            return None
        if response.status_code in (200, 201, 202):
            return response.json() if response.content else None
        message, validation = _problem(response)
        if response.status_code == 401:
            raise TokenExpired(message)
        if response.status_code == 403:
            # amoCRM answers 403 to an account or IP it has blocked (after repeated 429s) and to a removed
            # integration: sending more only prolongs the block, so a person has to look.
            raise AuthRevoked(f"amoCRM refused access (403): {message}")
        retry = retry_after_header(response)
        if response.status_code == 429 and retry is None:
            retry = 1.0
        raise AmoError(response.status_code, message, retry_after=retry, validation=validation)

    # --- the calls the connector makes --------------------------------------------------------------------

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
