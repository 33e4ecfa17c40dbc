"""Usage and monthly quotas through the public REST API, on the shared stack (ADR 0030).

An account sees what it had detected and what it has left, with any credential; an admin
sets one account's quota; past it, detection answers 429 `quota_exceeded` with Retry-After
until the month ends, and a job that does not fit is refused whole.
"""

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from objectvision_client import AsyncClient, TokenPair
from objectvision_devstack.answers import api_error
from objectvision_devstack.api_users import Account, admin_signed_in, signed_in
from objectvision_devstack.stack import Stack

IMAGE = "/api/v1/detect/image"
BATCH = "/api/v1/detect/batch"
MY_USAGE = "/api/v1/users/me/usage"
BUS = (
    Path(os.environ.get("OBJECTVISION_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
    / "images"
    / "bus.jpg"
)


@pytest.fixture(scope="module")
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as opened:
        yield opened


@pytest.fixture(scope="module")
async def admin(stack: Stack, client: httpx.AsyncClient) -> Account:
    return await admin_signed_in(
        client, stack.database_url, prefix="usage-admin", name="Usage Admin"
    )


async def _detect(client: httpx.AsyncClient, account: Account) -> httpx.Response:
    return await client.post(
        IMAGE, files={"file": ("bus.jpg", BUS.read_bytes(), "image/jpeg")}, headers=account.headers
    )


async def test_an_account_sees_its_images_of_the_day_and_month(client: httpx.AsyncClient) -> None:
    account = await signed_in(client, prefix="usage", name="Usage Reader", read_back=True)
    assert (await _detect(client, account)).status_code == 200

    usage = await client.get(MY_USAGE, params={"days": 7}, headers=account.headers)
    assert usage.status_code == 200, usage.text
    body = usage.json()
    today = datetime.now(UTC).date()
    assert body["user_id"] == account.id
    assert body["days"] == [{"date": today.isoformat(), "calls": 1, "jobs": 0, "images": 1}]
    assert body["month_images"] == 1
    assert body["month_start"] == today.replace(day=1).isoformat()
    assert (body["monthly_quota"], body["remaining"], body["custom_quota"]) == (None, None, False)

    tokens = TokenPair(access_token=account.access_token, refresh_token=account.refresh_token)
    async with AsyncClient(str(client.base_url), tokens=tokens) as sdk:
        assert (await sdk.usage(days=7)).month_images == 1
    api_error(
        await client.get(MY_USAGE, params={"days": 0}, headers=account.headers),
        422,
        "validation_error",
    )


async def test_past_its_quota_an_account_is_refused_until_the_month_ends(
    client: httpx.AsyncClient, admin: Account
) -> None:
    account = await signed_in(client, prefix="usage", name="Quota Holder", read_back=True)
    quota = f"/api/v1/users/{account.id}/quota"
    set_to_one = await client.put(quota, json={"monthly_images": 1}, headers=admin.headers)
    assert set_to_one.status_code == 200, set_to_one.text
    assert (set_to_one.json()["monthly_quota"], set_to_one.json()["remaining"]) == (1, 1)

    assert (await _detect(client, account)).status_code == 200
    refused = await _detect(client, account)
    message = api_error(refused, 429, "quota_exceeded")["message"]
    assert "quota of 1 images a month is used up" in message
    now = datetime.now(UTC)
    next_month = (now.replace(day=1) + timedelta(days=32)).replace(
        day=1, hour=0, minute=0, second=0, microsecond=0
    )
    assert abs(int(refused.headers["retry-after"]) - (next_month - now).total_seconds()) < 60

    batch = await client.post(
        BATCH,
        files=[("files", ("bus.jpg", BUS.read_bytes(), "image/jpeg"))],
        headers=account.headers,
    )
    api_error(batch, 429, "quota_exceeded")
    left = (await client.get(MY_USAGE, headers=account.headers)).json()
    assert (left["month_images"], left["remaining"], left["custom_quota"]) == (1, 0, True)

    cleared = await client.delete(quota, headers=admin.headers)
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["monthly_quota"] is None
    assert (await _detect(client, account)).status_code == 200


async def test_only_an_admin_sets_quotas_or_reads_another_accounts_usage(
    client: httpx.AsyncClient, admin: Account
) -> None:
    account = await signed_in(client, prefix="usage", name="Not Admin", read_back=True)
    own_quota = f"/api/v1/users/{account.id}/quota"
    api_error(
        await client.put(own_quota, json={"monthly_images": 0}, headers=account.headers),
        403,
        "permission_denied",
    )
    others = f"/api/v1/users/{admin.id}/usage"
    api_error(await client.get(others, headers=account.headers), 403, "permission_denied")
    assert (await client.get(f"/api/v1/users/{account.id}/usage", headers=admin.headers)).json()[
        "user_id"
    ] == account.id
    api_error(
        await client.put(own_quota, json={"monthly_images": -1}, headers=admin.headers),
        422,
        "validation_error",
    )


async def test_any_api_key_reads_its_accounts_usage_and_none_sets_a_quota(
    client: httpx.AsyncClient, admin: Account
) -> None:
    created = await client.post(
        "/api/v1/users/me/api-keys",
        json={"name": "meter reader", "scopes": ["detect"]},
        headers=admin.headers,
    )
    assert created.status_code == 201, created.text
    key = {"X-API-Key": created.json()["secret"]}
    assert (await client.get(MY_USAGE, headers=key)).json()["user_id"] == admin.id
    api_error(
        await client.put(
            f"/api/v1/users/{admin.id}/quota", json={"monthly_images": 5}, headers=key
        ),
        403,
        "session_required",
    )
