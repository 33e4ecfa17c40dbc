"""Delivery rows: creating them with their event, claiming due ones, recording attempts."""

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from notification_service.deliveries.models import (
    DEAD,
    DELIVERED,
    PENDING,
    STATES,
    deliveries,
    delivery_attempts,
)
from objectvision_common.errors import InvalidArgument

MAX_LIST_LIMIT = 500
DEFAULT_LIST_LIMIT = 50


@dataclass(frozen=True)
class NewDelivery:
    """A delivery planned for an event; `state=DEAD` records one refused up front."""

    channel: str
    target: str
    payload: dict[str, Any]
    webhook_id: uuid.UUID | None = None
    state: str = PENDING
    last_error: str | None = None


@dataclass(frozen=True)
class ClaimedDelivery:
    """A due delivery reserved for one sender until its lease runs out."""

    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    channel: str
    target: str
    webhook_id: uuid.UUID | None
    payload: dict[str, Any] = field(repr=False)
    # Including the one being made now.
    attempts: int


# What a claim reads back: the table's columns of ClaimedDelivery's fields, so the one list
# of fields above serves both the query and building the result from its rows.
_CLAIMED_COLUMNS = tuple(deliveries.c[claimed.name] for claimed in fields(ClaimedDelivery))


async def add_deliveries(
    *,
    session: AsyncSession,
    event_id: uuid.UUID,
    event_type: str,
    user_id: uuid.UUID | None,
    planned: Sequence[NewDelivery],
) -> int:
    """Insert the deliveries of one event; a delivery that already exists is kept as is."""
    if not planned:
        return 0
    rows = [
        {
            "id": uuid.uuid4(),
            "event_id": event_id,
            "event_type": event_type,
            "user_id": user_id,
            "channel": delivery.channel,
            "target": delivery.target,
            "webhook_id": delivery.webhook_id,
            "payload": delivery.payload,
            "state": delivery.state,
            "last_error": delivery.last_error,
        }
        for delivery in planned
    ]
    result = await session.execute(
        pg_insert(deliveries)
        .values(rows)
        .on_conflict_do_nothing(constraint="uq_deliveries_event_channel_target")
        .returning(deliveries.c.id)
    )
    return len(result.all())


async def claim_due(
    *, session: AsyncSession, limit: int, lease_seconds: float
) -> list[ClaimedDelivery]:
    """Reserve up to `limit` due deliveries: the attempt is counted and the row hidden from
    other dispatchers for the lease, so no row lock is held while sending."""
    due = (
        select(deliveries.c.id)
        .where(deliveries.c.state == PENDING, deliveries.c.next_attempt_at <= func.now())
        .order_by(deliveries.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    rows = await session.execute(
        update(deliveries)
        .where(deliveries.c.id.in_(due))
        .values(
            attempts=deliveries.c.attempts + 1,
            next_attempt_at=func.now() + timedelta(seconds=lease_seconds),
            updated_at=func.now(),
        )
        .returning(*_CLAIMED_COLUMNS)
    )
    return [ClaimedDelivery(**row._mapping) for row in rows]


def backoff_seconds(attempt: int, *, base: float, cap: float) -> float:
    """Exponential backoff with equal jitter: base * 2^(attempt-1), half of it random, so
    deliveries that failed together do not retry together."""
    delay = min(cap, base * 2.0 ** max(0, attempt - 1))
    return delay / 2 + random.uniform(0, delay / 2)


async def record_attempt(
    *,
    session: AsyncSession,
    delivery: ClaimedDelivery,
    started_at: datetime,
    duration_ms: float,
    succeeded: bool,
    status_code: int | None,
    error: str | None,
    give_up: bool,
    retry_in_seconds: float,
) -> str:
    """Store one attempt and move the delivery on; returns its new state."""
    await session.execute(
        insert(delivery_attempts).values(
            delivery_id=delivery.id,
            attempt=delivery.attempts,
            started_at=started_at,
            duration_ms=duration_ms,
            succeeded=succeeded,
            status_code=status_code,
            error=error,
        )
    )
    if succeeded:
        values: dict[str, Any] = {
            "state": DELIVERED,
            "delivered_at": func.now(),
            "last_error": None,
        }
    elif give_up:
        values = {"state": DEAD, "last_error": error}
    else:
        values = {
            "state": PENDING,
            "last_error": error,
            "next_attempt_at": func.now() + timedelta(seconds=retry_in_seconds),
        }
    # Only the holder of this attempt may move the row; a sender whose lease ran out and
    # whose row was claimed again must not overwrite the newer attempt's outcome.
    await session.execute(
        update(deliveries)
        .where(
            deliveries.c.id == delivery.id,
            deliveries.c.state == PENDING,
            deliveries.c.attempts == delivery.attempts,
        )
        .values(updated_at=func.now(), **values)
    )
    return str(values["state"])


async def list_deliveries(
    *, session: AsyncSession, state: str = "", limit: int = 0
) -> list[Row[Any]]:
    """Newest first, optionally in one state."""
    if state and state not in STATES:
        raise InvalidArgument(f"state must be one of {list(STATES)}")
    if limit < 0:
        raise InvalidArgument("limit must not be negative")
    query = select(*deliveries.c).order_by(deliveries.c.created_at.desc(), deliveries.c.id)
    if state:
        query = query.where(deliveries.c.state == state)
    query = query.limit(min(limit or DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT))
    return list((await session.execute(query)).all())


async def attempts_of(*, session: AsyncSession, delivery_id: uuid.UUID) -> list[Row[Any]]:
    rows = await session.execute(
        select(*delivery_attempts.c)
        .where(delivery_attempts.c.delivery_id == delivery_id)
        .order_by(delivery_attempts.c.attempt, delivery_attempts.c.id)
    )
    return list(rows.all())
