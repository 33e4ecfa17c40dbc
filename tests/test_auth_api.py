"""The public auth and user API end to end: gateway -> auth-service -> PostgreSQL/Redis.

Uses `gateway_client` and `stack` from tests/conftest.py. The stack's gateway must run with
TRUST_PROXY_HEADERS=true: every test here sends its own X-Forwarded-For address, so the
per-IP sign-up limit (5 an hour by default) is per test, not shared by the whole suite.

Every test makes its own users (uuid emails) and depends on no other test.
"""

import base64
import hashlib
import hmac
import json
import re
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import empty_pb2

from objectvision.v1 import auth_pb2_grpc
from objectvision_devstack.answers import api_error_with_request_id
from objectvision_devstack.api_users import fresh_network, network_address
from objectvision_devstack.stack import Stack

SIGNUP = "/api/v1/auth/signup"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/users/me"
PROFILE = "/api/v1/users/get-profile"
SETTINGS = "/api/v1/users/me/settings"
API_KEYS = "/api/v1/users/me/api-keys"
PASSWORD = "correct horse battery"
USER_FIELDS = {
    "id",
    "email",
    "email_verified",
    "pending_email",
    "pending_email_expires_at",
    "two_factor_enabled",
    "name",
    "created_at",
    "updated_at",
}
SIGNUP_ACCEPTED_FIELDS = {"email", "message"}
# Enough to reach any sane configured limit; the defaults are 10 (login) and 5 (sign-up).
MAX_ATTEMPTS_BEFORE_LIMIT = 200
# The stack runs the default RATE_LIMIT_LOGIN_ACCOUNT: 20 failed logins per 15 minutes.
ACCOUNT_FAILURES_ALLOWED = 20
# The stack runs the default RATE_LIMIT_PASSWORD_CONFIRM: 10 wrong current passwords per
# account in 15 minutes.
CONFIRMATION_FAILURES_ALLOWED = 10
# Embeddings, overrides and isolates: U+202A..U+202E, U+2066..U+2069.
BIDI_CONTROL_CODES = (*range(0x202A, 0x202F), *range(0x2066, 0x206A))


def _email() -> str:
    return f"user-{uuid.uuid4().hex}@example.com"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    """As `api_error_with_request_id`, and the answer is the error object alone and whole."""
    error = api_error_with_request_id(response, status, code)
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "message", "request_id"} <= set(error)
    return error


def _assert_unauthorized(response: httpx.Response) -> dict:
    error = _assert_error(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    return error


@dataclass
class Account:
    id: str
    email: str
    password: str
    access_token: str
    refresh_token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


async def _signup(
    client: httpx.AsyncClient, *, email: str | None = None, password: str = PASSWORD
) -> dict[str, Any]:
    """Sign up; the answer says only which email to log in with (it is the same whether or
    not the address already had an account)."""
    response = await client.post(
        SIGNUP,
        json={"email": email or _email(), "password": password, "name": "Test User"},
        headers=fresh_network(),
    )
    assert response.status_code == 202, response.text
    assert set(response.json()) == SIGNUP_ACCEPTED_FIELDS
    return response.json()


async def _login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict:
    response = await client.post(
        LOGIN, json={"email": email, "password": password}, headers=fresh_network()
    )
    assert response.status_code == 200, response.text
    return response.json()


async def _account(client: httpx.AsyncClient) -> Account:
    signed_up = await _signup(client)
    tokens = await _login(client, signed_up["email"])
    me = await client.get(ME, headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200, me.text
    return Account(
        id=me.json()["id"],
        email=signed_up["email"],
        password=PASSWORD,
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
    )


@pytest.fixture
async def account(gateway_client: httpx.AsyncClient) -> AsyncIterator[Account]:
    yield await _account(gateway_client)


# Tokens re-signed with the auth service's own key: only the claim under test is wrong.


def _signing_key(stack: Any) -> Ed25519PrivateKey:
    env = getattr(stack, "env", None) or {}
    if env.get("JWT_PRIVATE_KEY"):
        pem = env["JWT_PRIVATE_KEY"].replace("\\n", "\n").encode()
    elif env.get("JWT_PRIVATE_KEY_FILE"):
        pem = Path(env["JWT_PRIVATE_KEY_FILE"]).read_bytes()
    else:
        path = Path(stack.data_dir) / "keys" / "auth-jwt-ed25519.pem"
        if not path.exists():
            pytest.skip("the auth service's signing key is not readable from this stack")
        pem = path.read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    head, body, _ = token.split(".")
    return json.loads(_b64url_decode(head)), json.loads(_b64url_decode(body))


def _resign(stack: Any, token: str, **claims: Any) -> str:
    header, payload = _parts(token)
    payload.update(claims)
    return jwt.encode(
        payload, _signing_key(stack), algorithm="EdDSA", headers={"kid": header["kid"]}
    )


def _public_key_bytes(stack: Any) -> bytes:
    """The published key, as an attacker would have it (from GetJwks)."""
    with grpc.insecure_channel(stack.service_address("auth")) as channel:
        jwks = auth_pb2_grpc.AuthServiceStub(channel).GetJwks(empty_pb2.Empty(), timeout=5)
    return _b64url_decode(jwks.keys[0].x)


# Health, readiness, metrics


async def test_health(gateway_client: httpx.AsyncClient) -> None:
    response = await gateway_client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_reports_each_dependency_on_the_metrics_port(
    gateway_client: httpx.AsyncClient, stack: Stack
) -> None:
    assert (await gateway_client.get("/ready")).status_code == 404
    async with httpx.AsyncClient(base_url=stack.gateway_metrics_url, timeout=30.0) as ops:
        response = await ops.get("/ready")
    if response.status_code == 200:
        body = response.json()
        assert body["status"] == "ready"
        assert {"redis", "auth", "detection", "notification"} <= set(body["checks"])
        return
    error = _assert_error(response, 503, "not_ready")
    failed = {detail["loc"][-1] for detail in error["details"]}
    # Redis and the auth service are certainly up: this very suite is using them.
    assert failed and not failed & {"redis", "auth"}


async def test_metrics_count_requests(gateway_client: httpx.AsyncClient, stack: Stack) -> None:
    await gateway_client.get("/health")
    await gateway_client.get(ME)
    assert (await gateway_client.get("/metrics")).status_code == 404
    async with httpx.AsyncClient(base_url=stack.gateway_metrics_url, timeout=30.0) as ops:
        response = await ops.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert re.search(
        r'http_requests_total\{method="GET",route="/health",status="200"\}', response.text
    )
    assert 'route="/api/v1/users/me",status="401"' in response.text
    assert "http_request_duration_seconds_bucket" in response.text


# Error shape


async def test_errors_carry_the_request_id_header(gateway_client: httpx.AsyncClient) -> None:
    request_id = f"test-{uuid.uuid4().hex}"
    response = await gateway_client.get(
        "/api/v1/no-such-route", headers={"X-Request-ID": request_id}
    )
    error = _assert_error(response, 404, "not_found")
    assert error["request_id"] == request_id == response.headers["x-request-id"]


async def test_an_unsafe_request_id_is_replaced(gateway_client: httpx.AsyncClient) -> None:
    response = await gateway_client.get(ME, headers={"X-Request-ID": "two words"})
    error = _assert_unauthorized(response)
    assert error["request_id"] != "two words"
    assert re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", error["request_id"])


async def test_wrong_method_is_a_405_naming_every_allowed_method(
    gateway_client: httpx.AsyncClient,
) -> None:
    response = await gateway_client.put(ME, json={})
    _assert_error(response, 405, "method_not_allowed")
    assert {m.strip() for m in response.headers["allow"].split(",")} == {"GET", "PATCH", "DELETE"}


async def test_validation_errors_list_the_fields(gateway_client: httpx.AsyncClient) -> None:
    response = await gateway_client.post(
        SIGNUP,
        json={"email": "nope", "password": "x", "name": "N"},
        headers=fresh_network(),
    )
    error = _assert_error(response, 422, "validation_error")
    fields = {detail["loc"][-1] for detail in error["details"]}
    assert {"email", "password"} <= fields


async def test_a_body_that_is_not_utf8_is_malformed_json(
    gateway_client: httpx.AsyncClient,
) -> None:
    response = await gateway_client.post(
        REFRESH,
        content=b'{"refresh_token": "\xff\xfe"}',
        headers={"Content-Type": "application/json"},
    )
    _assert_error(response, 422, "malformed_json")


# Sign-up


async def test_signup_accepts_and_the_account_logs_in(gateway_client: httpx.AsyncClient) -> None:
    email = _email()
    response = await gateway_client.post(
        SIGNUP,
        json={"email": email.upper(), "password": PASSWORD, "name": "Ada"},
        headers=fresh_network(),
    )
    assert response.status_code == 202, response.text
    assert set(response.json()) == SIGNUP_ACCEPTED_FIELDS
    assert response.json()["email"] == email
    assert PASSWORD not in response.text
    tokens = await _login(gateway_client, email)
    me = await gateway_client.get(ME, headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200, me.text
    assert set(me.json()) == USER_FIELDS
    assert (me.json()["email"], me.json()["name"]) == (email, "Ada")


async def _timed_signup(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD
) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = await client.post(
        SIGNUP,
        json={"email": email, "password": password, "name": "Someone"},
        headers=fresh_network(),
    )
    return response, time.perf_counter() - started


async def test_signup_with_a_taken_email_answers_like_a_new_one(
    gateway_client: httpx.AsyncClient,
) -> None:
    """Once 201 for a new address and 409 for a taken one (and 134 ms against 6 ms): sign-up
    told anyone which addresses have accounts. Now one answer, one cost (an Argon2 hash)."""
    owners = [await _account(gateway_client) for _ in range(3)]
    taken, fresh = [], []
    for owner in owners:
        spelled = owner.email.replace("@example.com", "@\uff45xample.com").upper()
        taken.append(await _timed_signup(gateway_client, spelled, "eve's password"))
        fresh.append(await _timed_signup(gateway_client, _email()))

    for (taken_answer, _), (fresh_answer, _), owner in zip(taken, fresh, owners, strict=True):
        assert taken_answer.status_code == fresh_answer.status_code == 202, taken_answer.text
        assert taken_answer.json() == {**fresh_answer.json(), "email": owner.email}
        # The owner's account is unchanged: their password opens it, Eve's does not.
        await _login(gateway_client, owner.email)
        wrong = await gateway_client.post(
            LOGIN,
            json={"email": owner.email, "password": "eve's password"},
            headers=fresh_network(),
        )
        _assert_unauthorized(wrong)
    taken_seconds = statistics.median(seconds for _, seconds in taken)
    fresh_seconds = statistics.median(seconds for _, seconds in fresh)
    assert 0.4 < taken_seconds / fresh_seconds < 2.5, (taken_seconds, fresh_seconds)


@pytest.mark.parametrize(
    "body",
    [
        {"email": f"\u00fcser-{uuid.uuid4().hex}@example.com"},
        {"email": f"{'a' * 65}@example.com"},
        *({"name": f"Eve{chr(code)}moc.elgoog"} for code in BIDI_CONTROL_CODES),
    ],
    ids=[
        "non-ASCII local part",
        "65-character local part",
        *(f"U+{code:04X} in name" for code in BIDI_CONTROL_CODES),
    ],
)
async def test_signup_refuses_addresses_mail_cannot_reach_and_bidi_names(
    gateway_client: httpx.AsyncClient, body: dict[str, str]
) -> None:
    good = {"email": _email(), "password": PASSWORD, "name": "Test User"}
    response = await gateway_client.post(SIGNUP, json={**good, **body}, headers=fresh_network())
    error = _assert_error(response, 422, "validation_error")
    assert {detail["loc"][-1] for detail in error["details"]} == set(body)
    # Refused before anything was stored: there is no account to log in to.
    refused = await gateway_client.post(
        LOGIN,
        json={"email": body.get("email", good["email"]), "password": PASSWORD},
        headers=fresh_network(),
    )
    _assert_unauthorized(refused)


async def test_rejected_signups_write_nothing(gateway_client: httpx.AsyncClient) -> None:
    email = _email()
    good = {"email": email, "password": PASSWORD, "name": "Test User"}

    async def post(**kwargs: Any) -> httpx.Response:
        headers = {"X-Forwarded-For": network_address(), **kwargs.pop("headers", {})}
        return await gateway_client.post(SIGNUP, headers=headers, **kwargs)

    malformed = await post(
        content=b'{"email": "' + email.encode(), headers={"Content-Type": "application/json"}
    )
    _assert_error(malformed, 422, "malformed_json")
    _assert_error(await post(json={**good, "email": "not-an-email"}), 422, "validation_error")
    _assert_error(await post(json={**good, "password": "short"}), 422, "validation_error")
    _assert_error(await post(json={**good, "is_admin": True}), 422, "validation_error")
    _assert_error(
        await post(json={**good, "name": "n" * (4 * 1024 * 1024)}), 413, "payload_too_large"
    )

    async def chunked() -> AsyncIterator[bytes]:
        yield json.dumps(good)[:-1].encode() + b', "pad": "'
        for _ in range(64):
            yield b"p" * 65536
        yield b'"}'

    streamed = await post(content=chunked(), headers={"Content-Type": "application/json"})
    _assert_error(streamed, 413, "payload_too_large")

    created = await post(json=good)
    assert created.status_code == 202, created.text
    again = await post(json={**good, "password": "another password"})
    assert (again.status_code, again.json()) == (202, created.json())
    await _login(gateway_client, email)
    _assert_unauthorized(
        await gateway_client.post(
            LOGIN,
            json={"email": email, "password": "another password"},
            headers=fresh_network(),
        )
    )


async def test_signup_is_rate_limited_per_ip(gateway_client: httpx.AsyncClient) -> None:
    """Refused sign-ups count too, so the limit is reached without creating accounts."""
    address = network_address()
    bad = {"email": _email(), "password": "short", "name": "Test User"}
    for _ in range(MAX_ATTEMPTS_BEFORE_LIMIT):
        response = await gateway_client.post(SIGNUP, json=bad, headers={"X-Forwarded-For": address})
        if response.status_code == 429:
            break
        assert response.status_code == 422, response.text
    _assert_error(response, 429, "rate_limited")
    assert int(response.headers["retry-after"]) >= 1
    good = {"email": _email(), "password": PASSWORD, "name": "Test User"}
    again = await gateway_client.post(SIGNUP, json=good, headers={"X-Forwarded-For": address})
    _assert_error(again, 429, "rate_limited")
    elsewhere = await gateway_client.post(SIGNUP, json=good, headers=fresh_network())
    assert elsewhere.status_code == 202, elsewhere.text


# Login, refresh, logout


async def test_login_with_the_oauth2_form(gateway_client: httpx.AsyncClient) -> None:
    user = await _account(gateway_client)
    response = await gateway_client.post(
        LOGIN,
        data={"username": user.email, "password": PASSWORD, "grant_type": "password"},
        headers=fresh_network(),
    )
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert set(tokens) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] > 0
    me = await gateway_client.get(ME, headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200
    assert me.json()["id"] == user.id


async def test_login_with_json(gateway_client: httpx.AsyncClient) -> None:
    user = await _signup(gateway_client)
    tokens = await _login(gateway_client, user["email"])
    assert tokens["token_type"] == "bearer"
    me = await gateway_client.get(ME, headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.json()["email"] == user["email"]


async def test_wrong_password_and_unknown_email_look_the_same(
    gateway_client: httpx.AsyncClient,
) -> None:
    user = await _signup(gateway_client)
    wrong = await gateway_client.post(
        LOGIN, json={"email": user["email"], "password": "wrong password"}
    )
    unknown = await gateway_client.post(LOGIN, json={"email": _email(), "password": PASSWORD})
    assert _assert_unauthorized(wrong)["message"] == _assert_unauthorized(unknown)["message"]


async def test_login_rejects_other_content_types(gateway_client: httpx.AsyncClient) -> None:
    response = await gateway_client.post(
        LOGIN, content=b"user:pass", headers={"Content-Type": "text/plain"}
    )
    _assert_error(response, 415, "unsupported_media_type")


async def test_login_is_rate_limited_per_ip_and_email(gateway_client: httpx.AsyncClient) -> None:
    user = await _signup(gateway_client)
    address = network_address()
    attempt = {"email": user["email"], "password": "wrong password"}
    for _ in range(MAX_ATTEMPTS_BEFORE_LIMIT):
        response = await gateway_client.post(
            LOGIN, json=attempt, headers={"X-Forwarded-For": address}
        )
        if response.status_code == 429:
            break
        _assert_unauthorized(response)
    _assert_error(response, 429, "rate_limited")
    assert int(response.headers["retry-after"]) >= 1
    # Even the right password waits out the window from this address...
    right = {"email": user["email"], "password": PASSWORD}
    blocked = await gateway_client.post(LOGIN, json=right, headers={"X-Forwarded-For": address})
    _assert_error(blocked, 429, "rate_limited")
    # ...but the account itself is not locked for everyone else.
    elsewhere = await gateway_client.post(LOGIN, json=right, headers=fresh_network())
    assert elsewhere.status_code == 200, elsewhere.text


async def test_every_spelling_of_an_email_is_one_account_and_one_limit(
    gateway_client: httpx.AsyncClient,
) -> None:
    """The gateway once keyed its login limits on `email.strip().lower()` while the auth
    service found the account through IDNA: after 20 failures on the plain address (429) a
    fullwidth letter in the domain still got 401s without limit, and the right password
    through it got 200. Both now take the key from objectvision_common.emails.account_key."""
    victim = await _account(gateway_client)
    fullwidth = victim.email.replace("@example.com", "@\uff45xample.com")
    # One account: the fullwidth spelling opens it.
    tokens = await _login(gateway_client, fullwidth)
    me = await gateway_client.get(ME, headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.json()["id"] == victim.id
    # One limit: failures under either spelling, each from its own address, count together...
    for attempt in range(ACCOUNT_FAILURES_ALLOWED):
        guess = await gateway_client.post(
            LOGIN,
            json={"email": fullwidth if attempt % 2 else victim.email, "password": f"g{attempt}"},
            headers=fresh_network(),
        )
        _assert_error(guess, 401, "unauthenticated")
    # ...and stop every spelling, the right password included.
    for spelling in (fullwidth, victim.email, fullwidth.upper()):
        stopped = await gateway_client.post(
            LOGIN,
            json={"email": spelling, "password": PASSWORD},
            headers=fresh_network(),
        )
        _assert_error(stopped, 429, "rate_limited")


async def test_a_session_cannot_guess_its_accounts_password_without_end(
    gateway_client: httpx.AsyncClient,
) -> None:
    """Whoever holds a session (a stolen token, a leaked API key) could try passwords through
    PATCH /users/me or DELETE /users/me, each answering 403 until the right one changes the
    password or deletes the account. Wrong current passwords are counted per account: after
    RATE_LIMIT_PASSWORD_CONFIRM of them even the right one waits (429), and other accounts
    and changes that need no password go on."""
    victim = await _account(gateway_client)
    bystander = await _account(gateway_client)
    for attempt in range(CONFIRMATION_FAILURES_ALLOWED):
        guess = {"password": "a new passphrase", "current_password": f"guess number {attempt}"}
        if attempt % 2:
            refused = await gateway_client.request(
                "DELETE",
                ME,
                json={"current_password": guess["current_password"]},
                headers=victim.auth,
            )
        else:
            refused = await gateway_client.patch(ME, json=guess, headers=victim.auth)
        _assert_error(refused, 403, "permission_denied")
    right = {"password": "a new passphrase", "current_password": PASSWORD}
    stopped = await gateway_client.patch(ME, json=right, headers=victim.auth)
    _assert_error(stopped, 429, "rate_limited")
    assert int(stopped.headers["retry-after"]) >= 1
    kept = await gateway_client.request(
        "DELETE", ME, json={"current_password": PASSWORD}, headers=victim.auth
    )
    _assert_error(kept, 429, "rate_limited")
    # Nothing was changed: the old password still logs in, and a rename needs none.
    await _login(gateway_client, victim.email)
    renamed = await gateway_client.patch(ME, json={"name": "Still Me"}, headers=victim.auth)
    assert renamed.status_code == 200, renamed.text
    # Another account's confirmations are its own.
    changed = await gateway_client.patch(
        ME,
        json={"password": "a new passphrase", "current_password": PASSWORD},
        headers=bystander.auth,
    )
    assert changed.status_code == 200, changed.text


async def test_refresh_rotates_and_a_reused_token_ends_the_session(
    gateway_client: httpx.AsyncClient, account: Account
) -> None:
    first = await gateway_client.post(REFRESH, json={"refresh_token": account.refresh_token})
    assert first.status_code == 200, first.text
    rotated = first.json()
    assert rotated["refresh_token"] != account.refresh_token
    assert rotated["token_type"] == "bearer"
    me = await gateway_client.get(
        ME, headers={"Authorization": f"Bearer {rotated['access_token']}"}
    )
    assert me.status_code == 200

    reused = await gateway_client.post(REFRESH, json={"refresh_token": account.refresh_token})
    _assert_unauthorized(reused)
    # Reuse revoked the whole family: the successor is dead too.
    successor = await gateway_client.post(REFRESH, json={"refresh_token": rotated["refresh_token"]})
    _assert_unauthorized(successor)


async def test_refresh_validates_its_body(gateway_client: httpx.AsyncClient) -> None:
    _assert_error(await gateway_client.post(REFRESH, json={}), 422, "validation_error")
    _assert_unauthorized(await gateway_client.post(REFRESH, json={"refresh_token": "ovr_bogus"}))


async def test_logout_ends_the_access_and_refresh_tokens(
    gateway_client: httpx.AsyncClient, account: Account
) -> None:
    assert (await gateway_client.get(ME, headers=account.auth)).status_code == 200
    response = await gateway_client.post(
        LOGOUT, json={"refresh_token": account.refresh_token}, headers=account.auth
    )
    assert response.status_code == 204, response.text
    assert response.content == b""
    _assert_unauthorized(await gateway_client.get(ME, headers=account.auth))
    _assert_unauthorized(
        await gateway_client.post(REFRESH, json={"refresh_token": account.refresh_token})
    )


async def _refreshed(client: httpx.AsyncClient, refresh_token: str) -> dict[str, str]:
    response = await client.post(REFRESH, json={"refresh_token": refresh_token})
    assert response.status_code == 200, response.text
    return response.json()


def _bearer(tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def test_logout_ends_access_tokens_minted_earlier_in_the_session(
    gateway_client: httpx.AsyncClient, account: Account
) -> None:
    """An access token from before a refresh once stayed valid after logout (up to 30 min)."""
    current = await _refreshed(gateway_client, account.refresh_token)
    for headers in (account.auth, _bearer(current)):
        assert (await gateway_client.get(ME, headers=headers)).status_code == 200

    response = await gateway_client.post(
        LOGOUT, json={"refresh_token": current["refresh_token"]}, headers=_bearer(current)
    )

    assert response.status_code == 204, response.text
    for headers in (account.auth, _bearer(current)):
        _assert_unauthorized(await gateway_client.get(ME, headers=headers))


async def test_refresh_token_reuse_ends_every_access_token_of_the_session(
    gateway_client: httpx.AsyncClient, account: Account
) -> None:
    """Whoever replayed the refresh token may hold the session's access tokens too."""
    other_session = await _login(gateway_client, account.email)
    rotated = await _refreshed(gateway_client, account.refresh_token)

    reused = await gateway_client.post(REFRESH, json={"refresh_token": account.refresh_token})

    _assert_unauthorized(reused)
    for headers in (account.auth, _bearer(rotated)):
        _assert_unauthorized(await gateway_client.get(ME, headers=headers))
    assert (await gateway_client.get(ME, headers=_bearer(other_session))).status_code == 200


async def test_logout_with_a_stale_refresh_token_ends_the_session(
    gateway_client: httpx.AsyncClient, account: Account
) -> None:
    """A client that lost a race with its own refresh still holds the rotated token."""
    rotated = await _refreshed(gateway_client, account.refresh_token)

    response = await gateway_client.post(
        LOGOUT, json={"refresh_token": account.refresh_token}, headers=_bearer(rotated)
    )

    assert response.status_code == 204, response.text
    for headers in (account.auth, _bearer(rotated)):
        _assert_unauthorized(await gateway_client.get(ME, headers=headers))
    _assert_unauthorized(
        await gateway_client.post(REFRESH, json={"refresh_token": rotated["refresh_token"]})
    )


async def test_logout_needs_a_bearer_token(
    gateway_client: httpx.AsyncClient, account: Account
) -> None:
    created = await gateway_client.post(API_KEYS, json={"name": "ci"}, headers=account.auth)
    api_key = created.json()["secret"]
    response = await gateway_client.post(
        LOGOUT, json={"refresh_token": account.refresh_token}, headers={"X-API-Key": api_key}
    )
    _assert_unauthorized(response)
    _assert_unauthorized(
        await gateway_client.post(LOGOUT, json={"refresh_token": account.refresh_token})
    )


# Forged and stale access tokens


async def test_no_credentials_is_a_401(gateway_client: httpx.AsyncClient) -> None:
    response = await gateway_client.get(ME)
    _assert_unauthorized(response)
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_resigned_token_is_accepted(
    gateway_client: httpx.AsyncClient, stack: Any, account: Account
) -> None:
    """The control for the forgeries below: re-signing by itself changes nothing."""
    token = _resign(stack, account.access_token)
    response = await gateway_client.get(ME, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text


async def test_an_expired_token_is_a_401(
    gateway_client: httpx.AsyncClient, stack: Any, account: Account
) -> None:
    now = int(time.time())
    token = _resign(stack, account.access_token, iat=now - 3600, nbf=now - 3600, exp=now - 60)
    response = await gateway_client.get(ME, headers={"Authorization": f"Bearer {token}"})
    assert "expired" in _assert_unauthorized(response)["message"]


@pytest.mark.parametrize(
    "claims",
    [{"aud": "someone-else"}, {"iss": "https://issuer.example"}, {"typ": "refresh"}],
)
async def test_a_token_for_another_audience_issuer_or_use_is_a_401(
    gateway_client: httpx.AsyncClient, stack: Any, account: Account, claims: dict[str, Any]
) -> None:
    token = _resign(stack, account.access_token, **claims)
    _assert_unauthorized(await gateway_client.get(ME, headers={"Authorization": f"Bearer {token}"}))


async def test_alg_none_is_a_401(gateway_client: httpx.AsyncClient, account: Account) -> None:
    header, payload = _parts(account.access_token)
    forged = ".".join(
        [
            _b64url(json.dumps({**header, "alg": "none"}).encode()),
            _b64url(json.dumps(payload).encode()),
            "",
        ]
    )
    _assert_unauthorized(
        await gateway_client.get(ME, headers={"Authorization": f"Bearer {forged}"})
    )


async def test_hs256_signed_with_the_public_key_is_a_401(
    gateway_client: httpx.AsyncClient, stack: Any, account: Account
) -> None:
    header, payload = _parts(account.access_token)
    head = _b64url(json.dumps({**header, "alg": "HS256"}).encode())
    body = _b64url(json.dumps(payload).encode())
    public = _public_key_bytes(stack)
    for secret in (public, _b64url(public).encode()):
        signature = _b64url(hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest())
        response = await gateway_client.get(
            ME, headers={"Authorization": f"Bearer {head}.{body}.{signature}"}
        )
        _assert_unauthorized(response)


async def test_a_tampered_payload_is_a_401(
    gateway_client: httpx.AsyncClient, account: Account
) -> None:
    other = await _account(gateway_client)
    head, _, signature = account.access_token.split(".")
    _, payload = _parts(account.access_token)
    forged_body = _b64url(json.dumps({**payload, "sub": other.id, "admin": True}).encode())
    response = await gateway_client.get(
        ME, headers={"Authorization": f"Bearer {head}.{forged_body}.{signature}"}
    )
    _assert_unauthorized(response)


# Users


async def test_me_and_get_profile_agree(
    gateway_client: httpx.AsyncClient, account: Account
) -> None:
    me = await gateway_client.get(ME, headers=account.auth)
    profile = await gateway_client.get(PROFILE, headers=account.auth)
    assert me.status_code == profile.status_code == 200
    assert me.json() == profile.json()
    assert set(me.json()) == USER_FIELDS
    assert me.json()["id"] == account.id


async def test_own_id_can_be_read_and_changed(
    gateway_client: httpx.AsyncClient, account: Account
) -> None:
    path = f"/api/v1/users/{account.id}"
    assert (await gateway_client.get(path, headers=account.auth)).json()["id"] == account.id
    changed = await gateway_client.patch(path, json={"name": "Renamed"}, headers=account.auth)
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == "Renamed"
    assert (await gateway_client.get(ME, headers=account.auth)).json()["name"] == "Renamed"


async def test_another_users_id_is_not_found(
    gateway_client: httpx.AsyncClient, account: Account
) -> None:
    other = await _account(gateway_client)
    path = f"/api/v1/users/{other.id}"
    _assert_error(await gateway_client.get(path, headers=account.auth), 404)
    _assert_error(
        await gateway_client.patch(path, json={"name": "Hijacked"}, headers=account.auth), 404
    )
    assert (await gateway_client.get(ME, headers=other.auth)).json()["name"] != "Hijacked"
    _assert_error(
        await gateway_client.get(f"/api/v1/users/{uuid.uuid4()}", headers=account.auth), 404
    )


async def test_a_malformed_user_id_names_nothing(
    gateway_client: httpx.AsyncClient, account: Account
) -> None:
    response = await gateway_client.get("/api/v1/users/not-a-uuid", headers=account.auth)
    _assert_error(response, 404, "not_found")


async def test_patch_me_changes_the_name_and_guards_the_password(
    gateway_client: httpx.AsyncClient, account: Account
) -> None:
    renamed = await gateway_client.patch(ME, json={"name": "New Name"}, headers=account.auth)
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "New Name"
    _assert_error(
        await gateway_client.patch(ME, json={"password": "another password"}, headers=account.auth),
        422,
    )
    wrong = await gateway_client.patch(
        ME,
        json={"password": "another password", "current_password": "not my password"},
        headers=account.auth,
    )
    _assert_error(wrong, 403)
    for body in ({"is_admin": True}, {"name": None}, {"name": "   "}):
        _assert_error(
            await gateway_client.patch(ME, json=body, headers=account.auth),
            422,
            "validation_error",
        )


async def test_a_password_change_ends_other_sessions(
    gateway_client: httpx.AsyncClient, account: Account
) -> None:
    changed = await gateway_client.patch(
        ME,
        json={"password": "a brand new password", "current_password": account.password},
        headers=account.auth,
    )
    assert changed.status_code == 200, changed.text
    # Every session ends with the old password, the access token that changed it included.
    _assert_unauthorized(await gateway_client.get(ME, headers=account.auth))
    _assert_unauthorized(
        await gateway_client.post(LOGIN, json={"email": account.email, "password": PASSWORD})
    )
    await _login(gateway_client, account.email, "a brand new password")
    _assert_unauthorized(
        await gateway_client.post(REFRESH, json={"refresh_token": account.refresh_token})
    )


async def test_an_email_change_waits_alike_for_a_taken_address_and_a_free_one(
    gateway_client: httpx.AsyncClient,
) -> None:
    """Once 409 for a taken address, then 200 with the email unchanged for a taken one and
    changed for a free one, which still told the two apart. Now a new address waits for the
    link mailed to it (ADR 0033): both answers keep the sign-in address and show the one
    asked for as pending, and nothing changes hands."""
    alice, bob, carol = [await _account(gateway_client) for _ in range(3)]
    free_address = _email()

    waiting = await gateway_client.patch(
        ME, json={"email": free_address, "current_password": PASSWORD}, headers=carol.auth
    )
    taken = await gateway_client.patch(
        ME,
        json={"name": "Alice Renamed", "email": bob.email.upper(), "current_password": PASSWORD},
        headers=alice.auth,
    )

    assert waiting.status_code == taken.status_code == 200, taken.text
    assert set(waiting.json()) == set(taken.json()) == USER_FIELDS
    assert (waiting.json()["email"], waiting.json()["pending_email"]) == (
        carol.email,
        free_address,
    )
    assert (taken.json()["id"], taken.json()["email"], taken.json()["name"]) == (
        alice.id,
        alice.email,
        "Alice Renamed",
    )
    assert taken.json()["pending_email"] == bob.email
    assert taken.json()["pending_email_expires_at"] is not None
    assert (await gateway_client.get(ME, headers=alice.auth)).json() == taken.json()
    # Each address still opens its own account, and the waiting one none yet.
    for owner in (alice, bob, carol):
        tokens = await _login(gateway_client, owner.email)
        me = await gateway_client.get(
            ME, headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert (me.json()["id"], me.json()["email"]) == (owner.id, owner.email)
    _assert_unauthorized(
        await gateway_client.post(LOGIN, json={"email": free_address, "password": PASSWORD})
    )


async def test_changes_of_address_are_limited_per_account(
    gateway_client: httpx.AsyncClient,
) -> None:
    """Each change mails a link to an address of the caller's choosing: RATE_LIMIT_EMAIL_CHANGE
    (3 an hour) per account, after which the next is 429 and other changes go on."""
    account, bystander = await _account(gateway_client), await _account(gateway_client)
    for _ in range(3):
        asked = await gateway_client.patch(
            ME, json={"email": _email(), "current_password": PASSWORD}, headers=account.auth
        )
        assert asked.status_code == 200, asked.text
    last_allowed = asked.json()["pending_email"]

    refused = await gateway_client.patch(
        ME, json={"email": _email(), "current_password": PASSWORD}, headers=account.auth
    )

    _assert_error(refused, 429, "rate_limited")
    me = await gateway_client.get(ME, headers=account.auth)
    assert me.json()["pending_email"] == last_allowed
    renamed = await gateway_client.patch(ME, json={"name": "Still Me"}, headers=account.auth)
    assert renamed.status_code == 200, renamed.text
    other = await gateway_client.patch(
        ME, json={"email": _email(), "current_password": PASSWORD}, headers=bystander.auth
    )
    assert other.status_code == 200, other.text


async def test_settings_read_and_change(
    gateway_client: httpx.AsyncClient, account: Account
) -> None:
    initial = await gateway_client.get(SETTINGS, headers=account.auth)
    assert initial.status_code == 200, initial.text
    assert initial.json()["theme"] == "system"
    assert initial.json()["notifications_enabled"] is True
    changed = await gateway_client.patch(
        SETTINGS, json={"theme": "dark", "notifications_enabled": False}, headers=account.auth
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["theme"], changed.json()["notifications_enabled"]) == ("dark", False)
    partial = await gateway_client.patch(SETTINGS, json={"theme": "light"}, headers=account.auth)
    assert (partial.json()["theme"], partial.json()["notifications_enabled"]) == ("light", False)
    reread = (await gateway_client.get(SETTINGS, headers=account.auth)).json()
    assert (reread["theme"], reread["notifications_enabled"]) == ("light", False)
    _assert_error(
        await gateway_client.patch(SETTINGS, json={"theme": "neon"}, headers=account.auth), 422
    )
    for body in ({"font": "big"}, {"theme": None}, {"notifications_enabled": 0}):
        _assert_error(
            await gateway_client.patch(SETTINGS, json=body, headers=account.auth),
            422,
            "validation_error",
        )


# API keys


async def test_api_key_lifecycle(gateway_client: httpx.AsyncClient, account: Account) -> None:
    created = await gateway_client.post(API_KEYS, json={"name": "ci"}, headers=account.auth)
    assert created.status_code == 201, created.text
    key = created.json()
    assert key["secret"].startswith(key["prefix"])
    assert key["name"] == "ci"
    assert key["revoked_at"] is None
    # Made without scopes or a lifetime: every scope, until revoked.
    assert key["scopes"] == ["detect", "results:read", "results:write", "results:share", "webhooks"]
    assert key["expires_at"] is None

    listed = await gateway_client.get(API_KEYS, headers=account.auth)
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert [item["id"] for item in items] == [key["id"]]
    assert "secret" not in items[0]
    assert key["secret"] not in listed.text

    by_key = {"X-API-Key": key["secret"]}
    me = await gateway_client.get(ME, headers=by_key)
    assert me.status_code == 200, me.text
    assert me.json()["id"] == account.id
    assert (await gateway_client.get(SETTINGS, headers=by_key)).status_code == 200
    # A key cannot mint more keys (they would outlive its revocation), nor see the others.
    _assert_error(
        await gateway_client.post(API_KEYS, json={"name": "x"}, headers=by_key),
        403,
        "session_required",
    )
    _assert_error(await gateway_client.get(API_KEYS, headers=by_key), 403, "session_required")

    deleted = await gateway_client.delete(f"{API_KEYS}/{key['id']}", headers=account.auth)
    assert deleted.status_code == 204, deleted.text
    _assert_unauthorized(await gateway_client.get(ME, headers=by_key))
    after = (await gateway_client.get(API_KEYS, headers=account.auth)).json()["items"]
    assert [item["revoked_at"] is not None for item in after if item["id"] == key["id"]] in (
        [True],
        [],
    )


async def test_an_unknown_api_key_is_a_401(gateway_client: httpx.AsyncClient) -> None:
    _assert_unauthorized(await gateway_client.get(ME, headers={"X-API-Key": "ov_00000000_nope"}))
    _assert_unauthorized(await gateway_client.get(ME, headers={"X-API-Key": "garbage"}))


async def test_api_keys_of_others_cannot_be_revoked(
    gateway_client: httpx.AsyncClient, account: Account
) -> None:
    other = await _account(gateway_client)
    created = await gateway_client.post(API_KEYS, json={"name": "mine"}, headers=other.auth)
    key = created.json()
    _assert_error(await gateway_client.delete(f"{API_KEYS}/{key['id']}", headers=account.auth), 404)
    _assert_error(
        await gateway_client.delete(f"{API_KEYS}/{uuid.uuid4()}", headers=account.auth), 404
    )
    assert (await gateway_client.get(ME, headers={"X-API-Key": key["secret"]})).status_code == 200


async def test_api_key_names_are_validated(
    gateway_client: httpx.AsyncClient, account: Account
) -> None:
    for body in ({}, {"name": ""}, {"name": "n" * 101}, {"name": "ok", "scope": "all"}):
        _assert_error(await gateway_client.post(API_KEYS, json=body, headers=account.auth), 422)
