"""The one exception type of the client: every failed call raises ObjectVisionError."""

from collections.abc import Mapping
from typing import Any

import httpx
from pydantic import ValidationError

from objectvision_client.retry import parse_retry_after

# A live detection stream's close codes (ADR 0059) as the HTTP statuses the same refusals get
# from the REST routes, so a caller handles both alike: credentials, scope, an unknown model,
# refused settings, too many streams, a frame over the upload limit, the service away.
CLOSE_STATUSES = {
    4401: 401,
    4403: 403,
    4404: 404,
    4408: 408,
    4422: 422,
    4429: 429,
    1009: 413,
    1011: 500,
    1013: 503,
}
_CLOSE_CODES = {
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    408: "stream_idle",
    422: "validation_error",
    429: "too_many_streams",
    413: "frame_too_large",
    500: "internal",
    503: "unavailable",
}


class ObjectVisionError(Exception):
    """An API call that failed, with the fields of the API's error body.

    `status` is the HTTP status (0 when the server could not be reached), `code` the API's
    stable machine-readable code, `message` its human-readable text and `request_id` the id
    to quote when reporting a problem.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        request_id: str | None = None,
        *,
        retry_after: float | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.retry_after = retry_after
        self.details = details

    def __str__(self) -> str:
        where = f"HTTP {self.status}, {self.code}" if self.status else self.code
        request = f", request {self.request_id}" if self.request_id else ""
        return f"{self.message} ({where}{request})"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r}, request_id={self.request_id!r})"
        )

    @classmethod
    def from_response(cls, response: httpx.Response) -> "ObjectVisionError":
        """The error a non-2xx response stands for; bodies not in the API's shape (a proxy's
        HTML page) still give status and reason."""
        request_id = response.headers.get("x-request-id")
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        try:
            body = response.json()
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            return cls(
                response.status_code,
                str(error.get("code") or "error"),
                str(error.get("message") or response.reason_phrase),
                error.get("request_id") or request_id,
                retry_after=retry_after,
                details=error.get("details"),
            )
        return cls(
            response.status_code,
            "http_error",
            response.reason_phrase or "request failed",
            request_id,
            retry_after=retry_after,
        )

    @classmethod
    def unexpected_response(
        cls, response: httpx.Response, reason: Exception
    ) -> "ObjectVisionError":
        """A successful status whose body is not what the API documents for the call (a
        proxy's page, another server at the API URL, a server of an incompatible version)."""
        return cls(
            response.status_code,
            "unexpected_response",
            f"{response.request.method} {response.request.url.path} answered with a body this "
            f"client cannot read ({_first_problem(reason)}); is the API URL an ObjectVision "
            "gateway of a compatible version?",
            response.headers.get("x-request-id"),
        )

    @classmethod
    def from_close(
        cls, code: int, reason: str, message: Mapping[str, Any] | None
    ) -> "ObjectVisionError":
        """The error a live stream's close `code` stands for: the status of the HTTP refusal
        it matches (CLOSE_STATUSES), with the code and text of the `error` `message` the
        server sent before closing, which holds the whole explanation where the close
        `reason` holds 123 bytes. A close code with no such match is a connection lost."""
        status = CLOSE_STATUSES.get(code)
        if status is None:
            why = f": {reason}" if reason else ""
            return ObjectVisionConnectionError(f"the live stream closed with code {code}{why}")
        error = message or {}
        return cls(
            status,
            str(error.get("code") or _CLOSE_CODES[status]),
            str(error.get("message") or reason or f"the live stream closed with code {code}"),
            error.get("request_id"),
            retry_after=error.get("retry_after"),
            details=error.get("details"),
        )


def _first_problem(reason: Exception) -> str:
    if isinstance(reason, ValidationError):
        error = reason.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        return f"{where}: {error['msg']}" if where else error["msg"]
    return str(reason) or type(reason).__name__


class ObjectVisionConnectionError(ObjectVisionError):
    """The server could not be reached or did not answer in time (no HTTP status)."""

    def __init__(self, message: str) -> None:
        super().__init__(0, "connection_error", message)
