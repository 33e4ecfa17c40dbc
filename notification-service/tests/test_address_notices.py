"""`user.signup_attempted` and `user.email_change_attempted`: the owner of an address someone
tried to use is told, at the address auth-service has for the account, once per event."""

import uuid

import pytest
from sqlalchemy import select

from notification_service.deliveries.models import deliveries
from notification_service.events.models import processed_events

SIGNUP_ATTEMPTED = "user.signup_attempted"
EMAIL_CHANGE_ATTEMPTED = "user.email_change_attempted"
SUBJECTS = {
    SIGNUP_ATTEMPTED: "Someone tried to sign up to ObjectVision with your email address",
    EMAIL_CHANGE_ATTEMPTED: ("Someone tried to move your address to another ObjectVision account"),
}
LOGIN_URL = "https://objectvision.test/"


async def rows_for(service, event_id: str):
    async with service.runtime.sessions() as session:
        result = await session.execute(
            select(deliveries).where(deliveries.c.event_id == uuid.UUID(event_id))
        )
        return result.all()


def parts(message) -> tuple[str, str]:
    """The text and HTML parts, each with its whitespace runs made single spaces."""
    return tuple(
        " ".join(message.get_body(preferencelist=(kind,)).get_content().split())
        for kind in ("plain", "html")
    )


async def test_a_signup_attempt_tells_the_owner_once_even_when_the_event_comes_twice(
    service, producer, mail_sink, new_user, events, wait, mail
) -> None:
    user_id, email = new_user(name="Ada Lovelace")
    event_id = await producer.publish(events.address_notice(SIGNUP_ATTEMPTED, user_id))

    [message] = await wait(lambda: mail(mail_sink, email))
    assert message["Subject"] == SUBJECTS[SIGNUP_ATTEMPTED]
    assert message["To"].addresses[0].addr_spec == email
    assert message["To"].addresses[0].display_name == "Ada Lovelace"
    assert message.get_content_type() == "multipart/alternative"
    text, html = parts(message)
    assert "Hello Ada Lovelace" in text
    assert f"someone tried to sign up to ObjectVision with your email address, {email}" in text
    assert f"log in with your password at {LOGIN_URL} " in text
    assert "If it was not you: you can ignore this email." in text
    assert f'<a href="{LOGIN_URL}">log in with your' in html
    assert "<strong>If it was not you:</strong> you can ignore this email." in html

    await producer.publish_again(event_id)
    # The stream is consumed in order: once a later event's email is out, the repeat has
    # been handled too.
    later_id, later_email = new_user()
    await producer.publish(events.address_notice(SIGNUP_ATTEMPTED, later_id))
    await wait(lambda: mail(mail_sink, later_email))
    assert len(mail(mail_sink, email)) == 1
    assert len(await rows_for(service, event_id)) == 1


async def test_an_email_change_attempt_tells_the_owner_in_its_own_words(
    service, producer, mail_sink, new_user, events, wait, mail
) -> None:
    user_id, email = new_user(name="Grace")
    await producer.publish(events.address_notice(EMAIL_CHANGE_ATTEMPTED, user_id))

    [message] = await wait(lambda: mail(mail_sink, email))
    assert message["Subject"] == SUBJECTS[EMAIL_CHANGE_ATTEMPTED]
    text, html = parts(message)
    assert (
        "someone signed in to another ObjectVision account tried to change that account's "
        f"email address to yours, {email}. Your address belongs to your account, so the "
        "change was not made"
    ) in text
    assert LOGIN_URL in text and f'href="{LOGIN_URL}"' in html
    assert "sign up" not in text


async def test_the_notice_goes_out_with_notifications_off(
    service, producer, mail_sink, new_user, events, wait, mail
) -> None:
    """The switch is about batch-job emails; this one is about the account's address."""
    user_id, email = new_user(notifications=False)
    await producer.publish(events.address_notice(SIGNUP_ATTEMPTED, user_id))

    [message] = await wait(lambda: mail(mail_sink, email))
    assert message["Subject"] == SUBJECTS[SIGNUP_ATTEMPTED]


@pytest.mark.parametrize("event_type", [SIGNUP_ATTEMPTED, EMAIL_CHANGE_ATTEMPTED])
async def test_disabled_and_deleted_accounts_are_not_mailed(
    service, producer, peers, mail_sink, new_user, events, wait, mail, event_type
) -> None:
    disabled_id, disabled_email = new_user(active=False)
    deleted_id, deleted_email = new_user()
    del peers.auth.users[deleted_id]
    skipped = [
        await producer.publish(events.address_notice(event_type, user_id))
        for user_id in (disabled_id, deleted_id)
    ]

    later_id, later_email = new_user()
    await producer.publish(events.address_notice(event_type, later_id))
    await wait(lambda: mail(mail_sink, later_email))
    # Handled, not left to be retried: each is marked processed with nothing to send.
    for event_id in skipped:
        assert await wait(lambda event_id=event_id: _processed(service, event_id))
        assert await rows_for(service, event_id) == []
    assert mail(mail_sink, disabled_email) == [] and mail(mail_sink, deleted_email) == []


async def _processed(service, event_id: str) -> bool:
    async with service.runtime.sessions() as session:
        found = await session.scalar(
            select(processed_events.c.event_id).where(
                processed_events.c.event_id == uuid.UUID(event_id)
            )
        )
    return found is not None
