"""Rotating a webhook's signing secret (ADR 0036): the new secret is shown once; for as long
as asked, deliveries carry a signature with the new secret and one with the replaced secret,
so a receiver can move to the new one without missing a delivery; then only the new one.
The signatures are checked here as a receiver checks them, on real deliveries to a real HTTP
server."""

import hashlib
import hmac
import uuid

import grpc
import pytest

from notification_service.webhooks.models import webhooks as notification_webhooks
from objectvision.v1 import notification_pb2

from .test_webhooks import create

HOUR = 3600


def signed_with(request, secret: str) -> str:
    """The `v1=` value `secret` gives this request's timestamp and raw body."""
    timestamp = request.headers["X-ObjectVision-Timestamp"]
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


async def rotate(service, as_user, user_id: str, webhook_id: str, keep_previous_seconds: int):
    return await service.stub.RotateWebhookSecret(
        notification_pb2.RotateWebhookSecretRequest(
            webhook_id=webhook_id, keep_previous_seconds=keep_previous_seconds
        ),
        metadata=as_user(user_id),
    )


async def delivered(producer, events, receiver, wait, user_id: str, path: str, count: int):
    await producer.publish(events.finished(user_id, str(uuid.uuid4()), counts={"cat": 1}))
    requests = await wait(lambda: len(receiver.received(path)) >= count and receiver.received(path))
    return requests[count - 1]


async def test_while_the_previous_secret_is_kept_deliveries_carry_both_signatures(
    service, producer, receiver, new_user, as_user, events, wait
) -> None:
    user_id, _ = new_user()
    path = f"/rotating/{user_id}"
    created = await create(service, as_user, user_id, receiver.url(path))

    rotated = await rotate(service, as_user, user_id, created.webhook.id, HOUR)

    assert rotated.secret.startswith("whsec_") and rotated.secret != created.secret
    assert rotated.webhook.id == created.webhook.id
    assert rotated.webhook.HasField("previous_secret_expires_at")
    request = await delivered(producer, events, receiver, wait, user_id, path, 1)
    assert request.headers["X-ObjectVision-Signature"] == ",".join(
        [signed_with(request, rotated.secret), signed_with(request, created.secret)]
    )

    again = await rotate(service, as_user, user_id, created.webhook.id, 0)

    assert not again.webhook.HasField("previous_secret_expires_at")
    request = await delivered(producer, events, receiver, wait, user_id, path, 2)
    assert request.headers["X-ObjectVision-Signature"] == signed_with(request, again.secret)
    [listed] = (
        await service.stub.ListWebhooks(
            notification_pb2.ListWebhooksRequest(), metadata=as_user(user_id)
        )
    ).webhooks
    assert not listed.HasField("previous_secret_expires_at")


async def test_a_previous_secret_past_its_time_signs_no_more(
    service, producer, receiver, new_user, as_user, events, wait
) -> None:
    user_id, _ = new_user()
    path = f"/expired-previous/{user_id}"
    created = await create(service, as_user, user_id, receiver.url(path))
    rotated = await rotate(service, as_user, user_id, created.webhook.id, HOUR)
    async with service.runtime.sessions() as session, session.begin():
        await session.execute(
            notification_webhooks.update()
            .where(notification_webhooks.c.id == uuid.UUID(created.webhook.id))
            .values(previous_secret_expires_at=notification_webhooks.c.created_at)
        )

    request = await delivered(producer, events, receiver, wait, user_id, path, 1)

    assert request.headers["X-ObjectVision-Signature"] == signed_with(request, rotated.secret)


@pytest.mark.parametrize("keep", [-1, 7 * 24 * HOUR + 1])
async def test_how_long_the_previous_secret_is_kept_is_bounded(
    service, receiver, new_user, as_user, keep
) -> None:
    user_id, _ = new_user()
    created = await create(service, as_user, user_id, receiver.url(f"/bounded/{user_id}"))

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await rotate(service, as_user, user_id, created.webhook.id, keep)

    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_another_accounts_webhook_is_not_found(service, receiver, new_user, as_user) -> None:
    owner, _ = new_user()
    stranger, _ = new_user()
    created = await create(service, as_user, owner, receiver.url(f"/theirs/{owner}"))

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await rotate(service, as_user, stranger, created.webhook.id, HOUR)

    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
