"""`user.password_reset_requested`: the reset link goes to the account's owner, at the address
auth-service has for the account now, once per event, and only while it can still work
(ADR 0021)."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from notification_service.deliveries.models import deliveries
from notification_service.events.models import processed_events
from notification_service.links import ConsoleLinks
from notification_service.mail.render import EmailRenderer
from objectvision.v1 import notification_pb2
from objectvision_common.sealing import event_secrets

from .conftest import SERVICE_SECRET

PASSWORD_RESET_REQUESTED = "user.password_reset_requested"
SUBJECT = "Reset your ObjectVision password"
BASE_URL = "https://objectvision.test"


def reset_requested(
    user_id: str,
    token: str,
    *,
    valid_for: timedelta = timedelta(minutes=30),
    sealed_with: str | None = SERVICE_SECRET,
) -> notification_pb2.Event:
    """The event as auth-service writes it: the account, the token sealed with the key
    derived from SERVICE_TOKEN_SECRET, and when it expires. `sealed_with=None`: the token in
    clear, as events staged before tokens were sealed carry it."""
    requested_at = datetime.now(UTC)
    requested = (
        notification_pb2.PasswordResetRequested(token=token)
        if sealed_with is None
        else notification_pb2.PasswordResetRequested(
            sealed_token=event_secrets(sealed_with).seal(token)
        )
    )
    event = notification_pb2.Event(
        type=PASSWORD_RESET_REQUESTED, user_id=user_id, password_reset_requested=requested
    )
    event.occurred_at.FromDatetime(requested_at)
    event.password_reset_requested.expires_at.FromDatetime(requested_at + valid_for)
    return event


def new_token() -> str:
    return f"ovp_{uuid.uuid4().hex}{uuid.uuid4().hex[:11]}"


def parts(message) -> tuple[str, str]:
    """The text and HTML parts, each with its whitespace runs made single spaces."""
    return tuple(
        " ".join(message.get_body(preferencelist=(kind,)).get_content().split())
        for kind in ("plain", "html")
    )


async def rows_for(service, event_id: str):
    async with service.runtime.sessions() as session:
        result = await session.execute(
            select(deliveries).where(deliveries.c.event_id == uuid.UUID(event_id))
        )
        return result.all()


async def processed(service, event_id: str) -> bool:
    async with service.runtime.sessions() as session:
        found = await session.scalar(
            select(processed_events.c.event_id).where(
                processed_events.c.event_id == uuid.UUID(event_id)
            )
        )
    return found is not None


async def test_the_owner_gets_one_email_with_the_link_even_when_the_event_comes_twice(
    service, producer, mail_sink, new_user, wait, mail
) -> None:
    user_id, email = new_user(name="Ada Lovelace", notifications=False)
    token = new_token()
    event_id = await producer.publish(reset_requested(user_id, token))

    [message] = await wait(lambda: mail(mail_sink, email))
    assert message["Subject"] == SUBJECT
    assert message["To"].addresses[0].addr_spec == email
    assert message["To"].addresses[0].display_name == "Ada Lovelace"
    text, html = parts(message)
    link = f"{BASE_URL}/#/reset-password?token={token}"
    assert "Hello Ada Lovelace" in text
    assert f"reset the password of your ObjectVision account, {email}" in text
    assert f" {link} " in text and f'href="{link}"' in html
    assert "The link works once, for 30 minutes (until " in text
    assert f"ask for a new one at {BASE_URL}/#/forgot-password" in text
    assert "If you did not ask for this: you can ignore this email." in text

    await producer.publish_again(event_id)
    # The stream is consumed in order: once a later event's email is out, the repeat has
    # been handled too.
    later_id, later_email = new_user()
    await producer.publish(reset_requested(later_id, new_token()))
    await wait(lambda: mail(mail_sink, later_email))
    assert len(mail(mail_sink, email)) == 1
    assert len(await rows_for(service, event_id)) == 1


async def test_the_token_is_in_clear_only_in_the_email_it_was_sealed_for(
    service, producer, mail_sink, new_user, wait, mail
) -> None:
    """The event holds the token sealed and the queued email holds its body sealed, so
    neither the events stream nor notification.deliveries has a working link (ADR 0021,
    amendment); an event sealed with another key is handled with no email, not retried."""
    user_id, email = new_user()
    token = new_token()
    event_id = await producer.publish(reset_requested(user_id, token))
    [message] = await wait(lambda: mail(mail_sink, email))
    assert token in parts(message)[0]
    [row] = await rows_for(service, event_id)
    assert token not in str(row.payload) and set(row.payload) == {
        "to_addr",
        "to_name",
        "subject",
        "sealed_body",
    }

    forged_id, forged_email = new_user()
    forged = await producer.publish(
        reset_requested(forged_id, new_token(), sealed_with="another-deployments-secret")
    )
    later_id, later_email = new_user()
    await producer.publish(reset_requested(later_id, new_token()))
    await wait(lambda: mail(mail_sink, later_email))
    assert await wait(lambda: processed(service, forged))
    assert await rows_for(service, forged) == []
    assert mail(mail_sink, forged_email) == []


async def test_an_event_staged_before_tokens_were_sealed_still_mails_its_link(
    service, producer, mail_sink, new_user, wait, mail
) -> None:
    user_id, email = new_user()
    token = new_token()
    await producer.publish(reset_requested(user_id, token, sealed_with=None))
    [message] = await wait(lambda: mail(mail_sink, email))
    assert f"{BASE_URL}/#/reset-password?token={token}" in parts(message)[0]


async def test_the_link_goes_to_the_address_the_account_has_now(
    service, producer, peers, mail_sink, new_user, wait, mail
) -> None:
    """The event names the account only; an email changed since the request is used."""
    user_id, old_email = new_user()
    new_email = f"moved-{uuid.uuid4().hex[:8]}@example.test"
    peers.auth.users[user_id].email = new_email

    await producer.publish(reset_requested(user_id, new_token()))

    [message] = await wait(lambda: mail(mail_sink, new_email))
    assert message["Subject"] == SUBJECT
    assert mail(mail_sink, old_email) == []


async def test_disabled_deleted_accounts_and_expired_links_get_no_email(
    service, producer, peers, mail_sink, new_user, wait, mail
) -> None:
    disabled_id, disabled_email = new_user(active=False)
    deleted_id, deleted_email = new_user()
    del peers.auth.users[deleted_id]
    expired_id, expired_email = new_user()
    skipped = [
        await producer.publish(reset_requested(disabled_id, new_token())),
        await producer.publish(reset_requested(deleted_id, new_token())),
        await producer.publish(
            reset_requested(expired_id, new_token(), valid_for=timedelta(seconds=-1))
        ),
    ]

    later_id, later_email = new_user()
    await producer.publish(reset_requested(later_id, new_token()))
    await wait(lambda: mail(mail_sink, later_email))
    # Handled, not left to be retried: each is marked processed with nothing to send.
    for event_id in skipped:
        assert await wait(lambda event_id=event_id: processed(service, event_id))
        assert await rows_for(service, event_id) == []
    for address in (disabled_email, deleted_email, expired_email):
        assert mail(mail_sink, address) == []


@pytest.mark.parametrize(
    ("valid_for", "said"),
    [
        (timedelta(minutes=30), "for 30 minutes"),
        (timedelta(hours=2), "for 2 hours"),
        (timedelta(seconds=90), "for 1 minute"),
        (timedelta(seconds=1), "for 1 second"),
    ],
)
def test_the_email_says_how_long_the_link_works(valid_for: timedelta, said: str) -> None:
    requested_at = datetime(2026, 12, 6, 14, 2, tzinfo=UTC)
    email = EmailRenderer(links=ConsoleLinks(BASE_URL)).password_reset(
        to_addr="ada@example.test",
        name="Ada",
        token=new_token(),
        requested_at=requested_at,
        expires_at=requested_at + valid_for,
    )

    assert f"The link works once, {said} (until 2026-12-06 " in " ".join(email.text.split())


def test_a_token_cannot_change_what_the_link_opens() -> None:
    """Tokens come from events: percent-encoded, like every id in a console link."""
    assert (
        ConsoleLinks(f"{BASE_URL}/").reset_password("x#/jobs/1&y=2 z")
        == f"{BASE_URL}/#/reset-password?token=x%23%2Fjobs%2F1%26y%3D2%20z"
    )


async def test_a_signup_notice_points_an_owner_who_forgot_the_password_to_a_reset(
    service, producer, mail_sink, new_user, wait, mail
) -> None:
    user_id, email = new_user()
    await producer.publish(notification_pb2.Event(type="user.signup_attempted", user_id=user_id))

    [message] = await wait(lambda: mail(mail_sink, email))
    text, html = parts(message)
    assert f"ask for a link to choose a new one at {BASE_URL}/#/forgot-password" in text
    assert f'href="{BASE_URL}/#/forgot-password"' in html
    assert "administrator" not in text
