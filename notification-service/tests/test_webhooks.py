"""Webhooks: registration, destination safety, signed delivery, retries and giving up."""

import hashlib
import hmac
import json
import time
import uuid
from dataclasses import replace

import grpc
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from notification_service.deliveries.models import deliveries
from notification_service.deliveries.service import attempts_of
from notification_service.server import Runtime
from notification_service.webhooks.secrets import signature, webhook_box
from notification_service.webhooks.targets import ForbiddenTarget, checked_target
from objectvision.v1 import notification_pb2, notification_pb2_grpc
from objectvision_common.grpc_client import insecure_channel
from objectvision_common.runner import service_app


async def create(service, as_user, user_id: str, url: str, events=()):
    return await service.stub.CreateWebhook(
        notification_pb2.CreateWebhookRequest(url=url, events=list(events)),
        metadata=as_user(user_id),
    )


async def webhook_rows(service, event_id: str):
    async with service.runtime.sessions() as session:
        result = await session.execute(
            select(deliveries).where(
                deliveries.c.event_id == uuid.UUID(event_id), deliveries.c.channel == "webhook"
            )
        )
        return result.all()


def verify(request, secret: str) -> dict:
    """What a receiver does: recompute the signature over timestamp and raw body."""
    timestamp = request.headers["X-ObjectVision-Timestamp"]
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(request.headers["X-ObjectVision-Signature"], f"v1={expected}")
    assert abs(int(timestamp) - time.time()) < 60
    return json.loads(request.body)


async def test_webhooks_are_created_listed_and_deleted_per_user(
    service, receiver, new_user, as_user
) -> None:
    owner, _ = new_user()
    stranger, _ = new_user()
    created = await create(service, as_user, owner, receiver.url("/crud"), ["job.completed"])
    assert created.secret.startswith("whsec_") and len(created.secret) > 40
    assert list(created.webhook.events) == ["job.completed"]

    listed = await service.stub.ListWebhooks(
        notification_pb2.ListWebhooksRequest(), metadata=as_user(owner)
    )
    assert [hook.id for hook in listed.webhooks] == [created.webhook.id]
    others = await service.stub.ListWebhooks(
        notification_pb2.ListWebhooksRequest(), metadata=as_user(stranger)
    )
    assert list(others.webhooks) == []

    with pytest.raises(grpc.aio.AioRpcError) as duplicate:
        await create(service, as_user, owner, receiver.url("/crud"))
    assert duplicate.value.code() == grpc.StatusCode.ALREADY_EXISTS

    request = notification_pb2.DeleteWebhookRequest(webhook_id=created.webhook.id)
    with pytest.raises(grpc.aio.AioRpcError) as not_theirs:
        await service.stub.DeleteWebhook(request, metadata=as_user(stranger))
    assert not_theirs.value.code() == grpc.StatusCode.NOT_FOUND
    await service.stub.DeleteWebhook(request, metadata=as_user(owner))
    listed = await service.stub.ListWebhooks(
        notification_pb2.ListWebhooksRequest(), metadata=as_user(owner)
    )
    assert list(listed.webhooks) == []


async def test_an_empty_event_list_means_every_job_event_and_unknown_types_are_refused(
    service, receiver, new_user, as_user
) -> None:
    user_id, _ = new_user()
    created = await create(service, as_user, user_id, receiver.url("/all"))
    assert list(created.webhook.events) == [
        "job.progress",
        "job.completed",
        "job.failed",
        "job.cancelled",
    ]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await create(service, as_user, user_id, receiver.url("/typo"), ["job.complete"])
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_calls_without_a_signed_principal_are_refused(service) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await service.stub.ListWebhooks(notification_pb2.ListWebhooksRequest())
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.fixture(scope="module")
async def strict_stub(migrated):
    """The same service with WEBHOOK_ALLOW_PRIVATE=false, as in production (no workers)."""
    strict = migrated.model_copy(update={"webhook_allow_private": False})
    app = service_app(strict, replace(Runtime.build(strict).parts(), workers=()))
    port = await app.start()
    async with insecure_channel(f"127.0.0.1:{port}") as channel:
        yield notification_pb2_grpc.NotificationServiceStub(channel)
    await app.stop()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "http://2130706433/hook",
        "http://224.0.0.1/hook",
        "file:///etc/passwd",
        "ftp://example.com/hook",
        "https://user:pass@example.com/hook",
        "http:///no-host",
    ],
)
async def test_webhooks_to_internal_or_non_http_targets_are_refused(
    strict_stub, new_user, as_user, url: str
) -> None:
    user_id, _ = new_user()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await strict_stub.CreateWebhook(
            notification_pb2.CreateWebhookRequest(url=url), metadata=as_user(user_id)
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://localhost:9/hook", "webhook URL points at a private"),
        ("ftp://example.com/hook", "webhook URL must use http or https"),
        ("http://no-such-host.invalid/hook", "webhook host 'no-such-host.invalid' does not"),
    ],
)
async def test_refused_targets_carry_the_webhook_code_and_say_why(url: str, message: str) -> None:
    """The rules themselves are objectvision_common.public_urls' (common/tests); webhooks
    refuse with their own code, and a name that does not resolve is refused too."""
    with pytest.raises(ForbiddenTarget) as refused:
        await checked_target(url, allow_private=False)
    assert refused.value.code == "webhook_target_forbidden"
    assert refused.value.message.startswith(message)


async def test_an_allowed_target_keeps_the_addresses_it_was_checked_with() -> None:
    target = await checked_target("http://127.0.0.1:9/hook", allow_private=True)
    assert (target.url.host, target.url.target) == ("127.0.0.1", "/hook")
    assert [str(address) for address in target.addresses] == ["127.0.0.1"]


def test_secrets_are_stored_encrypted_and_signatures_cover_timestamp_and_body() -> None:
    box = webhook_box("key-material")
    sealed = box.seal("whsec_abc")
    assert "whsec_abc" not in sealed and box.open(sealed) == "whsec_abc"
    with pytest.raises(ValueError):
        webhook_box("other-key").open(sealed)
    expected = hmac.new(b"whsec_abc", b"1700000000.{}", hashlib.sha256).hexdigest()
    assert signature(["whsec_abc"], 1700000000, b"{}") == f"v1={expected}"


async def test_a_finished_job_is_posted_signed_to_the_users_webhook(
    service, producer, receiver, new_user, as_user, events, wait
) -> None:
    user_id, _ = new_user()
    created = await create(service, as_user, user_id, receiver.url(f"/signed/{user_id}"))
    job_id = str(uuid.uuid4())
    event_id = await producer.publish(events.finished(user_id, job_id, counts={"cat": 2}))

    [request] = await wait(lambda: receiver.received(f"/signed/{user_id}"))
    body = verify(request, created.secret)
    assert request.headers["X-ObjectVision-Event"] == "job.completed"
    assert request.headers["User-Agent"].startswith("ObjectVision-Webhooks")
    assert body["id"] == event_id and body["type"] == "job.completed"
    assert body["data"]["job_id"] == job_id
    assert body["data"]["class_counts"] == {"cat": 2}
    assert body["data"]["status"] == "completed"
    # A person following the receiver's link lands on the job's own page in the console.
    assert body["console_url"] == f"https://objectvision.test/#/jobs/{job_id}"
    [row] = await wait(lambda: webhook_rows(service, event_id))
    assert request.headers["X-ObjectVision-Delivery"] == str(row.id)
    await wait(lambda: _state(service, event_id, "delivered"))


async def test_a_cancelled_job_reaches_the_webhooks_that_asked_for_it_and_sends_no_report(
    service, producer, receiver, new_user, as_user, events, wait
) -> None:
    user_id, _ = new_user()
    path = f"/cancelled/{user_id}"
    created = await create(service, as_user, user_id, receiver.url(path), ["job.cancelled"])
    assert list(created.webhook.events) == ["job.cancelled"]
    await create(service, as_user, user_id, receiver.url(f"/done/{user_id}"), ["job.completed"])
    job_id = str(uuid.uuid4())
    event_id = await producer.publish(events.cancelled(user_id, job_id, counts={"cat": 1}))

    [request] = await wait(lambda: receiver.received(path))
    body = verify(request, created.secret)
    assert request.headers["X-ObjectVision-Event"] == "job.cancelled"
    assert body["id"] == event_id and body["type"] == "job.cancelled"
    assert body["data"]["status"] == "cancelled" and body["data"]["job_id"] == job_id
    assert body["data"]["class_counts"] == {"cat": 1}
    await wait(lambda: _state(service, event_id, "delivered"))
    # The event's deliveries commit together: this one webhook, and no report email.
    async with service.runtime.sessions() as session:
        channels = (
            await session.execute(
                select(deliveries.c.channel).where(deliveries.c.event_id == uuid.UUID(event_id))
            )
        ).scalars()
        assert list(channels) == ["webhook"]
    assert receiver.received(f"/done/{user_id}") == []


async def _state(service, event_id: str, state: str) -> bool:
    rows = await webhook_rows(service, event_id)
    return bool(rows) and all(row.state == state for row in rows)


async def test_a_receiver_failing_twice_gets_three_attempts_and_one_success(
    service, producer, receiver, new_user, as_user, events, wait
) -> None:
    user_id, _ = new_user()
    path = f"/flaky/{user_id}"
    receiver.script(path, [500, 500], then=200)
    created = await create(service, as_user, user_id, receiver.url(path), ["job.completed"])
    event_id = await producer.publish(events.finished(user_id, str(uuid.uuid4())))

    await wait(lambda: _state(service, event_id, "delivered"))
    [row] = await webhook_rows(service, event_id)
    async with service.runtime.sessions() as session:
        attempts = await attempts_of(session=session, delivery_id=row.id)
    assert [a.status_code for a in attempts] == [500, 500, 200]
    assert [a.succeeded for a in attempts] == [False, False, True]
    assert [a.attempt for a in attempts] == [1, 2, 3]
    assert row.attempts == 3 and row.last_error is None
    requests = receiver.received(path)
    assert len(requests) == 3
    assert len({r.headers["X-ObjectVision-Delivery"] for r in requests}) == 1
    for request in requests:
        verify(request, created.secret)


def _dead_lettered(channel: str) -> float:
    value = REGISTRY.get_sample_value("notification_deliveries_dead_total", {"channel": channel})
    assert value is not None, "the counter exists from the start, for every channel"
    return value


async def test_a_receiver_that_always_fails_is_given_up_after_max_attempts(
    service, producer, receiver, new_user, as_user, events, wait
) -> None:
    user_id, _ = new_user()
    path = f"/down/{user_id}"
    receiver.script(path, [], then=503)
    await create(service, as_user, user_id, receiver.url(path), ["job.failed"])
    dead_before = _dead_lettered("webhook")
    event_id = await producer.publish(events.finished(user_id, str(uuid.uuid4()), status="failed"))

    await wait(lambda: _state(service, event_id, "dead"))
    # What NotificationDeliveriesDeadLettered alerts on (deploy/prometheus-rules.yml).
    assert _dead_lettered("webhook") >= dead_before + 1
    [row] = await webhook_rows(service, event_id)
    assert row.attempts == 3 and row.last_error == "receiver answered 503"
    async with service.runtime.sessions() as session:
        attempts = await attempts_of(session=session, delivery_id=row.id)
    assert [a.status_code for a in attempts] == [503, 503, 503]
    assert all(a.duration_ms >= 0 for a in attempts)
    assert len(receiver.received(path)) == 3


async def test_webhooks_only_get_the_event_types_they_asked_for(
    service, producer, receiver, new_user, as_user, events, wait
) -> None:
    user_id, _ = new_user()
    await create(service, as_user, user_id, receiver.url(f"/only-failed/{user_id}"), ["job.failed"])
    await create(service, as_user, user_id, receiver.url(f"/progress/{user_id}"), ["job.progress"])
    job_id = str(uuid.uuid4())
    completed = await producer.publish(events.finished(user_id, job_id))
    await producer.publish(events.progress(user_id, job_id, 1))

    [request] = await wait(lambda: receiver.received(f"/progress/{user_id}"))
    assert json.loads(request.body)["type"] == "job.progress"
    assert receiver.received(f"/only-failed/{user_id}") == []
    assert await webhook_rows(service, completed) == []
