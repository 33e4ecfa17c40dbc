"""`user.suspended` and `user.restored` (ADR 0032): the account's owner is told that an admin
suspended the account (what that stops, what is kept) or restored it, at the address the
event carries, since a suspended account is disabled and auth-service shows it to nobody.
Once per event, whatever the notifications switch says."""

import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select

from notification_service.deliveries.models import deliveries
from notification_service.events.models import processed_events
from objectvision.v1 import notification_pb2

SUSPENDED_AT = datetime(2026, 12, 6, 9, 30, 5, tzinfo=UTC)


def status_changed(kind: str, email: str, name: str = "Mallory") -> notification_pb2.Event:
    """The event as auth-service writes it: the account, its address and name."""
    event = notification_pb2.Event(
        type=kind,
        user_id=str(uuid.uuid4()),
        account_status_changed=notification_pb2.AccountStatusChanged(email=email, name=name),
    )
    event.occurred_at.FromDatetime(SUSPENDED_AT)
    return event


def text_of(message) -> str:
    return " ".join(message.get_body(preferencelist=("plain",)).get_content().split())


async def test_the_owner_is_told_of_the_suspension_and_of_the_restoring(
    service, producer, mail_sink, wait, mail
) -> None:
    email = f"mallory-{uuid.uuid4().hex[:8]}@example.test"

    suspended_id = await producer.publish(status_changed("user.suspended", email))
    [suspended] = await wait(lambda: mail(mail_sink, email))
    assert suspended["Subject"] == "Your ObjectVision account was suspended"
    assert suspended["To"].addresses[0].display_name == "Mallory"
    text = text_of(suspended)
    assert f"suspended your account, {email}, on 2026-12-06 09:30 UTC" in text
    assert "you cannot log in, your sessions have ended and your API keys do not work" in text

    await producer.publish_again(suspended_id)
    await producer.publish(status_changed("user.restored", email))
    messages = await wait(lambda: [m for m in mail(mail_sink, email) if "restored" in m["Subject"]])
    [restored] = messages
    assert restored["Subject"] == "Your ObjectVision account was restored"
    assert "You can log in again at https://objectvision.test/" in text_of(restored)
    # The repeated suspension event was handled before the later one, and mailed nothing.
    assert len(mail(mail_sink, email)) == 2


async def test_an_event_without_an_address_is_handled_with_no_email(
    service, producer, mail_sink, wait, mail
) -> None:
    nowhere = await producer.publish(status_changed("user.suspended", ""))
    later = f"later-{uuid.uuid4().hex[:8]}@example.test"
    await producer.publish(status_changed("user.restored", later))
    await wait(lambda: mail(mail_sink, later))
    async with service.runtime.sessions() as session:
        handled = await session.scalar(
            select(processed_events.c.event_id).where(
                processed_events.c.event_id == uuid.UUID(nowhere)
            )
        )
        rows = await session.scalar(
            select(func.count())
            .select_from(deliveries)
            .where(deliveries.c.event_id == uuid.UUID(nowhere))
        )
    assert handled is not None and rows == 0
