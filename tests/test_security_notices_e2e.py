"""Security notices end to end, every part real: a change through the gateway's REST API,
auth-service and its outbox, the relay, the Redis events stream, notification-service and the
stack's SMTP sink, which keeps each message as an .eml file.

Done when: a password changed with `PATCH /api/v1/users/me` mails its owner one "Your
ObjectVision password was changed" notice, with when and how and the console's forgot-password
link; an address changed the same way mails the old address one notice naming the new one
only in part, and the new address gets none.

Uses `stack` and `gateway_client` (tests/conftest.py). Every test signs up its own users with
its own X-Forwarded-For address (the stack trusts it), as test_auth_api.py does.
"""

import asyncio
import email
import re
import time
import uuid
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from objectvision_devstack.stack import Stack

SIGNUP = "/api/v1/auth/signup"
LOGIN = "/api/v1/auth/login"
ME = "/api/v1/users/me"
PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new passphrase"
PASSWORD_SUBJECT = "Your ObjectVision password was changed"
EMAIL_SUBJECT = "The sign-in address of your ObjectVision account was changed"
# Relays poll every 0.5 s, the dispatcher every second; the suite's machine may be busy.
ARRIVES_WITHIN_SECONDS = 45.0
# How long to keep watching for a copy that should not come.
QUIET_SECONDS = 1.5
POLL_SECONDS = 0.1
# "2026-12-06 14:02 UTC": the minute the change was made, in UTC.
MOMENT = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC")

T = TypeVar("T")


def _network() -> dict[str, str]:
    """A fresh client address (documentation range) for the per-network limits."""
    return {"X-Forwarded-For": f"2001:db8:{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}::1"}


async def _eventually(check: Callable[[], T], *, within: float, what: str) -> T:
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {within:.0f}s")
        await asyncio.sleep(POLL_SECONDS)


class Mailbox:
    """The messages the stack's SMTP sink stored, by recipient and subject."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def to(self, address: str) -> list[EmailMessage]:
        """Every message whose To is `address`, oldest first."""
        found = []
        for path in sorted(self.directory.glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=default_policy)
            assert isinstance(message, EmailMessage)
            if [mailbox.addr_spec for mailbox in message["To"].addresses] == [address]:
                found.append(message)
        return found

    def about(self, address: str, subject: str) -> list[EmailMessage]:
        return [message for message in self.to(address) if message["Subject"] == subject]

    async def exactly_one(self, address: str, subject: str) -> tuple[str, str]:
        """The text and HTML parts (whitespace runs made single spaces) of the one message to
        `address` with `subject`; no second copy follows."""
        await _eventually(
            lambda: self.about(address, subject),
            within=ARRIVES_WITHIN_SECONDS,
            what=f"{subject!r} to {address}",
        )
        await asyncio.sleep(QUIET_SECONDS)
        [message] = self.about(address, subject)
        text = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        assert text is not None and html is not None
        return " ".join(text.get_content().split()), " ".join(html.get_content().split())


@pytest.fixture
def mailbox(stack: Stack) -> Mailbox:
    return Mailbox(stack.mail_dir)


async def _signed_in(client: httpx.AsyncClient, name: str) -> tuple[str, dict[str, str]]:
    """A new account's address and the headers of a session of it."""
    address = f"notice-{uuid.uuid4().hex}@example.com"
    signed_up = await client.post(
        SIGNUP, json={"email": address, "password": PASSWORD, "name": name}, headers=_network()
    )
    assert signed_up.status_code == 202, signed_up.text
    tokens = await client.post(
        LOGIN, json={"email": address, "password": PASSWORD}, headers=_network()
    )
    assert tokens.status_code == 200, tokens.text
    return address, {"Authorization": f"Bearer {tokens.json()['access_token']}"}


async def test_a_password_changed_through_the_api_mails_its_owner_one_notice(
    gateway_client: httpx.AsyncClient, stack: Stack, mailbox: Mailbox
) -> None:
    address, session = await _signed_in(gateway_client, "Ada Lovelace")

    refused = await gateway_client.patch(
        ME, json={"password": NEW_PASSWORD, "current_password": "not my password"}, headers=session
    )
    changed = await gateway_client.patch(
        ME, json={"password": NEW_PASSWORD, "current_password": PASSWORD}, headers=session
    )

    assert refused.status_code == 403, refused.text
    assert changed.status_code == 200, changed.text
    # One notice, for the change that was made; the refused one sent none.
    text, html = await mailbox.exactly_one(address, PASSWORD_SUBJECT)
    assert "Hello Ada Lovelace" in text
    assert f"the password of your ObjectVision account, {address}, was changed on " in text
    [moment] = MOMENT.findall(text)
    assert f"{moment} in the account's settings." in text
    forgot = f"{stack.gateway_url}/#/forgot-password"
    assert "If it was not you, nor done at your request:" in text and forgot in text
    assert f'href="{forgot}"' in html
    for secret in (PASSWORD, NEW_PASSWORD):
        assert secret not in text and secret not in html


async def test_an_address_changed_through_the_api_mails_the_old_address_one_notice(
    gateway_client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    old_address, session = await _signed_in(gateway_client, "Grace Hopper")
    domain = f"{uuid.uuid4().hex[:12]}.example.com"
    new_address = f"grace@{domain}"

    changed = await gateway_client.patch(
        ME, json={"email": new_address, "current_password": PASSWORD}, headers=session
    )

    assert changed.status_code == 200, changed.text
    assert changed.json()["email"] == new_address
    text, html = await mailbox.exactly_one(old_address, EMAIL_SUBJECT)
    assert "Hello Grace Hopper" in text
    assert f"from {old_address} to g***@{domain} (shown in part)." in text
    assert new_address not in text and new_address not in html
    assert "ask the administrator of this ObjectVision service" in text
    assert mailbox.about(new_address, EMAIL_SUBJECT) == []
