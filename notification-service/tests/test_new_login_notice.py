"""`user.new_login` (ADR 0035): an account logged in to from somewhere none of its earlier
logins was; its owner is told where from and with what, and how to end that session if it was
not them. Like the password notice it goes to the address the account has now, once per
event, whatever the notifications switch says, and not for disabled accounts. What the login's
caller chose (its User-Agent) is shown only as plain, short text."""

from notification_service.links import ConsoleLinks
from notification_service.mail.render import EmailRenderer
from objectvision.v1 import notification_pb2

from .test_security_notices import (
    BASE_URL,
    CHANGED_AT,
    FORGOT_PASSWORD_URL,
    handled_in_order,
    parts,
    processed,
    rows_for,
)

NEW_LOGIN = "user.new_login"
SUBJECT = "New login to your ObjectVision account"


def new_login(
    user_id: str, *, ip: str = "198.51.100.23", agent: str = "curl/8.5.0", second_factor=False
) -> notification_pb2.Event:
    event = notification_pb2.Event(
        type=NEW_LOGIN,
        user_id=user_id,
        new_login=notification_pb2.NewLogin(
            client_ip=ip, user_agent=agent, second_factor=second_factor
        ),
    )
    event.occurred_at.FromDatetime(CHANGED_AT)
    return event


async def test_a_new_login_is_mailed_to_the_owner_once_with_where_and_what_to_do(
    service, producer, mail_sink, new_user, wait, mail
) -> None:
    user_id, email = new_user(name="Ada Lovelace", notifications=False)
    event_id = await producer.publish(new_login(user_id))

    [message] = await wait(lambda: mail(mail_sink, email))
    assert message["Subject"] == SUBJECT
    text, html = parts(message)
    assert (
        f"your ObjectVision account, {email}, was logged in to on 2026-12-06 14:02 UTC from "
        "198.51.100.23 with curl/8.5.0." in text
    )
    assert f"every session is listed: {BASE_URL}/#/settings" in text
    assert FORGOT_PASSWORD_URL in text and f'href="{FORGOT_PASSWORD_URL}"' in html

    await producer.publish_again(event_id)
    await handled_in_order(producer, new_user, wait, mail, mail_sink)
    assert len(mail(mail_sink, email)) == 1
    [row] = await rows_for(service, event_id)
    assert (row.channel, row.target) == ("email", email)


async def test_no_mail_for_a_disabled_account(
    service, producer, mail_sink, new_user, wait, mail
) -> None:
    user_id, email = new_user(active=False)
    event_id = await producer.publish(new_login(user_id))

    await handled_in_order(producer, new_user, wait, mail, mail_sink)
    assert await processed(service, event_id)
    assert mail(mail_sink, email) == []


def test_the_user_agent_is_shown_as_short_plain_text_and_escaped_in_html() -> None:
    agent = "<b>Mozilla</b>\r\nBcc: someone" + " filler" * 40
    email = EmailRenderer(links=ConsoleLinks(BASE_URL)).new_login(
        to_addr="ada@example.test",
        name="Ada",
        client_ip="",
        user_agent=agent,
        second_factor=True,
        logged_in_at=CHANGED_AT,
    )

    text = " ".join(email.text.split())
    assert "from an unknown address with <b>Mozilla</b> Bcc: someone filler" in text
    assert "…, with a code from its authenticator app." in text
    assert "\r" not in email.text.split("with <b>")[1].split("…")[0]
    assert "&lt;b&gt;Mozilla&lt;/b&gt;" in email.html and "<b>Mozilla</b>" not in email.html
    assert len(text.split(" with ", 1)[1].split("…")[0]) <= 120
