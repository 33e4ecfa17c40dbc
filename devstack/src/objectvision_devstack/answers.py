"""The gateway's error answers, as the end-to-end tests expect them.

Every refusal is `{"error": {"code", "message", "request_id"}}` with the HTTP status that
goes with the code. Tests assert the status and the code first and then look at the message,
so these helpers check both, with the whole answer in the failure message, and hand back the
error object for the rest.
"""

from typing import Any

import httpx


def api_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The answer's error object, once its status and (unless `code` is None) its code are
    the expected ones."""
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    if code is not None:
        assert error["code"] == code, error
    return error


def api_error_with_request_id(
    response: httpx.Response, status: int, code: str | None = None
) -> dict[str, Any]:
    """As `api_error`, and the error names the request by the X-Request-ID the answer carries,
    the id that a user quotes to find the request in the logs."""
    error = api_error(response, status, code)
    assert error["request_id"] == response.headers["x-request-id"]
    return error
