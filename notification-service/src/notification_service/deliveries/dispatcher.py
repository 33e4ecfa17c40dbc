"""The loop that sends due deliveries, records every attempt and schedules retries."""

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notification_service.deliveries import service
from notification_service.deliveries.errors import DeliveryFailedError
from notification_service.deliveries.models import CHANNELS, DEAD, DELIVERED, WEBHOOK
from notification_service.deliveries.service import ClaimedDelivery
from notification_service.webhooks import health
from objectvision_common.background import BackgroundLoop

logger = logging.getLogger(__name__)

# Counted when the attempt that gives up commits: the alert on dead-lettered webhooks and
# emails (NotificationDeliveriesDeadLettered) needs the moment, which the rows' state alone
# does not keep. Every channel starts at 0 so that increase() sees the first one.
DEAD_LETTERED = Counter(
    "notification_deliveries_dead_total",
    "Deliveries given up (dead-lettered) after their last attempt, by channel.",
    ["channel"],
)
for _channel in CHANNELS:
    DEAD_LETTERED.labels(_channel)


class Sender(Protocol):
    async def send(self, delivery: ClaimedDelivery) -> int | None:
        """Deliver once; the status code on success, DeliveryFailedError otherwise."""
        ...


# Not frozen: BackgroundLoop keeps its stop event and task on the instance.
@dataclass(kw_only=True, eq=False)
class Dispatcher(BackgroundLoop):
    """Claims due deliveries in batches, sends them concurrently, retries with backoff.

    Several replicas may run one each: claims use SKIP LOCKED plus a lease, so a delivery
    is sent by one dispatcher at a time.
    """

    session_factory: async_sessionmaker[AsyncSession]
    senders: Mapping[str, Sender]
    max_attempts: int
    backoff_base_seconds: float
    backoff_max_seconds: float
    lease_seconds: float
    poll_seconds: float
    concurrency: int
    # When a webhook whose deliveries keep being dead-lettered is disabled (ADR 0046).
    webhook_failures: health.FailurePolicy

    async def _loop(self) -> None:
        """Pass after pass; between them, idle until the next poll or until `wake()` (new
        deliveries exist). `stop()` returns after the attempts in flight."""
        failures = 0
        while not self.stopping:
            try:
                claimed = await self.dispatch_due()
                failures = 0
            except Exception:
                failures += 1
                logger.warning(
                    "dispatcher pass failed", extra={"failures": failures}, exc_info=True
                )
                await self.idle(min(30.0, self.poll_seconds * 2**failures))
                continue
            if claimed < self.concurrency:
                await self.idle(self.poll_seconds)

    async def dispatch_due(self) -> int:
        """One pass: claim a batch, send it, record the outcomes; returns the batch size."""
        async with self.session_factory() as session, session.begin():
            batch = await service.claim_due(
                session=session, limit=self.concurrency, lease_seconds=self.lease_seconds
            )
        if batch:
            await asyncio.gather(*(self._attempt(delivery) for delivery in batch))
        return len(batch)

    async def _attempt(self, delivery: ClaimedDelivery) -> None:
        started_at = datetime.now(UTC)
        started = time.perf_counter()
        status_code: int | None = None
        error: str | None = None
        permanent = False
        try:
            sender = self.senders.get(delivery.channel)
            if sender is None:
                raise DeliveryFailedError(
                    f"no sender for channel {delivery.channel}", permanent=True
                )
            status_code = await sender.send(delivery)
        except DeliveryFailedError as exc:
            status_code, error, permanent = exc.status_code, exc.message, exc.permanent
        except Exception as exc:
            logger.exception("unexpected error sending a delivery")
            error = f"internal error: {type(exc).__name__}"
        duration_ms = (time.perf_counter() - started) * 1000
        give_up = permanent or delivery.attempts >= self.max_attempts
        disabled = False
        async with self.session_factory() as session, session.begin():
            state = await service.record_attempt(
                session=session,
                delivery=delivery,
                started_at=started_at,
                duration_ms=duration_ms,
                succeeded=error is None,
                status_code=status_code,
                error=error,
                give_up=give_up,
                retry_in_seconds=service.backoff_seconds(
                    delivery.attempts, base=self.backoff_base_seconds, cap=self.backoff_max_seconds
                ),
            )
            if delivery.channel == WEBHOOK and delivery.webhook_id is not None:
                disabled = await self._count_outcome(session, delivery.webhook_id, state, error)
        if state == DEAD:
            DEAD_LETTERED.labels(delivery.channel).inc()
        if disabled:
            health.WEBHOOKS_DISABLED.inc()
            logger.warning(
                "webhook disabled after failed deliveries",
                extra={"webhook_id": str(delivery.webhook_id), "delivery_id": str(delivery.id)},
            )
        log = logger.warning if state == DEAD else logger.info
        log(
            "delivery attempt",
            extra={
                "delivery_id": str(delivery.id),
                "channel": delivery.channel,
                "attempt": delivery.attempts,
                "state": state,
                "status_code": status_code,
                "error": error,
                "duration_ms": round(duration_ms, 1),
            },
        )

    async def _count_outcome(
        self, session: AsyncSession, webhook_id: uuid.UUID, state: str, error: str | None
    ) -> bool:
        """A webhook delivery's end, counted towards its webhook's health in the transaction
        that records it; whether it disabled the webhook."""
        if state == DELIVERED:
            await health.record_delivered(session=session, webhook_id=webhook_id)
        elif state == DEAD:
            return await health.record_dead(
                session=session,
                webhook_id=webhook_id,
                last_error=error,
                policy=self.webhook_failures,
            )
        return False
