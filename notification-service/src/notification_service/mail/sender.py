"""The email channel of the dispatcher: a stored rendered email out through a transport."""

from notification_service.deliveries.errors import DeliveryFailedError
from notification_service.deliveries.service import ClaimedDelivery
from notification_service.mail.headers import UnsafeHeaderError
from notification_service.mail.render import RenderedEmail
from notification_service.mail.transports import EmailTransport, OutgoingEmail


class EmailSender:
    def __init__(self, *, transport: EmailTransport, sender_addr: str, sender_name: str) -> None:
        self._transport = transport
        self._sender_addr = sender_addr
        self._sender_name = sender_name

    async def send(self, delivery: ClaimedDelivery) -> int | None:
        try:
            email = RenderedEmail.from_payload(delivery.payload)
        except (KeyError, TypeError) as exc:
            raise DeliveryFailedError(
                f"stored email is incomplete: {exc!r}", permanent=True
            ) from exc
        outgoing = OutgoingEmail(
            email=email,
            sender_addr=self._sender_addr,
            sender_name=self._sender_name,
            delivery_id=str(delivery.id),
        )
        try:
            return await self._transport.send(outgoing)
        except UnsafeHeaderError as exc:
            raise DeliveryFailedError(f"refused: {exc}", permanent=True) from exc
