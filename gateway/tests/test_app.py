"""The assembled app in-process, on real Redis, with every gRPC service down.

What needs no service is checked for real here; the flows through the auth service are in
/work/main/tests/test_auth_api.py.
"""

import base64
import inspect
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from gateway.app import create_app, create_ops_app
from gateway.config import GatewaySettings

SIGNUP = "/api/v1/auth/signup"
LOGIN = "/api/v1/auth/login"
ME = "/api/v1/users/me"


def _assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["request_id"] == response.headers["x-request-id"]
    return error


def _signup_body(**overrides: Any) -> dict[str, Any]:
    body = {"email": f"{uuid.uuid4().hex}@example.com", "password": "correct horse", "name": "A"}
    body.update(overrides)
    return body


def _ipv6_network() -> str:
    """A fresh /64 prefix (documentation range); append an interface id to get an address."""
    return f"2001:db8:{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"


def _ip() -> str:
    """A client address no other test (nor an earlier call) shares, since the per-network
    limits count a /64. (A draw from 250 IPv4 addresses once gave a test's 'other address'
    the first one's, and the limit answered 429.)"""
    return f"{_ipv6_network()}::1"


async def test_health_needs_nothing(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


async def test_a_sane_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"X-Request-ID": "trace-42.a:b_c"})
    assert response.headers["x-request-id"] == "trace-42.a:b_c"


@pytest.mark.parametrize("unsafe", ["has space", "x" * 129, 'quote"d', "new\\nline", ""])
async def test_an_unsafe_request_id_is_replaced(client: httpx.AsyncClient, unsafe: str) -> None:
    response = await client.get("/nowhere", headers={"X-Request-ID": unsafe})
    error = _assert_error(response, 404, "not_found")
    assert re.fullmatch(r"[0-9a-f]{32}", error["request_id"])


async def test_unknown_route_and_wrong_method(client: httpx.AsyncClient) -> None:
    _assert_error(await client.get("/api/v1/nothing-here"), 404, "not_found")
    response = await client.put(ME, json={})
    _assert_error(response, 405, "method_not_allowed")
    # Both routes at this path, not just the first one the router tried.
    assert {m.strip() for m in response.headers["allow"].split(",")} == {"GET", "PATCH", "DELETE"}


async def test_malformed_ids_in_paths_name_nothing(client: httpx.AsyncClient) -> None:
    _assert_error(await client.get("/api/v1/users/not-a-uuid"), 404, "not_found")
    response = await client.patch("/api/v1/users/get-profile", json={})
    _assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_signup_body(email="not-an-email"), "email"),
        (_signup_body(password="short"), "password"),
        (_signup_body(name=""), "name"),
        (_signup_body(is_admin=True), "is_admin"),
        ({"email": "a@example.com"}, "password"),
    ],
)
async def test_signup_validation_errors_name_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    error = _assert_error(await client.post(SIGNUP, json=body), 422, "validation_error")
    assert any(detail["loc"][-1] == field for detail in error["details"])
    assert all(set(detail) == {"loc", "msg", "type"} for detail in error["details"])


async def test_malformed_json_is_a_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        SIGNUP, content=b'{"email": ', headers={"Content-Type": "application/json"}
    )
    _assert_error(response, 422, "malformed_json")


async def test_a_body_that_is_not_utf8_is_malformed_json(client: httpx.AsyncClient) -> None:
    response = await client.post(
        SIGNUP, content=b'{"email": "\xff\xfe"}', headers={"Content-Type": "application/json"}
    )
    _assert_error(response, 422, "malformed_json")


async def test_validation_errors_do_not_echo_passwords(client: httpx.AsyncClient) -> None:
    response = await client.post(SIGNUP, json=_signup_body(password="s3cr"))
    assert "s3cr" not in response.text


async def test_an_oversized_body_is_refused_by_its_declared_length(
    app_client: Callable[..., Any],
) -> None:
    _, client = await app_client(MAX_REQUEST_BYTES=1024)
    response = await client.post(SIGNUP, json=_signup_body(name="n" * 2000))
    _assert_error(response, 413, "payload_too_large")


async def test_an_oversized_streamed_body_is_refused(app_client: Callable[..., Any]) -> None:
    _, client = await app_client(MAX_REQUEST_BYTES=1024)

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"email": "a@example.com", "password": "correct horse", "name": "'
        for _ in range(10):
            yield b"n" * 200
        yield b'"}'

    response = await client.post(
        SIGNUP, content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    _assert_error(response, 413, "payload_too_large")


async def test_an_upstream_that_is_down_is_a_503(client: httpx.AsyncClient) -> None:
    response = await client.post(SIGNUP, json=_signup_body())
    error = _assert_error(response, 503, "unavailable")
    assert response.headers["retry-after"] == "1"
    assert "127.0.0.1" not in error["message"]


async def test_no_credentials_is_a_401_with_a_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get(ME)
    _assert_error(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "a.b.c",
        # alg none: refused from the header alone, no key lookup.
        base64.urlsafe_b64encode(b'{"alg":"none","kid":"k"}').decode().rstrip("=")
        + "."
        + base64.urlsafe_b64encode(b'{"sub":"x"}').decode().rstrip("=")
        + ".",
    ],
)
async def test_junk_bearer_tokens_are_a_401(client: httpx.AsyncClient, token: str) -> None:
    response = await client.get(ME, headers={"Authorization": f"Bearer {token}"})
    _assert_error(response, 401, "invalid_token")
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_a_token_whose_keys_cannot_be_fetched_is_a_503(client: httpx.AsyncClient) -> None:
    """The auth service is down, so the key named by the token cannot be looked up."""
    token = jwt.encode(
        {"sub": "x"}, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": "k"}
    )
    _assert_error(
        await client.get(ME, headers={"Authorization": f"Bearer {token}"}), 503, "unavailable"
    )


async def test_an_api_key_needs_the_auth_service(client: httpx.AsyncClient) -> None:
    response = await client.get(ME, headers={"X-API-Key": "ov_deadbeef_secret"})
    _assert_error(response, 503, "unavailable")


async def test_an_absurdly_long_api_key_is_a_401(client: httpx.AsyncClient) -> None:
    response = await client.get(ME, headers={"X-API-Key": "k" * 1000})
    _assert_error(response, 401, "unauthenticated")


async def test_login_accepts_json_and_form_and_nothing_else(client: httpx.AsyncClient) -> None:
    as_json = await client.post(LOGIN, json={"email": "a@example.com", "password": "pw"})
    as_form = await client.post(LOGIN, data={"username": "a@example.com", "password": "pw"})
    as_text = await client.post(
        LOGIN, content=b"a@example.com:pw", headers={"Content-Type": "text/plain"}
    )
    # Both parse, then meet the auth service, which is down.
    _assert_error(as_json, 503, "unavailable")
    _assert_error(as_form, 503, "unavailable")
    _assert_error(as_text, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"json": {"email": "a@example.com"}}, "validation_error"),
        ({"json": {"email": "a@example.com", "password": "pw", "extra": 1}}, "validation_error"),
        ({"data": {"username": "a@example.com"}}, "validation_error"),
        ({"data": {"username": "a", "password": "p", "grant_type": "client"}}, "validation_error"),
        ({"content": b"{", "headers": {"Content-Type": "application/json"}}, "malformed_json"),
    ],
)
async def test_login_bodies_are_validated(
    client: httpx.AsyncClient, kwargs: dict[str, Any], code: str
) -> None:
    error = _assert_error(await client.post(LOGIN, **kwargs), 422, code)
    assert error["details"][0]["loc"][0] == "body"


async def test_login_is_rate_limited_per_ip_and_email(app_client: Callable[..., Any]) -> None:
    _, client = await app_client(RATE_LIMIT_LOGIN="2/60", TRUST_PROXY_HEADERS=True)
    ip, email = _ip(), f"{uuid.uuid4().hex}@example.com"
    headers = {"X-Forwarded-For": f"203.0.113.1, {ip}"}
    for _ in range(2):
        response = await client.post(
            LOGIN, data={"username": email, "password": "pw"}, headers=headers
        )
        assert response.status_code == 503
    refused = await client.post(LOGIN, json={"email": email, "password": "pw"}, headers=headers)
    _assert_error(refused, 429, "rate_limited")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    other_email = await client.post(
        LOGIN, json={"email": f"x{email}", "password": "pw"}, headers=headers
    )
    other_ip = await client.post(
        LOGIN, json={"email": email, "password": "pw"}, headers={"X-Forwarded-For": _ip()}
    )
    assert other_email.status_code == other_ip.status_code == 503


async def test_every_spelling_of_an_email_counts_against_one_login_limit(
    app_client: Callable[..., Any],
) -> None:
    """The limits key on objectvision_common.emails.account_key, the function the auth service
    finds the account with: a fullwidth letter in the domain (IDNA maps it to ASCII) names
    the same account, so it gets no fresh allowance."""
    _, client = await app_client(RATE_LIMIT_LOGIN="2/60", TRUST_PROXY_HEADERS=True)
    local = uuid.uuid4().hex
    headers = {"X-Forwarded-For": _ip()}
    for email in (f"{local}@example.com", f" {local.upper()}@EXAMPLE.COM"):
        response = await client.post(
            LOGIN, json={"email": email, "password": "pw"}, headers=headers
        )
        assert response.status_code == 503
    fullwidth = f"{local}@\uff45xample.com"
    refused = await client.post(LOGIN, json={"email": fullwidth, "password": "pw"}, headers=headers)
    _assert_error(refused, 429, "rate_limited")


async def test_one_ipv6_slash_64_counts_as_one_caller(app_client: Callable[..., Any]) -> None:
    """A host owns its whole /64: rotating the interface id does not reset the limit."""
    _, client = await app_client(RATE_LIMIT_LOGIN="2/60", TRUST_PROXY_HEADERS=True)
    network, email = _ipv6_network(), f"{uuid.uuid4().hex}@example.com"
    body = {"email": email, "password": "pw"}
    for interface in ("::1", ":1:2:3:4"):
        response = await client.post(
            LOGIN, json=body, headers={"X-Forwarded-For": f"{network}{interface}"}
        )
        assert response.status_code == 503
    refused = await client.post(
        LOGIN, json=body, headers={"X-Forwarded-For": f"{network}:ffff:ffff:ffff:ffff"}
    )
    _assert_error(refused, 429, "rate_limited")
    elsewhere = await client.post(
        LOGIN, json=body, headers={"X-Forwarded-For": f"{_ipv6_network()}::1"}
    )
    assert elsewhere.status_code == 503


async def test_logins_from_one_caller_are_limited_whatever_the_email(
    app_client: Callable[..., Any],
) -> None:
    """Credential stuffing: one address trying many accounts."""
    _, client = await app_client(RATE_LIMIT_LOGIN_IP="3/60", TRUST_PROXY_HEADERS=True)
    headers = {"X-Forwarded-For": f"{_ipv6_network()}::1"}
    for _ in range(3):
        response = await client.post(
            LOGIN,
            json={"email": f"{uuid.uuid4().hex}@example.com", "password": "pw"},
            headers=headers,
        )
        assert response.status_code == 503
    refused = await client.post(
        LOGIN,
        json={"email": f"{uuid.uuid4().hex}@example.com", "password": "pw"},
        headers=headers,
    )
    _assert_error(refused, 429, "rate_limited")
    assert 1 <= int(refused.headers["retry-after"]) <= 60


async def test_signup_is_rate_limited_per_ip(app_client: Callable[..., Any]) -> None:
    _, client = await app_client(RATE_LIMIT_SIGNUP="2/3600", TRUST_PROXY_HEADERS=True)
    headers = {"X-Forwarded-For": _ip()}
    for _ in range(2):
        response = await client.post(SIGNUP, json=_signup_body(), headers=headers)
        assert response.status_code == 503
    refused = await client.post(SIGNUP, json=_signup_body(), headers=headers)
    _assert_error(refused, 429, "rate_limited")
    assert int(refused.headers["retry-after"]) > 3000


async def test_forwarded_for_is_ignored_unless_trusted(app_client: Callable[..., Any]) -> None:
    """Untrusted, every caller here is the same test client, whatever header it sends."""
    _, client = await app_client(RATE_LIMIT_SIGNUP="1/3600", TRUST_PROXY_HEADERS=False)
    first = await client.post(SIGNUP, json=_signup_body(), headers={"X-Forwarded-For": _ip()})
    second = await client.post(SIGNUP, json=_signup_body(), headers={"X-Forwarded-For": _ip()})
    assert first.status_code == 503
    _assert_error(second, 429, "rate_limited")


def _ops_client(app: FastAPI) -> httpx.AsyncClient:
    """A client of the metrics port's app (it shares the API app's state)."""
    transport = httpx.ASGITransport(app=create_ops_app(app), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://gateway-metrics.test")


async def test_ready_names_what_is_down_on_the_metrics_port_only(
    app_client: Callable[..., Any],
) -> None:
    app, client = await app_client()
    async with _ops_client(app) as ops:
        error = _assert_error(await ops.get("/ready"), 503, "not_ready")
    failed = {detail["loc"][-1] for detail in error["details"]}
    assert failed == {"auth", "detection", "notification"}
    assert (await client.get("/ready")).status_code == 404


async def test_metrics_count_requests_by_route_template(app_client: Callable[..., Any]) -> None:
    app, client = await app_client()
    await client.get("/health")
    await client.get(f"/api/v1/users/{uuid.uuid4()}")
    await client.get(f"/scanner/{uuid.uuid4()}")
    assert (await client.get("/metrics")).status_code == 404
    async with _ops_client(app) as ops:
        response = await ops.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'http_requests_total{method="GET",route="/health",status="200"}' in text
    assert 'route="/api/v1/users/{user_id}",status="401"' in text
    assert 'route="unmatched",status="404"' in text
    assert 'http_request_duration_seconds_bucket{le="0.005",method="GET",route="/health"}' in text


async def test_an_unhandled_error_is_a_bare_500(app_client: Callable[..., Any]) -> None:
    app, client = await app_client()

    async def boom() -> None:
        raise RuntimeError("secret internal detail")

    app.add_api_route("/boom", boom)
    response = await client.get("/boom")
    _assert_error(response, 500, "internal")
    assert "secret internal detail" not in response.text
    assert "Traceback" not in response.text


async def test_logs_never_contain_credentials(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    secrets = ("bearer-secret-token", "ov_apikey_secret", "hunter2-password")
    caplog.set_level(logging.DEBUG)
    await client.get(ME, headers={"Authorization": f"Bearer {secrets[0]}"})
    await client.get(f"{ME}?token={secrets[0]}", headers={"X-API-Key": secrets[1]})
    await client.post(LOGIN, json={"email": "a@example.com", "password": secrets[2]})
    await client.post(SIGNUP, json=_signup_body(password=secrets[2]))
    logged = "\n".join(
        json.dumps({**record.__dict__, "message": record.getMessage()}, default=str)
        for record in caplog.records
        if not record.name.startswith("httpx")  # the test client's own log
    )
    assert "request finished" in logged
    for secret in secrets:
        assert secret not in logged


async def test_cors_preflight_for_configured_origins(app_client: Callable[..., Any]) -> None:
    _, client = await app_client(CORS_ORIGINS="https://app.example")
    response = await client.options(
        ME,
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "Authorization",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    assert response.headers["x-request-id"]


async def test_a_page_elsewhere_may_read_a_shared_detection_and_see_a_replayed_answer(
    app_client: Callable[..., Any],
) -> None:
    """A configured origin may send a share link's token header (ADR 0048), and read the
    header that marks a replayed stored detection (ADR 0047)."""
    _, client = await app_client(CORS_ORIGINS="https://app.example")
    preflight = await client.options(
        "/api/v1/shared",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "X-Share-Token",
        },
    )
    assert preflight.status_code == 200, preflight.text
    assert "x-share-token" in preflight.headers["access-control-allow-headers"].lower()
    answered = await client.get("/health", headers={"Origin": "https://app.example"})
    exposed = answered.headers["access-control-expose-headers"].lower()
    assert "idempotent-replayed" in exposed


async def test_given_clients_are_used_and_left_open(
    make_settings: Callable[..., GatewaySettings], app_client: Callable[..., Any]
) -> None:
    from gateway.clients import ServiceClients

    settings = make_settings()
    clients = ServiceClients.connect(settings)
    try:
        app: FastAPI = create_app(settings, clients=clients)
        _, client = await app_client(app=app)
        assert (await client.get("/health")).status_code == 200
        assert app.state.clients is clients
    finally:
        await clients.aclose()


def test_openapi_documents_the_error_shape_everywhere(
    make_settings: Callable[..., GatewaySettings],
) -> None:
    spec = create_app(make_settings()).openapi()
    assert "HTTPValidationError" not in json.dumps(spec)
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) < 400:
                    continue
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (
                    method,
                    path,
                    status,
                )
    login = spec["paths"][LOGIN]["post"]["requestBody"]["content"]
    assert set(login) == {"application/json", "application/x-www-form-urlencoded"}
    signup = spec["paths"][SIGNUP]["post"]["responses"]
    # One answer whether or not the address has an account: no 201, no 409 to tell them apart.
    assert signup.keys() >= {"202", "422", "429"}
    assert not signup.keys() & {"200", "201", "409"}


def _sync_dependencies(dependant: Any, route: str) -> list[str]:
    found: list[str] = []
    if dependant is None:
        return found
    for dependency in dependant.dependencies:
        call = dependency.call
        target = call if inspect.isfunction(call) else getattr(call, "__call__", call)  # noqa: B004
        if not (inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target)):
            found.append(f"{route}: {getattr(call, '__name__', type(call).__name__)}")
        found.extend(_sync_dependencies(dependency, route))
    return found


def test_no_route_sends_a_dependency_to_the_thread_pool(
    make_settings: Callable[..., GatewaySettings],
) -> None:
    """A plain `def` dependency costs a thread hop on every request; none is blocking work."""
    app = create_app(make_settings())
    routes = [
        context
        for included in app.routes
        if hasattr(included, "effective_route_contexts")
        for context in included.effective_route_contexts()
    ]
    assert len(routes) > 20
    sync = [name for route in routes for name in _sync_dependencies(route.dependant, route.path)]
    assert not sync, sync
