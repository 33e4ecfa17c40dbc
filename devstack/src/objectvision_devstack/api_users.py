"""Users of a running stack, made the way a person makes one: through the public REST API.

The end-to-end tests each sign up users of their own (fresh addresses, so that histories,
mail and limits hold only what the test made) and act as them with the tokens a login
answers. The gateway limits sign-ups and logins per client network; a stack started with
TRUST_PROXY_HEADERS takes the client's address from X-Forwarded-For, so each request here
comes from a fresh address of the IPv6 documentation range (RFC 3849) and no test runs into
a limit that others used up.
"""

import ipaddress
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace

import httpx
from sqlalchemy import create_engine, text

from objectvision_common.db import sync_url

SIGNUP = "/api/v1/auth/signup"
LOGIN = "/api/v1/auth/login"
ME = "/api/v1/users/me"
# The password of every account made here (its tests log in with it too): long enough for the
# policy, and no secret, as the stacks it is used on are throwaway.
PASSWORD = "correct horse battery"  # noqa: S105


def network_address() -> str:
    """A fresh client address in 2001:db8::/32, a network of its own for the per-network
    limits: the gateway counts an IPv6 client by its /64, so the random part is in there."""
    # Canonical spelling (no leading zeros in a group), as the services write it back.
    return str(ipaddress.IPv6Address(f"2001:db8:{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}::1"))


def fresh_network() -> dict[str, str]:
    """The headers of a request from a fresh network (`network_address`)."""
    return {"X-Forwarded-For": network_address()}


@dataclass(frozen=True)
class Account:
    """A signed-up, logged-in user: what a test needs to act as it and to check on it."""

    email: str
    password: str
    # What authenticates a request as the account: its access token, or whatever a test
    # puts here instead (an API key: `dataclasses.replace(account, headers=...)`).
    headers: dict[str, str]
    access_token: str
    refresh_token: str
    # Sign-up answers alike whether or not the address was taken, so it names no account;
    # the id is known only where it was read back (`read_back=True`).
    id: str | None = None


async def _post(
    client: httpx.AsyncClient, path: str, body: dict[str, str], network: Mapping[str, str] | None
) -> httpx.Response:
    """POST `body` from `network` (the X-Forwarded-For headers of one, where a test needs its
    requests to come from the same place), else from a fresh network."""
    return await client.post(
        path, json=body, headers=dict(network) if network is not None else fresh_network()
    )


async def sign_up(
    client: httpx.AsyncClient,
    email: str,
    name: str,
    *,
    password: str = PASSWORD,
    network: Mapping[str, str] | None = None,
) -> httpx.Response:
    """Ask for an account; the answer is the caller's to check (202 even for a taken
    address)."""
    return await _post(
        client, SIGNUP, {"email": email, "password": password, "name": name}, network
    )


async def log_in(
    client: httpx.AsyncClient,
    email: str,
    password: str = PASSWORD,
    *,
    network: Mapping[str, str] | None = None,
) -> httpx.Response:
    """Log in; the answer is the caller's to check."""
    return await _post(client, LOGIN, {"email": email, "password": password}, network)


async def logged_in(
    client: httpx.AsyncClient,
    email: str,
    *,
    password: str = PASSWORD,
    network: Mapping[str, str] | None = None,
    read_back: bool = False,
) -> Account:
    """The account of `email`, logged in; with `read_back`, its id (and address, as the
    account has it) from `/users/me`."""
    tokens = await log_in(client, email, password, network=network)
    assert tokens.status_code == 200, tokens.text
    pair = tokens.json()
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    account = Account(
        email=email,
        password=password,
        headers=headers,
        access_token=pair["access_token"],
        refresh_token=pair["refresh_token"],
    )
    if not read_back:
        return account
    me = await client.get(ME, headers=headers)
    assert me.status_code == 200, me.text
    return replace(account, id=me.json()["id"], email=me.json()["email"])


async def signed_in(
    client: httpx.AsyncClient,
    *,
    prefix: str,
    name: str,
    password: str = PASSWORD,
    network: Mapping[str, str] | None = None,
    read_back: bool = False,
) -> Account:
    """A new account, `<prefix>-<uuid>@example.com` (the prefix tells whose test made it),
    signed up and logged in. Both requests come from `network` where one is given, else
    each from a fresh one."""
    email = f"{prefix}-{uuid.uuid4().hex}@example.com"
    signed_up = await sign_up(client, email, name, password=password, network=network)
    assert signed_up.status_code == 202, signed_up.text
    return await logged_in(client, email, password=password, network=network, read_back=read_back)


async def admin_signed_in(
    client: httpx.AsyncClient, database_url: str, *, prefix: str, name: str
) -> Account:
    """A new account made admin the way an operator makes the first one where no address of
    ADMIN_EMAILS is verified yet: in the auth database, then logged in again so that its
    access token says so. Read back, so its id is known."""
    account = await signed_in(client, prefix=prefix, name=name, read_back=True)
    engine = create_engine(sync_url(database_url))
    try:
        with engine.begin() as connection:
            connection.execute(
                text("UPDATE auth.users SET is_admin = true WHERE id = :id"), {"id": account.id}
            )
    finally:
        engine.dispose()
    return await logged_in(client, account.email, read_back=True)
