"""Sending a rendered email: SMTP (stdlib smtplib), Brevo's HTTP API, or nowhere.

Both network transports are blocking libraries, run in a worker thread so the event loop
keeps serving; the dispatcher bounds how many run at once.
"""

import asyncio
import logging
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, localtime
from typing import Any, Protocol

import requests

from notification_service.deliveries.errors import DeliveryFailedError
from notification_service.mail.headers import mailbox, safe_header_value
from notification_service.mail.render import RenderedEmail

logger = logging.getLogger(__name__)

DELIVERY_HEADER = "X-ObjectVision-Delivery"
# How a composed message is written out: its parts are encoded for 78-character lines
# (SMTP_POLICY), its headers kept on one line up to RFC 5322's limit of 998. Folding at 78,
# Python moves a value that fits on a line of its own (a subject of 70 characters or more) to
# the next line and leaves the field name bare, and Python's own parser, which the mail sink
# and the end-to-end tests read messages with, then keeps the folding space in the value.
WRITING_POLICY = SMTP_POLICY.clone(max_line_length=998)


@dataclass(frozen=True)
class OutgoingEmail:
    email: RenderedEmail
    sender_addr: str
    sender_name: str
    delivery_id: str


class EmailTransport(Protocol):
    async def send(self, outgoing: OutgoingEmail) -> int | None:
        """Send once; the provider's status code on success, DeliveryFailedError otherwise."""
        ...


def compose_message(outgoing: OutgoingEmail) -> EmailMessage:
    """A multipart/alternative message (text, then HTML) with checked headers.

    The Message-ID derives from the delivery id, so a retried send is recognisably the same
    message to a receiving server.
    """
    email = outgoing.email
    sender = mailbox(outgoing.sender_addr, outgoing.sender_name)
    message = EmailMessage(policy=SMTP_POLICY)
    message["From"] = sender
    message["To"] = mailbox(email.to_addr, email.to_name)
    message["Subject"] = safe_header_value(email.subject, field="subject")
    message["Date"] = format_datetime(localtime())
    message["Message-ID"] = f"<{outgoing.delivery_id}@{sender.domain}>"
    message[DELIVERY_HEADER] = outgoing.delivery_id
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    message.policy = WRITING_POLICY
    return message


@dataclass(frozen=True, kw_only=True, eq=False)
class SmtpTransport:
    host: str
    port: int
    user: str = ""
    password: str = field(default="", repr=False)
    starttls: bool = False
    timeout: float = 15.0

    async def send(self, outgoing: OutgoingEmail) -> int | None:
        message = compose_message(outgoing)
        return await asyncio.to_thread(self._send_blocking, message)

    def _send_blocking(self, message: EmailMessage) -> int:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self.password)
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            raise DeliveryFailedError(
                f"recipient refused: {code} {reply!r}", status_code=code, permanent=code >= 500
            ) from exc
        except smtplib.SMTPResponseException as exc:
            raise DeliveryFailedError(
                f"SMTP server answered {exc.smtp_code} {exc.smtp_error!r}",
                status_code=exc.smtp_code,
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryFailedError(f"SMTP failed: {exc!r}") from exc
        return 250


@dataclass(frozen=True, kw_only=True, eq=False)
class BrevoTransport:
    """Brevo's transactional email API (POST /v3/smtp/email with an `api-key` header)."""

    api_key: str = field(repr=False)
    url: str
    timeout: float = 15.0

    @staticmethod
    def request_body(outgoing: OutgoingEmail) -> dict[str, Any]:
        email = outgoing.email
        recipient: dict[str, str] = {"email": mailbox(email.to_addr, email.to_name).addr_spec}
        if email.to_name:
            recipient["name"] = email.to_name
        return {
            "sender": {"name": outgoing.sender_name, "email": outgoing.sender_addr},
            "to": [recipient],
            "subject": safe_header_value(email.subject, field="subject"),
            "htmlContent": email.html,
            "textContent": email.text,
            "headers": {DELIVERY_HEADER: outgoing.delivery_id},
        }

    async def send(self, outgoing: OutgoingEmail) -> int | None:
        body = self.request_body(outgoing)
        return await asyncio.to_thread(self._post_blocking, body)

    def _post_blocking(self, body: dict[str, Any]) -> int:
        try:
            response = requests.post(
                self.url,
                json=body,
                headers={"api-key": self.api_key, "accept": "application/json"},
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise DeliveryFailedError(f"Brevo request failed: {exc!r}") from exc
        if 200 <= response.status_code < 300:
            return response.status_code
        raise DeliveryFailedError(
            f"Brevo answered {response.status_code}: {response.text[:300]}",
            status_code=response.status_code,
            # 400: Brevo refused the message itself (a bad address); the same body fails again.
            permanent=response.status_code == 400,
        )


class NullTransport:
    """EMAIL_TRANSPORT=none: the delivery is recorded as delivered and nothing is sent."""

    async def send(self, outgoing: OutgoingEmail) -> int | None:
        logger.info(
            "email transport is none; not sending",
            extra={"delivery_id": outgoing.delivery_id, "subject": outgoing.email.subject},
        )
        return None
