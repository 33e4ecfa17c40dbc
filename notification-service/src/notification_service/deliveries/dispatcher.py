"""The loop that sends due deliveries, records every attempt and schedules retries."""

import asyncio
import collections
import contextlib
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
    """Keeps up to `concurrency` deliveries in flight, at most `per_account` of one
    account's, claiming more as each attempt ends; retries with backoff.

    No pass waits for its slowest send: a receiver that answers only at its deadline holds
    one slot of its account's share, while the others go on being claimed and sent. Several
    replicas may run one each: claims use SKIP LOCKED plus a lease, so a delivery is sent by
    one dispatcher at a time.
    """

    session_factory: async_sessionmaker[AsyncSession]
    senders: Mapping[str, Sender]
    max_attempts: int
    backoff_base_seconds: float
    backoff_max_seconds: float
    lease_seconds: float
    poll_seconds: float
    concurrency: int
    # Deliveries of one account in flight at once (DELIVERY_CONCURRENCY_PER_ACCOUNT).
    per_account: int
    # When a webhook whose deliveries keep being dead-lettered is disabled (ADR 0046).
    webhook_failures: health.FailurePolicy

    async def _loop(self) -> None:
        """Claim into the free slots until a claim comes back empty or none is free, then wait
        for an attempt to end, the next poll or `wake()` (new deliveries exist). Claiming
        again at once matters: a claim that filled an account's share leaves that account
        out of the next one, which then reaches the deliveries behind its backlog. `stop()`
        returns after the attempts in flight."""
        in_flight: dict[asyncio.Task[None], uuid.UUID | None] = {}
        failures = 0
        try:
            while not self.stopping:
                free = self.concurrency - len(in_flight)
                claimed = 0
                if free > 0:
                    try:
                        claimed = self._start(await self._claim(free, in_flight), in_flight)
                        failures = 0
                    except Exception:
                        failures += 1
                        logger.warning(
                            "dispatcher claim failed", extra={"failures": failures}, exc_info=True
                        )
                        await self._wait(in_flight, min(30.0, self.poll_seconds * 2**failures))
                        continue
                if claimed:
                    continue
                await self._wait(in_flight, self.poll_seconds)
        finally:
            if in_flight:
                await asyncio.gather(*in_flight, return_exceptions=True)

    async def _claim(
        self, free: int, in_flight: Mapping[asyncio.Task[None], uuid.UUID | None]
    ) -> list[ClaimedDelivery]:
        """Up to `free` due deliveries, each account's within what its share leaves."""
        sending = collections.Counter(
            account for account in in_flight.values() if account is not None
        )
        async with self.session_factory() as session, session.begin():
            return await service.claim_due(
                session=session,
                limit=free,
                lease_seconds=self.lease_seconds,
                per_account=self.per_account,
                in_flight=sending,
            )

    def _start(
        self,
        claimed: list[ClaimedDelivery],
        in_flight: dict[asyncio.Task[None], uuid.UUID | None],
    ) -> int:
        for delivery in claimed:
            task = asyncio.create_task(self._attempt_logged(delivery), name="delivery-attempt")
            in_flight[task] = delivery.user_id
            task.add_done_callback(lambda done: in_flight.pop(done, None))
        return len(claimed)

    async def _wait(
        self, in_flight: Mapping[asyncio.Task[None], uuid.UUID | None], seconds: float
    ) -> None:
        """Until an attempt in flight ends (a slot is free), `wake()`, `stop()` or `seconds`."""
        idle = asyncio.create_task(self.idle(seconds))
        try:
            await asyncio.wait([idle, *in_flight], return_when=asyncio.FIRST_COMPLETED)
        finally:
            idle.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await idle

    async def _attempt_logged(self, delivery: ClaimedDelivery) -> None:
        """An attempt whose outcome could not be recorded (PostgreSQL away) is logged; the
        delivery's lease runs out and it is claimed again."""
        try:
            await self._attempt(delivery)
        except Exception:
            logger.exception(
                "could not record a delivery attempt", extra={"delivery_id": str(delivery.id)}
            )

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
