"""Retention periods per account through the public REST API, on the shared stack (ADR 0031).

An account reads how long its finished jobs and detections outside jobs are kept, with any
credential; an admin sets one account's period, or clears it back to the deployment's
RETENTION_DAYS (0, off, on the test stack); nobody else may.
"""

from collections.abc import AsyncIterator

import httpx
import pytest

from objectvision_client import AsyncClient, TokenPair
from objectvision_devstack.answers import api_error
from objectvision_devstack.api_users import Account, admin_signed_in, signed_in
from objectvision_devstack.stack import Stack

MY_RETENTION = "/api/v1/users/me/retention"


@pytest.fixture(scope="module")
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as opened:
        yield opened


@pytest.fixture(scope="module")
async def admin(stack: Stack, client: httpx.AsyncClient) -> Account:
    return await admin_signed_in(
        client, stack.database_url, prefix="retention-admin", name="Retention Admin"
    )


async def test_an_admin_sets_an_accounts_period_and_clears_it(
    client: httpx.AsyncClient, admin: Account
) -> None:
    account = await signed_in(client, prefix="retention", name="Retention Holder", read_back=True)
    own = await client.get(MY_RETENTION, headers=account.headers)
    assert own.status_code == 200, own.text
    assert own.json() == {"user_id": account.id, "days": 0, "custom": False, "default_days": 0}

    period = f"/api/v1/users/{account.id}/retention"
    set_to_30 = await client.put(period, json={"days": 30}, headers=admin.headers)
    assert set_to_30.status_code == 200, set_to_30.text
    assert set_to_30.json() == {
        "user_id": account.id,
        "days": 30,
        "custom": True,
        "default_days": 0,
    }
    seen = (await client.get(MY_RETENTION, headers=account.headers)).json()
    assert (seen["days"], seen["custom"]) == (30, True)
    assert (await client.get(period, headers=admin.headers)).json() == seen

    tokens = TokenPair(access_token=account.access_token, refresh_token=account.refresh_token)
    async with AsyncClient(str(client.base_url), tokens=tokens) as sdk:
        mine = await sdk.retention()
    assert (mine.user_id, mine.days, mine.custom) == (account.id, 30, True)
    assert mine.default_days == 0

    cleared = await client.delete(period, headers=admin.headers)
    assert cleared.status_code == 200, cleared.text
    assert (cleared.json()["days"], cleared.json()["custom"]) == (0, False)
    assert (await client.get(MY_RETENTION, headers=account.headers)).json()["custom"] is False


async def test_only_an_admin_sets_periods_or_reads_another_accounts(
    client: httpx.AsyncClient, admin: Account
) -> None:
    account = await signed_in(client, prefix="retention", name="Not Admin", read_back=True)
    own_period = f"/api/v1/users/{account.id}/retention"
    api_error(
        await client.put(own_period, json={"days": 3650}, headers=account.headers),
        403,
        "permission_denied",
    )
    api_error(await client.delete(own_period, headers=account.headers), 403, "permission_denied")
    api_error(
        await client.get(f"/api/v1/users/{admin.id}/retention", headers=account.headers),
        403,
        "permission_denied",
    )
    for days in (-1, 36_501):
        api_error(
            await client.put(own_period, json={"days": days}, headers=admin.headers),
            422,
            "validation_error",
        )
    assert (await client.get(own_period, headers=admin.headers)).json()["custom"] is False


async def test_an_api_key_reads_its_accounts_period_and_none_sets_one(
    client: httpx.AsyncClient, admin: Account
) -> None:
    created = await client.post(
        "/api/v1/users/me/api-keys",
        json={"name": "retention reader", "scopes": ["detect"]},
        headers=admin.headers,
    )
    assert created.status_code == 201, created.text
    key = {"X-API-Key": created.json()["secret"]}
    own = await client.get(MY_RETENTION, headers=key)
    assert own.status_code == 200, own.text
    assert own.json()["user_id"] == admin.id
    api_error(
        await client.put(f"/api/v1/users/{admin.id}/retention", json={"days": 5}, headers=key),
        403,
        "session_required",
    )
