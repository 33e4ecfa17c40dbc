"""Error responses become ObjectVisionError with the API's fields (pure parsing)."""

import httpx

from objectvision_client.errors import ObjectVisionConnectionError, ObjectVisionError


def test_the_api_error_body_is_read() -> None:
    response = httpx.Response(
        429,
        json={"error": {"code": "rate_limited", "message": "slow down", "request_id": "abc"}},
        headers={"Retry-After": "9", "X-Request-ID": "abc"},
    )
    error = ObjectVisionError.from_response(response)
    assert (error.status, error.code, error.message, error.request_id) == (
        429,
        "rate_limited",
        "slow down",
        "abc",
    )
    assert error.retry_after == 9.0
    assert str(error) == "slow down (HTTP 429, rate_limited, request abc)"


def test_validation_details_are_kept() -> None:
    details = [{"loc": ["body", "email"], "msg": "not an email", "type": "value_error"}]
    response = httpx.Response(
        422,
        json={
            "error": {
                "code": "validation_error",
                "message": "invalid",
                "request_id": "r",
                "details": details,
            }
        },
    )
    assert ObjectVisionError.from_response(response).details == details


def test_a_body_in_another_shape_still_gives_status_and_request_id() -> None:
    response = httpx.Response(502, text="<html>Bad gateway</html>", headers={"X-Request-ID": "p1"})
    error = ObjectVisionError.from_response(response)
    assert (error.status, error.code, error.message, error.request_id) == (
        502,
        "http_error",
        "Bad Gateway",
        "p1",
    )


def test_connection_errors_have_no_status() -> None:
    error = ObjectVisionConnectionError("could not reach http://127.0.0.1:1")
    assert (error.status, error.code) == (0, "connection_error")
    assert str(error) == "could not reach http://127.0.0.1:1 (connection_error)"
