"""The one mapping from upstream gRPC failures to HTTP, and the error body's fields."""

import grpc
import pytest
from starlette.exceptions import HTTPException

from gateway.errors import (
    GRPC_TO_HTTP,
    code_for_status,
    error_from_grpc,
    http_error,
    validation_error,
)

EXPECTED_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 422,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNIMPLEMENTED: 500,
    grpc.StatusCode.CANCELLED: 500,
    grpc.StatusCode.ABORTED: 500,
    grpc.StatusCode.OUT_OF_RANGE: 500,
}


@pytest.mark.parametrize(("status", "http_status"), EXPECTED_STATUS.items())
def test_every_grpc_status_maps_to_its_http_status(
    status: grpc.StatusCode, http_status: int
) -> None:
    assert error_from_grpc(status, "x", ()).status_code == http_status


def test_the_table_covers_exactly_the_specified_codes() -> None:
    assert {code: status for code, status in GRPC_TO_HTTP.items()} == {
        code: status for code, status in EXPECTED_STATUS.items() if status != 500
    }


@pytest.mark.parametrize(
    ("status", "domain_code", "http_status"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, "payload_too_large", 413),
        (grpc.StatusCode.INVALID_ARGUMENT, "unsupported_media_type", 415),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "rate_limited", 429),
        (grpc.StatusCode.INVALID_ARGUMENT, "invalid_argument", 422),
        (grpc.StatusCode.NOT_FOUND, "not_found", 404),
    ],
)
def test_the_error_code_trailer_refines_the_status(
    status: grpc.StatusCode, domain_code: str, http_status: int
) -> None:
    error = error_from_grpc(status, "safe message", (("error-code", domain_code),))
    assert (error.status_code, error.code, error.message) == (
        http_status,
        domain_code,
        "safe message",
    )


def test_retry_after_trailer_becomes_the_header() -> None:
    error = error_from_grpc(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "slow down",
        (("error-code", "rate_limited"), ("retry-after", "7")),
    )
    assert error.headers["Retry-After"] == "7"


@pytest.mark.parametrize("value", ["soon", "-1", "1.5", ""])
def test_a_malformed_retry_after_is_dropped(value: str) -> None:
    error = error_from_grpc(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "slow down",
        (("error-code", "rate_limited"), ("retry-after", value)),
    )
    assert "Retry-After" not in error.headers


def test_details_without_a_domain_code_are_not_shown() -> None:
    """Transport and crash details name hosts and internals; the caller gets a generic text."""
    crash = error_from_grpc(grpc.StatusCode.UNKNOWN, "Exception calling application: boom", ())
    down = error_from_grpc(
        grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses; 10.0.0.7:50051", ()
    )
    assert (crash.status_code, crash.code) == (500, "internal")
    assert "boom" not in crash.message
    assert (down.status_code, down.code) == (503, "unavailable")
    assert "10.0.0.7" not in down.message
    assert down.headers["Retry-After"] == "1"


def test_unauthenticated_carries_the_bearer_challenge() -> None:
    error = error_from_grpc(
        grpc.StatusCode.UNAUTHENTICATED, "bad key", (("error-code", "unauthenticated"),)
    )
    assert error.headers["WWW-Authenticate"] == "Bearer"


def test_binary_trailers_are_ignored() -> None:
    error = error_from_grpc(grpc.StatusCode.NOT_FOUND, "gone", (("error-code-bin", b"\x00"),))
    assert (error.status_code, error.code) == (404, "not_found")


def test_malformed_json_gets_its_own_code() -> None:
    error = validation_error(
        [{"type": "json_invalid", "loc": ("body", 3), "msg": "JSON decode error", "input": {}}]
    )
    assert (error.status_code, error.code) == (422, "malformed_json")
    assert error.details is not None
    assert error.details[0].loc == ["body", 3]


def test_validation_details_never_echo_the_input() -> None:
    error = validation_error(
        [
            {
                "type": "string_too_short",
                "loc": ("body", "password"),
                "msg": "String should have at least 8 characters",
                "input": "hunter2",
                "ctx": {"min_length": 8},
            }
        ]
    )
    assert error.code == "validation_error"
    assert "hunter2" not in error.message
    assert error.details is not None
    assert "hunter2" not in error.details[0].model_dump_json()
    assert "body.password" in error.message


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (404, "not_found"),
        (405, "method_not_allowed"),
        (413, "payload_too_large"),
        (418, "im_a_teapot"),
    ],
)
def test_framework_errors_get_stable_codes(status: int, code: str) -> None:
    assert code_for_status(status) == code
    assert http_error(HTTPException(status)).code == code


def test_framework_error_keeps_its_headers_and_explicit_detail() -> None:
    error = http_error(HTTPException(405, headers={"Allow": "GET"}))
    assert error.headers == {"Allow": "GET"}
    assert error.message == "method not allowed"
    assert http_error(HTTPException(413, "too big")).message == "too big"
