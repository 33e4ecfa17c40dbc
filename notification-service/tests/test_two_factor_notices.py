"""`user.two_factor_enabled`, `user.two_factor_disabled` and `user.recovery_code_used` (ADR
0034): the account's owner is told that its second factor was turned on or off, or that a
recovery code logged in, when (and how, or how many codes are left), and what to do if it was
not them. Like the password notice, each goes to the address auth-service has for the account
now, once per event, whatever the notifications switch says, never to a webhook, and not for
disabled or deleted accounts."""

import uuid
from dataclasses import dataclass

import pytest

from notification_service.links import ConsoleLinks
from notification_service.mail.render import EmailRenderer
from objectvision.v1 import notification_pb2

from .test_security_notices import (
    BASE_URL,
    CHANGED_AT,
    FORGOT_PASSWORD_URL,
    RECOVERY_CODE_USED,
    TWO_FACTOR_DISABLED,
    TWO_FACTOR_ENABLED,
    handled_in_order,
    moved,
    parts,
    processed,
    rows_for,
)

SETTINGS_URL = f"{BASE_URL}/#/settings"
WHEN = "2026-12-06 14:02 UTC"


def two_factor_changed(
    event_type: str, user_id: str, *, method: str = "", codes_left: int = 0
) -> notification_pb2.Event:
    """The event as auth-service writes it: the account, who turned the factor off, and how
    many recovery codes are left; nothing about the secret or the codes themselves."""
    event = notification_pb2.Event(
        type=event_type,
        user_id=user_id,
        two_factor_changed=notification_pb2.TwoFactorChanged(
            method=method, recovery_codes_left=codes_left
        ),
    )
    event.occurred_at.FromDatetime(CHANGED_AT)
    return event


@dataclass(frozen=True)
class Notice:
    """One notice as its owner reads it: the event that sends it, its subject, and what its
    text says (`{email}` stands for the account's address)."""

    event_type: str
    subject: str
    says: tuple[str, ...]
    method: str = ""
    codes_left: int = 0

    def event(self, user_id: str) -> notification_pb2.Event:
        return two_factor_changed(
            self.event_type, user_id, method=self.method, codes_left=self.codes_left
        )


IF_NOT_YOU = f"Choose a new password now with a link sent to this address: {FORGOT_PASSWORD_URL}"

NOTICES = [
    Notice(
        TWO_FACTOR_ENABLED,
        "Two-factor authentication was turned on for your ObjectVision account",
        (
            "two-factor authentication was turned on for your ObjectVision account, {email}, "
            f"on {WHEN}. From now on, logging in takes the password and a code from the "
            "authenticator app it was set up with.",
            "Keep the recovery codes shown when it was turned on somewhere safe and away from "
            "your phone",
            IF_NOT_YOU,
            "ask the administrator of this ObjectVision service to turn two-factor "
            "authentication off for your account.",
        ),
        codes_left=10,
    ),
    Notice(
        TWO_FACTOR_DISABLED,
        "Two-factor authentication was turned off for your ObjectVision account",
        (
            "two-factor authentication was turned off for your ObjectVision account, {email}, "
            f"on {WHEN} by an administrator of this service. Logging in now needs only the "
            "password.",
            "If it was not you, nor done at your request: someone else may know your password.",
            IF_NOT_YOU,
        ),
        method="administrator",
    ),
    Notice(
        RECOVERY_CODE_USED,
        "A recovery code was used to log in to your ObjectVision account",
        (
            "a recovery code was used to log in to your ObjectVision account, {email}, on "
            f"{WHEN}. That code does not work again. 1 recovery code is left.",
            f"Make new ones now in the account's settings: {SETTINGS_URL}",
            "If it was not you: someone has your password and one of your recovery codes.",
            IF_NOT_YOU,
        ),
        codes_left=1,
    ),
]


@pytest.mark.parametrize("notice", NOTICES, ids=lambda notice: notice.event_type)
async def test_each_notice_is_mailed_to_the_owners_address_once_and_to_no_webhook(
    service, producer, peers, mail_sink, receiver, new_user, wait, mail, as_user, notice: Notice
) -> None:
    """To the address the account has now (it may have changed since sign-up), with the
    job-report switch off, and once although the stream delivers the event twice."""
    user_id, signup_email = new_user(name="Ada Lovelace", notifications=False)
    email, _ = moved(peers, user_id)
    hook_path = f"/hooks/{uuid.uuid4().hex}"
    await service.stub.CreateWebhook(
        notification_pb2.CreateWebhookRequest(url=receiver.url(hook_path)),
        metadata=as_user(user_id),
    )
    event_id = await producer.publish(notice.event(user_id))

    [message] = await wait(lambda: mail(mail_sink, email))
    assert message["Subject"] == notice.subject
    assert message["To"].addresses[0].addr_spec == email
    assert message["To"].addresses[0].display_name == "Ada Lovelace"
    assert message.get_content_type() == "multipart/alternative"
    text, html = parts(message)
    assert "Hello Ada Lovelace" in text
    for said in notice.says:
        assert said.format(email=email) in text
    assert f'<a href="{FORGOT_PASSWORD_URL}">Choose a new password now</a>' in html

    await producer.publish_again(event_id)
    await handled_in_order(producer, new_user, wait, mail, mail_sink)
    assert len(mail(mail_sink, email)) == 1
    assert mail(mail_sink, signup_email) == []
    [row] = await rows_for(service, event_id)
    assert (row.channel, row.target) == ("email", email)
    assert receiver.received(hook_path) == []


@pytest.mark.parametrize(
    "event_type", [TWO_FACTOR_ENABLED, TWO_FACTOR_DISABLED, RECOVERY_CODE_USED]
)
async def test_disabled_and_deleted_accounts_are_not_mailed(
    service, producer, peers, mail_sink, new_user, wait, mail, event_type: str
) -> None:
    """As for the password notice: auth-service no longer shows the account."""
    disabled_id, disabled_email = new_user(active=False)
    deleted_id, deleted_email = new_user()
    del peers.auth.users[deleted_id]

    skipped = [
        await producer.publish(two_factor_changed(event_type, disabled_id, method="settings")),
        await producer.publish(two_factor_changed(event_type, deleted_id, method="settings")),
    ]

    await handled_in_order(producer, new_user, wait, mail, mail_sink)
    # Handled, not left to be retried: each is marked processed with nothing to send.
    for event_id in skipped:
        assert await wait(lambda event_id=event_id: processed(service, event_id))
        assert await rows_for(service, event_id) == []
    assert mail(mail_sink, disabled_email) == [] and mail(mail_sink, deleted_email) == []


def readable(part: str) -> str:
    """A rendered part with its whitespace runs made single spaces and apostrophes unescaped."""
    return " ".join(part.split()).replace("&#39;", "'")


@pytest.mark.parametrize(
    ("method", "said"),
    [
        ("settings", f"on {WHEN} by you in the account's settings. Logging in now needs only"),
        ("administrator", f"on {WHEN} by an administrator of this service. Logging in now"),
        # A method a newer auth-service may add: the notice still goes, without the "how".
        ("security_key", f"on {WHEN}. Logging in now needs only the password."),
        ("", f"on {WHEN}. Logging in now needs only the password."),
    ],
)
def test_the_turned_off_notice_says_who_turned_it_off(method: str, said: str) -> None:
    email = EmailRenderer(links=ConsoleLinks(BASE_URL)).two_factor_disabled(
        to_addr="ada@example.test", name="Ada", method=method, disabled_at=CHANGED_AT
    )

    for part in (email.text, email.html):
        assert said in readable(part)


@pytest.mark.parametrize(
    ("codes_left", "said", "urges_new_codes"),
    [
        (0, "No recovery codes are left.", True),
        (1, "1 recovery code is left.", True),
        (2, "2 recovery codes are left.", True),
        (3, "3 recovery codes are left.", False),
        (9, "9 recovery codes are left.", False),
    ],
)
def test_the_recovery_code_notice_counts_the_codes_left_and_urges_new_ones_when_few(
    codes_left: int, said: str, urges_new_codes: bool
) -> None:
    email = EmailRenderer(links=ConsoleLinks(BASE_URL)).recovery_code_used(
        to_addr="ada@example.test", name="Ada", codes_left=codes_left, used_at=CHANGED_AT
    )

    for part in (email.text, email.html):
        assert said in readable(part)
        assert ("Make new ones now" in readable(part)) is urges_new_codes
    assert (f'href="{SETTINGS_URL}"' in email.html) is urges_new_codes
