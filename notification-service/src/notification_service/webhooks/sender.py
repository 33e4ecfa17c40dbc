"""The webhook channel of the dispatcher: a signed POST to a destination checked just now."""

import ipaddress
import time
from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notification_service.deliveries.errors import DeliveryFailedError
from notification_service.deliveries.service import ClaimedDelivery
from notification_service.webhooks import service
from notification_service.webhooks.secrets import SecretBox, signature
from notification_service.webhooks.targets import (
    ForbiddenTarget,
    WebhookUrl,
    parse_webhook_url,
    resolve_allowed,
)

EVENT_HEADER = "X-ObjectVision-Event"
DELIVERY_HEADER = "X-ObjectVision-Delivery"
TIMESTAMP_HEADER = "X-ObjectVision-Timestamp"
SIGNATURE_HEADER = "X-ObjectVision-Signature"
USER_AGENT = "ObjectVision-Webhooks/1"


def new_http_client() -> httpx.AsyncClient:
    """No connection reuse: a pooled connection belongs to one IP, and two webhook hosts on
    one IP must not share a TLS session verified for the other's name. No redirects: a
    redirect could lead past the address check. No proxies from the environment."""
    return httpx.AsyncClient(
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_keepalive_connections=0),
    )


def _pinned_url(url: WebhookUrl, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    host = f"[{address}]" if address.version == 6 else str(address)
    return f"{url.scheme}://{host}:{url.port}{url.target}"


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
        try:
            url = parse_webhook_url(target.url)
            addresses = await resolve_allowed(url, allow_private=self.allow_private)
        except ForbiddenTarget as exc:
            # Maybe DNS changed; maybe it will change back. Each retry checks again.
            raise DeliveryFailedError(f"refused: {exc.message}") from exc

        body = str(delivery.payload["body"]).encode()
        timestamp = int(time.time())
        headers = {
            "Host": url.host_header,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            EVENT_HEADER: delivery.event_type,
            DELIVERY_HEADER: str(delivery.id),
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: signature(target.secret, timestamp, body),
        }
        # Connect to the checked addresses themselves, never to a fresh lookup of the name;
        # TLS still verifies the certificate for the name (SNI + hostname check).
        extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
        last_error: Exception | None = None
        for address in addresses:
            try:
                async with self.client.stream(
                    "POST",
                    _pinned_url(url, address),
                    content=body,
                    headers=headers,
                    extensions=extensions,
                    timeout=self.timeout_seconds,
                ) as response:
                    status = response.status_code
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                last_error = exc
                continue
            except httpx.HTTPError as exc:
                raise DeliveryFailedError(f"{type(exc).__name__}: {exc}") from exc
            if 200 <= status < 300:
                return status
            raise DeliveryFailedError(f"receiver answered {status}", status_code=status)
        raise DeliveryFailedError(f"could not connect: {last_error!r}")
