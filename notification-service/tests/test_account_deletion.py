"""`user.deleted` (ADR 0025): the deleted account's webhooks and every delivery made for it
(emails and webhook calls, sent or not, with their attempts) are erased, no webhook can be
registered for it afterwards, and the address in the event gets one goodbye email, although
the account no longer exists, once per event however often the event is delivered.

On the running service with its real consumer group, dispatcher and SMTP sink (conftest.py);
events come through a producer's outbox and the relay, as auth-service's do.
"""

import uuid
from datetime import UTC, datetime

import grpc
from sqlalchemy import func, select, update

from notification_service.accounts import service as accounts_service
from notification_service.accounts.models import ERASED_ACCOUNTS
from notification_service.deliveries import service as deliveries_service
from notification_service.deliveries.models import EMAIL, PENDING, deliveries
from notification_service.deliveries.service import ClaimedDelivery
from notification_service.events.models import processed_events
from notification_service.webhooks.models import webhooks
from objectvision.v1 import notification_pb2

GOODBYE_SUBJECT = "Your ObjectVision account was deleted"
DELETED_AT = datetime(2026, 12, 9, 10, 15, 42, tzinfo=UTC)


def user_deleted(user_id: str, email: str) -> notification_pb2.Event:
    """The event as auth-service writes it in the commit that deletes the account."""
    event = notification_pb2.Event(
        type="user.deleted",
        user_id=user_id,
        user_deleted=notification_pb2.UserDeleted(email=email),
    )
    event.occurred_at.FromDatetime(DELETED_AT)
    return event


async def count(service, table, *conditions) -> int:
    async with service.runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(table).where(*conditions)))


async def user_deliveries(service, user_id: str) -> int:
    return await count(service, deliveries, deliveries.c.user_id == uuid.UUID(user_id))


async def user_webhooks(service, user_id: str) -> int:
    return await count(service, webhooks, webhooks.c.user_id == uuid.UUID(user_id))


async def processed(service, event_id: str) -> bool:
    return bool(
        await count(service, processed_events, processed_events.c.event_id == uuid.UUID(event_id))
    )


async def create_webhook(service, as_user, user_id: str, url: str):
    return await service.stub.CreateWebhook(
        notification_pb2.CreateWebhookRequest(url=url), metadata=as_user(user_id)
    )


async def test_a_deleted_account_loses_its_webhooks_and_deliveries_and_gets_one_goodbye(
    service, producer, peers, receiver, mail_sink, new_user, wait, mail, as_user, events
) -> None:
    user_id, email = new_user(name="Ada Lovelace")
    other_id, other_email = new_user(name="Grace Hopper")
    hooks = [f"/erase/{uuid.uuid4().hex}" for _ in range(2)]
    other_hook = f"/erase/{uuid.uuid4().hex}"
    for path in hooks:
        await create_webhook(service, as_user, user_id, receiver.url(path))
    await create_webhook(service, as_user, other_id, receiver.url(other_hook))
    # What an account leaves here: a welcome email, a job report, webhook calls.
    await producer.publish(events.registered(user_id, email, "Ada Lovelace"))
    await producer.publish(events.finished(user_id, str(uuid.uuid4())))
    await producer.publish(events.finished(other_id, str(uuid.uuid4())))
    await wait(lambda: len(mail(mail_sink, email)) == 2)
    await wait(lambda: all(receiver.received(path) for path in [*hooks, other_hook]))
    await wait(lambda: mail(mail_sink, other_email))
    # And one still waiting for its next attempt, as after a receiver's failure.
    async with service.runtime.sessions.begin() as session:
        waiting = await session.scalar(
            update(deliveries)
            .where(deliveries.c.user_id == uuid.UUID(user_id), deliveries.c.channel == EMAIL)
            .values(state=PENDING, next_attempt_at=func.now() + func.make_interval(0, 0, 0, 1))
            .returning(deliveries.c.id)
        )
    assert waiting is not None
    assert await user_deliveries(service, user_id) == 4
    others_before = await user_deliveries(service, other_id)

    # auth-service deletes the account in the commit that stages the event.
    del peers.auth.users[user_id]
    event_id = await producer.publish(user_deleted(user_id, email))

    [goodbye] = await wait(
        lambda: [m for m in mail(mail_sink, email) if m["Subject"] == GOODBYE_SUBJECT]
    )
    assert goodbye["To"].addresses[0].addr_spec == email
    text = " ".join(goodbye.get_body(preferencelist=("plain",)).get_content().split())
    html = " ".join(goodbye.get_body(preferencelist=("html",)).get_content().split())
    assert f"your ObjectVision account, {email}, was deleted on 2026-12-09 10:15 UTC" in text
    assert "Everything it kept is being erased" in text
    assert "The address is free again" in text
    assert "Ada Lovelace" not in text and "<strong>ObjectVision</strong> account" in html

    assert await user_webhooks(service, user_id) == 0
    assert await user_deliveries(service, user_id) == 0
    listed = await service.stub.ListWebhooks(
        notification_pb2.ListWebhooksRequest(), metadata=as_user(user_id)
    )
    assert list(listed.webhooks) == []
    # The goodbye is the one delivery left of the account, and it names no account.
    async with service.runtime.sessions() as session:
        [row] = (
            await session.execute(
                select(deliveries).where(deliveries.c.event_id == uuid.UUID(event_id))
            )
        ).all()
    assert (row.channel, row.target, row.user_id) == (EMAIL, email, None)
    erased = await count(service, ERASED_ACCOUNTS, ERASED_ACCOUNTS.c.user_id == user_id)
    assert erased == 1
    # Nothing of anyone else's went, and no webhook was told about the deletion.
    assert await user_webhooks(service, other_id) == 1
    assert await user_deliveries(service, other_id) == others_before
    for path in [*hooks, other_hook]:
        assert all(b"user.deleted" not in request.body for request in receiver.received(path))

    # A webhook registration that comes late (its request passed the gateway before the
    # account was deleted) is refused rather than outliving the erasure.
    try:
        await create_webhook(service, as_user, user_id, receiver.url(f"/late/{uuid.uuid4()}"))
    except grpc.aio.AioRpcError as refused:
        assert refused.code() == grpc.StatusCode.UNAUTHENTICATED
        assert refused.details() == "this account has been deleted"
    else:
        raise AssertionError("a deleted account registered a webhook")
    assert await user_webhooks(service, user_id) == 0


async def test_the_goodbye_goes_out_once_when_the_event_is_delivered_twice(
    service, producer, peers, mail_sink, new_user, wait, mail, events
) -> None:
    user_id, email = new_user()
    # Gone from auth-service, as once the event exists.
    del peers.auth.users[user_id]
    event_id = await producer.publish(user_deleted(user_id, email))
    await wait(lambda: mail(mail_sink, email))

    await producer.publish_again(event_id)
    # The same account's next event is handled after the redelivered one (one subject, in
    # stream order): once it is, the redelivery has been.
    later_id = await producer.publish(events.address_notice("user.signup_attempted", user_id))
    await wait(lambda: processed(service, later_id))

    assert len(mail(mail_sink, email)) == 1
    async with service.runtime.sessions() as session:
        rows = (
            await session.execute(
                select(deliveries.c.id).where(deliveries.c.event_id == uuid.UUID(event_id))
            )
        ).all()
    assert len(rows) == 1


async def test_an_erasure_in_small_chunks_removes_every_delivery_and_runs_again_harmlessly(
    service, producer, receiver, mail_sink, new_user, wait, mail, as_user, events
) -> None:
    user_id, email = new_user()
    path = f"/chunks/{uuid.uuid4().hex}"
    await create_webhook(service, as_user, user_id, receiver.url(path))
    job_id = str(uuid.uuid4())
    for processed_count in (1, 2, 3):
        await producer.publish(events.progress(user_id, job_id, processed_count))
    await producer.publish(events.finished(user_id, job_id))
    await wait(lambda: len(receiver.received(path)) == 4 and mail(mail_sink, email))
    assert await user_deliveries(service, user_id) == 5

    erase = {
        "session_factory": service.runtime.sessions,
        "user_id": uuid.UUID(user_id),
        "deleted_at": DELETED_AT,
        "chunk_size": 2,
    }
    assert await accounts_service.erase_account(**erase) == 5

    assert await user_deliveries(service, user_id) == 0
    assert await user_webhooks(service, user_id) == 0
    # Run again, as for a redelivered event whose first handling died after the erasure.
    assert await accounts_service.erase_account(**erase) == 0


async def test_an_attempt_at_a_delivery_erased_while_it_was_sent_records_nothing(
    service,
) -> None:
    gone = ClaimedDelivery(
        id=uuid.uuid4(),
        event_id=uuid.uuid4(),
        event_type="job.completed",
        channel=EMAIL,
        target="someone@example.test",
        webhook_id=None,
        user_id=uuid.uuid4(),
        payload={},
        attempts=1,
    )

    async with service.runtime.sessions.begin() as session:
        state = await deliveries_service.record_attempt(
            session=session,
            delivery=gone,
            started_at=datetime.now(UTC),
            duration_ms=12.0,
            succeeded=True,
            status_code=250,
            error=None,
            give_up=False,
            retry_in_seconds=1.0,
        )

    assert state == deliveries_service.GONE
