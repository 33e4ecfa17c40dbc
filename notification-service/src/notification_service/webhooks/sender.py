"""The webhook channel of the dispatcher: a signed POST to a destination checked just now."""

import asyncio
import time
from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notification_service.deliveries.errors import DeliveryFailedError
from notification_service.deliveries.service import ClaimedDelivery
from notification_service.webhooks import service
from notification_service.webhooks.body import PING
from notification_service.webhooks.secrets import signature
from notification_service.webhooks.targets import ForbiddenTarget, checked_target
from objectvision_common.public_urls import pinned_stream
from objectvision_common.sealing import SecretBox

EVENT_HEADER = "X-ObjectVision-Event"
DELIVERY_HEADER = "X-ObjectVision-Delivery"
TIMESTAMP_HEADER = "X-ObjectVision-Timestamp"
SIGNATURE_HEADER = "X-ObjectVision-Signature"
USER_AGENT = "ObjectVision-Webhooks/1"
# Why a delivery to a webhook whose API key has expired was given up.
EXPIRED_KEY = "the API key the webhook was tied to has expired; the webhook was deleted"
# Why a delivery to a disabled webhook was given up unsent (ADR 0046): it is redelivered
# once its owner enables the webhook again.
DISABLED = "the webhook is disabled"


@dataclass(frozen=True, kw_only=True, eq=False)
class WebhookSender:
    session_factory: async_sessionmaker[AsyncSession]
    box: SecretBox
    client: httpx.AsyncClient
    allow_private: bool
    timeout_seconds: float

    async def send(self, delivery: ClaimedDelivery) -> int | None:
        if delivery.webhook_id is None:
            raise DeliveryFailedError("the webhook was deleted", permanent=True)
        try:
            async with self.session_factory() as session:
                target = await service.signing_target(
                    session=session, box=self.box, webhook_id=delivery.webhook_id
                )
        except ValueError as exc:
            # WEBHOOK_SECRET_KEY changed; retrying helps once the old key is back.
            raise DeliveryFailedError(f"webhook secret {exc}") from exc
        if target is None:
            raise DeliveryFailedError("the webhook was deleted", permanent=True)
        if target.disabled and delivery.event_type != PING:
            raise DeliveryFailedError(DISABLED, permanent=True)
        if target.key_expired():
            # The API key that registered it has expired: the webhook goes, as if its owner
            # had deleted it, and this delivery is dead-lettered unsent (ADR 0026, amendment).
            async with self.session_factory.begin() as session:
                await service.delete_webhook_of_expired_key(
                    session=session, webhook_id=delivery.webhook_id
                )
            raise DeliveryFailedError(EXPIRED_KEY, permanent=True)
        try:
            async with asyncio.timeout(self.timeout_seconds):
                return await self._post(delivery, target)
        except TimeoutError:
            raise DeliveryFailedError(
                f"the receiver did not answer within {self.timeout_seconds:g} s"
            ) from None

    async def _post(self, delivery: ClaimedDelivery, target: service.SigningTarget) -> int:
        """Check the destination again and POST the signed body to it; the status on a 2xx.
        Bounded as a whole by `send` (WEBHOOK_TIMEOUT_SECONDS): httpx's timeout bounds each
        read, and a receiver trickling its headers a byte at a time would otherwise hold the
        delivery, and a dispatcher's slot, past its lease."""
        try:
            destination = await checked_target(target.url, allow_private=self.allow_private)
        except ForbiddenTarget as exc:
            # Maybe DNS changed; maybe it will change back. Each retry checks again.
            raise DeliveryFailedError(f"refused: {exc.message}") from exc

        body = str(delivery.payload["body"]).encode()
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            EVENT_HEADER: delivery.event_type,
            DELIVERY_HEADER: str(delivery.id),
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: signature(target.secrets, timestamp, body),
        }
        # Connect to the checked addresses themselves, never to a fresh lookup of the name.
        try:
            async with pinned_stream(
                self.client,
                "POST",
                destination.url,
                destination.addresses,
                headers=headers,
                content=body,
                timeout_seconds=self.timeout_seconds,
            ) as response:
                status = response.status_code
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise DeliveryFailedError(f"could not connect: {exc!r}") from exc
        except httpx.HTTPError as exc:
            raise DeliveryFailedError(f"{type(exc).__name__}: {exc}") from exc
        if 200 <= status < 300:
            return status
        raise DeliveryFailedError(f"receiver answered {status}", status_code=status)
