"""`user.email_verification_requested`: the link that confirms an address goes to that
address, once per event, only while the account still has it and only while the link can
still work (ADR 0029)."""

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from notification_service.deliveries.models import deliveries
from notification_service.events.models import processed_events
from notification_service.links import ConsoleLinks
from notification_service.mail.render import EmailRenderer
from objectvision.v1 import notification_pb2
from objectvision_common.sealing import event_secrets

from .conftest import SERVICE_SECRET

EMAIL_VERIFICATION_REQUESTED = "user.email_verification_requested"
SUBJECT = "Confirm your ObjectVision email address"
BASE_URL = "https://objectvision.test"


def verification_requested(
    user_id: str,
    email: str,
    token: str,
    *,
    valid_for: timedelta = timedelta(hours=48),
    change_of_address: bool = False,
) -> notification_pb2.Event:
    """The event as auth-service writes it: the account, the address, the token (sealed
    with the key derived from SERVICE_TOKEN_SECRET), its end, and whether the address is one
    the account waits to move to (ADR 0033)."""
    requested_at = datetime.now(UTC)
    event = notification_pb2.Event(
        type=EMAIL_VERIFICATION_REQUESTED,
        user_id=user_id,
        email_verification_requested=notification_pb2.EmailVerificationRequested(
            sealed_token=event_secrets(SERVICE_SECRET).seal(token),
            email=email,
            change_of_address=change_of_address,
        ),
    )
    event.occurred_at.FromDatetime(requested_at)
    event.email_verification_requested.expires_at.FromDatetime(requested_at + valid_for)
    return event


def new_token() -> str:
    return f"ove_{uuid.uuid4().hex}{uuid.uuid4().hex[:11]}"


def parts(message) -> tuple[str, str]:
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


async def test_the_address_gets_one_email_with_the_link_even_when_the_event_comes_twice(
    service, producer, mail_sink, new_user, wait, mail
) -> None:
    user_id, email = new_user(name="Ada Lovelace", notifications=False)
    token = new_token()
    event_id = await producer.publish(verification_requested(user_id, email, token))

    [message] = await wait(lambda: mail(mail_sink, email))
    assert message["Subject"] == SUBJECT
    assert message["To"].addresses[0].addr_spec == email
    text, html = parts(message)
    link = f"{BASE_URL}/#/verify-email?token={token}"
    assert "Hello Ada Lovelace" in text
    assert f"confirm that {email} is the email address of your ObjectVision account" in text
    assert f" {link} " in text and f'href="{link}"' in html
    assert "The link works once, for 48 hours (until " in text

    await producer.publish_again(event_id)
    later_id, later_email = new_user()
    await producer.publish(verification_requested(later_id, later_email, new_token()))
    await wait(lambda: mail(mail_sink, later_email))
    assert len(mail(mail_sink, email)) == 1
    assert len(await rows_for(service, event_id)) == 1


async def test_no_email_for_an_address_left_since_a_disabled_account_or_an_expired_link(
    service, producer, peers, mail_sink, new_user, wait, mail
) -> None:
    moved_id, left_email = new_user()
    peers.auth.users[moved_id].email = f"moved-{uuid.uuid4().hex[:8]}@example.test"
    disabled_id, disabled_email = new_user(active=False)
    expired_id, expired_email = new_user()
    skipped = [
        await producer.publish(verification_requested(moved_id, left_email, new_token())),
        await producer.publish(verification_requested(disabled_id, disabled_email, new_token())),
        await producer.publish(
            verification_requested(
                expired_id, expired_email, new_token(), valid_for=timedelta(seconds=-1)
            )
        ),
    ]

    later_id, later_email = new_user()
    await producer.publish(verification_requested(later_id, later_email, new_token()))
    await wait(lambda: mail(mail_sink, later_email))
    for event_id in skipped:
        assert await wait(lambda event_id=event_id: processed(service, event_id))
        assert await rows_for(service, event_id) == []
    for address in (left_email, disabled_email, expired_email):
        assert mail(mail_sink, address) == []
    assert mail(mail_sink, peers.auth.users[moved_id].email) == []


async def test_a_change_of_address_link_goes_to_the_new_address_while_the_account_waits_for_it(
    service, producer, peers, mail_sink, new_user, wait, mail
) -> None:
    """ADR 0033: the link that moves the account goes to the address it moves to, and says
    so; not to the account's current address, and not once the account waits for another."""
    user_id, current_email = new_user(name="Ada")
    new_email = f"new-{uuid.uuid4().hex[:8]}@example.test"
    peers.auth.users[user_id].pending_email = new_email
    token = new_token()
    await producer.publish(
        verification_requested(user_id, new_email, token, change_of_address=True)
    )

    [message] = await wait(lambda: mail(mail_sink, new_email))
    assert message["Subject"] == "Confirm the new email address of your ObjectVision account"
    text, html = parts(message)
    assert f"asked to make {new_email} its email address" in text
    assert "Until it is opened, the account keeps its current address" in text
    link = f"{BASE_URL}/#/verify-email?token={token}"
    assert f" {link} " in text and f'href="{link}"' in html

    given_up = f"given-up-{uuid.uuid4().hex[:8]}@example.test"
    skipped = await producer.publish(
        verification_requested(user_id, given_up, new_token(), change_of_address=True)
    )
    assert await wait(lambda: processed(service, skipped))
    assert await rows_for(service, skipped) == []
    assert mail(mail_sink, given_up) == []
    assert mail(mail_sink, current_email) == []


def test_a_token_cannot_change_what_the_link_opens() -> None:
    assert (
        ConsoleLinks(f"{BASE_URL}/").verify_email("x#/jobs/1&y=2 z")
        == f"{BASE_URL}/#/verify-email?token=x%23%2Fjobs%2F1%26y%3D2%20z"
    )


def test_the_email_says_how_long_the_link_works() -> None:
    requested_at = datetime(2026, 12, 6, 14, 2, tzinfo=UTC)
    email = EmailRenderer(links=ConsoleLinks(BASE_URL)).email_verification(
        to_addr="ada@example.test",
        name="Ada",
        token=new_token(),
        requested_at=requested_at,
        expires_at=requested_at + timedelta(hours=48),
    )

    assert "The link works once, for 48 hours (until 2026-12-08 14:02 UTC)" in " ".join(
        email.text.split()
    )
