"""Rotating a webhook's signing secret end to end (ADR 0036): through the REST API and the
client, a rotated webhook's next delivery reaches a real receiver signed with the new and the
replaced secret, and the client's `verify` accepts it with either, and with neither a wrong
secret nor a stale timestamp.

Uses `stack`, `gateway_client` and `hook_receiver` (tests/conftest.py)."""

import asyncio
import time
from pathlib import Path

import httpx

from objectvision_client import AsyncClient, TokenPair
from objectvision_client.webhooks import verify
from objectvision_devstack.api_users import signed_in
from objectvision_devstack.stack import Stack

IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"
ARRIVES_WITHIN_SECONDS = 90.0


async def test_a_rotated_webhooks_delivery_verifies_with_the_new_and_the_old_secret(
    gateway_client: httpx.AsyncClient, stack: Stack, hook_receiver
) -> None:
    account = await signed_in(gateway_client, prefix="rotator", name="Rita")
    created = await gateway_client.post(
        "/api/v1/webhooks",
        json={"url": hook_receiver.url, "events": ["job.completed"]},
        headers=account.headers,
    )
    assert created.status_code == 201, created.text
    old_secret = created.json()["secret"]

    tokens = TokenPair(access_token=account.access_token, refresh_token=account.refresh_token)
    async with AsyncClient(stack.gateway_url, tokens=tokens) as client:
        rotated = await client.rotate_webhook_secret(
            created.json()["id"], keep_previous_seconds=3600
        )
        assert rotated.secret != old_secret and rotated.previous_secret_expires_at is not None
        [listed] = await client.list_webhooks()
        assert listed.previous_secret_expires_at == rotated.previous_secret_expires_at
        image = sorted(IMAGES.glob("coco8/images/*/*.jpg"))[0]
        job = await client.submit_batch([image])

    deadline = time.monotonic() + ARRIVES_WITHIN_SECONDS
    while not hook_receiver.received():
        assert time.monotonic() < deadline, f"no delivery for job {job.job_id}"
        await asyncio.sleep(0.25)
    [post] = hook_receiver.received()
    timestamp = post.headers["x-objectvision-timestamp"]
    signature = post.headers["x-objectvision-signature"]

    assert signature.count("v1=") == 2
    for secret in (rotated.secret, old_secret):
        assert verify(secret, timestamp=timestamp, signature=signature, body=post.body)
    assert not verify("whsec_wrong", timestamp=timestamp, signature=signature, body=post.body)
    assert not verify(
        rotated.secret,
        timestamp=timestamp,
        signature=signature,
        body=post.body,
        now=int(timestamp) + 3600,
    )
