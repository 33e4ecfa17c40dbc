"""The one place where failures become HTTP error responses.

Upstream services answer with a gRPC status plus the `error-code` and `retry-after` trailers
(objectvision_common.errors); the gateway's own failures raise `ApiError`; the framework's
(unknown route, wrong method, invalid body) arrive as Starlette/FastAPI exceptions. All of
them leave as `{"error": {"code", "message", "request_id", "details"?}}`.
"""

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from types import MappingProxyType
from typing import Any

import grpc
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import Match

from gateway.schemas.base import ApiModel
from objectvision_common.errors import ERROR_CODE_TRAILER, RETRY_AFTER_TRAILER
from objectvision_common.request_context import current_request_id, new_request_id

logger = logging.getLogger(__name__)

GRPC_TO_HTTP: Mapping[grpc.StatusCode, int] = MappingProxyType(
    {
        grpc.StatusCode.INVALID_ARGUMENT: 422,
        grpc.StatusCode.NOT_FOUND: 404,
        grpc.StatusCode.ALREADY_EXISTS: 409,
        grpc.StatusCode.UNAUTHENTICATED: 401,
        grpc.StatusCode.PERMISSION_DENIED: 403,
        grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
        grpc.StatusCode.FAILED_PRECONDITION: 409,
        grpc.StatusCode.UNAVAILABLE: 503,
        grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    }
)
# Domain codes whose HTTP status is more precise than their gRPC status can say.
ERROR_CODE_TO_HTTP: Mapping[str, int] = MappingProxyType(
    {"payload_too_large": 413, "unsupported_media_type": 415, "rate_limited": 429}
)

# Without an `error-code` trailer the failure did not come from a domain error, so its
# details are transport or server internals (addresses, stack frames) and are not shown.
_GENERIC_MESSAGES: Mapping[int, str] = MappingProxyType(
    {
        503: "a service this request needs is unavailable; try again shortly",
        504: "a service this request needs did not answer in time",
        500: "internal error",
    }
)
_HTTP_CODES: Mapping[int, str] = MappingProxyType(
    {
        400: "bad_request",
        401: "unauthenticated",
        403: "permission_denied",
        404: "not_found",
        405: "method_not_allowed",
        409: "conflict",
        413: "payload_too_large",
        415: "unsupported_media_type",
        422: "validation_error",
        429: "rate_limited",
        500: "internal",
        503: "unavailable",
        504: "deadline_exceeded",
    }
)
_TRANSPORT_RETRY_AFTER_SECONDS = 1


class ErrorDetail(ApiModel):
    """One problem with the request, e.g. one invalid field."""

    loc: list[str | int] = Field(description="Where the problem is, e.g. ['body', 'email'].")
    msg: str
    type: str


class ErrorBody(ApiModel):
    code: str = Field(description="Stable machine-readable code, e.g. 'not_found'.")
    message: str = Field(description="Human-readable explanation, safe to show.")
    request_id: str = Field(description="Equal to the X-Request-ID response header.")
    details: list[ErrorDetail] | None = None


class ErrorResponse(ApiModel):
    """The body of every error response."""

    error: ErrorBody


class ApiError(Exception):
    """A failure the gateway itself decides on; its message is shown to the caller."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        details: Iterable[ErrorDetail] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.details = list(details) if details is not None else None

    @classmethod
    def unauthenticated(cls, message: str, *, code: str = "unauthenticated") -> "ApiError":
        """401 with the RFC 6750 challenge; `invalid_token` tells the client to re-login."""
        challenge = 'Bearer error="invalid_token"' if code == "invalid_token" else "Bearer"
        return cls(401, code, message, headers={"WWW-Authenticate": challenge})

    @classmethod
    def invalid(cls, loc: Sequence[str | int], message: str) -> "ApiError":
        """A 422 the gateway decides on, in the shape of FastAPI's own validation errors."""
        where = ".".join(str(part) for part in loc)
        detail = ErrorDetail(loc=list(loc), msg=message, type="value_error")
        return cls(
            422, "validation_error", f"invalid request: {where}: {message}", details=[detail]
        )

    @classmethod
    def rate_limited(
        cls, retry_after_seconds: int, *, headers: Mapping[str, str] | None = None
    ) -> "ApiError":
        """`headers`: the RateLimit fields of the limits that applied (gateway.ratelimit)."""
        return cls(
            429,
            "rate_limited",
            f"too many attempts; try again in {retry_after_seconds} s",
            headers={**(headers or {}), "Retry-After": str(retry_after_seconds)},
        )


def code_for_status(status_code: int) -> str:
    known = _HTTP_CODES.get(status_code)
    if known:
        return known
    try:
        phrase = HTTPStatus(status_code).phrase
    except ValueError:
        return "error"
    return phrase.lower().replace(" ", "_").replace("-", "_").replace("'", "")


def _trailer(metadata: Iterable[tuple[str, str | bytes]] | None, key: str) -> str | None:
    for name, value in metadata or ():
        if name == key and isinstance(value, str):
            return value
    return None


def domain_code_of(error: grpc.aio.AioRpcError) -> str | None:
    """The stable code a failed upstream call named (its `error-code` trailer), if any."""
    return _trailer(error.trailing_metadata(), ERROR_CODE_TRAILER)


def _retry_after(value: str | None) -> str | None:
    """Only a plain count of seconds is passed on; anything else is dropped."""
    if value is None or not (value.strip().isascii() and value.strip().isdigit()):
        return None
    return str(int(value.strip()))


def error_from_grpc(
    status: grpc.StatusCode,
    details: str | None,
    trailing_metadata: Iterable[tuple[str, str | bytes]] | None,
) -> ApiError:
    """The HTTP error for a failed upstream call: the status table, refined by the trailers."""
    domain_code = _trailer(trailing_metadata, ERROR_CODE_TRAILER)
    http_status = GRPC_TO_HTTP.get(status, 500)
    if domain_code:
        http_status = ERROR_CODE_TO_HTTP.get(domain_code, http_status)
        message = details or HTTPStatus(http_status).phrase.lower()
    else:
        message = _GENERIC_MESSAGES.get(http_status, HTTPStatus(http_status).phrase.lower())
    headers: dict[str, str] = {}
    retry_after = _retry_after(_trailer(trailing_metadata, RETRY_AFTER_TRAILER))
    if retry_after is None and domain_code is None and http_status == 503:
        retry_after = str(_TRANSPORT_RETRY_AFTER_SECONDS)
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    if http_status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    code = domain_code or ("internal" if http_status == 500 else status.name.lower())
    return ApiError(http_status, code, message, headers=headers)


def request_id_of(connection: HTTPConnection) -> str:
    """The id the request-id middleware gave this request (see gateway.middleware)."""
    state = connection.scope.get("state") or {}
    return state.get("request_id") or current_request_id() or new_request_id()


def error_response(error: ApiError, request_id: str) -> JSONResponse:
    body = ErrorResponse(
        error=ErrorBody(
            code=error.code, message=error.message, request_id=request_id, details=error.details
        )
    )
    headers = dict(error.headers)
    if error.status_code == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    return JSONResponse(
        body.model_dump(mode="json", exclude_none=True),
        status_code=error.status_code,
        headers=headers,
    )


# Pydantic names the branch of an optional field it tried (`confidence.constrained-float`,
# `confidence.none`): validator internals a person cannot act on.
_UNION_BRANCHES = re.compile(
    r"^(constrained-|function-|none$|nullable|lax-|strict-|json-or-python)"
)


def _validation_details(errors: Iterable[Mapping[str, Any]]) -> list[ErrorDetail]:
    """Where and why, never `input` or `ctx`: the input may be a password. An optional
    field's failed "or null" branch is dropped: the value was given, it was just wrong."""
    details: list[ErrorDetail] = []
    for error in errors:
        loc = [
            part if isinstance(part, int) else str(part)
            for part in error.get("loc", ())
            if isinstance(part, int) or not _UNION_BRANCHES.match(str(part))
        ]
        kind = str(error.get("type", "value_error"))
        if kind == "none_required" and any(d.loc == loc for d in details):
            continue
        details.append(ErrorDetail(loc=loc, msg=str(error.get("msg", "invalid value")), type=kind))
    return details


def validation_error(errors: Iterable[Mapping[str, Any]]) -> ApiError:
    details = _validation_details(errors)
    if any(detail.type == "json_invalid" for detail in details):
        message = "the request body is not valid JSON"
        return ApiError(422, "malformed_json", message, details=details)
    first = details[0] if details else None
    message = "the request is invalid"
    if first is not None:
        message = f"invalid request: {'.'.join(str(p) for p in first.loc)}: {first.msg}"
    return ApiError(422, "validation_error", message, details=details)


def http_error(exc: StarletteHTTPException) -> ApiError:
    """Framework errors (unknown route, wrong method, body too large) in the one shape."""
    if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
        # FastAPI answers a JSON body that is not even UTF-8 with a bare 400.
        return ApiError(422, "malformed_json", "the request body is not valid JSON")
    try:
        phrase = HTTPStatus(exc.status_code).phrase
    except ValueError:
        phrase = "Error"
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail else phrase
    message = phrase.lower() if detail == phrase else detail
    return ApiError(exc.status_code, code_for_status(exc.status_code), message, headers=exc.headers)


def _with_rate_limit_fields(request: Request, response: JSONResponse) -> JSONResponse:
    """An error from a rate-limited route still tells where the caller stands: the fields
    its throttling dependency left in the request's state (gateway.auth.dependencies)."""
    for name, value in getattr(request.state, "rate_limit_fields", {}).items():
        response.headers.setdefault(name, value)
    return response


async def _api_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return _with_rate_limit_fields(request, error_response(exc, request_id_of(request)))


async def _grpc_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, grpc.aio.AioRpcError)
    error = error_from_grpc(exc.code(), exc.details(), exc.trailing_metadata())
    if error.status_code >= 500:
        logger.warning(
            "upstream call failed",
            extra={"grpc_code": exc.code().name, "grpc_details": exc.details()},
        )
    return _with_rate_limit_fields(request, error_response(error, request_id_of(request)))


async def _validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(validation_error(exc.errors()), request_id_of(request))


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path.

    Starlette's 405 names only the first route that matched the path, not, say, both the
    GET and the PATCH route of `/users/me`.
    """
    routes = request.app.router.routes
    allowed = []
    for method in _METHODS:
        probe = {**request.scope, "method": method}
        if any(route.matches(probe)[0] == Match.FULL for route in routes):
            allowed.append(method)
    return allowed


async def _http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    error = http_error(exc)
    if error.status_code == 405:
        error.headers["Allow"] = ", ".join(allowed_methods(request))
    return error_response(error, request_id_of(request))


async def _unhandled_error_handler(request: Request, exc: Exception) -> JSONResponse:
    logger.error("unhandled error", exc_info=exc)
    return internal_error_response(request_id_of(request))


def internal_error_response(request_id: str) -> JSONResponse:
    return error_response(ApiError(500, "internal", "internal error"), request_id)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error_handler)
    app.add_exception_handler(grpc.aio.AioRpcError, _grpc_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)
    app.add_exception_handler(Exception, _unhandled_error_handler)


_DESCRIPTIONS: Mapping[int, str] = MappingProxyType(
    {
        400: "Bad request",
        401: "Missing, invalid, expired or revoked credentials",
        403: "Not allowed for this caller",
        404: "Not found, or not visible to this caller",
        409: "Conflicts with the current state",
        413: "Request body too large",
        415: "Unsupported Content-Type",
        422: "Invalid request (field problems under error.details)",
        429: "Too many requests from this caller for now (wait Retry-After seconds)",
        500: "Internal error",
        503: "A service this request needs is unavailable",
        504: "A service this request needs did not answer in time",
    }
)
_RETRY_AFTER_HEADER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 0},
    }
}
_HEADERS: Mapping[int, dict[str, Any]] = MappingProxyType(
    {
        401: {
            "WWW-Authenticate": {
                "description": "The authentication scheme to use.",
                "schema": {"type": "string"},
            }
        },
        429: _RETRY_AFTER_HEADER,
        503: _RETRY_AFTER_HEADER,
    }
)
# Every route may meet these: an internal failure or a dependency that is down or slow.
SERVER_ERRORS = (500, 503, 504)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for error statuses, all with the one error schema."""
    entries: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {
            "model": ErrorResponse,
            "description": _DESCRIPTIONS.get(status, HTTPStatus(status).phrase),
        }
        if status in _HEADERS:
            entry["headers"] = _HEADERS[status]
        entries[status] = entry
    return entries
