"""Whether a webhook's receiver works, from how its deliveries end (ADR 0046).

Each delivery that ends counts: a delivered one clears the webhook's run of failures, a
dead-lettered one (given up after every retry) extends it. A run long enough in number and
in time disables the webhook, in the same transaction that records the delivery's end, and
stages `webhook.disabled` for its owner's notice with it. A receiver that is down for an
afternoon loses nothing (its deliveries are retried, then redelivered); one that has been
failing for days stops costing the dispatcher attempts and its owner hears about it.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from prometheus_client import Counter
from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession

from notification_service.outbox import add_webhook_disabled
from notification_service.webhooks.models import FAILING, webhooks
from objectvision.v1 import notification_pb2
from objectvision_common.servicer import timestamp

# Counted when the disabling commits, for the alert and the dashboard's delivery panel.
WEBHOOKS_DISABLED = Counter(
    "notification_webhooks_disabled_total",
    "Webhooks disabled because their deliveries kept being dead-lettered (ADR 0046).",
)


@dataclass(frozen=True)
class FailurePolicy:
    """A webhook is disabled once `failures` deliveries in a row were dead-lettered and the
    first of them at least `lasting` ago: many failures in a short outage are not enough,
    nor is one failure a week ago."""

    failures: int
    lasting: timedelta


async def record_delivered(*, session: AsyncSession, webhook_id: uuid.UUID) -> None:
    """A delivery reached the receiver: its run of failures ends."""
    await session.execute(
        update(webhooks)
        .where(webhooks.c.id == webhook_id, webhooks.c.consecutive_failures > 0)
        .values(consecutive_failures=0, failing_since=None)
    )


async def record_dead(
    *,
    session: AsyncSession,
    webhook_id: uuid.UUID,
    last_error: str | None,
    policy: FailurePolicy,
    now: datetime | None = None,
) -> bool:
    """A delivery to an enabled webhook was given up; whether that disabled the webhook.
    Deliveries given up because the webhook was disabled, deleted or its key expired do not
    count: they say nothing of the receiver."""
    now = now or datetime.now(UTC)
    counted = (
        await session.execute(
            update(webhooks)
            .where(webhooks.c.id == webhook_id, webhooks.c.disabled_at.is_(None))
            .values(
                consecutive_failures=webhooks.c.consecutive_failures + 1,
                failing_since=func.coalesce(webhooks.c.failing_since, now),
            )
            .returning(
                webhooks.c.user_id,
                webhooks.c.url,
                webhooks.c.consecutive_failures,
                webhooks.c.failing_since,
            )
        )
    ).one_or_none()
    if counted is None or counted.consecutive_failures < policy.failures:
        return False
    if counted.failing_since > now - policy.lasting:
        return False
    await session.execute(
        update(webhooks)
        .where(webhooks.c.id == webhook_id)
        .values(disabled_at=now, disabled_reason=FAILING)
    )
    await add_webhook_disabled(
        session,
        user_id=str(counted.user_id),
        disabled=notification_pb2.WebhookDisabled(
            webhook_id=str(webhook_id),
            url=counted.url,
            consecutive_failures=counted.consecutive_failures,
            failing_since=timestamp(counted.failing_since),
            last_error=last_error or "",
        ),
    )
    return True
