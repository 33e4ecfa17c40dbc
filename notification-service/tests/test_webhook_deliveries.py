"""A webhook's owner sees its deliveries and has them sent again (ListWebhookDeliveries,
RedeliverWebhookDelivery), on the running service: real PostgreSQL, the real dispatcher and
a real HTTP receiver that fails until the test lets it recover."""

import hashlib
import hmac
import json
import uuid

import grpc
import pytest

from notification_service.deliveries.service import redeliver_webhook_delivery
from notification_service.webhooks.service import owned_webhook
from objectvision.v1 import common_pb2, notification_pb2
from objectvision_common.errors import FailedPrecondition


async def create_webhook(service, as_user, user_id: str, url: str):
    return await service.stub.CreateWebhook(
        notification_pb2.CreateWebhookRequest(url=url, events=["job.completed"]),
        metadata=as_user(user_id),
    )


async def deliveries_of(
    service, as_user, user_id: str, webhook_id: str, *, state: str = "", limit: int = 0, offset=0
) -> notification_pb2.ListWebhookDeliveriesResponse:
    return await service.stub.ListWebhookDeliveries(
        notification_pb2.ListWebhookDeliveriesRequest(
            webhook_id=webhook_id, state=state, page=common_pb2.Page(limit=limit, offset=offset)
        ),
        metadata=as_user(user_id),
    )


async def redeliver(service, as_user, user_id: str, webhook_id: str, delivery_id: str):
    return await service.stub.RedeliverWebhookDelivery(
        notification_pb2.RedeliverWebhookDeliveryRequest(
            webhook_id=webhook_id, delivery_id=delivery_id
        ),
        metadata=as_user(user_id),
    )


def signed_body(request, secret: str) -> dict:
    """What a receiver does: check the signature over timestamp and raw body, then read it."""
    timestamp = request.headers["X-ObjectVision-Timestamp"]
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256)
    assert hmac.compare_digest(
        request.headers["X-ObjectVision-Signature"], f"v1={expected.hexdigest()}"
    )
    return json.loads(request.body)


async def delivered_once(service, producer, receiver, as_user, events, wait, user_id: str):
    """A webhook of `user_id` whose receiver answers 200, and one job.completed delivered to
    it: (the created webhook, the delivery)."""
    created = await create_webhook(service, as_user, user_id, receiver.url(f"/ok/{user_id}"))
    await producer.publish(events.finished(user_id, str(uuid.uuid4())))

    async def delivered():
        listed = await deliveries_of(service, as_user, user_id, created.webhook.id)
        return [d for d in listed.deliveries if d.state == "delivered"]

    [delivery] = await wait(delivered)
    return created, delivery


async def test_a_dead_lettered_delivery_shows_why_and_is_sent_again_once_the_receiver_recovers(
    service, producer, receiver, new_user, as_user, events, wait
) -> None:
    user_id, _ = new_user()
    path = f"/recovering/{user_id}"
    receiver.script(path, [], then=503)
    created = await create_webhook(service, as_user, user_id, receiver.url(path))
    hook_id = created.webhook.id
    event_id = await producer.publish(events.finished(user_id, str(uuid.uuid4())))

    async def dead():
        return (await deliveries_of(service, as_user, user_id, hook_id, state="dead")).deliveries

    [original] = await wait(dead)
    assert (original.event_id, original.event_type, original.webhook_id) == (
        event_id,
        "job.completed",
        hook_id,
    )
    # DELIVERY_MAX_ATTEMPTS=3 in these tests.
    assert original.attempts == 3 and original.last_status_code == 503
    assert original.last_error == "receiver answered 503"
    assert original.HasField("last_attempt_at") and original.HasField("created_at")
    assert not original.HasField("next_attempt_at") and not original.HasField("delivered_at")
    assert original.redelivery_of == ""
    failed = receiver.received(path)
    assert len(failed) == 3

    receiver.script(path, [], then=200)
    queued = await redeliver(service, as_user, user_id, hook_id, original.id)

    assert queued.id != original.id and queued.redelivery_of == original.id
    assert (queued.event_id, queued.event_type, queued.webhook_id) == (
        event_id,
        "job.completed",
        hook_id,
    )
    assert (queued.state, queued.attempts) == ("pending", 0)
    assert queued.HasField("next_attempt_at") and not queued.HasField("last_attempt_at")
    assert not queued.HasField("last_status_code")

    [resent] = await wait(lambda: receiver.received(path)[3:])
    # The same event, byte for byte, so the receiver can deduplicate; freshly signed.
    assert resent.body == failed[0].body
    assert signed_body(resent, created.secret)["id"] == event_id
    assert resent.headers["X-ObjectVision-Delivery"] == queued.id
    assert int(resent.headers["X-ObjectVision-Timestamp"]) >= int(
        failed[-1].headers["X-ObjectVision-Timestamp"]
    )

    async def resent_and_recorded():
        listed = await deliveries_of(service, as_user, user_id, hook_id)
        return listed if listed.deliveries[0].state == "delivered" else None

    listed = await wait(resent_and_recorded)
    assert listed.total == 2
    again, first = listed.deliveries
    assert (again.id, again.state, again.attempts) == (queued.id, "delivered", 1)
    assert again.last_status_code == 200 and again.last_error == ""
    assert again.HasField("delivered_at") and not again.HasField("next_attempt_at")
    # The original keeps its own record.
    assert (first.id, first.state, first.attempts) == (original.id, "dead", 3)
    assert first.last_status_code == 503
    assert len(receiver.received(path)) == 4

    only_dead = await deliveries_of(service, as_user, user_id, hook_id, state="dead")
    assert [d.id for d in only_dead.deliveries] == [original.id] and only_dead.total == 1


async def test_a_delivered_delivery_is_sent_again_when_its_owner_asks(
    service, producer, receiver, new_user, as_user, events, wait
) -> None:
    user_id, _ = new_user()
    created, delivery = await delivered_once(
        service, producer, receiver, as_user, events, wait, user_id
    )

    queued = await redeliver(service, as_user, user_id, created.webhook.id, delivery.id)

    assert queued.redelivery_of == delivery.id and queued.event_id == delivery.event_id
    path = f"/ok/{user_id}"
    first, again = await wait(lambda: len(receiver.received(path)) == 2 and receiver.received(path))
    assert again.body == first.body
    assert again.headers["X-ObjectVision-Delivery"] == queued.id
    assert signed_body(again, created.secret)["id"] == delivery.event_id


async def test_a_second_redelivery_asked_while_one_is_pending_is_that_one(
    service, producer, receiver, new_user, as_user, events, wait
) -> None:
    """Two clicks on Redeliver queue the event once; the pending redelivery itself cannot be
    redelivered (it is being sent). In one transaction, so the dispatcher cannot send the
    first before the second is asked for; rolled back at the end."""
    user_id, _ = new_user()
    created, delivery = await delivered_once(
        service, producer, receiver, as_user, events, wait, user_id
    )
    hook_id = uuid.UUID(created.webhook.id)

    async with service.runtime.sessions() as session, session.begin():
        hook = await owned_webhook(session=session, user_id=user_id, webhook_id=str(hook_id))
        first = await redeliver_webhook_delivery(
            session=session, webhook=hook, delivery_id=delivery.id
        )
        second = await redeliver_webhook_delivery(
            session=session, webhook=hook, delivery_id=delivery.id
        )
        assert second == first
        assert (first.state, str(first.redelivery_of)) == ("pending", delivery.id)
        with pytest.raises(FailedPrecondition, match="still pending"):
            await redeliver_webhook_delivery(
                session=session, webhook=hook, delivery_id=str(first.id)
            )
        await session.rollback()

    listed = await deliveries_of(service, as_user, user_id, created.webhook.id)
    assert [d.id for d in listed.deliveries] == [delivery.id]


async def test_deliveries_are_the_webhook_owners_alone_and_bad_ids_are_not_found(
    service, producer, receiver, new_user, as_user, events, wait
) -> None:
    owner, _ = new_user()
    stranger, _ = new_user()
    created, delivery = await delivered_once(
        service, producer, receiver, as_user, events, wait, owner
    )
    hook_id = created.webhook.id
    other_hook = await create_webhook(service, as_user, owner, receiver.url(f"/other/{owner}"))

    async def refused(call, code: grpc.StatusCode) -> str:
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await call
        assert failure.value.code() == code, failure.value.details()
        return failure.value.details() or ""

    not_found = grpc.StatusCode.NOT_FOUND
    await refused(deliveries_of(service, as_user, stranger, hook_id), not_found)
    await refused(redeliver(service, as_user, stranger, hook_id, delivery.id), not_found)
    await refused(deliveries_of(service, as_user, owner, "not-a-uuid"), not_found)
    await refused(redeliver(service, as_user, owner, hook_id, "not-a-uuid"), not_found)
    await refused(redeliver(service, as_user, owner, hook_id, str(uuid.uuid4())), not_found)
    # A delivery is reached through its own webhook only.
    await refused(redeliver(service, as_user, owner, other_hook.webhook.id, delivery.id), not_found)

    invalid = grpc.StatusCode.INVALID_ARGUMENT
    message = await refused(deliveries_of(service, as_user, owner, hook_id, state="lost"), invalid)
    assert "pending" in message and "dead" in message
    await refused(deliveries_of(service, as_user, owner, hook_id, limit=-1), invalid)

    # Nothing was queued by any of it.
    assert [d.id for d in (await deliveries_of(service, as_user, owner, hook_id)).deliveries] == [
        delivery.id
    ]

    await service.stub.DeleteWebhook(
        notification_pb2.DeleteWebhookRequest(webhook_id=hook_id), metadata=as_user(owner)
    )
    await refused(deliveries_of(service, as_user, owner, hook_id), not_found)
    await refused(redeliver(service, as_user, owner, hook_id, delivery.id), not_found)


async def test_deliveries_come_newest_first_a_page_at_a_time(
    service, producer, receiver, new_user, as_user, events, wait
) -> None:
    user_id, _ = new_user()
    created = await create_webhook(service, as_user, user_id, receiver.url(f"/paged/{user_id}"))
    hook_id = created.webhook.id
    published = {await producer.publish(events.finished(user_id, str(uuid.uuid4()))) for _ in "abc"}

    async def all_delivered():
        listed = await deliveries_of(service, as_user, user_id, hook_id, state="delivered")
        return listed if listed.total == 3 else None

    await wait(all_delivered)
    first = await deliveries_of(service, as_user, user_id, hook_id, limit=2)
    rest = await deliveries_of(service, as_user, user_id, hook_id, limit=2, offset=2)

    assert (first.total, first.limit, first.offset, len(first.deliveries)) == (3, 2, 0, 2)
    assert (rest.total, rest.limit, rest.offset, len(rest.deliveries)) == (3, 2, 2, 1)
    page = [*first.deliveries, *rest.deliveries]
    assert {d.event_id for d in page} == published
    created_at = [d.created_at.ToDatetime() for d in page]
    assert created_at == sorted(created_at, reverse=True)
    # No limit is the default page; a larger one is cut to the most a page holds.
    assert (await deliveries_of(service, as_user, user_id, hook_id)).limit == 20
    assert (await deliveries_of(service, as_user, user_id, hook_id, limit=5000)).limit == 100
    pending = await deliveries_of(service, as_user, user_id, hook_id, state="pending")
    assert (pending.total, list(pending.deliveries)) == (0, [])
