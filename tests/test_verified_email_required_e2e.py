"""REQUIRE_VERIFIED_EMAIL end to end (ADR 0029), every part real, on a stack of its own with
the setting on: the gateway, auth-service minting the `email_verified` claim,
detection-service refusing the work, the stack's SMTP sink holding the link.

Done when: an account whose address is not verified gets 403 `email_not_verified` for a
detect, a batch job and a detect with its API key, and nothing is counted against its usage;
reading its own profile and history still works; once the emailed link is opened, the API
key detects at once (auth-service reads the account on every key), and a session's
access token, which says what was true when it was minted, does after a refresh, which the
client makes by itself on that 403.
"""

import base64
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from objectvision_client import Client, ObjectVisionError, TokenPair
from objectvision_devstack.answers import api_error
from objectvision_devstack.api_users import Account, fresh_network, signed_in
from objectvision_devstack.mail import Mailbox, text_and_html
from objectvision_devstack.stack import Stack
from objectvision_devstack.waiting import eventually

DETECT = "/api/v1/detect/image"
BATCH = "/api/v1/detect/batch"
VERIFY = "/api/v1/auth/verify-email"
API_KEYS = "/api/v1/users/me/api-keys"
HISTORY = "/api/v1/detect/history"
SUBJECT = "Confirm your ObjectVision email address"
SHARED_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"
ARRIVES_WITHIN_SECONDS = 45.0
# A system of its own with REQUIRE_VERIFIED_EMAIL on (its start is most of the time these
# tests take): make test-slow. The rule itself is tested in each service's own suite.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def verified_only_stack(own_stack: Callable[..., Stack]) -> Iterator[Stack]:
    stack = own_stack(
        database="objectvision_verified_only",
        redis_db=7,
        extra_env={"REQUIRE_VERIFIED_EMAIL": "true", "TRUST_PROXY_HEADERS": "true"},
    )
    with stack.running():
        yield stack


@pytest.fixture
async def client(verified_only_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=verified_only_stack.gateway_url, timeout=60) as opened:
        yield opened


def _bus() -> tuple[str, bytes, str]:
    return ("bus.jpg", (SHARED_IMAGES / "bus.jpg").read_bytes(), "image/jpeg")


async def _detect(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await client.post(DETECT, files={"file": _bus()}, headers=headers)


def _refused_unverified(response: httpx.Response) -> None:
    error = api_error(response, 403, "email_not_verified")
    assert "verified email addresses only" in error["message"]


def _claims(access_token: str) -> dict[str, Any]:
    """What an access token says, unverified: only to read its claims."""
    body = access_token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return claims


async def _verification_token(stack: Stack, address: str) -> str:
    messages = await eventually(
        lambda: Mailbox(stack.mail_dir).about(address, SUBJECT),
        within=ARRIVES_WITHIN_SECONDS,
        what=f"the verification email to {address}",
    )
    text_part, _ = text_and_html(messages[0])
    link = next(word for word in text_part.split() if "#/verify-email?token=" in word)
    [token] = parse_qs(urlsplit(link).fragment.partition("?")[2])["token"]
    return token


async def test_an_unverified_account_is_refused_detection_until_it_opens_the_link(
    client: httpx.AsyncClient, verified_only_stack: Stack
) -> None:
    account: Account = await signed_in(client, prefix="unverified", name="Not Yet")
    assert _claims(account.access_token)["email_verified"] is False
    created = await client.post(
        API_KEYS, json={"name": "script", "scopes": ["detect"]}, headers=account.headers
    )
    assert created.status_code == 201, created.text
    key = {"X-API-Key": created.json()["secret"]}

    _refused_unverified(await _detect(client, account.headers))
    _refused_unverified(await _detect(client, key))
    batch = await client.post(
        BATCH, files=[("files", _bus()), ("files", _bus())], headers=account.headers
    )
    _refused_unverified(batch)
    # What the account may read is not detection work: it still answers.
    history = await client.get(HISTORY, headers=account.headers)
    assert history.status_code == 200 and history.json()["total"] == 0, history.text
    usage = await client.get("/api/v1/users/me/usage", headers=account.headers)
    assert usage.status_code == 200 and usage.json()["month_images"] == 0, usage.text

    token = await _verification_token(verified_only_stack, account.email)
    verified = await client.post(VERIFY, json={"token": token}, headers=fresh_network())
    assert verified.status_code == 200, verified.text

    # An API key counts at once: auth-service reads the account on every request with it.
    with_key = await _detect(client, key)
    assert with_key.status_code == 200, with_key.text
    # The session's access token was minted before: it still says unverified.
    _refused_unverified(await _detect(client, account.headers))

    # The client refreshes on that refusal and detects with the new token.
    renewed: list[TokenPair] = []
    with Client(
        verified_only_stack.gateway_url,
        tokens=TokenPair(
            access_token=account.access_token,
            refresh_token=account.refresh_token,
            expires_in=900,
        ),
        on_tokens=renewed.append,
        headers=fresh_network(),
    ) as session:
        result = session.detect_image(SHARED_IMAGES / "bus.jpg")
    assert any(found.class_name == "bus" for found in result.objects)
    [pair] = renewed
    assert _claims(pair.access_token)["email_verified"] is True


async def test_a_refused_account_that_never_verifies_stays_refused_after_a_refresh(
    verified_only_stack: Stack, client: httpx.AsyncClient
) -> None:
    """The client refreshes once on the refusal; a still-unverified account gets it again."""
    account = await signed_in(client, prefix="never", name=f"Never {uuid.uuid4().hex[:4]}")
    with (
        Client(
            verified_only_stack.gateway_url,
            tokens=TokenPair(
                access_token=account.access_token,
                refresh_token=account.refresh_token,
                expires_in=900,
            ),
            headers=fresh_network(),
        ) as session,
        pytest.raises(ObjectVisionError) as refused,
    ):
        session.detect_image(SHARED_IMAGES / "bus.jpg")
    assert (refused.value.status, refused.value.code) == (403, "email_not_verified")
