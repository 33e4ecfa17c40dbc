"""The request id that enters at the gateway and follows the call through every service."""

import uuid
from contextvars import ContextVar

REQUEST_ID_HEADER = "x-request-id"
_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    return _request_id.get()


def set_request_id(request_id: str | None) -> None:
    _request_id.set(request_id)


def new_request_id() -> str:
    return uuid.uuid4().hex


def sanitize_request_id(candidate: str | None) -> str:
    """Accept a caller's id only if it is short and printable ASCII, so it cannot forge log
    lines and is a legal gRPC metadata value (`str.isalnum` alone passes `é` or `²`, which
    gRPC refuses to send: every upstream call of the request failed with a 500)."""
    if (
        candidate
        and len(candidate) <= 128
        and candidate.isascii()
        and all(c.isalnum() or c in "-_.:" for c in candidate)
    ):
        return candidate
    return new_request_id()
