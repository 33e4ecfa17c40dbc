"""`user.password_changed` and `user.email_changed`: the account's owner is told that its
password or its sign-in address was changed, when and how, and what to do if it was not them.
The password notice goes to the address auth-service has for the account; the address notice
to the old address, which the event carries. Each goes out once per event, whatever the
notifications switch says, never to a webhook, and not for disabled or deleted accounts."""

import uuid
from datetime import UTC, datetime

import grpc
import pytest
from sqlalchemy import select

from notification_service.deliveries.models import deliveries
from notification_service.events.models import processed_events
from notification_service.links import ConsoleLinks
from notification_service.mail.render import EmailRenderer
from objectvision.v1 import notification_pb2

PASSWORD_CHANGED = "user.password_changed"
EMAIL_CHANGED = "user.email_changed"
# The second-factor notices (ADR 0034), specified in test_two_factor_notices.py.
TWO_FACTOR_ENABLED = "user.two_factor_enabled"
TWO_FACTOR_DISABLED = "user.two_factor_disabled"
RECOVERY_CODE_USED = "user.recovery_code_used"
PASSWORD_SUBJECT = "Your ObjectVision password was changed"
EMAIL_SUBJECT = "The sign-in address of your ObjectVision account was changed"
BASE_URL = "https://objectvision.test"
FORGOT_PASSWORD_URL = f"{BASE_URL}/#/forgot-password"
CHANGED_AT = datetime(2026, 12, 6, 14, 2, 31, tzinfo=UTC)


def password_changed(user_id: str, method: str = "settings") -> notification_pb2.Event:
    """The event as auth-service writes it: the account and how, nothing about the password."""
    event = notification_pb2.Event(
        type=PASSWORD_CHANGED,
        user_id=user_id,
        password_changed=notification_pb2.PasswordChanged(method=method),
    )
    event.occurred_at.FromDatetime(CHANGED_AT)
    return event


def email_changed(user_id: str, old_email: str, hint: str) -> notification_pb2.Event:
    """The event as auth-service writes it: the old address and a hint of the new one."""
    event = notification_pb2.Event(
        type=EMAIL_CHANGED,
        user_id=user_id,
        email_changed=notification_pb2.EmailChanged(old_email=old_email, new_email_hint=hint),
    )
    event.occurred_at.FromDatetime(CHANGED_AT)
    return event


def moved(peers, user_id: str) -> tuple[str, str]:
    """Give the account a new address, as auth-service has it after the change; returns the
    new address and its hint."""
    domain = f"{uuid.uuid4().hex[:8]}.example.test"
    new_email = f"mover@{domain}"
    peers.auth.users[user_id].email = new_email
    return new_email, f"m***@{domain}"


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


async def handled_in_order(producer, new_user, wait, mail, mail_sink) -> None:
    """The stream is consumed in order: once a later event's email is out, every event
    published before it has been handled."""
    later_id, later_email = new_user()
    await producer.publish(password_changed(later_id))
    await wait(lambda: mail(mail_sink, later_email))


async def test_a_changed_password_is_mailed_to_the_owner_once_and_to_no_webhook(
    service, producer, mail_sink, receiver, new_user, wait, mail, as_user
) -> None:
    user_id, email = new_user(name="Ada Lovelace", notifications=False)
    hook_path = f"/hooks/{uuid.uuid4().hex}"
    await service.stub.CreateWebhook(
        notification_pb2.CreateWebhookRequest(url=receiver.url(hook_path)),
        metadata=as_user(user_id),
    )
    event_id = await producer.publish(password_changed(user_id))

    [message] = await wait(lambda: mail(mail_sink, email))
    assert message["Subject"] == PASSWORD_SUBJECT
    assert message["To"].addresses[0].addr_spec == email
    assert message["To"].addresses[0].display_name == "Ada Lovelace"
    assert message.get_content_type() == "multipart/alternative"
    text, html = parts(message)
    assert "Hello Ada Lovelace" in text
    assert (
        f"the password of your ObjectVision account, {email}, was changed on "
        "2026-12-06 14:02 UTC in the account's settings." in text
    )
    assert "Every session of the account was ended" in text
    assert "If it was not you, nor done at your request:" in text
    assert f"Choose a new password now with a link sent to this address: {FORGOT_PASSWORD_URL}" in (
        text
    )
    assert f'<a href="{FORGOT_PASSWORD_URL}">Choose a new password now</a>' in html

    await producer.publish_again(event_id)
    await handled_in_order(producer, new_user, wait, mail, mail_sink)
    assert len(mail(mail_sink, email)) == 1
    [row] = await rows_for(service, event_id)
    assert (row.channel, row.target) == ("email", email)
    assert receiver.received(hook_path) == []


async def test_the_password_notice_goes_to_the_address_the_account_has_now(
    service, producer, peers, mail_sink, new_user, wait, mail
) -> None:
    """Like the reset link: the event names the account, whose address may have changed."""
    user_id, old_email = new_user()
    new_email, _ = moved(peers, user_id)

    await producer.publish(password_changed(user_id, method="reset_link"))

    [message] = await wait(lambda: mail(mail_sink, new_email))
    assert message["Subject"] == PASSWORD_SUBJECT
    text, _ = parts(message)
    assert "2026-12-06 14:02 UTC with a password reset link sent to the account's address." in (
        text
    )
    assert mail(mail_sink, old_email) == []


async def test_a_changed_address_is_mailed_to_the_old_address_once(
    service, producer, peers, mail_sink, receiver, new_user, wait, mail, as_user
) -> None:
    user_id, old_email = new_user(name="Grace")
    new_email, hint = moved(peers, user_id)
    hook_path = f"/hooks/{uuid.uuid4().hex}"
    await service.stub.CreateWebhook(
        notification_pb2.CreateWebhookRequest(url=receiver.url(hook_path)),
        metadata=as_user(user_id),
    )
    event_id = await producer.publish(email_changed(user_id, old_email, hint))

    [message] = await wait(lambda: mail(mail_sink, old_email))
    assert message["Subject"] == EMAIL_SUBJECT
    assert message["To"].addresses[0].addr_spec == old_email
    assert message["To"].addresses[0].display_name == "Grace"
    text, html = parts(message)
    assert (
        "the address your ObjectVision account signs in with was changed on 2026-12-06 14:02 "
        f"UTC, from {old_email} to {hint} (shown in part)." in text
    )
    assert new_email not in text and new_email not in html
    assert "If it was not you: someone who knew your password has moved your account" in text
    assert "ask the administrator of this ObjectVision service to give the account back" in text
    assert "<strong>If it was not you:</strong>" in html

    await producer.publish_again(event_id)
    await handled_in_order(producer, new_user, wait, mail, mail_sink)
    assert len(mail(mail_sink, old_email)) == 1
    assert mail(mail_sink, new_email) == []
    [row] = await rows_for(service, event_id)
    assert (row.channel, row.target) == ("email", old_email)
    assert receiver.received(hook_path) == []


@pytest.mark.parametrize("event_type", [PASSWORD_CHANGED, EMAIL_CHANGED])
async def test_disabled_and_deleted_accounts_are_not_mailed(
    service, producer, peers, mail_sink, new_user, wait, mail, event_type
) -> None:
    """As for the password reset email: auth-service no longer shows the account."""
    disabled_id, disabled_email = new_user(active=False)
    deleted_id, deleted_email = new_user()
    del peers.auth.users[deleted_id]

    def notice(user_id: str, address: str) -> notification_pb2.Event:
        if event_type == PASSWORD_CHANGED:
            return password_changed(user_id)
        return email_changed(user_id, address, "m***@example.test")

    skipped = [
        await producer.publish(notice(disabled_id, disabled_email)),
        await producer.publish(notice(deleted_id, deleted_email)),
    ]

    await handled_in_order(producer, new_user, wait, mail, mail_sink)
    # Handled, not left to be retried: each is marked processed with nothing to send.
    for event_id in skipped:
        assert await wait(lambda event_id=event_id: processed(service, event_id))
        assert await rows_for(service, event_id) == []
    assert mail(mail_sink, disabled_email) == [] and mail(mail_sink, deleted_email) == []


@pytest.mark.parametrize(
    ("method", "said"),
    [
        ("settings", "was changed on 2026-12-06 14:02 UTC in the account's settings."),
        (
            "administrator",
            "was changed on 2026-12-06 14:02 UTC by an administrator of this service.",
        ),
        (
            "reset_link",
            "was changed on 2026-12-06 14:02 UTC with a password reset link sent to the "
            "account's address.",
        ),
        # A method a newer auth-service may add: the notice still goes, without the "how".
        ("passkey", "was changed on 2026-12-06 14:02 UTC. Every session"),
    ],
)
def test_the_password_notice_says_how_the_password_was_changed(method: str, said: str) -> None:
    email = EmailRenderer(links=ConsoleLinks(BASE_URL)).password_changed(
        to_addr="ada@example.test", name="Ada", method=method, changed_at=CHANGED_AT
    )

    for part in (email.text, email.html):
        assert said in " ".join(part.split()).replace("&#39;", "'")


@pytest.mark.parametrize(
    "event_type",
    [PASSWORD_CHANGED, EMAIL_CHANGED, TWO_FACTOR_ENABLED, TWO_FACTOR_DISABLED, RECOVERY_CODE_USED],
)
async def test_webhooks_cannot_subscribe_to_the_notices(
    service, receiver, new_user, as_user, event_type: str
) -> None:
    user_id, _ = new_user()

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await service.stub.CreateWebhook(
            notification_pb2.CreateWebhookRequest(
                url=receiver.url(f"/hooks/{uuid.uuid4().hex}"), events=[event_type]
            ),
            metadata=as_user(user_id),
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "unknown event types" in refused.value.details()
