"""Pure ASGI middleware around every request: request id, access log and metrics,
a last-resort error handler, and the request body limit.

Pure ASGI rather than BaseHTTPMiddleware, so streamed bodies are never buffered and the
request-id context variable is set in the task that runs the endpoint.
"""

import logging
import time
from collections.abc import Sequence

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import ApiError, error_response, internal_error_response
from gateway.metrics import UNMATCHED_ROUTE, GatewayMetrics
from objectvision_common.request_context import (
    REQUEST_ID_HEADER,
    sanitize_request_id,
    set_request_id,
)
from objectvision_common.tracing import current_trace_id

access_logger = logging.getLogger("gateway.access")
logger = logging.getLogger(__name__)


class RequestIdMiddleware:
    """Accept the caller's X-Request-ID if it is sane, else make one; echo it back.

    The id goes into the context variable that log lines and outgoing gRPC metadata read
    (objectvision_common.request_context), and into `scope["state"]` for error handlers.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        # The caller's id if sane, else this request's trace id (when traced): one id finds
        # the trace, the log lines and the error body.
        request_id = sanitize_request_id(
            Headers(scope=scope).get(REQUEST_ID_HEADER) or current_trace_id()
        )
        scope.setdefault("state", {})["request_id"] = request_id
        set_request_id(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)


class ObservabilityMiddleware:
    """One JSON access-log line and the request metrics per HTTP request.

    Logs method, path (never the query string), route template, status and duration;
    never headers, so Authorization, X-API-Key and cookies stay out of the logs.
    """

    def __init__(self, app: ASGIApp, *, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_recording_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_recording_status)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            self.metrics.observe(
                method=scope["method"], route=route, status=status, seconds=elapsed
            )
            access_logger.info(
                "request finished",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )


def _route_template(scope: Scope) -> str:
    """The matched route's path template (`/users/{user_id}`), so ids never become labels."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) else UNMATCHED_ROUTE


class UnhandledErrorMiddleware:
    """Turn an exception no handler took into the standard 500 body, without a traceback.

    Sits inside the observability middleware so the access log and metrics see a 500
    rather than an exception.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def send_tracking(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception:
            logger.exception("unhandled error")
            if response_started:
                raise
            request_id = (scope.get("state") or {}).get("request_id", "")
            await internal_error_response(request_id)(scope, receive, send)


class PayloadTooLarge(HTTPException):
    """Raised from `receive` once a streamed body passes the limit.

    An HTTPException, because FastAPI re-raises those from body parsing (it turns other
    exceptions into a 400), so the error handlers answer 413 in the usual shape.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


class BodySizeLimitMiddleware:
    """Refuse request bodies over a limit: 413 before reading when Content-Length says so,
    and 413 as soon as a streamed (chunked) body passes the limit.

    `limits` gives path prefixes their own limit (upload routes); the longest prefix wins.
    """

    def __init__(
        self, app: ASGIApp, *, default_limit: int, limits: Sequence[tuple[str, int]] = ()
    ) -> None:
        self.app = app
        self.default_limit = default_limit
        self.limits = sorted(limits, key=lambda item: len(item[0]), reverse=True)

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.limits:
            if path.startswith(prefix):
                return limit
        return self.default_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = (Headers(scope=scope).get("content-length") or "").strip()
        if declared.isascii() and declared.isdigit() and int(declared) > limit:
            request_id = (scope.get("state") or {}).get("request_id", "")
            error = ApiError(413, "payload_too_large", PayloadTooLarge(limit).detail)
            await error_response(error, request_id)(scope, receive, send)
            return
        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge(limit)
            return message

        await self.app(scope, receive_limited, send)
