"""Forgotten passwords end to end (ADR 0021), every part real: the gateway, auth-service and
its outbox, the relay, the Redis events stream, notification-service and the stack's SMTP
sink, which keeps each message as an .eml file. The token is taken from the email's link, as
a person would, and nowhere else.

Done when: a request for an account mails one link `{PUBLIC_BASE_URL}/#/reset-password?token=…`
to its address and the same request for an address without an account is answered alike and
mails nothing; the link's token sets the new password once, the old password stops logging
in and every session of the account ends; the Python client and the `objectvision` command
do the same; neither the token nor a password reaches a log file of the stack.

Uses `stack` and `gateway_client` (tests/conftest.py). Every test signs up its own users with
its own X-Forwarded-For address (the stack trusts it), as test_auth_api.py does.
"""

import asyncio
import re
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from objectvision_client import AsyncClient, Client, ObjectVisionError
from objectvision_devstack.api_users import PASSWORD, fresh_network, log_in, sign_up
from objectvision_devstack.command_line import CommandLine
from objectvision_devstack.mail import Mailbox, text_and_html
from objectvision_devstack.stack import Stack
from objectvision_devstack.waiting import eventually

# The slow tier (make test-slow): this whole flow through every service repeats, end to end,
# what the services' own tests check one by one, and make test stays under 15 minutes.
pytestmark = pytest.mark.slow

REFRESH = "/api/v1/auth/refresh"
FORGOT = "/api/v1/auth/forgot-password"
RESET = "/api/v1/auth/reset-password"
ME = "/api/v1/users/me"
NEW_PASSWORD = "a brand new passphrase"
RESET_SUBJECT = "Reset your ObjectVision password"
INVALID_LINK = "this password reset link is invalid, already used or expired; ask for a new one"
# A bound, not the expected time (an event leaves at its commit): the machine may be busy.
ARRIVES_WITHIN_SECONDS = 45.0
# How long to keep watching for a message that should not come.
QUIET_SECONDS = 1.5
LINK = re.compile(r"\S+/#/reset-password\?token=\S+")


def _email() -> str:
    return f"forgetful-{uuid.uuid4().hex}@example.com"


async def _one_reset_link(mailbox: Mailbox, address: str) -> str:
    """The link of the one reset email to `address`, the same in its text and HTML parts;
    no second copy follows."""
    message = await mailbox.exactly_one(
        address, RESET_SUBJECT, within=ARRIVES_WITHIN_SECONDS, quiet=QUIET_SECONDS
    )
    text, html = text_and_html(message)
    [link] = LINK.findall(text)
    assert f'href="{link}"' in html
    return link


def _token(link: str) -> str:
    fragment = urlsplit(link).fragment
    path, _, query = fragment.partition("?")
    assert path == "/reset-password", link
    [token] = parse_qs(query, strict_parsing=True)["token"]
    return token


async def _signed_up(client: httpx.AsyncClient) -> str:
    address = _email()
    answer = await sign_up(client, address, "Forgetful Fay")
    assert answer.status_code == 202, answer.text
    return address


async def _forgot(client: httpx.AsyncClient, address: str) -> httpx.Response:
    return await client.post(FORGOT, json={"email": address}, headers=fresh_network())


async def test_the_emailed_link_resets_the_password_once_and_ends_every_session(
    gateway_client: httpx.AsyncClient, stack: Stack, mailbox: Mailbox
) -> None:
    address = await _signed_up(gateway_client)
    session = (await log_in(gateway_client, address, PASSWORD)).json()

    asked = await _forgot(gateway_client, address)

    assert asked.status_code == 202, asked.text
    link = await _one_reset_link(mailbox, address)
    assert link.startswith(f"{stack.gateway_url}/#/reset-password?token=ovp_"), link
    # The link opens the console, whose page has the reset form (the fragment stays here).
    page = await gateway_client.get(link)
    assert page.status_code == 200 and 'id="reset-form"' in page.text

    reset = await gateway_client.post(
        RESET, json={"token": _token(link), "new_password": NEW_PASSWORD}, headers=fresh_network()
    )

    assert reset.status_code == 204, reset.text
    assert reset.headers["ratelimit-policy"].startswith('"reset-password";')
    assert (await log_in(gateway_client, address, PASSWORD)).status_code == 401
    assert (await log_in(gateway_client, address, NEW_PASSWORD)).status_code == 200
    # The session opened before the reset has ended: its access and refresh tokens both.
    bearer = {"Authorization": f"Bearer {session['access_token']}"}
    assert (await gateway_client.get(ME, headers=bearer)).status_code == 401
    refreshed = await gateway_client.post(REFRESH, json={"refresh_token": session["refresh_token"]})
    assert refreshed.status_code == 401
    again = await gateway_client.post(
        RESET,
        json={"token": _token(link), "new_password": "yet another password"},
        headers=fresh_network(),
    )
    assert again.status_code == 422
    assert again.json()["error"]["code"] == "invalid_reset_token"
    assert again.json()["error"]["message"] == INVALID_LINK
    assert (await log_in(gateway_client, address, NEW_PASSWORD)).status_code == 200


async def test_an_address_without_an_account_gets_the_same_answer_and_no_email(
    gateway_client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    nobody = _email()
    somebody = await _signed_up(gateway_client)

    for_nobody = await _forgot(gateway_client, nobody)
    for_somebody = await _forgot(gateway_client, somebody)

    assert for_nobody.status_code == for_somebody.status_code == 202
    assert for_nobody.json() == for_somebody.json()
    # The account's email went through the whole pipeline, the other request's before it
    # (were there one): nothing came for the address without an account.
    await _one_reset_link(mailbox, somebody)
    assert mailbox.to(nobody) == []


async def test_a_newer_request_replaces_the_link_of_the_older(
    gateway_client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    address = await _signed_up(gateway_client)
    assert (await _forgot(gateway_client, address)).status_code == 202
    older = await _one_reset_link(mailbox, address)
    assert (await _forgot(gateway_client, address)).status_code == 202
    newer = await eventually(
        lambda: [m for m in mailbox.about(address, RESET_SUBJECT)][1:],
        within=ARRIVES_WITHIN_SECONDS,
        what="the second reset email",
    )
    [newer_link] = LINK.findall(newer[0].get_body(preferencelist=("plain",)).get_content())

    refused = await gateway_client.post(
        RESET, json={"token": _token(older), "new_password": NEW_PASSWORD}, headers=fresh_network()
    )
    used = await gateway_client.post(
        RESET,
        json={"token": _token(newer_link), "new_password": NEW_PASSWORD},
        headers=fresh_network(),
    )

    assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_reset_token"
    assert used.status_code == 204, used.text


async def test_the_client_asks_for_a_link_and_resets_with_it(
    stack: Stack, mailbox: Mailbox
) -> None:
    with Client(stack.gateway_url, headers=fresh_network()) as client:
        address = _email()
        client.signup(address, PASSWORD, "Client Fay")

        assert client.forgot_password(address) is None
        link = await _one_reset_link(mailbox, address)
        assert client.reset_password(_token(link), NEW_PASSWORD) is None

        with pytest.raises(ObjectVisionError) as used:
            client.reset_password(_token(link), NEW_PASSWORD)
        assert (used.value.status, used.value.code) == (422, "invalid_reset_token")
        with pytest.raises(ObjectVisionError) as old:
            client.login(address, PASSWORD)
        assert old.value.status == 401
        assert client.login(address, NEW_PASSWORD).access_token
    async with AsyncClient(stack.gateway_url, headers=fresh_network()) as async_client:
        assert await async_client.forgot_password(_email()) is None


async def test_the_command_asks_for_a_link_and_resets_with_the_whole_link(
    stack: Stack, mailbox: Mailbox, tmp_path: Path
) -> None:
    address = _email()
    with Client(stack.gateway_url, headers=fresh_network()) as client:
        client.signup(address, PASSWORD, "CLI Fay")
    objectvision = CommandLine(stack.gateway_url, tmp_path)

    asked = objectvision.run("forgot-password", "--email", address)
    assert f"If an account has the address {address}" in asked.stderr
    link = await _one_reset_link(mailbox, address)
    # The link as pasted from the email; the new password from standard input.
    reset = objectvision.run(
        "reset-password",
        "--token",
        link,
        "--password-stdin",
        input=f"{NEW_PASSWORD}\n",
    )
    assert "Password changed" in reset.stderr

    objectvision.run("login", "--email", address, "--password", NEW_PASSWORD)
    reused = objectvision.run(
        "reset-password",
        "--token",
        _token(link),
        "--password",
        NEW_PASSWORD,
        expect=1,
    )
    assert "invalid, already used or expired" in reused.stderr
    short = objectvision.run(
        "reset-password",
        "--token",
        _token(link),
        "--password",
        "short",
        expect=1,
    )
    assert "new_password" in short.stderr


async def test_neither_the_token_nor_a_password_reaches_the_logs(
    gateway_client: httpx.AsyncClient, stack: Stack, mailbox: Mailbox
) -> None:
    address = await _signed_up(gateway_client)
    assert (await _forgot(gateway_client, address)).status_code == 202
    link = await _one_reset_link(mailbox, address)
    token = _token(link)
    refused = await gateway_client.post(
        RESET, json={"token": token, "new_password": "short"}, headers=fresh_network()
    )
    assert refused.status_code == 422
    reset = await gateway_client.post(
        RESET, json={"token": token, "new_password": NEW_PASSWORD}, headers=fresh_network()
    )
    assert reset.status_code == 204
    await asyncio.sleep(1.0)  # unbuffered writers; give the last lines a moment

    # The SMTP sink stands for the user's mailbox, where the token belongs; every other log.
    files = [
        path
        for path in stack.logs_dir.rglob("*")
        if path.is_file() and path.name != "mail-sink.log"
    ]
    assert {"gateway.log", "auth.log", "notification.log"} <= {path.name for path in files}
    secrets = {"token": token, "new password": NEW_PASSWORD, "old password": PASSWORD}
    leaks = [
        f"{name} in {path.name}"
        for path in files
        for name, secret in secrets.items()
        if secret.encode() in path.read_bytes()
    ]
    assert not leaks, leaks
