"""Two-factor authentication with an authenticator app (ADR 0034), end to end on the shared
stack: through the public REST API, the client library and the `objectvision` command.

Done when: an account turns it on with its password and the app's first code and gets ten
recovery codes; from then on the right password alone is 401 `second_factor_required` and a
login takes a code, which works once; a recovery code works once, and new ones end the old
ones; the password and a code turn it off, and an admin can turn it off for an owner who lost
both; an API key can change none of it; the CLI logs in with `--code` and turns it on.

The tests are the authenticator app: they compute codes from the secret the API answered
(`pyotp`, as the server does). A code is never accepted twice, so after the first one a test
uses the code of the next 30-second step, which the server takes for clock drift, or a
recovery code: no test waits for the clock. Every test makes its own accounts.
"""

import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest

from objectvision_client import AsyncClient, Client, ObjectVisionError, TokenPair
from objectvision_devstack.answers import api_error
from objectvision_devstack.api_users import (
    Account,
    admin_signed_in,
    fresh_network,
    signed_in,
)
from objectvision_devstack.command_line import CommandLine
from objectvision_devstack.stack import Stack

# The slow tier (make test-slow): this whole flow through every service repeats, end to end,
# what the services' own tests check one by one, and make test stays under 15 minutes.
pytestmark = pytest.mark.slow

LOGIN = "/api/v1/auth/login"
ME = "/api/v1/users/me"
TWO_FACTOR = "/api/v1/users/me/two-factor"
API_KEYS = "/api/v1/users/me/api-keys"
STEP_SECONDS = 30
RECOVERY_CODE = re.compile(r"[0-9a-z]{5}(-[0-9a-z]{5}){3}")


@pytest.fixture(scope="module")
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as opened:
        yield opened


def _next_code(secret: str) -> str:
    """The app's code for the next 30-second step: the server takes it now (it allows a step
    of clock drift either side), and it comes after any step already used."""
    return pyotp.TOTP(secret).at(time.time() + STEP_SECONDS)


def _wrong_code(secret: str) -> str:
    """Six digits that are the code of no step the server could accept now."""
    totp = pyotp.TOTP(secret)
    now = time.time()
    near = {totp.at(now + steps * STEP_SECONDS) for steps in range(-2, 3)}
    return next(code for code in ("000000", "111111", "222222") if code not in near)


async def _log_in(
    client: httpx.AsyncClient, account: Account, code: str | None = None
) -> httpx.Response:
    """A login as `account`, from a network of its own, with `code` where one is given."""
    body = {"email": account.email, "password": account.password}
    if code is not None:
        body["second_factor_code"] = code
    return await client.post(LOGIN, json=body, headers=fresh_network())


async def _two_factor_enabled(client: httpx.AsyncClient, account: Account) -> bool:
    me = await client.get(ME, headers=account.headers)
    assert me.status_code == 200, me.text
    return bool(me.json()["two_factor_enabled"])


async def _enrolled(client: httpx.AsyncClient, account: Account) -> tuple[str, list[str]]:
    """Turn two-factor authentication on for `account` as its owner would; its secret and
    its recovery codes."""
    started = await client.post(
        TWO_FACTOR, json={"current_password": account.password}, headers=account.headers
    )
    assert started.status_code == 201, started.text
    secret = started.json()["secret"]
    confirmed = await client.post(
        f"{TWO_FACTOR}/confirm", json={"code": pyotp.TOTP(secret).now()}, headers=account.headers
    )
    assert confirmed.status_code == 200, confirmed.text
    codes = confirmed.json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(RECOVERY_CODE.fullmatch(code) for code in codes), codes
    return secret, codes


async def _regenerated(
    client: httpx.AsyncClient, account: Account, code: str, password: str | None = None
) -> httpx.Response:
    return await client.post(
        f"{TWO_FACTOR}/recovery-codes",
        json={"current_password": password or account.password, "code": code},
        headers=account.headers,
    )


async def _disabled(
    client: httpx.AsyncClient, account: Account, code: str, password: str | None = None
) -> httpx.Response:
    return await client.request(
        "DELETE",
        TWO_FACTOR,
        json={"current_password": password or account.password, "code": code},
        headers=account.headers,
    )


async def test_enrolment_takes_the_password_and_the_apps_first_code(
    client: httpx.AsyncClient,
) -> None:
    """A secret changes nothing until its first code: the password alone still logs in, and
    starting again replaces it. A wrong code is refused; the right one turns it on once."""
    account = await signed_in(client, prefix="2fa-enrol", name="Enrolling")
    assert not await _two_factor_enabled(client, account)
    api_error(
        await client.post(
            TWO_FACTOR, json={"current_password": "not my password"}, headers=account.headers
        ),
        403,
        "permission_denied",
    )
    api_error(
        await client.post(
            f"{TWO_FACTOR}/confirm", json={"code": "123456"}, headers=account.headers
        ),
        409,
        "no_two_factor_enrollment",
    )

    first = await client.post(
        TWO_FACTOR, json={"current_password": account.password}, headers=account.headers
    )
    assert first.status_code == 201, first.text
    enrollment = first.json()
    assert re.fullmatch(r"[A-Z2-7]{16,}", enrollment["secret"])
    assert enrollment["otpauth_uri"].startswith("otpauth://totp/")
    assert f"secret={enrollment['secret']}" in enrollment["otpauth_uri"]
    assert enrollment["qr_svg"].startswith("data:image/svg+xml")
    assert (await _log_in(client, account)).status_code == 200
    assert not await _two_factor_enabled(client, account)

    second = await client.post(
        TWO_FACTOR, json={"current_password": account.password}, headers=account.headers
    )
    secret = second.json()["secret"]
    assert secret != enrollment["secret"]
    replaced = pyotp.TOTP(enrollment["secret"]).now()
    if replaced != pyotp.TOTP(secret).now():  # one chance in a million that both agree
        api_error(
            await client.post(
                f"{TWO_FACTOR}/confirm", json={"code": replaced}, headers=account.headers
            ),
            422,
            "invalid_second_factor",
        )
    confirmed = await client.post(
        f"{TWO_FACTOR}/confirm", json={"code": pyotp.TOTP(secret).now()}, headers=account.headers
    )
    assert confirmed.status_code == 200, confirmed.text
    assert len(confirmed.json()["recovery_codes"]) == 10
    assert await _two_factor_enabled(client, account)
    api_error(
        await client.post(
            TWO_FACTOR, json={"current_password": account.password}, headers=account.headers
        ),
        409,
        "two_factor_enabled",
    )


async def test_login_then_needs_a_code_and_a_code_works_once(client: httpx.AsyncClient) -> None:
    account = await signed_in(client, prefix="2fa-login", name="Second Factor")
    secret, _ = await _enrolled(client, account)

    api_error(await _log_in(client, account), 401, "second_factor_required")
    api_error(await _log_in(client, account, _wrong_code(secret)), 401, "invalid_second_factor")
    # The right code with a wrong password says nothing about the code.
    wrong_password = replace(account, password="not my password")
    api_error(await _log_in(client, wrong_password, _next_code(secret)), 401, "unauthenticated")

    code = _next_code(secret)
    logged_in = await _log_in(client, account, code)
    assert logged_in.status_code == 200, logged_in.text
    token = logged_in.json()["access_token"]
    me = await client.get(ME, headers={"Authorization": f"Bearer {token}"})
    assert me.json()["two_factor_enabled"] is True
    # Seen over a shoulder, the code is of no use: its step is used up.
    api_error(await _log_in(client, account, code), 401, "invalid_second_factor")


async def test_a_recovery_code_works_once_and_new_ones_end_the_old_ones(
    client: httpx.AsyncClient,
) -> None:
    account = await signed_in(client, prefix="2fa-recovery", name="Recovering")
    secret, codes = await _enrolled(client, account)

    assert (await _log_in(client, account, codes[0])).status_code == 200
    api_error(await _log_in(client, account, codes[0]), 401, "invalid_second_factor")

    api_error(
        await _regenerated(client, account, codes[1], password="not my password"),
        403,
        "permission_denied",
    )
    api_error(
        await _regenerated(client, account, _wrong_code(secret)), 403, "invalid_second_factor"
    )
    renewed = await _regenerated(client, account, codes[1])
    assert renewed.status_code == 200, renewed.text
    new_codes = renewed.json()["recovery_codes"]
    assert len(new_codes) == 10 and not set(new_codes) & set(codes)

    api_error(await _log_in(client, account, codes[2]), 401, "invalid_second_factor")
    assert (await _log_in(client, account, new_codes[0])).status_code == 200


async def test_the_password_and_a_code_turn_it_off(client: httpx.AsyncClient) -> None:
    account = await signed_in(client, prefix="2fa-off", name="Turning Off")
    secret, codes = await _enrolled(client, account)

    api_error(
        await _disabled(client, account, codes[0], password="not my password"),
        403,
        "permission_denied",
    )
    api_error(await _disabled(client, account, _wrong_code(secret)), 403, "invalid_second_factor")
    assert await _two_factor_enabled(client, account)

    disabled = await _disabled(client, account, _next_code(secret))
    assert disabled.status_code == 204, disabled.text
    assert not await _two_factor_enabled(client, account)
    assert (await _log_in(client, account)).status_code == 200
    api_error(await _disabled(client, account, codes[0]), 409, "two_factor_not_enabled")
    api_error(await _regenerated(client, account, codes[0]), 409, "two_factor_not_enabled")


async def test_an_admin_turns_it_off_for_an_owner_who_lost_both(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    """With the admin's own password and no code; it is refused for an account that has it
    off. To anyone else the account is not there, as `GET /users/{id}` has it."""
    admin = await admin_signed_in(client, stack.database_url, prefix="2fa-admin", name="Admin")
    owner = await signed_in(client, prefix="2fa-lost", name="Lost Phone", read_back=True)
    stranger = await signed_in(client, prefix="2fa-stranger", name="Stranger")
    await _enrolled(client, owner)
    path = f"/api/v1/users/{owner.id}/two-factor"

    api_error(
        await client.request(
            "DELETE", path, json={"current_password": stranger.password}, headers=stranger.headers
        ),
        404,
        "not_found",
    )
    admin_tokens = TokenPair(access_token=admin.access_token, refresh_token=admin.refresh_token)
    with Client(stack.gateway_url, tokens=admin_tokens, headers=fresh_network()) as as_admin:
        with pytest.raises(ObjectVisionError) as wrong_password:
            as_admin.disable_two_factor_for(str(owner.id), "not my password")
        assert wrong_password.value.status == 403
        assert await _two_factor_enabled(client, owner)

        as_admin.disable_two_factor_for(str(owner.id), admin.password)

        assert not await _two_factor_enabled(client, owner)
        assert (await _log_in(client, owner)).status_code == 200
        with pytest.raises(ObjectVisionError) as already_off:
            as_admin.disable_two_factor_for(str(owner.id), admin.password)
        assert (already_off.value.status, already_off.value.code) == (409, "two_factor_not_enabled")


async def test_an_api_key_cannot_change_two_factor(client: httpx.AsyncClient) -> None:
    account = await signed_in(client, prefix="2fa-key", name="Key Holder", read_back=True)
    created = await client.post(API_KEYS, json={"name": "scripts"}, headers=account.headers)
    assert created.status_code == 201, created.text
    key = {"X-API-Key": created.json()["secret"]}
    password_and_code: dict[str, Any] = {"current_password": account.password, "code": "123456"}
    for method, path, body in [
        ("POST", TWO_FACTOR, {"current_password": account.password}),
        ("POST", f"{TWO_FACTOR}/confirm", {"code": "123456"}),
        ("POST", f"{TWO_FACTOR}/recovery-codes", password_and_code),
        ("DELETE", TWO_FACTOR, password_and_code),
        ("DELETE", f"/api/v1/users/{account.id}/two-factor", {"current_password": "x" * 8}),
    ]:
        answer = await client.request(method, path, json=body, headers=key)
        api_error(answer, 403, "session_required")
    assert not await _two_factor_enabled(client, account)


def test_the_client_library_enrols_logs_in_with_a_code_and_turns_it_off(stack: Stack) -> None:
    email = f"2fa-client-{uuid.uuid4().hex}@example.com"
    password = "client library passphrase"
    with Client(stack.gateway_url, headers=fresh_network()) as client:
        client.signup(email, password, "Client Library")
        client.login(email, password)
        enrollment = client.start_two_factor(password)
        assert enrollment.qr_svg.startswith("data:image/svg+xml")
        codes = client.confirm_two_factor(pyotp.TOTP(enrollment.secret).now())
        assert len(codes) == 10 and client.me().two_factor_enabled

        client.logout()
        with pytest.raises(ObjectVisionError) as asked:
            client.login(email, password)
        assert (asked.value.status, asked.value.code) == (401, "second_factor_required")
        assert client.tokens is None
        client.login(email, password, _next_code(enrollment.secret))
        new_codes = client.regenerate_recovery_codes(password, codes[0])
        assert len(new_codes) == 10 and codes[1] not in new_codes

        client.disable_two_factor(password, new_codes[0])
        assert client.me().two_factor_enabled is False


async def test_the_async_client_logs_in_with_a_recovery_code(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    account = await signed_in(client, prefix="2fa-async", name="Async")
    _, codes = await _enrolled(client, account)
    async with AsyncClient(stack.gateway_url, headers=fresh_network()) as async_client:
        with pytest.raises(ObjectVisionError) as asked:
            await async_client.login(account.email, account.password)
        assert asked.value.code == "second_factor_required"
        await async_client.login(account.email, account.password, second_factor_code=codes[0])
        assert (await async_client.me()).two_factor_enabled is True


# The command line: `objectvision` as a subprocess, without a terminal, as a script runs it.


def test_the_cli_turns_two_factor_on_in_two_steps_and_logs_in_with_code(
    stack: Stack, tmp_path: Path
) -> None:
    """Without a terminal `enable` prints the secret and stops; `enable --code` turns it on
    and prints the recovery codes. `login` then needs --code, and says so."""
    objectvision = CommandLine(stack.gateway_url, tmp_path)
    email = f"2fa-cli-{uuid.uuid4().hex}@example.com"
    password = "command line passphrase"
    with Client(stack.gateway_url, headers=fresh_network()) as client:
        client.signup(email, password, "Command Line")
    credentials = ("--email", email, "--password", password)
    objectvision.run("login", *credentials)

    started = objectvision.run("account", "two-factor", "enable", "--password", password)
    secret_line, uri_line = started.stdout.splitlines()
    secret = secret_line.removeprefix("Secret: ")
    assert uri_line.startswith("URI: otpauth://totp/") and f"secret={secret}" in uri_line
    assert "enable --code CODE" in started.stderr
    assert "two-factor on" not in objectvision.run("whoami").stdout

    confirmed = objectvision.run(
        "account", "two-factor", "enable", "--code", pyotp.TOTP(secret).now()
    )
    codes = confirmed.stdout.split()
    assert len(codes) == 10 and all(RECOVERY_CODE.fullmatch(code) for code in codes)
    assert "Store these recovery codes now" in confirmed.stderr
    assert ", two-factor on)" in objectvision.run("whoami").stdout

    objectvision.run("logout")
    refused = objectvision.run("login", *credentials, expect=2)
    assert "this account has two-factor authentication on: pass --code" in refused.stderr
    objectvision.run("whoami", expect=1)
    objectvision.run("login", *credentials, "--code", _next_code(secret))
    assert email in objectvision.run("whoami").stdout

    renewed = objectvision.run(
        "account",
        "two-factor",
        "recovery-codes",
        "--password",
        password,
        "--code",
        codes[0],
    )
    new_codes = renewed.stdout.split()
    assert len(new_codes) == 10 and not set(new_codes) & set(codes)
    objectvision.run(
        "account",
        "two-factor",
        "disable",
        "--password",
        password,
        "--code",
        new_codes[0],
    )
    assert "two-factor on" not in objectvision.run("whoami").stdout
