"""Suspending and restoring accounts, granting and withdrawing admin rights, through the
public REST API on the shared stack (ADR 0032).

Done when: an admin suspends an account and at once its access token is a 401, its API key
is a 401 and its password logs in no more; restoring lets it log in and use the key again;
a demoted admin's admin token stops working at once; non-admins, API keys and an admin on
their own account are refused; the client and the `objectvision accounts` command do it.
"""

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from objectvision_client import Client, ObjectVisionError, TokenPair
from objectvision_devstack.answers import api_error
from objectvision_devstack.api_users import (
    Account,
    admin_signed_in,
    fresh_network,
    logged_in,
    signed_in,
)
from objectvision_devstack.command_line import CommandLine
from objectvision_devstack.mail import Mailbox
from objectvision_devstack.stack import Stack

ME = "/api/v1/users/me"
API_KEYS = "/api/v1/users/me/api-keys"
# A bound, not the expected time (an event leaves at its commit): the machine may be busy.
ARRIVES_WITHIN_SECONDS = 45.0


def _status_path(account: Account) -> str:
    return f"/api/v1/users/{account.id}/status"


@pytest.fixture(scope="module")
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as opened:
        yield opened


async def _made_admin(stack: Stack, client: httpx.AsyncClient, prefix: str) -> Account:
    return await admin_signed_in(client, stack.database_url, prefix=prefix, name="Status Admin")


@pytest.fixture(scope="module")
async def admin(stack: Stack, client: httpx.AsyncClient) -> Account:
    return await _made_admin(stack, client, "status-admin")


async def test_a_suspended_account_is_locked_out_at_once_until_restored(
    stack: Stack, client: httpx.AsyncClient, admin: Account
) -> None:
    account = await signed_in(client, prefix="suspended", name="Sus Pended", read_back=True)
    created = await client.post(API_KEYS, json={"name": "cron"}, headers=account.headers)
    assert created.status_code == 201, created.text
    key = {"X-API-Key": created.json()["secret"]}
    assert (await client.get(ME, headers=key)).status_code == 200

    suspended = await client.patch(
        _status_path(account), json={"active": False}, headers=admin.headers
    )

    assert suspended.status_code == 200, suspended.text
    body = suspended.json()
    assert (body["id"], body["is_active"], body["is_admin"]) == (account.id, False, False)
    assert (await client.get(ME, headers=account.headers)).status_code == 401
    assert (await client.get(ME, headers=key)).status_code == 401
    login = await client.post(
        "/api/v1/auth/login",
        json={"email": account.email, "password": account.password},
        headers=fresh_network(),
    )
    api_error(login, 401, "unauthenticated")

    restored = await client.patch(
        _status_path(account), json={"active": True}, headers=admin.headers
    )

    assert restored.status_code == 200 and restored.json()["is_active"] is True
    # The owner was told both times, by email.
    mailbox = Mailbox(stack.mail_dir)
    for subject in ("suspended", "restored"):
        await mailbox.exactly_one(
            account.email,
            f"Your ObjectVision account was {subject}",
            within=ARRIVES_WITHIN_SECONDS,
            quiet=0.5,
        )
    again = await logged_in(client, account.email)
    assert (await client.get(ME, headers=again.headers)).status_code == 200
    assert (await client.get(ME, headers=key)).status_code == 200


async def test_a_demoted_admins_token_stops_at_once(
    stack: Stack, client: httpx.AsyncClient, admin: Account
) -> None:
    other_admin = await _made_admin(stack, client, "demoted-admin")
    target = await signed_in(client, prefix="status-target", name="Target", read_back=True)
    # Admin rights work: the other admin reads an account's usage.
    usage = f"/api/v1/users/{target.id}/usage"
    assert (await client.get(usage, headers=other_admin.headers)).status_code == 200

    demoted = await client.patch(
        _status_path(other_admin), json={"admin": False}, headers=admin.headers
    )

    assert demoted.status_code == 200 and demoted.json()["is_admin"] is False
    assert (await client.get(usage, headers=other_admin.headers)).status_code == 401
    relogged = await logged_in(client, other_admin.email)
    api_error(await client.get(usage, headers=relogged.headers), 403, "permission_denied")


async def test_non_admins_keys_and_an_admins_own_account_are_refused(
    client: httpx.AsyncClient, admin: Account
) -> None:
    account = await signed_in(client, prefix="status-user", name="Just A User", read_back=True)
    other = await signed_in(client, prefix="status-other", name="Other", read_back=True)

    api_error(
        await client.patch(_status_path(other), json={"active": False}, headers=account.headers),
        403,
        "permission_denied",
    )
    created = await client.post(API_KEYS, json={"name": "ops"}, headers=admin.headers)
    admin_key = {"X-API-Key": created.json()["secret"]}
    api_error(
        await client.patch(_status_path(other), json={"active": False}, headers=admin_key),
        403,
        "session_required",
    )
    for change in ({"active": False}, {"admin": False}):
        own = await client.patch(_status_path(admin), json=change, headers=admin.headers)
        assert "their own account" in api_error(own, 409, "own_account")["message"]
    empty = await client.patch(_status_path(other), json={}, headers=admin.headers)
    assert empty.status_code == 422, empty.text
    assert (await client.get(ME, headers=other.headers)).status_code == 200


def test_the_client_and_the_command_suspend_and_restore(
    stack: Stack, admin: Account, tmp_path: Path
) -> None:
    tokens = TokenPair(access_token=admin.access_token, refresh_token=admin.refresh_token)
    with Client(stack.gateway_url, headers=fresh_network()) as anonymous:
        email = f"status-cli-{uuid.uuid4().hex}@example.com"
        anonymous.signup(email, "a long enough password", "Cli Target")
        anonymous.login(email, "a long enough password")
        target_id = anonymous.me().id
    with Client(stack.gateway_url, tokens=tokens, headers=fresh_network()) as as_admin:
        suspended = as_admin.set_account_status(target_id, active=False)
        assert (suspended.is_active, suspended.is_admin) == (False, False)
        with pytest.raises(ObjectVisionError) as own:
            as_admin.set_account_status(admin.id, admin=False)
        assert (own.value.status, own.value.code) == (409, "own_account")

    objectvision = CommandLine(stack.gateway_url, tmp_path)
    objectvision.run("login", "--email", admin.email, "--password", admin.password)
    restored = objectvision.run("accounts", "restore", target_id)
    assert f"Account {email} ({target_id}) is active, not an admin." in restored.stderr
    listed = objectvision.run("accounts", "list", email.split("@")[0])
    assert target_id in listed.stdout and "active" in listed.stdout
    assert "Showing 1-1 of 1." in listed.stderr


async def test_an_admin_finds_an_account_by_part_of_its_email(
    client: httpx.AsyncClient, admin: Account
) -> None:
    account = await signed_in(client, prefix="findable", name="Find Me", read_back=True)
    marker = account.email.split("@")[0].split("-", 1)[1][:12]

    found = await client.get("/api/v1/users", params={"q": marker}, headers=admin.headers)

    assert found.status_code == 200, found.text
    body = found.json()
    assert (body["total"], body["limit"], body["offset"]) == (1, 20, 0)
    [item] = body["items"]
    assert (item["id"], item["email"], item["is_active"], item["is_admin"]) == (
        account.id,
        account.email,
        True,
        False,
    )
    api_error(
        await client.get("/api/v1/users", params={"q": marker}, headers=account.headers),
        403,
        "permission_denied",
    )
