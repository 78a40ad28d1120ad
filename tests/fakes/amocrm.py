"""A fake amoCRM account over real HTTP: OAuth token endpoint, contacts, leads (complex, unsorted SIP, list
with filters and pages), notes; 429 past 7 requests a second, 401 for expired tokens, 400 validation
errors in amoCRM's shape, the 403 refusals (IP whitelist, blocked account, integration switched off); and
webhooks it can fire at the hub.

As strict as the account: a path no route serves answers 404 problem+json; a query parameter the route does
not take, a ``with=`` value the entity does not offer, a ``limit`` above 250, a body that is not JSON, or a
body field the official library never sends answers 400 (the query and body allow-lists are the official
library's filters and ``toApi`` models, named beside each route).

Sources: amocrm/amocrm-api-php src/AmoCRM/Client/AmoCRMApiRequest.php (statuses, problem+json, 204),
https://developers.kommo.com/reference/get-token (token endpoint), https://developers.kommo.com/docs/limitations
(7 requests a second, 429, blocking), https://www.amocrm.com/developers/content/api/errors (error 113),
https://developers.kommo.com/reference/complex-leads, https://kommo.com/developers/content/api_v4/incoming-leads,
amocrm-api-php src/AmoCRM/EntitiesServices/EntityNotes.php, https://developers.kommo.com/reference/add-webhooks.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

import requests

from tests.fakes.http import FakeServer, Response
from tests.fakes.oauth import AMOCRM, FakeOAuth

HAL = {"Content-Type": "application/hal+json"}
PROBLEM = {"Content-Type": "application/problem+json"}


def hal(status: int, body: Any) -> Response:
    return status, HAL, json.dumps(body).encode()


def problem(status: int, detail: str, **extra: Any) -> Response:
    # {title, type, status, detail} with the status's reason phrase as title: the 400 example of amoCRM's
    # error reference (A.3); amocrm-oauth-client src/AmoCRMException.php reads title, detail and hint.
    title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    body = {"title": title, "type": f"https://httpstatus.es/{status}", "status": status, "detail": detail}
    return status, PROBLEM, json.dumps({**body, **extra}).encode()


def bad_query(detail: str) -> Response:
    # The exact wording of a refused query parameter is UNCONFIRMED; the shape is amoCRM's problem+json.
    return problem(400, detail)


# Query parameters each list route takes (amocrm-api-php src/AmoCRM/Filters/*Filter.php buildFilter, plus
# PagesFilterTrait's page/limit and the entity's getAvailableWith for ``with``): name -> allowed filter keys.
PAGES = {"page", "limit"}
LEAD_FILTERS = {"id", "name", "price", "created_by", "updated_by", "responsible_user_id", "created_at"}
LEAD_FILTERS |= {
    "updated_at",
    "closed_at",
    "closest_task_at",
    "custom_fields_values",
    "statuses",
    "pipeline_id",
}
CONTACT_FILTERS = {"id", "name", "created_by", "updated_by", "responsible_user_id", "created_at"}
CONTACT_FILTERS |= {"updated_at", "closest_task_at", "custom_fields_values"}
NOTE_FILTERS = {"id", "note_type", "updated_at", "entity_id"}  # NotesFilter.php
UNSORTED_FILTERS = {"uid", "category", "pipeline_id"}  # UnsortedFilter.php
CUSTOM_FIELD_FILTERS = {"id", "type"}  # CustomFieldsFilter.php
LEAD_WITH = {"catalog_elements", "is_price_modified_by_robot", "contacts", "source_id", "loss_reason"}
LEAD_WITH |= {"only_deleted", "source"}  # LeadModel::getAvailableWith
CONTACT_WITH = {"leads", "customers", "catalog_elements", "social_profiles", "only_deleted"}  # ContactModel
MAX_LIMIT = 250  # kommo.com/developers/content/api_v4/leads-api: "limit ... no more than 250"

# Body fields the official library serialises (its toApi/toComplexApi): anything else is refused (whether
# amoCRM refuses or ignores an unknown field is UNCONFIRMED: the strict reading keeps the hub to the model).
LEAD_FIELDS = {"id", "name", "price", "status_id", "pipeline_id", "created_by", "updated_by", "closed_at"}
LEAD_FIELDS |= {"created_at", "loss_reason_id", "responsible_user_id", "custom_fields_values", "request_id"}
LEAD_FIELDS |= {"visitor_uid", "_embedded"}  # LeadModel::toApi / toComplexApi
LEAD_EMBEDDED = {"tags", "contacts", "companies", "metadata", "source"}
CONTACT_FIELDS = {"id", "name", "first_name", "last_name", "responsible_user_id", "created_by", "updated_by"}
CONTACT_FIELDS |= {"created_at", "custom_fields_values", "request_id", "_embedded"}  # ContactModel::toApi
UNSORTED_FIELDS = {"source_uid", "source_name", "pipeline_id", "created_at", "metadata", "_embedded"}
UNSORTED_FIELDS |= {"request_id"}  # Models/Unsorted/BaseUnsortedModel::toApi
UNSORTED_EMBEDDED = {"leads", "contacts", "companies"}
SIP_METADATA = {"phone", "called_at", "duration", "link", "service_code", "uniq", "is_call_event_needed"}
SIP_METADATA |= {"call_responsible", "from"}  # Models/Unsorted/SipMetadata::toApi
NOTE_FIELDS = {"id", "entity_id", "note_type", "params", "created_by", "updated_by", "created_at"}
NOTE_FIELDS |= {"updated_at", "responsible_user_id", "request_id", "is_need_to_trigger_digital_pipeline"}
CALL_NOTE_PARAMS = {"uniq", "duration", "source", "link", "phone", "call_result", "call_status"}
CALL_NOTE_PARAMS |= {"call_responsible"}  # Models/NoteType/CallNote::toApi
WEBHOOK_FIELDS = {"destination", "settings", "sort"}  # Models/WebhookModel::toApi
CUSTOM_FIELD_VALUE = {"field_id", "field_code", "values"}  # BaseCustomFieldValuesModel::toApi


@dataclass
class Lead:
    id: int
    name: str
    status_id: int
    pipeline_id: int
    price: int = 0
    contact_id: int | None = None
    custom_fields: list[dict[str, Any]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    updated_at: int = field(default_factory=lambda: int(time.time()))
    closed_at: int | None = None
    unsorted_uid: str | None = None  # set while it waits in Incoming leads

    def api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "price": self.price,
            "status_id": self.status_id,
            "pipeline_id": self.pipeline_id,
            "updated_at": self.updated_at,
            "closed_at": self.closed_at,
            "custom_fields_values": self.custom_fields or None,
            "_embedded": {
                "tags": [{"name": t} for t in self.tags],
                "contacts": [{"id": self.contact_id, "is_main": True}] if self.contact_id else [],
            },
        }


# Codes of the tracking_data lead fields an account has (UNCONFIRMED beyond UTM_*: the official library
# models the field type, CustomFieldModel::TYPE_TRACKING_DATA, not the codes).
TRACKING_CODES = (
    "UTM_SOURCE",
    "UTM_MEDIUM",
    "UTM_CAMPAIGN",
    "UTM_CONTENT",
    "UTM_TERM",
    "UTM_REFERRER",
    "REFERRER",
    "GCLID",
    "YCLID",
    "FBCLID",
    "_YM_UID",
    "_YM_COUNTER",
    "GCLIENTID",
    "ROISTAT",
    "FROM",
)
# The events a webhook may subscribe to (kommo /reference/add-webhooks; amocrm-api-php
# examples/webhooks_actions.php uses add_lead).
WEBHOOK_EVENTS = {
    "add_lead",
    "update_lead",
    "delete_lead",
    "restore_lead",
    "status_lead",
    "responsible_lead",
    "note_lead",
    "add_contact",
    "update_contact",
    "delete_contact",
}
INCOMING = 10  # the pipeline's "incoming leads" status
FIRST_STAGE = 11


class FakeAmo(FakeServer):
    def __init__(self, per_second: int = 7, block_after: int | None = None) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.per_second = per_second
        # After this many 429s the account is blocked: every request answers 403 until a test lifts it
        # (https://www.amocrm.ru/developers/content/api/recommendations: repeated violations block the
        # account; https://developers.kommo.com/docs/limitations). None: never.
        self.block_after = block_after
        self.violations = 0
        self.oauth = FakeOAuth(AMOCRM)  # the account's own /oauth2/access_token
        self.contacts: dict[int, dict[str, Any]] = {}
        self.leads: dict[int, Lead] = {}
        self.notes: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str]] = []  # (method, path) of API calls, for assertions
        # Every API request refused with 403: "ip" (the account's IP whitelist), "blocked" (the account's API
        # blocked after repeated 429s) or "removed" (the integration switched off in the account).
        self.refusal: str | None = None
        self.fail_next: list[tuple[int, str]] = []  # (status, path prefix) injected once each
        # The account's lead fields by code: every account has the tracking_data fields (UTM_*, GCLID, …).
        self.lead_fields: dict[str, int] = {code: 500 + i for i, code in enumerate(TRACKING_CODES)}
        self.webhooks: dict[str, dict[str, Any]] = {}  # destination -> the webhook as amoCRM lists it
        self.lose_answer_of_next_create = False  # do the work, then drop the connection
        self._ids = iter(range(1000, 10**9))
        self._second = (0, 0)

    # --- helpers for tests -------------------------------------------------------------------------------

    def add_contact(self, phone: str, name: str = "Known customer") -> int:
        cid = next(self._ids)
        self.contacts[cid] = {
            "id": cid,
            "name": name,
            "custom_fields_values": [
                {"field_code": "PHONE", "values": [{"value": phone, "enum_code": "WORK"}]}
            ],
            "leads": [],
        }
        return cid

    def add_lead(self, contact_id: int | None, status_id: int = FIRST_STAGE, price: int = 0) -> int:
        lead = Lead(next(self._ids), "existing deal", status_id, 1, price, contact_id)
        self.leads[lead.id] = lead
        if contact_id:
            self.contacts[contact_id]["leads"].append(lead.id)
        return lead.id

    def move(self, lead_id: int, status_id: int, price: int | None = None) -> None:
        lead = self.leads[lead_id]
        lead.status_id = status_id
        if price is not None:
            lead.price = price
        lead.updated_at = int(time.time()) + 1
        lead.closed_at = lead.updated_at if status_id in (142, 143) else None
        lead.unsorted_uid = None

    def fire_status_webhook(self, url: str, lead_id: int, **extra: str) -> requests.Response:
        lead = self.leads[lead_id]
        form = {
            "leads[status][0][id]": str(lead.id),
            "leads[status][0][status_id]": str(lead.status_id),
            "leads[status][0][pipeline_id]": str(lead.pipeline_id),
            "leads[status][0][old_status_id]": str(FIRST_STAGE),
            "leads[status][0][price]": str(lead.price),
            "leads[status][0][name]": lead.name,
            "leads[status][0][last_modified]": str(lead.updated_at),
            "leads[status][0][tags][0][name]": "call",
            "account[subdomain]": "acme",
            "account[id]": "777",
            **extra,
        }
        return requests.post(
            url,
            data=urlencode(form),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=10,
        )

    def leads_of(self, phone_digits: str) -> list[Lead]:
        ids = {c["id"] for c in self.contacts.values() if _phone_digits(c).endswith(phone_digits[-10:])}
        return [lead for lead in self.leads.values() if lead.contact_id in ids]

    # --- the server ----------------------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes, headers: dict[str, str]
    ) -> Response:
        with self.lock:
            token_answer = self.oauth.handle(method, path, query, body, headers)
            if token_answer is not None:
                return token_answer
            self.requests.append((method, path))
            now = int(time.time())
            second, count = self._second
            count = count + 1 if second == now else 1
            self._second = (now, count)
            if self.refusal is not None:
                return self._refused(self.refusal)
            if count > self.per_second:
                self.violations += 1
                if self.block_after is not None and self.violations >= self.block_after:
                    self.refusal = "blocked"
                return 429, {"Content-Type": "text/html"}, b"<html>Too many requests</html>"
            token = headers.get("Authorization", "").removeprefix("Bearer ")
            if token not in self.oauth.tokens:
                return problem(401, "Unauthorized")
            for i, (status, prefix) in enumerate(self.fail_next):
                if path.startswith(prefix):
                    del self.fail_next[i]
                    return problem(status, "injected")
            data = None
            if body:
                # The official library sends every body as JSON (AmoCRMApiRequest: Guzzle's ``json``
                # option); amoCRM's error list has 102 "POST parameters must be sent in JSON format".
                if not headers.get("Content-Type", "").startswith("application/json"):
                    return problem(400, "Request body must be application/json")
                try:
                    data = json.loads(body)
                except ValueError:
                    return problem(400, "Request body is not valid JSON")
            return self._api(method, path, query, data)

    def _refused(self, why: str) -> Response:
        if why == "ip":
            # Error 113, HTTP 403 (amocrm.com/developers/content/api/errors); body in the account-level
            # {"response": {...}} shape the older API keeps for authorisation answers (UNCONFIRMED for v4).
            body = {
                "response": {
                    "error": "Access to this account is prohibited from your IP address",
                    "error_code": "113",
                    "ip": "127.0.0.1",
                }
            }
            return 403, {"Content-Type": "application/json"}, json.dumps(body).encode()
        if why == "ip-problem":
            # The other plausible v4 form of the same refusal: problem+json without a code (UNCONFIRMED).
            return problem(403, "Access to this account is prohibited from your IP address")
        if why == "blocked":
            # A blocked account answers every request with nginx's own 403 page, not JSON (amocrm-api-php
            # issues #434 and #563: "Response body is not json", last_response "403 Forbidden ... nginx";
            # amocrm.ru/developers/content/api/recommendations: after repeated violations "any API request
            # returns HTTP 403").
            page = b"<html><head><title>403 Forbidden</title></head><body><center><h1>403 Forbidden</h1>"
            page += b"</center><hr><center>nginx</center></body></html>"
            return 403, {"Content-Type": "text/html", "Server": "nginx"}, page
        return problem(403, "Integration is disabled")  # wording UNCONFIRMED

    def _api(self, method: str, path: str, query: dict[str, list[str]], data: Any) -> Response:
        refused = self._route(method, path, query, data)
        if refused is not None:
            return refused
        return self._serve(method, path, query, data)

    def _route(self, method: str, path: str, query: dict[str, list[str]], data: Any) -> Response | None:
        """The refusal the account gives this request before doing anything, if any: unknown route (404),
        a query parameter or body field the route does not take (400)."""
        parts = path.strip("/").split("/")
        is_contact = len(parts) == 4 and parts[:3] == ["api", "v4", "contacts"] and parts[3].isdigit()
        lists = {
            "/api/v4/contacts": dict(filters=CONTACT_FILTERS, with_=CONTACT_WITH, search=True),
            "/api/v4/leads": dict(filters=LEAD_FILTERS, with_=LEAD_WITH, search=True),
            "/api/v4/leads/unsorted": dict(filters=UNSORTED_FILTERS),
            "/api/v4/leads/custom_fields": dict(filters=CUSTOM_FIELD_FILTERS, order=False),
            "/api/v4/leads/notes": dict(filters=NOTE_FILTERS),
        }
        writes = {
            ("POST", "/api/v4/leads/complex"): _complex_errors,
            ("POST", "/api/v4/leads/unsorted/sip"): _unsorted_errors,
            ("POST", "/api/v4/leads/notes"): _notes_errors,
            ("POST", "/api/v4/webhooks"): lambda d: _fields(d, WEBHOOK_FIELDS, "", "0"),
            ("DELETE", "/api/v4/webhooks"): lambda d: _fields(d, {"destination"}, "", "0"),
        }
        if method == "GET" and path in lists:
            return _query_refusal(query, **lists[path])
        if method == "GET" and is_contact:
            return _query_refusal(query, set(), CONTACT_WITH, pages=False, order=False)
        if (method, path) in writes:
            if query:
                return bad_query(f"Unknown query parameters: {', '.join(sorted(query))}")
            errors = writes[(method, path)](data)
            return self._invalid(errors) if errors else None
        # amoCRM answers a path it does not serve with 404 (body wording UNCONFIRMED).
        return problem(404, f"Not found: {method} {path}")

    def _serve(self, method: str, path: str, query: dict[str, list[str]], data: Any) -> Response:
        parts = path.strip("/").split("/")
        # GET /api/v4/contacts?query= — https://www.amocrm.ru/developers/content/crm_platform/contacts-api;
        # amocrm-api-php src/AmoCRM/EntitiesServices/Contacts.php, src/AmoCRM/Filters/ContactsFilter.php;
        # 204 when none
        if method == "GET" and path == "/api/v4/contacts":
            q = (query.get("query") or [""])[0]
            found = [self._contact(c) for c in self.contacts.values() if q and q in _phone_digits(c)]
            return hal(200, {"_embedded": {"contacts": found}}) if found else (204, {}, b"")
        # GET /api/v4/contacts/{id}?with=leads — amocrm-api-php src/AmoCRM/Models/ContactModel.php
        # (getAvailableWith)
        if method == "GET" and len(parts) == 4 and parts[2] == "contacts" and parts[3].isdigit():
            contact = self.contacts.get(int(parts[3]))
            if contact is None:
                return problem(404, "Not found")
            return hal(
                200, {**self._contact(contact), "_embedded": {"leads": [{"id": i} for i in contact["leads"]]}}
            )
        # GET /api/v4/leads — https://www.kommo.com/developers/content/api_v4/leads-api/; amocrm-api-php
        # src/AmoCRM/Filters/LeadsFilter.php, src/AmoCRM/Models/LeadModel.php (getAvailableWith)
        if method == "GET" and path == "/api/v4/leads":
            return self._list_leads(query)
        # POST /api/v4/leads/complex — https://developers.kommo.com/reference/complex-leads (≤ 50 leads, array
        # answer); amocrm-api-php src/AmoCRM/Models/LeadModel.php (toComplexApi)
        if method == "POST" and path == "/api/v4/leads/complex":
            return self._complex(data)
        # POST /api/v4/leads/unsorted/sip — https://www.kommo.com/developers/content/api_v4/incoming-leads/;
        # amocrm-api-php src/AmoCRM/Models/Unsorted/SipMetadata.php and
        # src/AmoCRM/EntitiesServices/Unsorted.php
        if method == "POST" and path == "/api/v4/leads/unsorted/sip":
            return self._unsorted(data)
        # GET /api/v4/leads/unsorted?filter[category][]=sip — the same page; amocrm-api-php
        # src/AmoCRM/Filters/UnsortedFilter.php
        if method == "GET" and path == "/api/v4/leads/unsorted":
            rows = [
                {
                    "uid": lead.unsorted_uid,
                    "source_uid": uid,
                    "category": "sip",
                    "_embedded": {"leads": [{"id": lead.id}]},
                }
                for lead in self.leads.values()
                if lead.unsorted_uid
                for uid in [lead.unsorted_uid]
            ]
            return self._page(rows, query, "unsorted")
        # GET /api/v4/leads/custom_fields — https://www.amocrm.ru/developers/content/crm_platform/custom-fields
        # (page, ≤ 50 per request); amocrm-api-php src/AmoCRM/Filters/CustomFieldsFilter.php
        if method == "GET" and path == "/api/v4/leads/custom_fields":
            rows = [
                {"id": i, "name": code, "code": code, "type": "tracking_data", "entity_type": "leads"}
                for code, i in self.lead_fields.items()
            ]
            return self._page(rows, query, "custom_fields", cap=50)
        # POST /api/v4/webhooks — https://developers.kommo.com/reference/add-webhooks: {destination,
        # settings[, sort]}; amocrm-api-php src/AmoCRM/Models/WebhookModel.php (toApi)
        if method == "POST" and path == "/api/v4/webhooks":
            return self._add_webhook(data)
        # DELETE /api/v4/webhooks — https://developers.kommo.com/reference/delete-webhooks: {destination},
        # 204; amocrm-api-php src/AmoCRM/EntitiesServices/Webhooks.php (unsubscribe)
        if method == "DELETE" and path == "/api/v4/webhooks":
            if not isinstance(data, dict) or not data.get("destination"):
                return self._invalid([{"request_id": "0", "errors": [_missing("destination")]}])
            if self.webhooks.pop(str(data["destination"]), None) is None:
                return problem(404, "Webhook not found")
            return 204, {}, b""
        # POST /api/v4/leads/notes — amocrm-api-php src/AmoCRM/EntitiesServices/EntityNotes.php,
        # src/AmoCRM/Models/NoteModel.php, src/AmoCRM/Models/NoteType/CallNote.php (toApi)
        if method == "POST" and path == "/api/v4/leads/notes":
            return self._add_notes(data)
        # GET /api/v4/leads/notes?filter[note_type][]&filter[updated_at][from] — amocrm-api-php
        # src/AmoCRM/EntitiesServices/EntityNotes.php, src/AmoCRM/Filters/NotesFilter.php
        if method == "GET" and path == "/api/v4/leads/notes":
            since = int((query.get("filter[updated_at][from]") or ["0"])[0])
            types = query.get("filter[note_type][]") or []
            rows = [
                n for n in self.notes if n["updated_at"] >= since and (not types or n["note_type"] in types)
            ]
            return self._page(rows, query, "notes")
        return problem(404, f"no route {method} {path}")

    def _add_webhook(self, data: Any) -> Response:
        if not isinstance(data, dict):
            return problem(400, "Request validation failed")
        errors = []
        destination = str(data.get("destination") or "")
        if not destination.startswith(("https://", "http://")):  # whether plain http is taken: UNCONFIRMED
            errors.append({"code": "InvalidUrl", "path": "destination", "detail": "must be a URL"})
        events = data.get("settings")
        if not isinstance(events, list) or not events or set(events) - WEBHOOK_EVENTS:
            errors.append({"code": "NotSupportedChoice", "path": "settings", "detail": "unknown event"})
        if errors:
            return self._invalid([{"request_id": "0", "errors": errors}])
        hook = {
            "id": next(self._ids),
            "destination": destination,
            "created_at": int(time.time()),
            "updated_at": int(time.time()),
            "account_id": 1,
            "created_by": 0,
            "sort": int(data.get("sort") or 1),
            "disabled": False,
            "settings": list(events),
        }
        self.webhooks[destination] = hook  # amoCRM keeps one webhook per destination
        return hal(201, hook)

    def _page(
        self, rows: list[dict[str, Any]], query: dict[str, list[str]], key: str, cap: int = 250
    ) -> Response:
        if not rows:
            return 204, {}, b""
        limit = min(cap, int((query.get("limit") or ["50"])[0]))
        page = int((query.get("page") or ["1"])[0])
        chunk = rows[(page - 1) * limit : page * limit]
        if not chunk:
            return 204, {}, b""
        links: dict[str, Any] = {"self": {"href": f"{self.url}/x?page={page}"}}
        if page * limit < len(rows):
            links["next"] = {"href": f"{self.url}/x?page={page + 1}"}
        return hal(200, {"_page": page, "_links": links, "_embedded": {key: chunk}})

    def _list_leads(self, query: dict[str, list[str]]) -> Response:
        leads = sorted(self.leads.values(), key=lambda lead: lead.id)
        if "filter[id][]" in query:
            wanted = {int(i) for i in query["filter[id][]"]}
            leads = [lead for lead in leads if lead.id in wanted]
        if "filter[updated_at][from]" in query:
            since = int(query["filter[updated_at][from]"][0])
            leads = [lead for lead in leads if lead.updated_at >= since]
        return self._page([lead.api() for lead in leads if not lead.unsorted_uid], query, "leads")

    def _contact(self, c: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in c.items() if k != "leads"}

    def _validate_lead(self, lead: dict[str, Any], request_id: str) -> list[dict[str, Any]]:
        errors = []
        for i, f in enumerate(lead.get("custom_fields_values") or []):
            if "field_code" in f and f["field_code"] not in self.lead_fields:
                # An unknown code refuses the lead (error code wording UNCONFIRMED).
                errors.append(
                    {
                        "code": "NotSupportedChoice",
                        "path": f"custom_fields_values.{i}.field_code",
                        "detail": "The value you selected is not a valid choice.",
                    }
                )
            if "field_id" in f and int(f["field_id"]) == 999:
                errors.append(
                    {
                        "code": "NotSupportedChoice",
                        "path": f"custom_fields_values.{i}.field_id",
                        "detail": "The value you selected is not a valid choice.",
                    }
                )
        return [{"request_id": request_id, "errors": errors}] if errors else []

    def _invalid(self, errors: list[dict[str, Any]]) -> Response:
        return problem(400, "Request validation failed", **{"validation-errors": errors})

    def _new_contact(self, embedded: list[dict[str, Any]]) -> int | None:
        if not embedded:
            return None
        c = embedded[0]
        if "id" in c:
            return int(c["id"])
        phones = [v["value"] for f in c.get("custom_fields_values") or [] for v in f.get("values") or []]
        return self.add_contact(phones[0] if phones else "", c.get("name", ""))

    def _make_lead(self, body: dict[str, Any], contact: int | None, status: int, pipeline: int) -> Lead:
        lead = Lead(
            next(self._ids),
            body.get("name", ""),
            status,
            pipeline,
            int(body.get("price") or 0),
            contact,
            list(body.get("custom_fields_values") or []),
            [t.get("name", "") for t in (body.get("_embedded") or {}).get("tags") or []],
        )
        self.leads[lead.id] = lead
        if contact:
            self.contacts[contact]["leads"].append(lead.id)
        return lead

    def _complex(self, data: Any) -> Response:
        if not isinstance(data, list) or len(data) > 50:
            return self._invalid(
                [{"request_id": "0", "errors": [{"code": "TooMany", "path": "", "detail": "max 50"}]}]
            )
        errors = [e for lead in data for e in self._validate_lead(lead, str(lead.get("request_id", "")))]
        if errors:
            return self._invalid(errors)
        out = []
        for body in data:
            contact = self._new_contact((body.get("_embedded") or {}).get("contacts") or [])
            lead = self._make_lead(
                body, contact, int(body.get("status_id") or FIRST_STAGE), int(body.get("pipeline_id") or 1)
            )
            out.append(
                {
                    "id": lead.id,
                    "contact_id": contact,
                    "company_id": None,
                    "request_id": [str(body.get("request_id"))],
                    "merged": False,
                }
            )
        return self._answer(hal(200, out))

    def _unsorted(self, data: Any) -> Response:
        if not isinstance(data, list) or len(data) > 50:
            return self._invalid(
                [{"request_id": "0", "errors": [{"code": "TooMany", "path": "", "detail": "max 50"}]}]
            )
        errors = []
        for item in data:
            for lead in (item.get("_embedded") or {}).get("leads") or []:
                errors += self._validate_lead(lead, str(item.get("request_id", "")))
            if any(lead.unsorted_uid == item.get("source_uid") for lead in self.leads.values()):
                errors.append(
                    {
                        "request_id": str(item.get("request_id")),
                        "errors": [
                            {"code": "Duplicate", "path": "source_uid", "detail": "already in Incoming leads"}
                        ],
                    }
                )
        if errors:
            return self._invalid(errors)
        out = []
        for item in data:
            embedded = item.get("_embedded") or {}
            contact = self._new_contact(embedded.get("contacts") or [])
            lead = self._make_lead(
                (embedded.get("leads") or [{}])[0], contact, INCOMING, int(item.get("pipeline_id") or 1)
            )
            lead.unsorted_uid = item["source_uid"]
            meta = item.get("metadata") or {}
            self.notes.append(
                {
                    "id": next(self._ids),
                    "entity_id": lead.id,
                    "note_type": "call_in",
                    "params": {
                        "uniq": meta.get("uniq"),
                        "duration": meta.get("duration"),
                        "phone": meta.get("from"),
                        "link": meta.get("link"),
                    },
                    "updated_at": int(time.time()),
                }
            )
            out.append(
                {
                    "uid": secrets.token_hex(8),
                    "request_id": item.get("request_id"),
                    "_embedded": {
                        "leads": [{"id": lead.id}],
                        "contacts": [{"id": contact}] if contact else [],
                        "companies": [],
                    },
                }
            )
        return self._answer(hal(200, {"_total_items": len(out), "_embedded": {"unsorted": out}}))

    def _add_notes(self, data: Any) -> Response:
        out = []
        for n in data or []:
            if int(n.get("entity_id") or 0) not in self.leads:
                return self._invalid(
                    [
                        {
                            "request_id": str(n.get("request_id")),
                            "errors": [
                                {"code": "NotFound", "path": "entity_id", "detail": "entity not found"}
                            ],
                        }
                    ]
                )
        for n in data or []:
            note = {
                "id": next(self._ids),
                "entity_id": int(n["entity_id"]),
                "note_type": n["note_type"],
                "params": n.get("params") or {},
                "updated_at": int(time.time()),
            }
            self.notes.append(note)
            self.leads[note["entity_id"]].updated_at = int(time.time())
            out.append({"id": note["id"], "entity_id": note["entity_id"], "request_id": n.get("request_id")})
        return hal(200, {"_embedded": {"notes": out}})

    def _answer(self, response: Response) -> Response:
        if self.lose_answer_of_next_create:
            self.lose_answer_of_next_create = False
            return 502, {"Content-Type": "text/html"}, b"<html>Bad gateway</html>"
        return response


def _missing(name: str) -> dict[str, str]:
    return {"code": "NotBlank", "path": name, "detail": "This value should not be blank."}


def _phone_digits(contact: dict[str, Any]) -> str:
    values = [
        v.get("value", "") for f in contact.get("custom_fields_values") or [] for v in f.get("values") or []
    ]
    return "".join(ch for v in values for ch in v if ch.isdigit())


def _query_refusal(
    query: dict[str, list[str]],
    filters: Collection[str],
    with_: Collection[str] = frozenset(),
    *,
    search: bool = False,
    pages: bool = True,
    order: bool = True,
) -> Response | None:
    """400 for a parameter the route does not take (PHP bracket keys: ``filter[name]...``, ``order[...]``)."""
    for key, values in query.items():
        name = key.split("[", 1)[0]
        if name == "filter" and key[7 : key.find("]")] in filters and key.startswith("filter["):
            continue
        if name == "order" and order and key.startswith("order["):
            continue
        if key == "query" and search:
            continue
        if key in PAGES and pages:
            if not all(v.isdigit() and int(v) > 0 for v in values):
                return bad_query(f"{key} must be a positive integer")
            if key == "limit" and any(int(v) > MAX_LIMIT for v in values):
                return bad_query(f"limit must be no more than {MAX_LIMIT}")
            continue
        if key == "with" and with_:
            unknown = {w for v in values for w in v.split(",")} - set(with_)
            if unknown:
                return bad_query(f"Unknown with values: {', '.join(sorted(unknown))}")
            continue
        return bad_query(f"Unknown query parameter: {key}")
    return None


def _fields(obj: Any, allowed: set[str], path: str, request_id: str) -> list[dict[str, Any]]:
    """Validation errors for an object that is not one, or has a field the official model never sends.
    The error code amoCRM uses for an unexpected field is UNCONFIRMED."""
    where = f"{path}." if path else ""
    if not isinstance(obj, dict):
        errors = [
            {"code": "InvalidType", "path": path or "body", "detail": "This value should be an object."}
        ]
        return [{"request_id": request_id, "errors": errors}]
    errors = [
        {"code": "FieldNotExpected", "path": f"{where}{name}", "detail": "This field was not expected."}
        for name in sorted(set(obj) - allowed)
    ]
    for i, value in enumerate(obj.get("custom_fields_values") or []):
        errors += [
            e
            for entry in _fields(value, CUSTOM_FIELD_VALUE, f"{where}custom_fields_values.{i}", request_id)
            for e in entry["errors"]
        ]
    if len(obj.get("custom_fields_values") or []) > 40:  # kommo /reference/complex-leads: ≤ 40 values
        errors.append({"code": "TooMany", "path": f"{where}custom_fields_values", "detail": "max 40"})
    return [{"request_id": request_id, "errors": errors}] if errors else []


def _required(obj: Any, names: tuple[str, ...], path: str, request_id: str) -> list[dict[str, Any]]:
    where = f"{path}." if path else ""
    missing = [_missing(f"{where}{n}") for n in names if isinstance(obj, dict) and obj.get(n) in (None, "")]
    return [{"request_id": request_id, "errors": missing}] if missing else []


def _merge(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_id: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        by_id.setdefault(str(entry["request_id"]), []).extend(entry["errors"])
    return [{"request_id": rid, "errors": errors} for rid, errors in by_id.items()]


def _lead_errors(lead: Any, path: str, request_id: str) -> list[dict[str, Any]]:
    out = _fields(lead, LEAD_FIELDS, path, request_id)
    if isinstance(lead, dict):
        embedded = lead.get("_embedded") or {}
        where = f"{path}._embedded" if path else "_embedded"
        out += _fields(embedded, LEAD_EMBEDDED, where, request_id)
        contacts = embedded.get("contacts") or [] if isinstance(embedded, dict) else []
        if len(contacts) > 1:  # kommo /reference/complex-leads: one contact per lead
            out.append({"request_id": request_id, "errors": [_too_many(f"{where}.contacts", 1)]})
        for i, contact in enumerate(contacts):
            out += _fields(contact, CONTACT_FIELDS, f"{where}.contacts.{i}", request_id)
    return out


def _complex_errors(data: Any) -> list[dict[str, Any]]:
    # POST /api/v4/leads/complex: an array of ≤ 50 leads (developers.kommo.com/reference/complex-leads;
    # LeadModel::toComplexApi).
    if not isinstance(data, list) or not data or len(data) > 50:
        return [{"request_id": "0", "errors": [_too_many("", 50)]}]
    out = []
    for lead in data:
        rid = str(lead.get("request_id", "0")) if isinstance(lead, dict) else "0"
        out += _lead_errors(lead, "", rid)
    return _merge(out)


def _unsorted_errors(data: Any) -> list[dict[str, Any]]:
    # POST /api/v4/leads/unsorted/sip: source_uid, source_name and the SIP metadata are required
    # (kommo.com/developers/content/api_v4/incoming-leads; BaseUnsortedModel::toApi, SipMetadata::toApi).
    if not isinstance(data, list) or not data or len(data) > 50:
        return [{"request_id": "0", "errors": [_too_many("", 50)]}]
    out = []
    for item in data:
        rid = str(item.get("request_id", "0")) if isinstance(item, dict) else "0"
        out += _fields(item, UNSORTED_FIELDS, "", rid)
        if not isinstance(item, dict):
            continue
        out += _required(item, ("source_uid", "source_name", "metadata"), "", rid)
        if item.get("metadata") is not None:
            out += _fields(item["metadata"], SIP_METADATA, "metadata", rid)
            out += _required(item["metadata"], ("uniq", "phone", "service_code"), "metadata", rid)
        embedded = item.get("_embedded") or {}
        out += _fields(embedded, UNSORTED_EMBEDDED, "_embedded", rid)
        if isinstance(embedded, dict):
            for i, lead in enumerate(embedded.get("leads") or []):
                out += _lead_errors(lead, f"_embedded.leads.{i}", rid)
            for i, contact in enumerate(embedded.get("contacts") or []):
                out += _fields(contact, CONTACT_FIELDS, f"_embedded.contacts.{i}", rid)
    return _merge(out)


def _notes_errors(data: Any) -> list[dict[str, Any]]:
    # POST /api/v4/leads/notes: NoteModel::toApi; a call note's params are CallNote::toApi's, of which
    # uniq, duration, source and phone are always sent.
    if not isinstance(data, list) or not data:
        return [{"request_id": "0", "errors": [_missing("")]}]
    out = []
    for note in data:
        rid = str(note.get("request_id", "0")) if isinstance(note, dict) else "0"
        out += _fields(note, NOTE_FIELDS, "", rid)
        if not isinstance(note, dict):
            continue
        out += _required(note, ("entity_id", "note_type"), "", rid)
        if note.get("note_type") in ("call_in", "call_out"):
            out += _fields(note.get("params"), CALL_NOTE_PARAMS, "params", rid)
            out += _required(note.get("params"), ("uniq", "duration", "source", "phone"), "params", rid)
    return _merge(out)


def _too_many(path: str, most: int) -> dict[str, str]:
    return {
        "code": "TooMany",
        "path": path,
        "detail": f"This collection should contain {most} elements or less.",
    }
