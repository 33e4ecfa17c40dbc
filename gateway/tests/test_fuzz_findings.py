"""Regressions for what schemathesis found against the running gateway (tests/test_api_fuzz.py),
reproduced in-process with every gRPC service down (gateway/tests/conftest.py)."""

import re
import uuid
from collections.abc import Callable

import httpx
import pytest

from gateway.app import create_app
from gateway.config import GatewaySettings

SIGNUP = "/api/v1/auth/signup"
LOGIN = "/api/v1/auth/login"


@pytest.mark.parametrize("raw", ["é".encode("latin-1"), "²".encode("latin-1"), "ǅ".encode()])
async def test_a_non_ascii_request_id_is_replaced_before_it_reaches_grpc(
    client: httpx.AsyncClient, raw: bytes
) -> None:
    """`str.isalnum` let `é` through; gRPC then refused it as metadata and the request was a
    500 instead of reaching the (here: unreachable, so 503) service."""
    body = {"email": f"{uuid.uuid4().hex}@example.com", "password": "correct horse", "name": "A"}
    response = await client.post(SIGNUP, json=body, headers={"X-Request-ID": raw})
    assert response.status_code == 503, response.text
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])
    assert response.json()["error"]["request_id"] == response.headers["x-request-id"]


async def test_a_login_form_with_too_many_fields_is_a_documented_400(
    client: httpx.AsyncClient, make_settings: Callable[..., GatewaySettings]
) -> None:
    fields = {f"field{i}": "x" for i in range(17)}
    response = await client.post(LOGIN, data={**fields, "username": "a@b.co", "password": "pw"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "bad_request"
    documented = create_app(make_settings()).openapi()["paths"][LOGIN]["post"]["responses"]
    assert "400" in documented
