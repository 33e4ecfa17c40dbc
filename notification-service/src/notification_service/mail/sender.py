"""The email channel of the dispatcher: a stored rendered email out through a transport."""

from dataclasses import dataclass

from notification_service.deliveries.errors import DeliveryFailedError
from notification_service.deliveries.service import ClaimedDelivery
from notification_service.mail.headers import UnsafeHeaderError
from notification_service.mail.render import RenderedEmail
from notification_service.mail.transports import EmailTransport, OutgoingEmail
from objectvision_common.sealing import SecretBox


@dataclass(frozen=True, kw_only=True, eq=False)
class EmailSender:
    transport: EmailTransport
    sender_addr: str
    sender_name: str
    # Where the stored bodies are sealed (WEBHOOK_SECRET_KEY's box).
    box: SecretBox

    async def send(self, delivery: ClaimedDelivery) -> int | None:
        try:
            email = RenderedEmail.from_payload(delivery.payload, self.box)
        except ValueError as exc:
            # WEBHOOK_SECRET_KEY changed; retrying helps once the old key is back.
            raise DeliveryFailedError(f"stored email {exc}") from exc
        except (KeyError, TypeError) as exc:
            raise DeliveryFailedError(
                f"stored email is incomplete: {exc!r}", permanent=True
            ) from exc
        outgoing = OutgoingEmail(
            email=email,
            sender_addr=self.sender_addr,
            sender_name=self.sender_name,
            delivery_id=str(delivery.id),
        )
        try:
            return await self.transport.send(outgoing)
        except UnsafeHeaderError as exc:
            raise DeliveryFailedError(f"refused: {exc}", permanent=True) from exc
