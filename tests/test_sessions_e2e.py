"""The account's signed-in sessions (ADR 0035), end to end on the shared stack: through the
public REST API, the client library and the `objectvision` command.

Done when: each login is listed with the address and User-Agent it came from, most recently
active first, and the caller's own marked `current`; ending one stops its access token and its
refresh token at once while the others work on; ending every other one keeps the caller's;
another account's session is not found; an API key can do none of it; the CLI lists, ends one
by the start of its id and ends the others.

The stack trusts X-Forwarded-For, so each login here comes from an address of its own, and
says which device it is in its User-Agent. Every test makes its own accounts.
"""

import ipaddress
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from objectvision_client import AsyncClient, Client, ObjectVisionError
from objectvision_devstack.answers import api_error
from objectvision_devstack.api_users import (
    Account,
    fresh_network,
    logged_in,
    network_address,
    signed_in,
)
from objectvision_devstack.command_line import CommandLine
from objectvision_devstack.stack import Stack

SESSIONS = "/api/v1/users/me/sessions"
ME = "/api/v1/users/me"
REFRESH = "/api/v1/auth/refresh"
API_KEYS = "/api/v1/users/me/api-keys"


@pytest.fixture(scope="module")
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as opened:
        yield opened


def _device(user_agent: str) -> dict[str, str]:
    """The headers of a login from a network of its own, by a device named `user_agent`."""
    return {"X-Forwarded-For": network_address(), "User-Agent": user_agent}


async def _listed(client: httpx.AsyncClient, account: Account) -> list[dict[str, Any]]:
    listed = await client.get(SESSIONS, headers=account.headers)
    assert listed.status_code == 200, listed.text
    items: list[dict[str, Any]] = listed.json()["items"]
    return items


async def _works(client: httpx.AsyncClient, account: Account) -> bool:
    """Whether the account's access token is still taken."""
    me = await client.get(ME, headers=account.headers)
    assert me.status_code in (200, 401), me.text
    return me.status_code == 200


async def _refreshes(client: httpx.AsyncClient, account: Account) -> bool:
    """Whether the account's refresh token is still taken (it is used up if so)."""
    refreshed = await client.post(
        REFRESH, json={"refresh_token": account.refresh_token}, headers=fresh_network()
    )
    assert refreshed.status_code in (200, 401), refreshed.text
    return refreshed.status_code == 200


async def _logged_in_twice(client: httpx.AsyncClient, prefix: str) -> tuple[Account, Account]:
    """An account logged in from a laptop and then from a phone, each from a network of its
    own."""
    laptop = await signed_in(client, prefix=prefix, name="Two Devices", network=_device("laptop"))
    phone = await logged_in(client, laptop.email, network=_device("phone"))
    return laptop, phone


async def test_each_login_is_listed_with_where_it_came_from_and_the_callers_marked(
    client: httpx.AsyncClient,
) -> None:
    laptop_device, phone_device = _device("Laptop/1.0 (test)"), _device("Phone/2.0 (test)")
    laptop = await signed_in(client, prefix="sessions-list", name="Lister", network=laptop_device)
    phone = await logged_in(client, laptop.email, network=phone_device)

    seen_from_laptop = await _listed(client, laptop)
    # Most recently active first: the phone logged in last.
    assert [item["user_agent"] for item in seen_from_laptop] == [
        "Phone/2.0 (test)",
        "Laptop/1.0 (test)",
    ]
    newest, oldest = seen_from_laptop
    for item, device in [(newest, phone_device), (oldest, laptop_device)]:
        address = ipaddress.ip_address(device["X-Forwarded-For"])
        assert ipaddress.ip_address(item["client_ip"]) == address
        assert item["second_factor"] is False
        started = datetime.fromisoformat(item["started_at"])
        assert started <= datetime.fromisoformat(item["last_active_at"])
        assert datetime.fromisoformat(item["expires_at"]) > datetime.now(UTC)
    assert (newest["current"], oldest["current"]) == (False, True)

    seen_from_phone = await _listed(client, phone)
    assert [item["current"] for item in seen_from_phone] == [True, False]
    assert {item["id"] for item in seen_from_phone} == {newest["id"], oldest["id"]}


async def test_ending_a_session_stops_its_tokens_at_once_and_leaves_the_other(
    client: httpx.AsyncClient,
) -> None:
    laptop, phone = await _logged_in_twice(client, "sessions-end")
    phone_session = next(item for item in await _listed(client, laptop) if not item["current"])

    ended = await client.delete(f"{SESSIONS}/{phone_session['id']}", headers=laptop.headers)
    assert ended.status_code == 204, ended.text

    assert not await _works(client, phone)
    assert not await _refreshes(client, phone)
    assert await _works(client, laptop)
    assert [item["current"] for item in await _listed(client, laptop)] == [True]
    again = await client.delete(f"{SESSIONS}/{phone_session['id']}", headers=laptop.headers)
    api_error(again, 404, "not_found")


async def test_ending_the_callers_own_session_is_a_logout(client: httpx.AsyncClient) -> None:
    laptop, phone = await _logged_in_twice(client, "sessions-own")
    own = next(item for item in await _listed(client, laptop) if item["current"])

    ended = await client.delete(f"{SESSIONS}/{own['id']}", headers=laptop.headers)
    assert ended.status_code == 204, ended.text

    assert not await _works(client, laptop)
    assert not await _refreshes(client, laptop)
    assert [item["current"] for item in await _listed(client, phone)] == [True]


async def test_ending_the_others_keeps_the_callers_session(client: httpx.AsyncClient) -> None:
    laptop, phone = await _logged_in_twice(client, "sessions-others")
    tablet = await logged_in(client, laptop.email, network=_device("tablet"))

    ended = await client.delete(SESSIONS, headers=phone.headers)
    assert ended.status_code == 200, ended.text
    assert ended.json() == {"ended": 2}

    assert await _works(client, phone)
    for gone in (laptop, tablet):
        assert not await _works(client, gone)
        assert not await _refreshes(client, gone)
    remaining = await _listed(client, phone)
    assert [(item["user_agent"], item["current"]) for item in remaining] == [("phone", True)]
    assert (await client.delete(SESSIONS, headers=phone.headers)).json() == {"ended": 0}


async def test_another_accounts_session_and_an_unknown_one_are_not_found(
    client: httpx.AsyncClient,
) -> None:
    owner = await signed_in(client, prefix="sessions-owner", name="Owner")
    stranger = await signed_in(client, prefix="sessions-stranger", name="Stranger")
    (owners_session,) = await _listed(client, owner)

    for session_id in (owners_session["id"], str(uuid.uuid4())):
        answer = await client.delete(f"{SESSIONS}/{session_id}", headers=stranger.headers)
        api_error(answer, 404, "not_found")
    assert await _works(client, owner)
    assert owners_session["id"] not in {item["id"] for item in await _listed(client, stranger)}


async def test_an_api_key_can_neither_list_nor_end_sessions(client: httpx.AsyncClient) -> None:
    account = await signed_in(client, prefix="sessions-key", name="Key Holder")
    created = await client.post(API_KEYS, json={"name": "scripts"}, headers=account.headers)
    assert created.status_code == 201, created.text
    key = {"X-API-Key": created.json()["secret"]}
    (own,) = await _listed(client, account)

    for method, path in [
        ("GET", SESSIONS),
        ("DELETE", f"{SESSIONS}/{own['id']}"),
        ("DELETE", SESSIONS),
    ]:
        api_error(await client.request(method, path, headers=key), 403, "session_required")
    assert await _works(client, account)


def test_the_client_library_lists_ends_the_others_and_logs_itself_out(stack: Stack) -> None:
    """The client says what it is in its User-Agent; ending the session it lists as its own
    forgets its tokens, as `logout` does."""
    email = f"sessions-client-{uuid.uuid4().hex}@example.com"
    password = "client library passphrase"
    with (
        Client(stack.gateway_url, headers=fresh_network()) as client,
        Client(stack.gateway_url, headers=fresh_network()) as elsewhere,
    ):
        client.signup(email, password, "Client Library")
        client.login(email, password)
        elsewhere.login(email, password)

        sessions = client.sessions()
        assert len(sessions) == 2
        assert all(session.user_agent.startswith("objectvision-client") for session in sessions)
        (own,) = [session for session in sessions if session.current]
        assert own.started_at is not None and own.last_active_at.tzinfo is not None

        assert client.end_other_sessions() == 1
        with pytest.raises(ObjectVisionError) as ended_elsewhere:
            elsewhere.me()
        assert ended_elsewhere.value.status == 401
        assert elsewhere.tokens is None

        client.end_session(own)
        assert client.tokens is None


async def test_the_async_client_ends_a_session_by_id(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    laptop, phone = await _logged_in_twice(client, "sessions-async")
    async with AsyncClient(stack.gateway_url, headers=fresh_network()) as async_client:
        await async_client.login(laptop.email, laptop.password)
        listed = await async_client.sessions()
        assert [session.current for session in listed] == [True, False, False]
        await async_client.end_session(listed[1].id)
        assert async_client.tokens is not None
        assert len(await async_client.sessions()) == 2
        with pytest.raises(ObjectVisionError) as unknown:
            await async_client.end_session(listed[1].id)
        assert (unknown.value.status, unknown.value.code) == (404, "not_found")
    assert not await _works(client, phone)


# The command line: `objectvision` as a subprocess, without a terminal, as a script runs it.


def test_the_cli_lists_sessions_ends_the_others_and_then_its_own(
    stack: Stack, tmp_path: Path
) -> None:
    objectvision = CommandLine(stack.gateway_url, tmp_path)
    email = f"sessions-cli-{uuid.uuid4().hex}@example.com"
    password = "command line passphrase"
    with Client(stack.gateway_url, headers=fresh_network()) as elsewhere:
        elsewhere.signup(email, password, "Command Line")
        elsewhere.login(email, password)
        objectvision.run("login", "--email", email, "--password", password)

        table = objectvision.run("sessions", "list").stdout.splitlines()
        assert table[0].split()[:3] == ["ID", "STARTED", "LAST"]
        assert len(table) == 3
        assert table[1].endswith("this one") and not table[2].endswith("this one")
        listed = json.loads(objectvision.run("sessions", "list", "--json").stdout)
        own = next(item for item in listed if item["current"])
        assert table[1].startswith(own["id"][:8])

        ended = objectvision.run("sessions", "end-others")
        assert "Ended 1 other session; this one stays logged in." in ended.stderr
        with pytest.raises(ObjectVisionError):
            elsewhere.me()
        assert len(objectvision.run("sessions", "list").stdout.splitlines()) == 2

    unknown = objectvision.run("sessions", "end", "not-an-id", expect=1)
    assert "`objectvision sessions list` shows them" in unknown.stderr
    logged_out = objectvision.run("sessions", "end", own["id"][:8])
    assert "It was this one: logged out" in logged_out.stderr
    assert "not logged in" in objectvision.run("whoami", expect=1).stderr
