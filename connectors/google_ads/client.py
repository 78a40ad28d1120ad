"""Wire calls to the Google Ads API (v26) through the official ``google-ads`` client.

Imported only by the scheduler side (``make_connector``); it pulls in ``google.ads``. The access token
comes from the pipeline through ``AccountContext.access_token``: this module never refreshes tokens
itself, so a refresh token lives in one place and rotation or revocation is handled there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import proto
from google.ads.googleads.client import GoogleAdsClient
from google.ads.googleads.errors import GoogleAdsException
from google.api_core.exceptions import GoogleAPICallError
from google.auth import credentials as ga_credentials

from connectors.google_ads.mapping import RowError

API_VERSION = "v26"
FAILURE_METADATA_KEY = f"google.ads.googleads.{API_VERSION}.errors.googleadsfailure-bin"
DEFAULT_TIMEOUT = 120.0  # seconds per request; the pipeline owns retries

# At INFO the library logs whole requests (caller phone numbers, click ids). Unless the operator chose a
# level for it, keep it to the one-line fault summaries.
_library_log = logging.getLogger("google.ads.googleads.client")
if _library_log.level == logging.NOTSET:
    _library_log.setLevel(logging.WARNING)


class PipelineCredentials(ga_credentials.Credentials):
    """google-auth credentials whose token is whatever the pipeline currently holds.

    ``load()`` is called on the caller's thread before each request so that a failing refresh
    (``AuthRevoked``) surfaces there, not inside gRPC's metadata-plugin thread where it would turn
    into an opaque UNAVAILABLE.
    """

    def __init__(self, token_source: Callable[[], str]) -> None:
        super().__init__()
        self._token_source = token_source

    def load(self) -> None:
        self.token = self._token_source()

    def refresh(self, request: Any) -> None:
        self.load()


@dataclass
class ApiError(Exception):
    """A whole request failed. ``status`` is the gRPC status name (``INVALID_ARGUMENT`` …)."""

    status: str
    errors: list[RowError] = field(default_factory=list)
    retry_after: float | None = None  # from QuotaErrorDetails.retry_delay
    request_id: str | None = None
    detail: str = ""

    def __str__(self) -> str:
        text = "; ".join(str(e) for e in self.errors) or self.detail or self.status
        return f"{self.status}: {text}"


@dataclass(frozen=True)
class UploadResult:
    """Rows absent from ``row_errors`` were applied (decoded from ``partial_failure_error``)."""

    row_errors: dict[int, list[RowError]]
    request_errors: list[RowError]  # partial-failure errors that point at no row


def _errors_from_failure(failure: Any) -> tuple[list[RowError], float | None]:
    out: list[RowError] = []
    retry_after: float | None = None
    for err in failure.errors:
        code_pb = type(err.error_code).pb(err.error_code)
        category = code_pb.WhichOneof("error_code") or "unknown"
        value = getattr(err.error_code, category, None)
        name = getattr(value, "name", str(value))
        index = None
        for element in err.location.field_path_elements:
            if element.field_name in ("conversions", "operations") and "index" in element:
                index = int(element.index)
                break
        out.append(RowError(category=category, name=name, message=err.message, index=index))
        if "quota_error_details" in err.details and "retry_delay" in err.details.quota_error_details:
            delay = err.details.quota_error_details.retry_delay  # proto-plus gives a timedelta
            retry_after = max(retry_after or 0.0, delay.total_seconds())
    return out, retry_after


class GoogleAdsApi:
    """One customer account, one developer token, one endpoint."""

    def __init__(
        self,
        *,
        endpoint: str,
        developer_token: str,
        token_source: Callable[[], str],
        login_customer_id: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._credentials = PipelineCredentials(token_source)
        self._client = GoogleAdsClient(
            credentials=self._credentials,
            developer_token=developer_token,
            endpoint=endpoint,
            login_customer_id=login_customer_id or None,
            version=API_VERSION,
            use_proto_plus=True,
        )
        self._failure_type = type(self._client.get_type("GoogleAdsFailure"))
        self._timeout = timeout
        self._services: dict[str, Any] = {}

    def prepare(self) -> None:
        """Load the services (and open their channel) ahead of the first request."""
        for name in ("ConversionUploadService", "GoogleAdsService"):
            self._service(name)

    def _service(self, name: str) -> Any:
        if name not in self._services:
            self._services[name] = self._client.get_service(name, version=API_VERSION)
        return self._services[name]

    def upload_click_conversions(self, customer_id: str, rows: Sequence[dict[str, Any]]) -> UploadResult:
        request = self._client.get_type("UploadClickConversionsRequest")
        request.customer_id = customer_id
        request.partial_failure = True
        for row in rows:
            request.conversions.append(type(self._client.get_type("ClickConversion"))(mapping=row))
        response = self._call("ConversionUploadService", "upload_click_conversions", request)
        return self._partial(response, len(rows))

    def upload_call_conversions(self, customer_id: str, rows: Sequence[dict[str, Any]]) -> UploadResult:
        request = self._client.get_type("UploadCallConversionsRequest")
        request.customer_id = customer_id
        request.partial_failure = True
        for row in rows:
            request.conversions.append(type(self._client.get_type("CallConversion"))(mapping=row))
        response = self._call("ConversionUploadService", "upload_call_conversions", request)
        return self._partial(response, len(rows))

    def list_accessible_customers(self) -> list[str]:
        """Customer resource names (``customers/123``) the authorising Google user can reach directly."""
        request = self._client.get_type("ListAccessibleCustomersRequest")
        response = self._call("CustomerService", "list_accessible_customers", request)
        return list(response.resource_names)

    def search_stream(self, customer_id: str, query: str, fields: Sequence[str]) -> Iterator[dict[str, Any]]:
        """GAQL rows as ``{field path: value}`` for the selected ``fields``."""
        service = self._service("GoogleAdsService")
        self._credentials.load()
        try:
            stream = service.search_stream(
                customer_id=customer_id, query=query, retry=None, timeout=self._timeout
            )
            for batch in stream:
                for row in batch.results:
                    yield {path: _plain(_get_path(row, path)) for path in fields}
        except GoogleAdsException as exc:
            raise self._api_error(exc) from None
        except (grpc.RpcError, GoogleAPICallError) as exc:
            raise self._rpc_error(exc) from None

    def _call(self, service_name: str, method: str, request: Any) -> Any:
        service = self._service(service_name)
        self._credentials.load()
        try:
            # retry=None: the library's own retry would sleep inside the worker; the pipeline reschedules.
            return getattr(service, method)(request=request, retry=None, timeout=self._timeout)
        except GoogleAdsException as exc:
            raise self._api_error(exc) from None
        except (grpc.RpcError, GoogleAPICallError) as exc:
            raise self._rpc_error(exc) from None

    def _partial(self, response: Any, size: int) -> UploadResult:
        row_errors: dict[int, list[RowError]] = {}
        request_errors: list[RowError] = []
        status = response.partial_failure_error
        for detail in status.details:
            if not detail.type_url.endswith(".GoogleAdsFailure"):
                continue
            errors, _ = _errors_from_failure(self._failure_type.deserialize(detail.value))
            for err in errors:
                if err.index is None or not 0 <= err.index < size:
                    request_errors.append(err)
                else:
                    row_errors.setdefault(err.index, []).append(err)
        if status.code and not row_errors and not request_errors:
            request_errors.append(RowError("status", str(status.code), status.message))
        return UploadResult(row_errors=row_errors, request_errors=request_errors)

    def _api_error(self, exc: GoogleAdsException) -> ApiError:
        errors, retry_after = _errors_from_failure(exc.failure)
        return ApiError(
            status=exc.error.code().name,
            errors=errors,
            retry_after=retry_after,
            request_id=exc.request_id,
        )

    def _rpc_error(self, exc: grpc.RpcError | GoogleAPICallError) -> ApiError:
        """INTERNAL and RESOURCE_EXHAUSTED are not wrapped as GoogleAdsException (and api_core remaps
        plain gRPC errors to its own classes); the failure may still be in the trailers."""
        call = exc.response if isinstance(exc, GoogleAPICallError) else exc
        code = exc.grpc_status_code if isinstance(exc, GoogleAPICallError) else None
        if code is None and isinstance(call, grpc.Call):
            code = call.code()
        errors: list[RowError] = []
        retry_after = None
        request_id = None
        if isinstance(call, grpc.Call):
            for key, value in call.trailing_metadata() or ():
                if key == FAILURE_METADATA_KEY:
                    try:
                        errors, retry_after = _errors_from_failure(self._failure_type.deserialize(value))
                    except Exception:  # noqa: S112  (a garbled trailer leaves the status code)
                        continue
                elif key == "request-id":
                    request_id = value
        detail = call.details() if isinstance(call, grpc.Call) else str(exc)
        return ApiError(
            status=code.name if code else "UNKNOWN",
            errors=errors,
            retry_after=retry_after,
            request_id=request_id,
            detail=detail or "",
        )


def _plain(value: Any) -> Any:
    """Enum members become their names (``UPLOAD_CLICKS``); everything else is already plain."""
    return value.name if isinstance(value, proto.Enum) else value


def _get_path(message: Any, path: str) -> Any:
    value = message
    for part in path.split("."):
        # proto-plus appends "_" to field names that are Python builtins or keywords (type → type_).
        fields = type(value).meta.fields
        value = getattr(value, part if part in fields else part + "_")
    return value
