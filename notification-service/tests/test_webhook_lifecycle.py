"""A webhook's life after it is registered (ADR 0046): its owner changes it, pauses it and
tries it with a ping; the service disables one whose deliveries keep failing and tells its
owner; nothing an event meant to send is lost meanwhile. On the running service: real
PostgreSQL, Redis, dispatcher, SMTP server and HTTP receiver.

These tests run with WEBHOOK_DISABLE_AFTER_FAILURES=3 and WEBHOOK_DISABLE_AFTER_SECONDS=0
(conftest), and DELIVERY_MAX_ATTEMPTS=3.
"""

import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import field_mask_pb2
from prometheus_client import REGISTRY
from sqlalchemy import create_engine, text

from notification_service.server import MIGRATIONS_DIR
from notification_service.webhooks import health
from notification_service.webhooks.service import owned_webhook
from objectvision.v1 import common_pb2, notification_pb2
from objectvision_common.db import sync_url, upgrade_to, upgrade_to_head
from objectvision_devstack.databases import fresh_database


async def create(service, as_user, user_id: str, url: str, events=("job.completed",)):
    return await service.stub.CreateWebhook(
        notification_pb2.CreateWebhookRequest(url=url, events=list(events)),
        metadata=as_user(user_id),
    )


async def update(service, as_user, user_id: str, webhook_id: str, **fields):
    """UpdateWebhook with exactly `fields` in its update mask."""
    return await service.stub.UpdateWebhook(
        notification_pb2.UpdateWebhookRequest(
            webhook_id=webhook_id,
            update_mask=field_mask_pb2.FieldMask(paths=sorted(fields)),
            **fields,
        ),
        metadata=as_user(user_id),
    )


async def the_webhook(service, as_user, user_id: str, webhook_id: str):
    listed = await service.stub.ListWebhooks(
        notification_pb2.ListWebhooksRequest(), metadata=as_user(user_id)
    )
    [hook] = [hook for hook in listed.webhooks if hook.id == webhook_id]
    return hook


async def deliveries_of(service, as_user, user_id: str, webhook_id: str, state: str = ""):
    listed = await service.stub.ListWebhookDeliveries(
        notification_pb2.ListWebhookDeliveriesRequest(
            webhook_id=webhook_id, state=state, page=common_pb2.Page(limit=100)
        ),
        metadata=as_user(user_id),
    )
    return list(listed.deliveries)


async def ping(service, as_user, user_id: str, webhook_id: str):
    return await service.stub.PingWebhook(
        notification_pb2.PingWebhookRequest(webhook_id=webhook_id), metadata=as_user(user_id)
    )


async def redeliver(service, as_user, user_id: str, webhook_id: str, delivery_id: str):
    return await service.stub.RedeliverWebhookDelivery(
        notification_pb2.RedeliverWebhookDeliveryRequest(
            webhook_id=webhook_id, delivery_id=delivery_id
        ),
        metadata=as_user(user_id),
    )


def verified(request, secret: str) -> dict:
    """What a receiver does: check the signature over timestamp and raw body, then read it."""
    timestamp = request.headers["X-ObjectVision-Timestamp"]
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256)
    assert hmac.compare_digest(
        request.headers["X-ObjectVision-Signature"], f"v1={expected.hexdigest()}"
    )
    return json.loads(request.body)


async def ended(service, as_user, user_id: str, webhook_id: str, count: int, wait):
    """The webhook's deliveries once `count` of them are no longer pending."""

    async def done():
        listed = await deliveries_of(service, as_user, user_id, webhook_id)
        finished = [d for d in listed if d.state != "pending"]
        return listed if len(finished) >= count else None

    return await wait(done)


def webhooks_disabled() -> float:
    return REGISTRY.get_sample_value("notification_webhooks_disabled_total") or 0.0


async def test_an_update_changes_only_the_fields_its_mask_names(
    service, producer, receiver, new_user, as_user, events, wait
) -> None:
    user_id, _ = new_user()
    created = await create(service, as_user, user_id, receiver.url(f"/before/{user_id}"))
    hook_id = created.webhook.id

    moved = await update(service, as_user, user_id, hook_id, url=receiver.url(f"/after/{user_id}"))
    assert moved.url == receiver.url(f"/after/{user_id}")
    assert list(moved.events) == ["job.completed"]  # not in the mask: kept
    assert moved.disabled_reason == "" and not moved.HasField("disabled_at")

    widened = await update(service, as_user, user_id, hook_id, events=["job.failed"])
    assert list(widened.events) == ["job.failed"] and widened.url == moved.url
    every = await update(service, as_user, user_id, hook_id, events=[])
    assert list(every.events) == ["job.progress", "job.completed", "job.failed", "job.cancelled"]

    # The next event goes to the new URL, signed with the secret the webhook always had.
    event_id = await producer.publish(events.finished(user_id, str(uuid.uuid4())))
    [request] = await wait(lambda: receiver.received(f"/after/{user_id}"))
    assert verified(request, created.secret)["id"] == event_id
    assert receiver.received(f"/before/{user_id}") == []


async def test_an_update_is_refused_whole_when_any_part_of_it_is_wrong(
    service, receiver, new_user, as_user
) -> None:
    user_id, _ = new_user()
    stranger, _ = new_user()
    first = await create(service, as_user, user_id, receiver.url(f"/one/{user_id}"))
    second = await create(service, as_user, user_id, receiver.url(f"/two/{user_id}"))
    hook_id = first.webhook.id

    refusals = [
        (dict(url=second.webhook.url), grpc.StatusCode.ALREADY_EXISTS, "another of your"),
        (dict(url="ftp://example.com/hook"), grpc.StatusCode.INVALID_ARGUMENT, "http"),
        (
            dict(url=receiver.url(f"/three/{user_id}"), events=["job.nope"]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "unknown event types",
        ),
        ({}, grpc.StatusCode.INVALID_ARGUMENT, "nothing to update"),
    ]
    for fields, code, message in refusals:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await update(service, as_user, user_id, hook_id, **fields)
        assert refused.value.code() == code, fields
        assert message in refused.value.details(), refused.value.details()

    with pytest.raises(grpc.aio.AioRpcError) as unknown_field:
        await service.stub.UpdateWebhook(
            notification_pb2.UpdateWebhookRequest(
                webhook_id=hook_id, update_mask=field_mask_pb2.FieldMask(paths=["secret"])
            ),
            metadata=as_user(user_id),
        )
    assert unknown_field.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "secret" in unknown_field.value.details()

    with pytest.raises(grpc.aio.AioRpcError) as theirs:
        await update(service, as_user, stranger, hook_id, enabled=False)
    assert theirs.value.code() == grpc.StatusCode.NOT_FOUND

    # Nothing of the refused updates stuck, the URL of the one with a bad event list included.
    kept = await the_webhook(service, as_user, user_id, hook_id)
    assert (kept.url, list(kept.events)) == (first.webhook.url, ["job.completed"])
    assert not kept.HasField("disabled_at")


async def test_a_paused_webhook_keeps_what_it_missed_for_redelivery_once_enabled(
    service, producer, receiver, new_user, as_user, events, wait
) -> None:
    user_id, _ = new_user()
    path = f"/paused/{user_id}"
    created = await create(service, as_user, user_id, receiver.url(path))
    hook_id = created.webhook.id

    paused = await update(service, as_user, user_id, hook_id, enabled=False)
    assert paused.HasField("disabled_at") and paused.disabled_reason == "owner"

    event_id = await producer.publish(events.finished(user_id, str(uuid.uuid4())))
    [missed] = await wait(lambda: deliveries_of(service, as_user, user_id, hook_id, "dead"))
    assert (missed.event_id, missed.attempts) == (event_id, 0)
    assert missed.last_error == "the webhook is disabled"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await redeliver(service, as_user, user_id, hook_id, missed.id)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "enable it" in refused.value.details()
    assert dict(refused.value.trailing_metadata())["error-code"] == "webhook_disabled"
    # A delivery given up because the webhook is paused says nothing of its receiver.
    assert (await the_webhook(service, as_user, user_id, hook_id)).consecutive_failures == 0

    enabled = await update(service, as_user, user_id, hook_id, enabled=True)
    assert not enabled.HasField("disabled_at") and enabled.disabled_reason == ""
    queued = await redeliver(service, as_user, user_id, hook_id, missed.id)
    assert queued.redelivery_of == missed.id
    [request] = await wait(lambda: receiver.received(path))
    assert verified(request, created.secret)["id"] == event_id
    assert request.headers["X-ObjectVision-Delivery"] == queued.id


async def test_a_webhook_whose_deliveries_keep_failing_is_disabled_and_its_owner_emailed(
    service, producer, receiver, mail_sink, mail, new_user, as_user, events, wait
) -> None:
    user_id, email = new_user(name="Grace")
    path = f"/failing/{user_id}"
    receiver.script(path, [], then=503)
    created = await create(service, as_user, user_id, receiver.url(path))
    hook_id = created.webhook.id
    disabled_before = webhooks_disabled()

    for _ in range(3):
        await producer.publish(events.finished(user_id, str(uuid.uuid4())))

    async def disabled():
        hook = await the_webhook(service, as_user, user_id, hook_id)
        return hook if hook.HasField("disabled_at") else None

    hook = await wait(disabled)
    assert (hook.disabled_reason, hook.consecutive_failures) == ("failing", 3)
    assert len(receiver.received(path)) == 9  # three deliveries, three attempts each
    assert webhooks_disabled() == disabled_before + 1

    def notices():
        # The three finished jobs send their own reports to the same address.
        return [m for m in mail(mail_sink, email) if "webhook was disabled" in m["Subject"]]

    [notice] = await wait(notices)
    text_part = " ".join(notice.get_body(preferencelist=("plain",)).get_content().split())
    assert receiver.url(path) in text_part
    assert "3 deliveries" in text_part and "receiver answered 503" in text_part
    assert f"/api/v1/webhooks/{hook_id}/ping" in text_part
    assert "https://objectvision.test/#/webhooks" in text_part

    # Disabled: the next event is recorded, not sent.
    later = await producer.publish(events.finished(user_id, str(uuid.uuid4())))
    listed = await ended(service, as_user, user_id, hook_id, 4, wait)
    assert [(d.event_id, d.last_error) for d in listed if d.event_id == later] == [
        (later, "the webhook is disabled")
    ]
    assert len(receiver.received(path)) == 9

    # The owner mends the receiver and tries it while the webhook is still disabled.
    receiver.script(path, [], then=200)
    pinged = await ping(service, as_user, user_id, hook_id)
    [request] = await wait(lambda: receiver.received(path)[9:])
    assert verified(request, created.secret)["type"] == "webhook.ping"
    assert request.headers["X-ObjectVision-Delivery"] == pinged.id
    still = await the_webhook(service, as_user, user_id, hook_id)
    assert still.disabled_reason == "failing"  # a ping does not enable it
    enabled = await update(service, as_user, user_id, hook_id, enabled=True)
    assert enabled.disabled_reason == "" and enabled.consecutive_failures == 0
    # One notice for one disabling.
    assert len(notices()) == 1


async def test_a_delivered_delivery_ends_a_run_of_failures(
    service, producer, receiver, new_user, as_user, events, wait
) -> None:
    user_id, _ = new_user()
    path = f"/intermittent/{user_id}"
    created = await create(service, as_user, user_id, receiver.url(path))
    hook_id = created.webhook.id
    # Two deliveries given up, one delivered, two given up: never three failures in a row.
    outcomes = ((503, 1), (503, 2), (200, 0), (503, 1), (503, 2))
    for count, (status, failures_in_a_row) in enumerate(outcomes, start=1):
        receiver.script(path, [], then=status)
        await producer.publish(events.finished(user_id, str(uuid.uuid4())))
        await ended(service, as_user, user_id, hook_id, count, wait)
        hook = await the_webhook(service, as_user, user_id, hook_id)
        assert hook.consecutive_failures == failures_in_a_row
    assert not hook.HasField("disabled_at") and hook.consecutive_failures == 2


async def test_a_run_of_failures_must_also_last_before_the_webhook_is_disabled(
    service, receiver, new_user, as_user
) -> None:
    """WEBHOOK_DISABLE_AFTER_SECONDS: failures in a short outage are not enough."""
    user_id, _ = new_user()
    created = await create(service, as_user, user_id, receiver.url(f"/outage/{user_id}"))
    hook_id = uuid.UUID(created.webhook.id)
    policy = health.FailurePolicy(failures=2, lasting=timedelta(hours=1))
    start = datetime.now(UTC)

    async def dead_at(moment: datetime) -> bool:
        async with service.runtime.sessions() as session, session.begin():
            return await health.record_dead(
                session=session, webhook_id=hook_id, last_error="boom", policy=policy, now=moment
            )

    assert not await dead_at(start)
    assert not await dead_at(start + timedelta(minutes=30))  # two in a row, but not an hour
    assert await dead_at(start + timedelta(hours=1))
    async with service.runtime.sessions() as session:
        hook = await owned_webhook(session=session, user_id=user_id, webhook_id=str(hook_id))
    assert (hook.disabled_reason, hook.consecutive_failures) == ("failing", 3)
    # Once disabled, a failure neither counts nor disables it again.
    assert not await dead_at(start + timedelta(hours=2))


async def test_a_ping_is_a_signed_webhook_ping_to_that_webhook_alone(
    service, receiver, new_user, as_user, wait
) -> None:
    user_id, _ = new_user()
    stranger, _ = new_user()
    pinged_path, other_path = f"/pinged/{user_id}", f"/not-pinged/{user_id}"
    created = await create(service, as_user, user_id, receiver.url(pinged_path))
    await create(service, as_user, user_id, receiver.url(other_path))

    queued = await ping(service, as_user, user_id, created.webhook.id)
    assert (queued.event_type, queued.state, queued.attempts) == ("webhook.ping", "pending", 0)
    assert queued.webhook_id == created.webhook.id and queued.redelivery_of == ""

    [request] = await wait(lambda: receiver.received(pinged_path))
    body = verified(request, created.secret)
    assert body["type"] == "webhook.ping" and body["id"] == queued.event_id
    assert body["data"] == {"webhook_id": created.webhook.id}
    assert request.headers["X-ObjectVision-Event"] == "webhook.ping"

    async def delivered():
        listed = await deliveries_of(service, as_user, user_id, created.webhook.id, "delivered")
        return listed or None

    [delivery] = await wait(delivered)
    assert (delivery.id, delivery.last_status_code) == (queued.id, 200)
    assert receiver.received(other_path) == []

    for caller, webhook_id in ((stranger, created.webhook.id), (user_id, str(uuid.uuid4()))):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await ping(service, as_user, caller, webhook_id)
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND


def test_webhooks_from_before_the_migration_are_enabled_with_no_failures(infrastructure) -> None:
    with fresh_database(infrastructure.database_url) as database_url:
        upgrade_to(
            migrations_dir=MIGRATIONS_DIR,
            database_url=database_url,
            schema="notification",
            revision="0005",
        )
        engine = create_engine(sync_url(database_url))
        hook_id = uuid.uuid4()
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO notification.webhooks (id, user_id, url, events,"
                    " secret_ciphertext) VALUES (:id, :user_id, 'https://example.com/old',"
                    " ARRAY['job.completed'], 'x')"
                ),
                {"id": hook_id, "user_id": uuid.uuid4()},
            )

        upgrade_to_head(
            migrations_dir=MIGRATIONS_DIR, database_url=database_url, schema="notification"
        )

        with engine.connect() as connection:
            row = connection.execute(
                text(
                    "SELECT disabled_at, disabled_reason, consecutive_failures, failing_since"
                    " FROM notification.webhooks WHERE id = :id"
                ),
                {"id": hook_id},
            ).one()
            with pytest.raises(Exception, match="ck_webhooks_disabled_reason"):
                connection.execute(
                    text(
                        "UPDATE notification.webhooks SET disabled_at = now(),"
                        " disabled_reason = 'bored' WHERE id = :id"
                    ),
                    {"id": hook_id},
                )
        engine.dispose()
    assert tuple(row) == (None, None, 0, None)
