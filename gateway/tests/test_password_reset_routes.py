"""The forgot-password and reset-password routes in the gateway alone (auth-service down, so
accepted requests answer 503): their limits, validation and documentation.

The whole flow, with the email and the real services, is tests/test_password_reset.py.
"""

import uuid
from collections.abc import Callable
from typing import Any

import httpx

FORGOT = "/api/v1/auth/forgot-password"
RESET = "/api/v1/auth/reset-password"
TOKEN = "ovp_" + "A" * 43


def _network() -> dict[str, str]:
    """A fresh caller (documentation range), carried in X-Forwarded-For."""
    return {"X-Forwarded-For": f"2001:db8:{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}::1"}


def _policies(answer: httpx.Response) -> str:
    return answer.headers["ratelimit-policy"]


async def test_one_address_gets_few_reset_requests_from_anywhere_however_it_is_spelled(
    app_client: Callable[..., Any],
) -> None:
    """The per-address limit caps the mail one inbox gets; it counts requests, not accounts."""
    _, client = await app_client(
        RATE_LIMIT_FORGOT_PASSWORD_EMAIL="2/hour", TRUST_PROXY_HEADERS=True
    )
    local = f"owner-{uuid.uuid4().hex}"
    spellings = [
        f"{local}@example.com",
        f"{local.upper()}@EXAMPLE.com",
        f"{local}@\uff45xample.com",
    ]

    answers = [
        await client.post(FORGOT, json={"email": email}, headers=_network()) for email in spellings
    ]

    assert [answer.status_code for answer in answers] == [503, 503, 429]
    assert '"forgot-password-email";q=2;w=3600' in _policies(answers[0])
    assert int(answers[2].headers["retry-after"]) > 0
    other = await client.post(
        FORGOT, json={"email": f"other-{uuid.uuid4().hex}@example.com"}, headers=_network()
    )
    assert other.status_code == 503


async def test_one_network_gets_few_reset_requests_whatever_the_address(
    app_client: Callable[..., Any],
) -> None:
    _, client = await app_client(RATE_LIMIT_FORGOT_PASSWORD="2/hour", TRUST_PROXY_HEADERS=True)
    network = _network()

    answers = [
        await client.post(
            FORGOT, json={"email": f"{uuid.uuid4().hex}@example.com"}, headers=network
        )
        for _ in range(3)
    ]

    assert [answer.status_code for answer in answers] == [503, 503, 429]
    assert '"forgot-password";q=2;w=3600' in _policies(answers[0])
    elsewhere = await client.post(
        FORGOT, json={"email": f"{uuid.uuid4().hex}@example.com"}, headers=_network()
    )
    assert elsewhere.status_code == 503


async def test_one_network_gets_few_reset_attempts(app_client: Callable[..., Any]) -> None:
    _, client = await app_client(RATE_LIMIT_RESET_PASSWORD="2/hour", TRUST_PROXY_HEADERS=True)
    network = _network()
    body = {"token": TOKEN, "new_password": "a long new password"}

    answers = [await client.post(RESET, json=body, headers=network) for _ in range(3)]

    assert [answer.status_code for answer in answers] == [503, 503, 429]
    assert _policies(answers[0]) == '"reset-password";q=2;w=3600'
    assert (await client.post(RESET, json=body, headers=_network())).status_code == 503


async def test_bad_bodies_are_refused_before_reaching_the_service(
    client: httpx.AsyncClient,
) -> None:
    """422 in the standard error shape, naming the field; nothing upstream is called (the
    service being down would answer 503)."""
    cases = [
        (FORGOT, {}, "email"),
        (FORGOT, {"email": "x" * 400}, "email"),
        (FORGOT, {"email": "ada@example.com", "extra": 1}, "extra"),
        (RESET, {"token": TOKEN, "new_password": "short"}, "new_password"),
        (RESET, {"token": TOKEN, "new_password": "x" * 129}, "new_password"),
        (RESET, {"token": "", "new_password": "a long new password"}, "token"),
        (RESET, {"new_password": "a long new password"}, "token"),
    ]
    for path, body, field in cases:
        answer = await client.post(path, json=body, headers=_network())
        assert answer.status_code == 422, (path, body, answer.text)
        error = answer.json()["error"]
        assert error["code"] == "validation_error"
        assert field in [detail["loc"][-1] for detail in error["details"]], error


async def test_both_routes_are_public_and_documented(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    forgot = document["paths"][FORGOT]["post"]
    reset = document["paths"][RESET]["post"]

    assert "security" not in forgot and "security" not in reset
    assert {"202", "413", "422", "429", "503"} <= set(forgot["responses"])
    assert {"204", "413", "422", "429", "503"} <= set(reset["responses"])
    assert "RateLimit-Policy" in forgot["responses"]["202"]["headers"]
    assert "RateLimit-Policy" in reset["responses"]["204"]["headers"]
    schemas = document["components"]["schemas"]
    assert schemas["ResetPasswordIn"]["properties"]["new_password"]["minLength"] == 8
    assert schemas["ResetPasswordIn"]["required"] == ["token", "new_password"]
