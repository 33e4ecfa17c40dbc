"""Emails end to end: outbox -> relay -> stream -> consumer -> delivery -> real SMTP server."""

import json
import uuid

import pytest
from sqlalchemy import select

from notification_service.deliveries.errors import DeliveryFailedError
from notification_service.deliveries.models import deliveries
from notification_service.links import ConsoleLinks
from notification_service.mail.headers import UnsafeHeaderError, safe_header_value
from notification_service.mail.render import EmailRenderer
from notification_service.mail.transports import BrevoTransport, OutgoingEmail
from objectvision.v1 import detection_pb2, notification_pb2


async def rows_for(service, event_id: str):
    async with service.runtime.sessions() as session:
        result = await session.execute(
            select(deliveries).where(deliveries.c.event_id == uuid.UUID(event_id))
        )
        return result.all()


async def test_a_new_user_gets_one_welcome_email_even_when_the_event_comes_twice(
    service, producer, mail_sink, new_user, events, wait, mail
) -> None:
    user_id, email = new_user()
    event_id = await producer.publish(events.registered(user_id, email, "Ada Lovelace"))

    [message] = await wait(lambda: mail(mail_sink, email))
    assert message["Subject"] == "Welcome to ObjectVision"
    assert message["To"].addresses[0].display_name == "Ada Lovelace"
    assert message["From"].addresses[0].addr_spec == "noreply@objectvision.test"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "Hello Ada Lovelace" in text and "https://objectvision.test/" in text
    assert "<strong>ObjectVision</strong>" in html
    # Images only: there is no video upload to promise.
    assert "video" not in text.lower() and "video" not in html.lower()

    await producer.publish_again(event_id)
    # The stream is consumed in order: once a later event's email is out, the repeat has
    # been handled too.
    later_id, later_email = new_user()
    await producer.publish(events.registered(later_id, later_email, "Grace"))
    await wait(lambda: mail(mail_sink, later_email))
    assert len(mail(mail_sink, email)) == 1
    assert len(await rows_for(service, event_id)) == 1


async def test_a_name_that_would_inject_headers_is_refused(
    service, producer, mail_sink, new_user, events, wait, mail
) -> None:
    user_id, email = new_user()
    event_id = await producer.publish(
        events.registered(user_id, email, "Eve\r\nBcc: victim@example.test")
    )

    [row] = await wait(lambda: rows_for(service, event_id))
    assert row.state == "dead"
    assert "refused" in row.last_error
    later_id, later_email = new_user()
    await producer.publish(events.registered(later_id, later_email, "Grace"))
    await wait(lambda: mail(mail_sink, later_email))
    assert mail(mail_sink, email) == []
    assert mail(mail_sink, "victim@example.test") == []


@pytest.mark.parametrize(
    "value", ["Eve\r\nBcc: x@example.test", "Eve\nX-Evil: 1", "Eve\rX", "Eve\x00", "Eve\u2028X"]
)
def test_header_values_with_line_breaks_or_control_characters_are_refused(value: str) -> None:
    with pytest.raises(UnsafeHeaderError):
        safe_header_value(value, field="name")
    with pytest.raises(UnsafeHeaderError):
        EmailRenderer(links=ConsoleLinks("https://x.test")).welcome(to_addr="a@x.test", name=value)


def test_an_address_that_is_not_one_mailbox_is_refused() -> None:
    renderer = EmailRenderer(links=ConsoleLinks("https://x.test"))
    for address in ("a@x.test, b@y.test", "a b@x.test", "no-at-sign", "a@x.test\r\nBcc: b@y"):
        with pytest.raises(UnsafeHeaderError):
            renderer.welcome(to_addr=address, name="A")


async def test_an_internationalised_domain_is_mailed_in_the_form_servers_route(
    service, producer, mail_sink, new_user, events, wait, mail, receiver
) -> None:
    """An address is stored as typed (`bücher.example`); the message and the SMTP envelope
    name the domain in ASCII (`xn--bcher-kva.example`), as does the Brevo request, since an
    RFC 2047 encoded word in a domain routes nowhere."""
    user_id, _ = new_user()
    local = f"ada-{uuid.uuid4().hex[:8]}"
    await producer.publish(events.registered(user_id, f"{local}@Bücher.example", "Ada"))

    [message] = await wait(lambda: mail(mail_sink, f"{local}@xn--bcher-kva.example"))
    assert message["Subject"] == "Welcome to ObjectVision"
    assert "=?" not in str(message["To"])

    transport = BrevoTransport(api_key="xkeysib-test", url=receiver.url("/v3/brevo-idn"))
    email = EmailRenderer(links=ConsoleLinks("https://x.test")).welcome(
        to_addr="ada@bücher.example", name="Ada"
    )
    await transport.send(
        OutgoingEmail(email=email, sender_addr="noreply@x.test", sender_name="OV", delivery_id="d")
    )
    [request] = receiver.received("/v3/brevo-idn")
    assert json.loads(request.body)["to"] == [{"email": "ada@xn--bcher-kva.example", "name": "Ada"}]


def test_a_domain_no_server_can_route_is_refused() -> None:
    renderer = EmailRenderer(links=ConsoleLinks("https://x.test"))
    for address in ("a@exa mple.test", "a@b\u00fc\u200dcher.example", "a@-b\u00fccher-.example"):
        with pytest.raises(UnsafeHeaderError):
            renderer.welcome(to_addr=address, name="A")


async def test_a_finished_job_sends_a_report_with_counts_per_class(
    service, producer, mail_sink, new_user, events, wait, mail
) -> None:
    user_id, email = new_user()
    job_id = str(uuid.uuid4())
    await producer.publish(
        events.finished(user_id, job_id, counts={"person": 3, "car": 1, "dog": 7})
    )

    [message] = await wait(lambda: mail(mail_sink, email))
    assert message["Subject"] == "Your detection job finished: 4 of 4 images"
    text = message.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "dog: 7\n  person: 3\n  car: 1" in text
    assert "Objects found (11)" in text
    # The console's own page of the job, and the settings page that turns these emails off.
    assert f"Results: https://objectvision.test/#/jobs/{job_id}" in text
    assert f'href="https://objectvision.test/#/jobs/{job_id}"' in html
    assert "https://objectvision.test/#/settings" in text
    assert 'href="https://objectvision.test/#/settings"' in html
    assert '<td style="padding: 2px 12px 2px 0;">dog</td>' in html


def test_a_counting_video_jobs_report_lists_its_line_crossings():
    """ADR 0039: the report of a video job with counting lines says what crossed each."""
    renderer = EmailRenderer(links=ConsoleLinks("https://x.test"))
    finished = notification_pb2.JobFinished(
        job_id=str(uuid.uuid4()),
        status="completed",
        total=8,
        processed=8,
        kind="video",
        class_counts={"bus": 8},
        line_counts=[
            detection_pb2.LineCount(
                line="gate", class_id=5, class_name="bus", crossed_in=1, crossed_out=0
            ),
            detection_pb2.LineCount(
                line="gate", class_id=0, class_name="person", crossed_in=2, crossed_out=3
            ),
        ],
    )

    email = renderer.job_report(to_addr="a@x.test", name="A", finished=finished)

    text = email.text.replace("\r\n", "\n")
    assert (
        "Crossings of the counting lines (in / out):\n  gate, bus: 1 / 0\n  gate, person: 2 / 3"
        in text
    )
    assert (
        '<caption style="text-align: left;">Crossings of the counting lines</caption>' in email.html
    )
    assert '<td style="text-align: right; padding: 2px 12px 2px 0;">2</td>' in email.html
    without = renderer.job_report(
        to_addr="a@x.test", name="A", finished=notification_pb2.JobFinished(status="completed")
    )
    assert "counting lines" not in without.text and "counting lines" not in without.html


def test_a_video_job_with_zones_report_lists_who_was_in_each():
    """ADR 0042: the report of a video job with counting zones says who was in each."""
    renderer = EmailRenderer(links=ConsoleLinks("https://x.test"))
    finished = notification_pb2.JobFinished(
        job_id=str(uuid.uuid4()),
        status="completed",
        total=8,
        processed=8,
        kind="video",
        class_counts={"person": 12},
        zone_counts=[
            detection_pb2.ZoneCount(
                zone="queue",
                class_id=0,
                class_name="person",
                visited=3,
                peak=2,
                mean_stay_seconds=4.25,
            )
        ],
    )

    email = renderer.job_report(to_addr="a@x.test", name="A", finished=finished)

    text = email.text.replace("\r\n", "\n")
    assert (
        "Who was in the counting zones (visited, most at once, mean stay):\n"
        "  queue, person: 3, 2, 4.2 s" in text
    )
    assert '<caption style="text-align: left;">Who was in the counting zones</caption>' in (
        email.html
    )
    assert '<td style="text-align: right;">4.2 s</td>' in email.html
    assert "counting lines" not in text, "no line table for a job without lines"


async def test_a_failed_job_report_says_why(
    service, producer, mail_sink, new_user, events, wait, mail
) -> None:
    user_id, email = new_user()
    await producer.publish(events.finished(user_id, str(uuid.uuid4()), status="failed"))
    [message] = await wait(lambda: mail(mail_sink, email))
    assert message["Subject"] == "Your detection job failed"
    assert "model server unavailable" in message.get_body(preferencelist=("plain",)).get_content()


async def test_users_with_notifications_off_get_no_job_email_but_a_welcome(
    service, producer, mail_sink, new_user, events, wait, mail
) -> None:
    user_id, email = new_user(notifications=False)
    await producer.publish(events.registered(user_id, email, "Quiet"))
    job_event = await producer.publish(events.finished(user_id, str(uuid.uuid4())))
    later_id, later_email = new_user()
    await producer.publish(events.finished(later_id, str(uuid.uuid4())))

    await wait(lambda: mail(mail_sink, later_email))
    [welcome] = mail(mail_sink, email)
    assert welcome["Subject"] == "Welcome to ObjectVision"
    assert await rows_for(service, job_event) == []


async def test_an_event_whose_recipient_cannot_be_looked_up_yet_is_retried(
    service, producer, mail_sink, new_user, events, wait, mail
) -> None:
    """auth-service unavailable: the message stays pending and is claimed again later."""
    user_id, email = new_user(unavailable_times=2)
    await producer.publish(events.finished(user_id, str(uuid.uuid4())))
    [message] = await wait(lambda: mail(mail_sink, email), within=20)
    assert message["Subject"].startswith("Your detection job finished")


async def test_the_brevo_transport_posts_the_documented_json_with_the_api_key(receiver) -> None:
    transport = BrevoTransport(api_key="xkeysib-test", url=receiver.url("/v3/smtp/email"))
    email = EmailRenderer(links=ConsoleLinks("https://x.test")).welcome(
        to_addr="ada@example.test", name="Ada"
    )
    outgoing = OutgoingEmail(
        email=email, sender_addr="noreply@x.test", sender_name="ObjectVision", delivery_id="d-1"
    )

    assert await transport.send(outgoing) == 201

    [request] = receiver.received("/v3/smtp/email")
    assert request.headers["api-key"] == "xkeysib-test"
    assert request.headers["Content-Type"] == "application/json"
    body = json.loads(request.body)
    assert body == {
        "sender": {"name": "ObjectVision", "email": "noreply@x.test"},
        "to": [{"email": "ada@example.test", "name": "Ada"}],
        "subject": "Welcome to ObjectVision",
        "htmlContent": email.html,
        "textContent": email.text,
        "headers": {"X-ObjectVision-Delivery": "d-1"},
    }


async def test_brevo_errors_are_failed_attempts(receiver) -> None:
    receiver.script("/v3/brevo-down", [503, 400])
    transport = BrevoTransport(api_key="k", url=receiver.url("/v3/brevo-down"))
    outgoing = OutgoingEmail(
        email=EmailRenderer(links=ConsoleLinks("https://x.test")).welcome(
            to_addr="a@x.test", name=""
        ),
        sender_addr="noreply@x.test",
        sender_name="ObjectVision",
        delivery_id="d-2",
    )
    with pytest.raises(DeliveryFailedError) as transient:
        await transport.send(outgoing)
    assert transient.value.status_code == 503 and not transient.value.permanent
    with pytest.raises(DeliveryFailedError) as permanent:
        await transport.send(outgoing)
    assert permanent.value.permanent


def test_the_welcome_email_links_to_the_settings_it_mentions() -> None:
    """It says "turn that off in your settings": the link opens the console's settings page."""
    email = EmailRenderer(links=ConsoleLinks("https://ov.test/console/")).welcome(
        to_addr="ada@example.test", name="Ada"
    )
    assert "turn that off in your settings at any time:\nhttps://ov.test/console/#/settings" in (
        email.text
    )
    assert 'href="https://ov.test/console/#/settings"' in email.html
    assert 'href="https://ov.test/console/"' in email.html


def test_links_cannot_be_steered_by_the_id_they_carry() -> None:
    links = ConsoleLinks("https://ov.test")
    assert links.job("6f1c0000-0000-4000-8000-000000000000") == (
        "https://ov.test/#/jobs/6f1c0000-0000-4000-8000-000000000000"
    )
    assert links.job("../settings?x=1#y") == "https://ov.test/#/jobs/..%2Fsettings%3Fx%3D1%23y"
