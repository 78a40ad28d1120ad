"""Fake Metrika Management API: offline conversion and call uploads, their statuses and listing.

Implements what the Management API reference describes: ``Authorization: OAuth <token>``, multipart ``file``
with a UTF-8 CSV whose first line names the columns, per-row validation counted in ``line_quantity``, status
progression to PROCESSED / LINKAGE_FAILURE, the error shape of "Errors" and the per-second and daily quotas.
Conversion uploads and call uploads are separate families with separate status and list endpoints; a call
upload is unknown to the conversion endpoints, as on Metrika. Unknown paths answer 404 and query parameters
the reference does not list answer 400.

Sources: https://yandex.com/dev/metrika/en/management/openapi/offline_conversions/upload_1 (and findById_1,
findAll_1), https://yandex.com/dev/metrika/en/management/openapi/call/uploadCalls (and
findCallUploadingById, findAllCallUploadings), https://yandex.com/dev/metrika/en/management/calls,
https://yandex.com/dev/metrika/doc/api2/management/concept/errors.html (error body and types), the quotas
page (HTTP 429 on yandex.ru, 420 on yandex.com).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from werkzeug.wrappers import Request, Response

from tests.fakes.oauth import AccessTokens

PREFIX = re.compile(r"^/management/v1/counter/(?P<counter>\d+)/offline_conversions/(?P<rest>.+)$")
ID_COLUMNS = {"USER_ID": "UserId", "CLIENT_ID": "ClientId", "YCLID": "Yclid"}
CALL_OPTIONAL = {
    "StaticCall",
    "Price",
    "Currency",
    "PhoneNumber",
    "TalkDuration",
    "HoldDuration",
    "CallMissed",
    "Tag",
    "FirstTimeCaller",
    "URL",
    "CallTrackerURL",
}
BASIC_OPTIONAL = {"Price", "Currency"}
WINDOW = dt.timedelta(days=21)


def error(status: int, error_type: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = {"errors": [{"error_type": error_type, "message": message}], "code": status, "message": message}
    return Response(json.dumps(body), status, headers, mimetype="application/json")


def ok(body: Any) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), 200, mimetype="application/json")


@dataclass
class Injected:
    status: int
    error_type: str
    message: str
    path: str  # the failure applies to requests whose path ends with this
    headers: dict[str, str]
    after: bool  # do the work first, then fail (an answer lost after the upload was stored)


@dataclass
class Upload:
    counter: str
    type: str  # BASIC or CALLS
    client_id_type: str
    comment: str
    rows: list[dict[str, str]]
    info: dict[str, Any]
    polls_left: int
    final_status: str


@dataclass
class FakeMetrika:
    tokens: AccessTokens
    # counter id -> logins allowed to write to it
    counters: dict[str, set[str]] = field(default_factory=dict)
    goals: set[str] = field(default_factory=set)
    call_goal_names: set[str] = field(default_factory=set)  # goals made by upload_calls' new_goal_name
    visitors: set[str] = field(default_factory=set)  # ClientIds / yclids Metrika has seen visits of
    polls_to_process: int = 1  # status reads before an upload's counts are final
    quota_status: int = 429  # the Russian quotas page says 429, the English one 420
    per_second: int = 30
    expire_tokens_after_uploads: int | None = None  # the login's tokens die after this many uploads
    daily: int = 5000
    uploads: dict[int, Upload] = field(default_factory=dict)
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (status, error_type) answered
    failures: list[Injected] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _second: tuple[int, int] = (0, 0)  # (second, requests in it), per-IP quota
    _day: dict[str, int] = field(default_factory=dict)  # login -> requests today

    def fail_next(
        self,
        status: int,
        error_type: str,
        message: str = "injected",
        *,
        path: str = "",
        headers: dict[str, str] | None = None,
        times: int = 1,
        after: bool = False,
    ) -> None:
        for _ in range(times):
            self.failures.append(Injected(status, error_type, message, path, headers or {}, after))

    def handle(self, request: Request) -> Response | None:
        match = PREFIX.match(request.path)
        if not match:
            return None
        response = self._guarded(request, match["counter"], match["rest"])
        if response.status_code != 200:
            self.rejected.append(
                (response.status_code, json.loads(response.get_data())["errors"][0]["error_type"])
            )
        return response

    def _guarded(self, request: Request, counter: str, rest: str) -> Response:
        login = self.tokens.owner_of(_token_of(request))
        if login is None:
            return error(401, "unauthorized", "Invalid oauth_token")
        with self.lock:
            second = int(time.monotonic())
            count = self._second[1] + 1 if self._second[0] == second else 1
            self._second = (second, count)
            self._day[login] = self._day.get(login, 0) + 1
            if count > self.per_second:
                return error(self.quota_status, "quota_requests_by_ip", "Too many requests per second")
            if self._day[login] > self.daily:
                return error(self.quota_status, "quota_requests_by_uid", "Daily quota exceeded")
            failure = next((f for f in self.failures if request.path.endswith(f.path)), None)
            if failure is not None:
                self.failures.remove(failure)
                if not failure.after:
                    return error(failure.status, failure.error_type, failure.message, failure.headers)
        response = self._route(request, login, counter, rest)
        if failure is not None and failure.after:
            return error(failure.status, failure.error_type, failure.message, failure.headers)
        return response

    def _route(self, request: Request, login: str, counter: str, rest: str) -> Response:
        if counter not in self.counters:
            return error(404, "not_found", f"Counter {counter} not found")
        if login not in self.counters[counter]:
            return error(403, "access_denied", "Access is denied")
        method, (head, _, tail) = request.method, rest.partition("/")
        # POST offline_conversions/upload —
        # https://yandex.com/dev/metrika/en/management/openapi/offline_conversions/upload_1
        if (method, rest) == ("POST", "upload"):
            return self._upload(request, counter, "BASIC", {"client_id_type", "comment"})
        # POST offline_conversions/upload_calls —
        # https://yandex.com/dev/metrika/en/management/openapi/call/uploadCalls
        if (method, rest) == ("POST", "upload_calls"):
            return self._upload(request, counter, "CALLS", {"client_id_type", "comment", "new_goal_name"})
        # GET offline_conversions/uploading/{id} (conversions only) —
        # https://yandex.com/dev/metrika/en/management/openapi/offline_conversions/findById_1
        if (method, head) == ("GET", "uploading") and tail:
            return self._status(request, counter, "BASIC", tail)
        # GET offline_conversions/calls_uploading/{id} —
        # https://yandex.com/dev/metrika/en/management/openapi/call/findCallUploadingById
        if (method, head) == ("GET", "calls_uploading") and tail:
            return self._status(request, counter, "CALLS", tail)
        # GET offline_conversions/uploadings?limit&offset —
        # https://yandex.com/dev/metrika/en/management/openapi/offline_conversions/findAll_1
        if (method, rest) == ("GET", "uploadings"):
            return self._list(request, counter, "BASIC")
        # GET offline_conversions/calls_uploadings?limit&offset —
        # https://yandex.com/dev/metrika/en/management/openapi/call/findAllCallUploadings
        if (method, rest) == ("GET", "calls_uploadings"):
            return self._list(request, counter, "CALLS")
        return error(404, "not_found", f"No method {method} {rest}")

    # --- uploads ---------------------------------------------------------------------------------

    def _upload(self, request: Request, counter: str, kind: str, params: set[str]) -> Response:
        if refused := _unknown_params(request, params):
            return refused
        if request.mimetype != "multipart/form-data":
            return error(400, "invalid_parameter", "multipart/form-data body required")
        part = request.files.get("file")
        if part is None or not part.filename:
            return error(400, "missing_parameter", "file part is required")
        comment = request.args.get("comment", "")
        if len(comment) > 255:
            return error(400, "invalid_parameter", "comment is longer than 255 characters")
        # Older docs require client_id_type, the current ones omit it: accept both.
        id_type = request.args.get("client_id_type", "").upper()
        if id_type and id_type not in ID_COLUMNS:
            return error(400, "invalid_parameter", f"unknown client_id_type {id_type}")
        try:
            text = part.read().decode("utf-8")
        except UnicodeDecodeError:
            return error(400, "invalid_parameter", "file is not UTF-8")
        reader = csv.DictReader(io.StringIO(text))
        columns = reader.fieldnames or []
        id_columns = [c for c in columns if c in ID_COLUMNS.values()]
        if len(id_columns) != 1:
            return error(400, "invalid_parameter", "exactly one of UserId, ClientId, Yclid is required")
        id_column = id_columns[0]
        if id_type and ID_COLUMNS[id_type] != id_column:
            return error(400, "invalid_parameter", f"{id_column} does not match client_id_type={id_type}")
        required = {"DateTime"} | ({"Target"} if kind == "BASIC" else set())
        optional = CALL_OPTIONAL if kind == "CALLS" else BASIC_OPTIONAL
        if missing := required - set(columns):
            return error(400, "missing_parameter", f"columns missing: {sorted(missing)}")
        if unknown := set(columns) - required - optional - {id_column}:
            return error(400, "invalid_parameter", f"unknown columns: {sorted(unknown)}")
        rows = list(reader)
        if kind == "CALLS" and request.args.get("new_goal_name"):
            self.call_goal_names.add(request.args["new_goal_name"])
        if not rows:
            return error(400, "invalid_parameter", "file has no data rows")
        valid = [r for r in rows if _row_ok(r, id_column)]
        now = time.time()
        linked = [
            r
            for r in valid
            if r[id_column] in self.visitors
            and now - int(r["DateTime"]) <= WINDOW.total_seconds()
            and (kind == "CALLS" or r["Target"] in self.goals)
        ]
        with self.lock:
            upload_id = 1000 + len(self.uploads)
            info: dict[str, Any] = {
                "id": upload_id,
                "create_time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "source_quantity": len(rows),
                "line_quantity": len(valid),
                "comment": comment,
                "type": kind,
                "client_id_type": id_type or next(k for k, v in ID_COLUMNS.items() if v == id_column),
                "status": "UPLOADED",
            }
            if kind == "CALLS":
                info["static_calls_quantity"] = sum(r.get("StaticCall") == "1" for r in valid)
                info["dynamic_calls_quantity"] = sum(r.get("StaticCall") != "1" for r in valid)
            upload = Upload(
                counter,
                kind,
                info["client_id_type"],
                comment,
                valid,
                info,
                self.polls_to_process,
                "PROCESSED" if linked else "LINKAGE_FAILURE",
            )
            upload.info["_final"] = {
                "linked_quantity": len(linked),
                "user_not_found_quantity": sum(r[id_column] not in self.visitors for r in valid),
                "goal_not_found_quantity": sum(
                    kind == "BASIC" and r["Target"] not in self.goals for r in valid
                ),
            }
            self.uploads[upload_id] = upload
            if len(self.uploads) == self.expire_tokens_after_uploads:
                self.tokens.expire_login(self.tokens.owner_of(_token_of(request)) or "")
            return ok({"uploading": _public(upload.info)})

    def _advance(self, upload: Upload) -> None:
        if upload.polls_left > 0:
            upload.polls_left -= 1
            upload.info["status"] = "MATCHED"
        if upload.polls_left == 0:
            upload.info["status"] = upload.final_status
            upload.info.update(upload.info["_final"])

    def _status(self, request: Request, counter: str, kind: str, raw_id: str) -> Response:
        if refused := _unknown_params(request, set()):
            return refused
        with self.lock:
            upload = self.uploads.get(int(raw_id)) if raw_id.isdigit() else None
            # Each family's status endpoint knows only its own uploads.
            if upload is None or upload.counter != counter or upload.type != kind:
                return error(404, "not_found", f"Uploading {raw_id} not found")
            self._advance(upload)
            return ok({"uploading": _public(upload.info)})

    def _list(self, request: Request, counter: str, kind: str) -> Response:
        # Only limit and offset are documented: a type filter is not, and is refused.
        if refused := _unknown_params(request, {"limit", "offset"}):
            return refused
        try:
            limit = int(request.args.get("limit", 10000))
            offset = int(request.args.get("offset", 0))
        except ValueError:
            return error(400, "invalid_parameter", "limit and offset are integers")
        with self.lock:
            found = [u for u in self.uploads.values() if u.counter == counter and u.type == kind]
            for upload in found:
                self._advance(upload)
            page = [_public(u.info) for u in found[offset : offset + limit]]
        return ok({"uploadings": page})

    # --- test helpers --------------------------------------------------------------------------------

    def rows(self, counter: str, kind: str) -> list[dict[str, str]]:
        return [r for u in self.uploads.values() if u.counter == counter and u.type == kind for r in u.rows]


def _unknown_params(request: Request, allowed: set[str]) -> Response | None:
    if unknown := set(request.args) - allowed:
        return error(400, "invalid_parameter", f"Unknown parameters: {', '.join(sorted(unknown))}")
    return None


def _token_of(request: Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token if scheme == "OAuth" else ""


def _public(info: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in info.items() if not k.startswith("_")}


def _row_ok(row: dict[str, str], id_column: str) -> bool:
    try:
        if not row[id_column] or (id_column != "UserId" and not row[id_column].isdigit()):
            return False
        int(row["DateTime"])
        for flag in ("StaticCall", "CallMissed", "FirstTimeCaller"):
            if row.get(flag, "0") not in ("0", "1", ""):
                return False
        for number in ("TalkDuration", "HoldDuration"):
            if row.get(number) and int(row[number]) < 0:
                return False
        if row.get("PhoneNumber") and not re.fullmatch(r"\+?\d{5,15}", row["PhoneNumber"]):
            return False
        if row.get("Price"):
            Decimal(row["Price"])
        if row.get("Currency") and not re.fullmatch(r"[A-Z]{3}", row["Currency"]):
            return False
    except (ValueError, InvalidOperation):
        return False
    return True
