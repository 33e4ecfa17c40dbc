"""Security notices end to end, every part real: a change through the gateway's REST API,
auth-service and its outbox, the relay, the Redis events stream, notification-service and the
stack's SMTP sink, which keeps each message as an .eml file.

Done when: a password changed with `PATCH /api/v1/users/me` mails its owner one "Your
ObjectVision password was changed" notice, with when and how and the console's forgot-password
link; an address changed the same way (and confirmed with the link mailed to the new one,
ADR 0033) mails the old address one notice naming the new one only in part, and the new
address gets none.

Uses `stack` and `gateway_client` (tests/conftest.py). Every test signs up its own users with
its own X-Forwarded-For address (the stack trusts it), as test_auth_api.py does.
"""

import re
import uuid

import httpx

from objectvision_devstack.api_users import PASSWORD, fresh_network, logged_in, signed_in
from objectvision_devstack.mail import Mailbox, text_and_html
from objectvision_devstack.stack import Stack

ME = "/api/v1/users/me"
NEW_PASSWORD = "a brand new passphrase"
PASSWORD_SUBJECT = "Your ObjectVision password was changed"
EMAIL_SUBJECT = "The sign-in address of your ObjectVision account was changed"
CHANGE_LINK_SUBJECT = "Confirm the new email address of your ObjectVision account"
VERIFY = "/api/v1/auth/verify-email"
LINK_TOKEN = re.compile(r"#/verify-email\?token=([A-Za-z0-9_-]+)")
# A bound, not the expected time (an event leaves at its commit): the machine may be busy.
ARRIVES_WITHIN_SECONDS = 45.0
# How long to keep watching for a copy that should not come.
QUIET_SECONDS = 1.5
# "2026-12-06 14:02 UTC": the minute the change was made, in UTC.
MOMENT = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC")


async def _one_notice(mailbox: Mailbox, address: str, subject: str) -> tuple[str, str]:
    """The text and HTML parts (whitespace runs made single spaces) of the one message to
    `address` with `subject`; no second copy follows."""
    message = await mailbox.exactly_one(
        address, subject, within=ARRIVES_WITHIN_SECONDS, quiet=QUIET_SECONDS
    )
    text, html = text_and_html(message)
    return " ".join(text.split()), " ".join(html.split())


async def test_a_password_changed_through_the_api_mails_its_owner_one_notice(
    gateway_client: httpx.AsyncClient, stack: Stack, mailbox: Mailbox
) -> None:
    ada = await signed_in(gateway_client, prefix="notice", name="Ada Lovelace")
    address, session = ada.email, ada.headers

    refused = await gateway_client.patch(
        ME, json={"password": NEW_PASSWORD, "current_password": "not my password"}, headers=session
    )
    changed = await gateway_client.patch(
        ME, json={"password": NEW_PASSWORD, "current_password": PASSWORD}, headers=session
    )

    assert refused.status_code == 403, refused.text
    assert changed.status_code == 200, changed.text
    # One notice, for the change that was made; the refused one sent none.
    text, html = await _one_notice(mailbox, address, PASSWORD_SUBJECT)
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
    grace = await signed_in(gateway_client, prefix="notice", name="Grace Hopper")
    old_address, session = grace.email, grace.headers
    domain = f"{uuid.uuid4().hex[:12]}.example.com"
    new_address = f"grace@{domain}"

    asked = await gateway_client.patch(
        ME, json={"email": new_address, "current_password": PASSWORD}, headers=session
    )
    link_text, _ = await _one_notice(mailbox, new_address, CHANGE_LINK_SUBJECT)
    [token] = LINK_TOKEN.findall(link_text)
    changed = await gateway_client.post(VERIFY, json={"token": token}, headers=fresh_network())

    assert asked.status_code == changed.status_code == 200, changed.text
    assert changed.json()["email"] == new_address
    text, html = await _one_notice(mailbox, old_address, EMAIL_SUBJECT)
    assert "Hello Grace Hopper" in text
    assert f"from {old_address} to g***@{domain} (shown in part)." in text
    assert new_address not in text and new_address not in html
    assert "ask the administrator of this ObjectVision service" in text
    assert mailbox.about(new_address, EMAIL_SUBJECT) == []


NEW_LOGIN_SUBJECT = "New login to your ObjectVision account"


async def test_a_login_from_a_new_network_mails_the_owner_one_notice_and_a_familiar_one_none(
    gateway_client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    """ADR 0035: the owner's first login (right after signing up) says nothing; a login
    from a network and program none of the earlier ones had is mailed, with where from."""
    home = fresh_network()
    lin = await signed_in(gateway_client, prefix="roamer", name="Lin", network=home)
    await logged_in(gateway_client, lin.email, network=home)
    elsewhere = fresh_network()

    await logged_in(gateway_client, lin.email, network=elsewhere)

    text, html = await _one_notice(mailbox, lin.email, NEW_LOGIN_SUBJECT)
    assert f"from {elsewhere['X-Forwarded-For']} with python-httpx/" in text
    assert "#/settings" in text and PASSWORD not in text and PASSWORD not in html
