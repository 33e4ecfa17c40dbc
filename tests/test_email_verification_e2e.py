"""Verified email addresses end to end (ADR 0029), every part real: the gateway, auth-service
and its outbox, the relay, the Redis events stream, notification-service and the stack's SMTP
sink, which keeps each message as an .eml file. The token is taken from the email's link, as
a person would, and nowhere else.

Done when: a sign-up mails a link `{PUBLIC_BASE_URL}/#/verify-email?token=…` to the new
address; the link verifies the address once and is refused after; an expired link is refused;
asking again mails a new link and ends the old one, and is refused once the address is
verified or to an API key; a changed address is unverified until the link mailed to it is
opened; ADMIN_EMAILS makes an admin of the account that verifies the address, not of the one
that signs up with it; the client and the `objectvision` command do the same; the token
reaches no log file of the stack.

Uses `stack`, `stack_admin_email` and `gateway_client` (tests/conftest.py). Every request
comes from a fresh X-Forwarded-For network (the stack trusts it), as the other e2e tests do.
"""

import asyncio
import base64
import json
import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import create_engine, text

from objectvision_client import Client, ObjectVisionError
from objectvision_common.db import sync_url
from objectvision_devstack.answers import api_error
from objectvision_devstack.api_users import (
    PASSWORD,
    Account,
    fresh_network,
    logged_in,
    sign_up,
    signed_in,
)
from objectvision_devstack.command_line import CommandLine
from objectvision_devstack.mail import Mailbox, text_and_html
from objectvision_devstack.stack import Stack
from objectvision_devstack.waiting import eventually

# The slow tier (make test-slow): this whole flow through every service repeats, end to end,
# what the services' own tests check one by one, and make test stays under 15 minutes.
pytestmark = pytest.mark.slow

VERIFY = "/api/v1/auth/verify-email"
RESEND = "/api/v1/auth/resend-verification"
ME = "/api/v1/users/me"
API_KEYS = "/api/v1/users/me/api-keys"
SUBJECT = "Confirm your ObjectVision email address"
CHANGE_SUBJECT = "Confirm the new email address of your ObjectVision account"
MOVED_SUBJECT = "The sign-in address of your ObjectVision account was changed"
WELCOME = "Welcome to ObjectVision"
INVALID_LINK = "this email verification link is invalid, already used or expired; ask for a new one"
# A bound, not the expected time (an event leaves at its commit): the machine may be busy.
ARRIVES_WITHIN_SECONDS = 45.0
QUIET_SECONDS = 1.5
LINK = re.compile(r"\S+/#/verify-email\?token=\S+")


def _email(prefix: str = "verify") -> str:
    return f"{prefix}-{uuid.uuid4().hex}@example.com"


def _links(message: Any) -> list[str]:
    """The verification links of one message; its text and HTML parts carry the same."""
    text_part, html = text_and_html(message)
    links = LINK.findall(text_part)
    for link in links:
        assert f'href="{link}"' in html
    return links


async def _one_link(mailbox: Mailbox, address: str) -> str:
    """The link of the one verification email to `address`; no second copy follows."""
    message = await mailbox.exactly_one(
        address, SUBJECT, within=ARRIVES_WITHIN_SECONDS, quiet=QUIET_SECONDS
    )
    [link] = _links(message)
    return link


async def _nth_link(mailbox: Mailbox, address: str, n: int) -> str:
    """The link of the `n`th verification email to `address` (1 is the first)."""
    messages = await eventually(
        lambda: mailbox.about(address, SUBJECT)[n - 1 :],
        within=ARRIVES_WITHIN_SECONDS,
        what=f"verification email number {n} to {address}",
    )
    [link] = _links(messages[0])
    return link


def _token(link: str) -> str:
    fragment = urlsplit(link).fragment
    path, _, query = fragment.partition("?")
    assert path == "/verify-email", link
    [token] = parse_qs(query, strict_parsing=True)["token"]
    return token


async def _verify(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post(VERIFY, json={"token": token}, headers=fresh_network())


async def _me(client: httpx.AsyncClient, account: Account) -> dict[str, Any]:
    answer = await client.get(ME, headers=account.headers)
    assert answer.status_code == 200, answer.text
    me: dict[str, Any] = answer.json()
    return me


def _claims(access_token: str) -> dict[str, Any]:
    """The claims of an access token, unverified: only to read what it says of its holder."""
    body = access_token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return claims


async def test_sign_up_mails_a_link_that_verifies_the_address_once(
    gateway_client: httpx.AsyncClient, stack: Stack, mailbox: Mailbox
) -> None:
    account = await signed_in(gateway_client, prefix="verify", name="Vera", read_back=True)
    assert (await _me(gateway_client, account))["email_verified"] is False

    link = await _one_link(mailbox, account.email)
    # The welcome email still comes too, on its own.
    await mailbox.exactly_one(
        account.email, WELCOME, within=ARRIVES_WITHIN_SECONDS, quiet=QUIET_SECONDS
    )
    assert link.startswith(f"{stack.gateway_url}/#/verify-email?token=ove_"), link
    # The link opens the console, whose page confirms the address (the fragment stays here).
    page = await gateway_client.get(link)
    assert page.status_code == 200 and 'id="view-verify-email"' in page.text

    verified = await _verify(gateway_client, _token(link))

    assert verified.status_code == 200, verified.text
    assert verified.json() == {
        "email": account.email,
        "email_verified": True,
        "address_changed": False,
    }
    assert verified.headers["ratelimit-policy"].startswith('"verify-email";')
    assert (await _me(gateway_client, account))["email_verified"] is True
    again = await _verify(gateway_client, _token(link))
    assert api_error(again, 422, "invalid_verification_token")["message"] == INVALID_LINK


async def test_a_taken_address_at_sign_up_gets_no_second_link(
    gateway_client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    address = _email()
    assert (await sign_up(gateway_client, address, "First")).status_code == 202
    await _one_link(mailbox, address)

    taken = await sign_up(gateway_client, address, "Second", password="another password")

    assert taken.status_code == 202
    await eventually(
        lambda: mailbox.about(address, "Someone tried to sign up", prefix=True),
        within=ARRIVES_WITHIN_SECONDS,
        what="the sign-up notice to the owner",
    )
    assert len(mailbox.about(address, SUBJECT)) == 1


async def test_an_expired_link_is_refused(
    gateway_client: httpx.AsyncClient, stack: Stack, mailbox: Mailbox
) -> None:
    account = await signed_in(gateway_client, prefix="expired", name="Exa", read_back=True)
    token = _token(await _one_link(mailbox, account.email))
    engine = create_engine(sync_url(stack.database_url))
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE auth.email_verification_tokens"
                " SET expires_at = now() - interval '1 second' WHERE user_id = :id"
            ),
            {"id": account.id},
        )
    engine.dispose()

    refused = await _verify(gateway_client, token)

    assert api_error(refused, 422, "invalid_verification_token")["message"] == INVALID_LINK
    assert (await _me(gateway_client, account))["email_verified"] is False


async def test_asking_again_mails_a_new_link_and_ends_the_old_one(
    gateway_client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    account = await signed_in(gateway_client, prefix="resend", name="Rea")
    old = _token(await _one_link(mailbox, account.email))

    asked = await gateway_client.post(RESEND, headers=account.headers)

    assert asked.status_code == 202, asked.text
    assert asked.headers["ratelimit-policy"].startswith('"resend-verification";')
    new = _token(await _nth_link(mailbox, account.email, 2))
    assert new != old
    api_error(await _verify(gateway_client, old), 422, "invalid_verification_token")
    assert (await _verify(gateway_client, new)).status_code == 200
    # Verified: nothing more to send, and it says so.
    done = await gateway_client.post(RESEND, headers=account.headers)
    api_error(done, 409, "email_already_verified")


async def test_an_api_key_cannot_ask_for_a_link(
    gateway_client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    account = await signed_in(gateway_client, prefix="keyed", name="Kay")
    created = await gateway_client.post(API_KEYS, json={"name": "script"}, headers=account.headers)
    assert created.status_code == 201, created.text

    refused = await gateway_client.post(RESEND, headers={"X-API-Key": created.json()["secret"]})

    api_error(refused, 403, "session_required")
    await _one_link(mailbox, account.email)


async def test_a_new_address_becomes_the_sign_in_address_when_the_link_mailed_to_it_is_opened(
    gateway_client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    """ADR 0033: the request leaves the account as it was, with the new address waiting; the
    link goes to the new address, opening it moves the account there, verified, and the old
    address is told."""
    account = await signed_in(gateway_client, prefix="mover", name="Moe", read_back=True)
    first = _token(await _one_link(mailbox, account.email))
    assert (await _verify(gateway_client, first)).status_code == 200
    new_address = _email("moved")

    asked = await gateway_client.patch(
        ME,
        json={"email": new_address, "current_password": PASSWORD},
        headers=account.headers,
    )

    assert asked.status_code == 200, asked.text
    assert (asked.json()["email"], asked.json()["email_verified"]) == (account.email, True)
    assert asked.json()["pending_email"] == new_address
    message = await mailbox.exactly_one(
        new_address, CHANGE_SUBJECT, within=ARRIVES_WITHIN_SECONDS, quiet=QUIET_SECONDS
    )
    [link] = _links(message)
    # The old address gets no link for the new one, and no notice before the move.
    assert len(mailbox.about(account.email, SUBJECT)) == 1
    assert mailbox.about(account.email, MOVED_SUBJECT) == []
    moved = await _verify(gateway_client, _token(link))
    assert moved.json() == {"email": new_address, "email_verified": True, "address_changed": True}
    me = await _me(gateway_client, account)
    assert (me["email"], me["email_verified"], me["pending_email"]) == (new_address, True, None)
    await mailbox.exactly_one(
        account.email, MOVED_SUBJECT, within=ARRIVES_WITHIN_SECONDS, quiet=QUIET_SECONDS
    )
    assert (await logged_in(gateway_client, new_address)).access_token


async def test_admin_emails_promote_the_account_that_verifies_the_address_not_at_sign_up(
    gateway_client: httpx.AsyncClient, mailbox: Mailbox, stack_admin_email: str
) -> None:
    other = await signed_in(gateway_client, prefix="bystander", name="By", read_back=True)
    other_profile = f"/api/v1/users/{other.id}"
    assert (await sign_up(gateway_client, stack_admin_email, "Ops")).status_code == 202
    before = await logged_in(gateway_client, stack_admin_email)

    # Signed up with the address: no admin yet, in the token or in what it may see.
    assert _claims(before.access_token).get("admin", False) is False
    assert (await gateway_client.get(other_profile, headers=before.headers)).status_code == 404

    link = await _one_link(mailbox, stack_admin_email)
    assert (await _verify(gateway_client, _token(link))).status_code == 200
    after = await logged_in(gateway_client, stack_admin_email)

    assert _claims(after.access_token)["admin"] is True
    seen = await gateway_client.get(other_profile, headers=after.headers)
    assert seen.status_code == 200 and seen.json()["email"] == other.email


async def test_the_client_and_the_command_ask_again_and_verify_with_the_link(
    stack: Stack, mailbox: Mailbox, tmp_path: Path
) -> None:
    address = _email("client")
    with Client(stack.gateway_url, headers=fresh_network()) as client:
        client.signup(address, PASSWORD, "Client Vera")
        client.login(address, PASSWORD)
        await _one_link(mailbox, address)
        assert client.me().email_verified is False
        assert client.resend_verification() is None
        second = await _nth_link(mailbox, address, 2)
        assert client.verify_email(_token(second)) == address
        assert client.me().email_verified is True
        with pytest.raises(ObjectVisionError) as done:
            client.resend_verification()
        assert (done.value.status, done.value.code) == (409, "email_already_verified")

    objectvision = CommandLine(stack.gateway_url, tmp_path)
    cli_address = _email("cli")
    with Client(stack.gateway_url, headers=fresh_network()) as client:
        client.signup(cli_address, PASSWORD, "CLI Vera")
    link = await _one_link(mailbox, cli_address)
    # The link as pasted from the email.
    verified = objectvision.run("verify-email", "--token", link)
    assert f"Email address {cli_address} verified." in verified.stderr
    reused = objectvision.run("verify-email", "--token", _token(link), expect=1)
    assert "invalid, already used or expired" in reused.stderr


async def test_the_command_moves_the_account_with_the_link_mailed_to_the_new_address(
    stack: Stack, mailbox: Mailbox, tmp_path: Path
) -> None:
    objectvision = CommandLine(stack.gateway_url, tmp_path)
    address, new_address = _email("cli-mover"), _email("cli-moved")
    with Client(stack.gateway_url, headers=fresh_network()) as client:
        client.signup(address, PASSWORD, "CLI Mover")
    await _one_link(mailbox, address)
    objectvision.run("login", "--email", address, "--password", PASSWORD)

    asked = objectvision.run("account", "email", "--email", new_address, "--password", PASSWORD)

    assert f"A link that makes {new_address} your sign-in address was mailed to it." in (
        asked.stderr
    )
    waiting = objectvision.run("whoami").stdout
    assert f"<{address}>" in waiting and f"Moving to {new_address}" in waiting
    message = await mailbox.exactly_one(
        new_address, CHANGE_SUBJECT, within=ARRIVES_WITHIN_SECONDS, quiet=QUIET_SECONDS
    )
    [link] = _links(message)
    objectvision.run("verify-email", "--token", link)
    moved = objectvision.run("whoami").stdout
    assert f"<{new_address}>" in moved and "Moving to" not in moved


async def test_the_token_reaches_no_log(
    gateway_client: httpx.AsyncClient, stack: Stack, mailbox: Mailbox
) -> None:
    account = await signed_in(gateway_client, prefix="quiet", name="Quinn")
    first = _token(await _one_link(mailbox, account.email))
    assert (await gateway_client.post(RESEND, headers=account.headers)).status_code == 202
    second = _token(await _nth_link(mailbox, account.email, 2))
    api_error(await _verify(gateway_client, first), 422, "invalid_verification_token")
    assert (await _verify(gateway_client, second)).status_code == 200
    await asyncio.sleep(1.0)  # unbuffered writers; give the last lines a moment

    # The SMTP sink stands for the user's mailbox, where the token belongs; every other log.
    files = [
        path
        for path in stack.logs_dir.rglob("*")
        if path.is_file() and path.name != "mail-sink.log"
    ]
    assert {"gateway.log", "auth.log", "notification.log"} <= {path.name for path in files}
    leaks = [
        f"{name} in {path.name}"
        for path in files
        for name, secret in {"first token": first, "second token": second}.items()
        if secret.encode() in path.read_bytes()
    ]
    assert not leaks, leaks
