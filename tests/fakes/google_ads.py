"""A local Google Ads API (v26) over gRPC + TLS (Google's OAuth is ``tests.fakes.oauth.GOOGLE``, the
certificate ``tests.fakes.tls``).

The gRPC side uses generic handlers over the proto-plus message classes shipped in ``google-ads`` (no
generated stubs): requests are parsed with ``Request.deserialize``, responses written with ``serialize``,
errors sent the way Google sends them (status + ``googleadsfailure-bin`` trailer, or a
``partial_failure_error`` with GoogleAdsFailure details). It keeps state (clicks, calls, conversion
actions, uploaded conversions, spend facts, daily operations) so dedupe and validation are real.

TLS: the official client always opens a secure channel, so the server presents a certificate generated
for ``localhost``/``127.0.0.1``; the client process trusts it through ``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH``
(read by gRPC when the process creates its first secure channel).

Sources: the google-ads 34.0.0 wheel, ``google/ads/googleads/v26/services/types/*`` (messages),
``.../errors/types/*`` (error enums and their texts), ``interceptors/interceptor.py`` (the failure trailer)
and ``interceptors/metadata_interceptor.py`` (metadata), as probed in the protocol notes D.1-D.5.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.ads.googleads.v26.errors.types.errors import (
    ErrorCode,
    ErrorDetails,
    ErrorLocation,
    GoogleAdsError,
    GoogleAdsFailure,
    QuotaErrorDetails,
)
from google.ads.googleads.v26.services.types.conversion_upload_service import (
    CallConversionResult,
    ClickConversionResult,
    UploadCallConversionsRequest,
    UploadCallConversionsResponse,
    UploadClickConversionsRequest,
    UploadClickConversionsResponse,
)
from google.ads.googleads.v26.services.types.customer_service import (
    ListAccessibleCustomersRequest,
    ListAccessibleCustomersResponse,
)
from google.ads.googleads.v26.services.types.google_ads_service import (
    GoogleAdsRow,
    SearchGoogleAdsStreamRequest,
    SearchGoogleAdsStreamResponse,
)
from google.protobuf import any_pb2, duration_pb2
from google.rpc import status_pb2

from tests.fakes.oauth import AccessTokens
from tests.fakes.tls import TlsFiles

VERSION = "v26"
FAILURE_KEY = f"google.ads.googleads.{VERSION}.errors.googleadsfailure-bin"
FAILURE_TYPE_URL = f"type.googleapis.com/google.ads.googleads.{VERSION}.errors.GoogleAdsFailure"
CONVERSION_SERVICE = f"google.ads.googleads.{VERSION}.services.ConversionUploadService"
ADS_SERVICE = f"google.ads.googleads.{VERSION}.services.GoogleAdsService"
CUSTOMER_SERVICE = f"google.ads.googleads.{VERSION}.services.CustomerService"
MAX_CONVERSIONS = 2000
DEVELOPER_TOKEN = "dev-token-123"
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")
ACTION = re.compile(r"^customers/(\d+)/conversionActions/(\d+)$")
E164 = re.compile(r"^\+[1-9]\d{7,14}$")
CLICK_ID = re.compile(r"^[A-Za-z0-9_\-]{6,}$")


# --- Google Ads (gRPC) ----------------------------------------------------------------------------------


@dataclass
class SpendFact:
    day: str
    campaign_id: int
    campaign_name: str
    cost_micros: int
    clicks: int = 0
    impressions: int = 0
    ad_group_id: int | None = None
    ad_group_name: str = ""
    criterion_id: int | None = None
    keyword: str = ""


@dataclass
class Customer:
    customer_id: str
    manager_id: str | None = None  # when set, requests must carry login-customer-id = manager
    currency: str = "RUB"
    actions: dict[int, str] = field(default_factory=dict)  # id -> "click" | "call" | "webpage"
    action_names: dict[int, str] = field(default_factory=dict)
    removed_actions: set[int] = field(default_factory=set)
    clicks: dict[str, dt.datetime] = field(default_factory=dict)  # gclid/gbraid/wbraid -> click time
    calls: set[tuple[str, str]] = field(default_factory=set)  # (caller E.164, start 'yyyy-mm-dd hh:mm:ss')
    click_conversions: list[dict[str, Any]] = field(default_factory=list)
    call_conversions: list[dict[str, Any]] = field(default_factory=list)
    spend: list[SpendFact] = field(default_factory=list)


@dataclass
class Received:
    method: str
    metadata: dict[str, str]
    request: Any


@dataclass
class Injected:
    code: grpc.StatusCode
    errors: list[tuple]  # (category, name, message) or (category, name, message, row index)
    retry_delay: int | None = None
    with_failure: bool = True
    after: int = 0  # let this many calls through first


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, errors: list[GoogleAdsError], message: str = ""):
        super().__init__(message)
        self.code = code
        self.errors = errors
        self.message = message or "; ".join(e.message for e in errors)


def ads_error(
    category: str, name: str, message: str, index: int | None = None, retry_delay: int | None = None
) -> GoogleAdsError:
    enum = ErrorCode.meta.fields[category].enum
    err = GoogleAdsError(error_code=ErrorCode(mapping={category: enum[name]}), message=message)
    if index is not None:
        err.location = ErrorLocation(
            field_path_elements=[ErrorLocation.FieldPathElement(field_name="conversions", index=index)]
        )
    if retry_delay is not None:
        err.details = ErrorDetails(
            quota_error_details=QuotaErrorDetails(
                rate_scope=QuotaErrorDetails.QuotaRateScope.DEVELOPER,
                rate_name="Number of operations for basic access",
                retry_delay=duration_pb2.Duration(seconds=retry_delay),
            )
        )
    return err


def _parse_dt(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S%z")


class FakeGoogleAds:
    def __init__(
        self,
        tls: TlsFiles,
        tokens: AccessTokens,
        *,
        developer_token: str = DEVELOPER_TOKEN,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.tokens = tokens
        self.developer_token = developer_token
        self.now = now
        self.customers: dict[str, Customer] = {}
        self.received: list[Received] = []
        self.injected: dict[str, deque[Injected]] = defaultdict(deque)
        self.daily_operations: int | None = None  # the developer token's daily quota, when enforced
        self.operations_used = 0
        self.quota_retry_delay = 3600
        self.click_too_recent_hours = 6
        self.call_too_recent_hours = 6  # TOO_RECENT_CALL's text in the v26 enum
        self.click_window = dt.timedelta(days=90)
        self.call_window = dt.timedelta(days=60)
        self.stream_batch = 2  # rows per streamed response, to exercise multi-message streams
        self.lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        self._server.add_generic_rpc_handlers(self._handlers())
        creds = grpc.ssl_server_credentials([(tls.key_pem, tls.cert_pem)])
        self.port = self._server.add_secure_port("127.0.0.1:0", creds)
        self.endpoint = f"localhost:{self.port}"

    # --- control ----------------------------------------------------------------------------------

    def start(self) -> FakeGoogleAds:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=None)

    def add_customer(self, customer_id: str, **kw: Any) -> Customer:
        customer = Customer(customer_id, **kw)
        self.customers[customer_id] = customer
        return customer

    def fail_next(
        self,
        method: str,
        code: grpc.StatusCode,
        errors: list[tuple] = (),  # type: ignore[assignment]
        *,
        retry_delay: int | None = None,
        times: int = 1,
        with_failure: bool = True,
        after: int = 0,
    ) -> None:
        for _ in range(times):
            self.injected[method].append(Injected(code, list(errors), retry_delay, with_failure, after))

    def calls_to(self, method: str) -> list[Received]:
        return [r for r in self.received if r.method == method]

    # --- plumbing ---------------------------------------------------------------------------------

    def _handlers(self) -> list[grpc.GenericRpcHandler]:
        conversions = grpc.method_handlers_generic_handler(
            CONVERSION_SERVICE,
            {
                "UploadClickConversions": grpc.unary_unary_rpc_method_handler(
                    self._wrap("UploadClickConversions", self._upload_click),
                    request_deserializer=UploadClickConversionsRequest.deserialize,
                    response_serializer=UploadClickConversionsResponse.serialize,
                ),
                "UploadCallConversions": grpc.unary_unary_rpc_method_handler(
                    self._wrap("UploadCallConversions", self._upload_call),
                    request_deserializer=UploadCallConversionsRequest.deserialize,
                    response_serializer=UploadCallConversionsResponse.serialize,
                ),
            },
        )
        ads = grpc.method_handlers_generic_handler(
            ADS_SERVICE,
            {
                "SearchStream": grpc.unary_stream_rpc_method_handler(
                    self._wrap_stream("SearchStream", self._search_stream),
                    request_deserializer=SearchGoogleAdsStreamRequest.deserialize,
                    response_serializer=SearchGoogleAdsStreamResponse.serialize,
                )
            },
        )
        customers = grpc.method_handlers_generic_handler(
            CUSTOMER_SERVICE,
            {
                "ListAccessibleCustomers": grpc.unary_unary_rpc_method_handler(
                    self._wrap("ListAccessibleCustomers", self._list_accessible),
                    request_deserializer=ListAccessibleCustomersRequest.deserialize,
                    response_serializer=ListAccessibleCustomersResponse.serialize,
                )
            },
        )
        return [conversions, ads, customers]

    def _abort(self, context: grpc.ServicerContext, exc: _Abort, request_id: str) -> None:
        failure = GoogleAdsFailure(errors=exc.errors, request_id=request_id)
        trailers: list[tuple[str, Any]] = [("request-id", request_id)]
        if exc.errors:
            trailers.append((FAILURE_KEY, GoogleAdsFailure.serialize(failure)))
        context.set_trailing_metadata(tuple(trailers))
        context.abort(exc.code, exc.message or exc.code.name)

    def _wrap(self, method: str, fn: Callable[[Any, str], Any]) -> Callable[[Any, Any], Any]:
        def handler(request: Any, context: grpc.ServicerContext) -> Any:
            request_id = secrets.token_hex(8)
            try:
                with self.lock:
                    self._admit(method, request, context)
                    return fn(request, request_id)
            except _Abort as exc:
                self._abort(context, exc, request_id)

        return handler

    def _wrap_stream(self, method: str, fn: Callable[[Any, str], Iterator[Any]]) -> Callable[[Any, Any], Any]:
        def handler(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            request_id = secrets.token_hex(8)
            try:
                with self.lock:
                    self._admit(method, request, context)
                    responses = list(fn(request, request_id))
            except _Abort as exc:
                self._abort(context, exc, request_id)
                return
            yield from responses

        return handler

    def _admit(self, method: str, request: Any, context: grpc.ServicerContext) -> None:
        """Headers, injected failures, customer access and quota — in the order Google checks them."""
        metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        self.received.append(
            Received(method, metadata, type(request).deserialize(type(request).serialize(request)))
        )
        auth = metadata.get("authorization", "")
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else ""
        if token not in self.tokens:
            name, text = "OAUTH_TOKEN_INVALID", "Invalid OAuth token."
            if token in self.tokens.expired:
                name, text = "OAUTH_TOKEN_EXPIRED", "Authentication token expired."
            elif token in self.tokens.revoked:
                name, text = "OAUTH_TOKEN_REVOKED", "Authentication token revoked."
            raise _Abort(grpc.StatusCode.UNAUTHENTICATED, [ads_error("authentication_error", name, text)])
        if metadata.get("developer-token") != self.developer_token:
            raise _Abort(
                grpc.StatusCode.UNAUTHENTICATED,
                [ads_error("authentication_error", "DEVELOPER_TOKEN_INVALID", "Developer token is invalid.")],
            )
        if self.injected[method] and self.injected[method][0].after > 0:
            self.injected[method][0].after -= 1
        elif self.injected[method]:
            inj = self.injected[method].popleft()
            errors = [
                ads_error(*e[:3], index=e[3] if len(e) > 3 else None, retry_delay=inj.retry_delay)
                for e in inj.errors
            ]
            raise _Abort(inj.code, errors if inj.with_failure else [], "injected")
        if not hasattr(request, "customer_id"):
            return  # ListAccessibleCustomers: about the user, not an account
        customer = self.customers.get(request.customer_id)
        login = metadata.get("login-customer-id")
        if customer is None or (customer.manager_id and login != customer.manager_id):
            raise _Abort(
                grpc.StatusCode.PERMISSION_DENIED,
                [
                    ads_error(
                        "authorization_error",
                        "USER_PERMISSION_DENIED",
                        "User doesn't have permission to access customer. Note: If you're accessing a "
                        "client customer, the manager's customer id must be set in the 'login-customer-id' "
                        "header.",
                    )
                ],
            )
        operations = len(getattr(request, "conversions", ())) or 1
        if self.daily_operations is not None and self.operations_used + operations > self.daily_operations:
            raise _Abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                [
                    ads_error(
                        "quota_error",
                        "RESOURCE_EXHAUSTED",
                        f"Too many requests. Retry in {self.quota_retry_delay} seconds.",
                        retry_delay=self.quota_retry_delay,
                    )
                ],
            )
        self.operations_used += operations

    # --- ConversionUploadService ------------------------------------------------------------------

    def _action(self, customer: Customer, resource: str, kind: str, i: int) -> tuple[int | None, list]:
        m = ACTION.match(resource or "")
        if not m or int(m.group(2)) not in customer.actions:
            return None, [
                ads_error(
                    "conversion_upload_error",
                    "NO_CONVERSION_ACTION_FOUND",
                    "The conversion action specified in the upload request cannot be found.",
                    i,
                )
            ]
        action_id = int(m.group(2))
        if customer.actions[action_id] != kind:
            return None, [
                ads_error(
                    "conversion_upload_error",
                    "INVALID_CONVERSION_ACTION_TYPE",
                    f"The conversion action is not of the {kind} import type.",
                    i,
                )
            ]
        return action_id, []

    def _check_batch(self, request: Any) -> None:
        if not request.conversions:
            raise _Abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                [ads_error("field_error", "REQUIRED_NONEMPTY_LIST", "conversions is required.")],
            )
        if len(request.conversions) > MAX_CONVERSIONS:
            raise _Abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                [
                    ads_error(
                        "conversion_upload_error",
                        "TOO_MANY_CONVERSIONS_IN_REQUEST",
                        "Upload fewer than 2001 events in a single request.",
                    )
                ],
            )

    def _finish(self, request: Any, errors: list[GoogleAdsError], apply: Callable[[], None]) -> Any:
        """Without partial_failure any row error fails the request and nothing is applied."""
        if errors and not request.partial_failure:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, errors)
        apply()
        if not errors:
            return None
        status = status_pb2.Status(
            code=grpc.StatusCode.INVALID_ARGUMENT.value[0],
            message="Multiple errors in ‘details’. First error: " + errors[0].message,
            details=[
                any_pb2.Any(
                    type_url=FAILURE_TYPE_URL,
                    value=GoogleAdsFailure.serialize(GoogleAdsFailure(errors=errors)),
                )
            ],
        )
        return status

    def _upload_click(self, request: UploadClickConversionsRequest, request_id: str) -> Any:
        self._check_batch(request)
        customer = self.customers[request.customer_id]
        now = self.now()
        errors: list[GoogleAdsError] = []
        accepted: list[dict[str, Any]] = []
        results: list[ClickConversionResult] = []
        seen_orders: dict[tuple[int, str], int] = {}
        for i, conv in enumerate(request.conversions):
            row_errors = self._click_row_errors(customer, conv, i, now, seen_orders)
            if row_errors:
                errors.extend(row_errors)
                results.append(ClickConversionResult())
                continue
            record = {
                "gclid": conv.gclid,
                "gbraid": conv.gbraid,
                "wbraid": conv.wbraid,
                "action_id": int(ACTION.match(conv.conversion_action).group(2)),  # type: ignore[union-attr]
                "conversion_date_time": conv.conversion_date_time,
                "order_id": conv.order_id,
                "value": conv.conversion_value if "conversion_value" in conv else None,
                "currency": conv.currency_code,
            }
            accepted.append(record)
            results.append(
                ClickConversionResult(
                    gclid=conv.gclid,
                    gbraid=conv.gbraid,
                    wbraid=conv.wbraid,
                    conversion_action=conv.conversion_action,
                    conversion_date_time=conv.conversion_date_time,
                )
            )
        status = self._finish(request, errors, lambda: customer.click_conversions.extend(accepted))
        response = UploadClickConversionsResponse(results=results, job_id=secrets.randbelow(2**62) + 2**31)
        if status is not None:
            response.partial_failure_error = status
        return response

    def _click_row_errors(
        self, customer: Customer, conv: Any, i: int, now: dt.datetime, seen_orders: dict[tuple[int, str], int]
    ) -> list[GoogleAdsError]:
        def err(name: str, message: str, category: str = "conversion_upload_error") -> list[GoogleAdsError]:
            return [ads_error(category, name, message, i)]

        ids = [v for v in (conv.gclid, conv.gbraid, conv.wbraid) if v]
        if conv.gbraid and conv.wbraid:
            return err("GBRAID_WBRAID_BOTH_SET", "gbraid and wbraid cannot both be set.")
        if not ids:
            return err("REQUIRED", "One of gclid, gbraid or wbraid is required.", "field_error")
        if conv.gclid and not CLICK_ID.match(conv.gclid):
            return err("UNPARSEABLE_GCLID", "The gclid could not be decoded.")
        if not DATETIME.match(conv.conversion_date_time or ""):
            return err(
                "INVALID_STRING_DATE_TIME_SECONDS_WITH_OFFSET",
                "The string date time's format should be yyyy-mm-dd hh:mm:ss+|-hh:mm.",
                "date_error",
            )
        action_id, problems = self._action(customer, conv.conversion_action, "click", i)
        if problems:
            return problems
        if conv.currency_code and not re.fullmatch(r"[A-Z]{3}", conv.currency_code):
            return err("INVALID_VALUE", "currency_code must be ISO 4217.", "field_error")
        clicked = customer.clicks.get(ids[0])
        if clicked is None:
            return err("CLICK_NOT_FOUND", "The click associated with the given identifier was not found.")
        converted = _parse_dt(conv.conversion_date_time)
        if converted < clicked:
            return err("CONVERSION_PRECEDES_EVENT", "The conversion precedes the click.")
        if clicked > now - dt.timedelta(hours=self.click_too_recent_hours):
            hours = self.click_too_recent_hours
            return err(
                "TOO_RECENT_EVENT",
                f"The click occurred less than {hours} hours ago. Retry after {hours} hours have passed.",
            )
        if converted - clicked > self.click_window:
            return err(
                "EXPIRED_EVENT",
                "The imported event can't be recorded because its click occurred before this "
                "conversion's click-through window.",
            )
        assert action_id is not None
        if conv.order_id:
            key = (action_id, conv.order_id)
            if key in seen_orders:
                return err(
                    "DUPLICATE_ORDER_ID",
                    "Imported events include multiple conversions with the same order ID.",
                )
            seen_orders[key] = i
            if any(
                c["action_id"] == action_id and c["order_id"] == conv.order_id
                for c in customer.click_conversions
            ):
                return err(
                    "ORDER_ID_ALREADY_IN_USE",
                    "The imported event includes an order ID that was previously recorded.",
                )
        elif any(
            c["action_id"] == action_id
            and ids[0] in (c["gclid"], c["gbraid"], c["wbraid"])
            and c["conversion_date_time"] == conv.conversion_date_time
            for c in customer.click_conversions
        ):
            return err("CLICK_CONVERSION_ALREADY_EXISTS", "The click conversion already exists.")
        return []

    def _upload_call(self, request: UploadCallConversionsRequest, request_id: str) -> Any:
        self._check_batch(request)
        customer = self.customers[request.customer_id]
        now = self.now()
        errors: list[GoogleAdsError] = []
        accepted: list[dict[str, Any]] = []
        results: list[CallConversionResult] = []
        for i, conv in enumerate(request.conversions):
            row_errors = self._call_row_errors(customer, conv, i, now, accepted)
            if row_errors:
                errors.extend(row_errors)
                results.append(CallConversionResult())
                continue
            accepted.append(
                {
                    "caller_id": conv.caller_id,
                    "call_start_date_time": conv.call_start_date_time,
                    "action_id": int(ACTION.match(conv.conversion_action).group(2)),  # type: ignore[union-attr]
                    "conversion_date_time": conv.conversion_date_time,
                    "value": conv.conversion_value if "conversion_value" in conv else None,
                    "currency": conv.currency_code,
                }
            )
            results.append(
                CallConversionResult(
                    caller_id=conv.caller_id,
                    call_start_date_time=conv.call_start_date_time,
                    conversion_action=conv.conversion_action,
                    conversion_date_time=conv.conversion_date_time,
                )
            )
        status = self._finish(request, errors, lambda: customer.call_conversions.extend(accepted))
        response = UploadCallConversionsResponse(results=results)
        if status is not None:
            response.partial_failure_error = status
        return response

    def _call_row_errors(
        self, customer: Customer, conv: Any, i: int, now: dt.datetime, in_request: list[dict[str, Any]]
    ) -> list[GoogleAdsError]:
        def err(name: str, message: str, category: str = "conversion_upload_error") -> list[GoogleAdsError]:
            return [ads_error(category, name, message, i)]

        if not E164.match(conv.caller_id or ""):
            return err("UNPARSEABLE_CALLERS_PHONE_NUMBER", "The caller's phone number can't be parsed.")
        for value in (conv.call_start_date_time, conv.conversion_date_time):
            if not DATETIME.match(value or ""):
                return err(
                    "INVALID_STRING_DATE_TIME_SECONDS_WITH_OFFSET",
                    "The string date time's format should be yyyy-mm-dd hh:mm:ss+|-hh:mm.",
                    "date_error",
                )
        action_id, problems = self._action(customer, conv.conversion_action, "call", i)
        if problems:
            return problems
        started = _parse_dt(conv.call_start_date_time)
        converted = _parse_dt(conv.conversion_date_time)
        utc_start = started.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        if (conv.caller_id, utc_start) not in customer.calls:
            return err("CALL_NOT_FOUND", "The call was not found.")
        if converted <= started:
            return err("CONVERSION_PRECEDES_CALL", "The conversion precedes the call.")
        if started > now - dt.timedelta(hours=self.call_too_recent_hours):
            hours = self.call_too_recent_hours
            return err(
                "TOO_RECENT_CALL",
                f"Can't import calls that occurred less than {hours} hours ago. "
                f"Try uploading again in {hours} hours.",
            )
        if converted - started > self.call_window:
            return err("EXPIRED_CALL", "The call occurred before this conversion action's lookback window.")
        same = [
            c
            for c in customer.call_conversions + in_request
            if c["caller_id"] == conv.caller_id
            and _parse_dt(c["call_start_date_time"]) == started
            and c["action_id"] == action_id
            and _parse_dt(c["conversion_date_time"]) == converted
        ]
        if same:
            return err("CALL_CONVERSION_ALREADY_EXISTS", "The imported call conversion already exists.")
        return []

    # --- CustomerService ----------------------------------------------------------------------------

    def _list_accessible(self, request: Any, request_id: str) -> Any:
        """The user reaches managers and unmanaged accounts directly; managed ones only through a manager."""
        ids = {c.manager_id or c.customer_id for c in self.customers.values()}
        return ListAccessibleCustomersResponse(resource_names=[f"customers/{i}" for i in sorted(ids)])

    # --- GoogleAdsService.SearchStream ------------------------------------------------------------

    _QUERY = re.compile(
        r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<resource>\w+)\s+WHERE\s+segments\.date\s+BETWEEN\s+"
        r"'(?P<start>\d{4}-\d{2}-\d{2})'\s+AND\s+'(?P<end>\d{4}-\d{2}-\d{2})'\s*$",
        re.IGNORECASE | re.DOTALL,
    )
    _FIELDS = {
        "segments.date": lambda f, c: f.day,
        "customer.currency_code": lambda f, c: c.currency,
        "campaign.id": lambda f, c: f.campaign_id,
        "campaign.name": lambda f, c: f.campaign_name,
        "ad_group.id": lambda f, c: f.ad_group_id,
        "ad_group.name": lambda f, c: f.ad_group_name,
        "ad_group_criterion.criterion_id": lambda f, c: f.criterion_id,
        "ad_group_criterion.keyword.text": lambda f, c: f.keyword,
    }
    _METRICS = ("metrics.cost_micros", "metrics.clicks", "metrics.impressions")
    _RESOURCES = {
        "campaign": ("segments.date", "campaign.id"),
        "ad_group": ("segments.date", "campaign.id", "ad_group.id"),
        "keyword_view": ("segments.date", "campaign.id", "ad_group.id", "ad_group_criterion.criterion_id"),
    }
    _ALLOWED = {
        "campaign": {"segments.date", "customer.currency_code", "campaign.id", "campaign.name"},
        "ad_group": {
            "segments.date",
            "customer.currency_code",
            "campaign.id",
            "campaign.name",
            "ad_group.id",
            "ad_group.name",
        },
        "keyword_view": set(_FIELDS),
    }

    _ACTIONS_QUERY = re.compile(
        r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+conversion_action"
        r"(?:\s+WHERE\s+conversion_action\.status\s*=\s*'(?P<status>\w+)')?"
        r"(?:\s+AND\s+conversion_action\.type\s+IN\s+\((?P<types>[^)]*)\))?\s*$",
        re.IGNORECASE | re.DOTALL,
    )
    _ACTION_TYPES = {"click": "UPLOAD_CLICKS", "call": "UPLOAD_CALLS", "webpage": "WEBPAGE"}

    def _conversion_actions(self, m: re.Match[str], customer: Customer, request_id: str) -> Iterator[Any]:
        fields = [f.strip() for f in m.group("fields").split(",")]
        allowed = {"conversion_action.id", "conversion_action.name", "conversion_action.type"}
        if not set(fields) <= allowed:
            raise _Abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                [ads_error("query_error", "BAD_FIELD_NAME", "Unrecognized field in the query.")],
            )
        types = {t.strip().strip("'") for t in (m.group("types") or "").split(",") if t.strip()}
        rows = []
        for action_id, kind in sorted(customer.actions.items()):
            status = "REMOVED" if action_id in customer.removed_actions else "ENABLED"
            if (m.group("status") and status != m.group("status")) or (
                types and self._ACTION_TYPES[kind] not in types
            ):
                continue
            row = GoogleAdsRow()
            if "conversion_action.id" in fields:
                row.conversion_action.id = action_id
            if "conversion_action.name" in fields:
                row.conversion_action.name = customer.action_names.get(action_id, f"Action {action_id}")
            if "conversion_action.type" in fields:
                # proto-plus spells the GAQL field ``type`` as ``type_`` (a Python builtin)
                enum = type(row.conversion_action).meta.fields["type_"].enum
                row.conversion_action.type_ = enum[self._ACTION_TYPES[kind]]
            rows.append(row)
        yield SearchGoogleAdsStreamResponse(results=rows, request_id=request_id)

    def _search_stream(self, request: SearchGoogleAdsStreamRequest, request_id: str) -> Iterator[Any]:
        actions = self._ACTIONS_QUERY.match(request.query)
        if actions:
            yield from self._conversion_actions(actions, self.customers[request.customer_id], request_id)
            return
        m = self._QUERY.match(request.query)
        if not m:
            raise _Abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                [ads_error("query_error", "BAD_SYMBOL", "Error in query: unexpected input.")],
            )
        resource = m.group("resource")
        fields = [f.strip() for f in m.group("fields").split(",")]
        if resource not in self._RESOURCES:
            raise _Abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                [ads_error("query_error", "BAD_RESOURCE_TYPE_IN_FROM_CLAUSE", f"Bad resource {resource}.")],
            )
        for f in fields:
            if f not in self._ALLOWED[resource] and f not in self._METRICS:
                raise _Abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    [ads_error("query_error", "BAD_FIELD_NAME", f"Unrecognized field in the query: '{f}'.")],
                )
        customer = self.customers[request.customer_id]
        key_fields = self._RESOURCES[resource]
        groups: dict[tuple, list[SpendFact]] = {}
        for fact in customer.spend:
            if not m.group("start") <= fact.day <= m.group("end"):
                continue
            key = tuple(self._FIELDS[k](fact, customer) for k in key_fields)
            if None in key:
                continue  # e.g. Performance Max spend has no ad group or keyword
            groups.setdefault(key, []).append(fact)
        rows = []
        for facts in groups.values():
            row = GoogleAdsRow.pb()()
            for f in fields:
                if f in self._METRICS:
                    value = sum(getattr(x, f.split(".")[1]) for x in facts)
                else:
                    value = self._FIELDS[f](facts[0], customer)
                target = row
                *parents, leaf = f.split(".")
                for p in parents:
                    target = getattr(target, p)
                setattr(target, leaf, value)
            rows.append(GoogleAdsRow.wrap(row))
        for start in range(0, max(len(rows), 1), self.stream_batch):
            yield SearchGoogleAdsStreamResponse(
                results=rows[start : start + self.stream_batch], request_id=request_id
            )
