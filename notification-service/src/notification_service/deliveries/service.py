"""Delivery rows: creating them with their event, claiming due ones, recording attempts."""

import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from notification_service.deliveries.models import (
    DEAD,
    DELIVERED,
    PENDING,
    STATES,
    WEBHOOK,
    deliveries,
    delivery_attempts,
)
from notification_service.events.models import processed_events
from notification_service.ids import parse_uuid
from notification_service.links import ConsoleLinks
from notification_service.webhooks.body import PING, ping_event, webhook_body
from notification_service.webhooks.service import Webhook
from objectvision_common.errors import FailedPrecondition, InvalidArgument, NotFound
from objectvision_common.limits import DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT

# The operators' listing (ListDeliveries).
MAX_LIST_LIMIT = 500
DEFAULT_LIST_LIMIT = 50
# What record_attempt answers for a delivery that was deleted while it was being sent (its
# account was erased, ADR 0025): not a state, there is no row left to be in one.
GONE = "gone"
# The error code of a redelivery asked for while the webhook is disabled (ADR 0046), so a
# client can say how to enable it rather than repeat the API's words.
WEBHOOK_DISABLED = "webhook_disabled"
# A webhook's owner reads why an attempt failed, not a transcript: errors are shown this long
# at most (they are ours, "receiver answered 503", plus an exception's text at worst).
MAX_SHOWN_ERROR_CHARS = 300


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
    # The account it is for (None: an address alone), whose share of the dispatcher it takes.
    user_id: uuid.UUID | None
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
        .on_conflict_do_nothing(
            index_elements=["event_id", "channel", "target"],
            index_where=text("redelivery_of IS NULL"),
        )
        .returning(deliveries.c.id)
    )
    return len(result.all())


# How many of the earliest due deliveries a claim chooses among: the per-account turns are
# counted over these, not over a backlog of any size.
CLAIM_WINDOW = 1000


async def claim_due(
    *,
    session: AsyncSession,
    limit: int,
    lease_seconds: float,
    per_account: int,
    in_flight: Mapping[uuid.UUID, int] | None = None,
) -> list[ClaimedDelivery]:
    """Reserve up to `limit` due deliveries, earliest due first, but no more of one account's
    than `per_account` less what the dispatcher has `in_flight` of it: one account's slow
    receivers or backlog of events take their share of the dispatcher, never the whole of
    it. The attempt is counted and the row hidden from other dispatchers for the lease, so no
    row lock is held while sending. A delivery of no account (an email to an address alone)
    is an account of its own."""
    sending = dict(in_flight or {})
    is_due = (deliveries.c.state == PENDING, deliveries.c.next_attempt_at <= func.now())
    # Accounts at their share would be allowed none below anyway; left out of the window
    # as well, so that their backlog does not fill it and hide the other accounts' rows.
    busy = [account for account, count in sending.items() if count >= per_account]
    not_busy = (
        [or_(deliveries.c.user_id.is_(None), deliveries.c.user_id.not_in(busy))] if busy else []
    )
    earliest = (
        select(deliveries.c.id, deliveries.c.user_id, deliveries.c.next_attempt_at)
        .where(*is_due, *not_busy)
        .order_by(deliveries.c.next_attempt_at)
        .limit(CLAIM_WINDOW)
        .subquery()
    )
    allowed: ColumnElement[int] = (
        case(
            *(
                (earliest.c.user_id == account, per_account - count)
                for account, count in sending.items()
            ),
            else_=per_account,
        )
        if sending
        else literal(per_account)
    )
    turns = select(
        earliest.c.id,
        allowed.label("allowed"),
        func.row_number()
        .over(
            partition_by=func.coalesce(earliest.c.user_id, earliest.c.id),
            order_by=earliest.c.next_attempt_at,
        )
        .label("turn"),
    ).subquery()
    due = (
        select(deliveries.c.id)
        .where(
            *is_due,
            deliveries.c.id.in_(select(turns.c.id).where(turns.c.turn <= turns.c.allowed)),
        )
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
    """Store one attempt and move the delivery on; returns its new state, or GONE when the
    delivery was deleted meanwhile (its account erased): then there is nothing to record."""
    still_there = await session.scalar(
        select(deliveries.c.id)
        .where(deliveries.c.id == delivery.id)
        .with_for_update(key_share=True, read=True)
    )
    if still_there is None:
        return GONE
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


def _in_state(state: str) -> list[ColumnElement[bool]]:
    """The filter of a listing by state; no state lists every one."""
    if not state:
        return []
    if state not in STATES:
        raise InvalidArgument(f"state must be one of {list(STATES)}")
    return [deliveries.c.state == state]


def _newest_first(query: Select[Any]) -> Select[Any]:
    return query.order_by(deliveries.c.created_at.desc(), deliveries.c.id)


async def list_deliveries(
    *, session: AsyncSession, state: str = "", limit: int = 0
) -> list[Row[Any]]:
    """Newest first, optionally in one state."""
    if limit < 0:
        raise InvalidArgument("limit must not be negative")
    query = _newest_first(select(*deliveries.c).where(*_in_state(state)))
    query = query.limit(min(limit or DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT))
    return list((await session.execute(query)).all())


@dataclass(frozen=True)
class WebhookDelivery:
    """A webhook delivery as its owner sees it: where it stands and how its last attempt
    went, without the body sent (the receiver has it) or anything the receiver answered
    beyond the status code (nothing else is stored)."""

    id: uuid.UUID
    webhook_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    state: str
    attempts: int
    last_attempt_at: datetime | None
    # None when no HTTP answer came back (no attempt yet, refused, timed out).
    last_status_code: int | None
    last_error: str | None
    # Pending deliveries only.
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None
    redelivery_of: uuid.UUID | None


@dataclass(frozen=True)
class WebhookDeliveryPage:
    deliveries: list[WebhookDelivery]
    # Deliveries matching the filter in all.
    total: int
    limit: int
    offset: int


def _shortened(error: str | None) -> str | None:
    if error is None or len(error) <= MAX_SHOWN_ERROR_CHARS:
        return error
    return error[: MAX_SHOWN_ERROR_CHARS - 1] + "\N{HORIZONTAL ELLIPSIS}"


def _webhook_deliveries() -> Select[Any]:
    """Webhook deliveries with their last recorded attempt (the attempt in flight, counted in
    `attempts` when claimed, is recorded when it ends)."""
    last_attempt = (
        select(delivery_attempts.c.started_at, delivery_attempts.c.status_code)
        .where(delivery_attempts.c.delivery_id == deliveries.c.id)
        .order_by(delivery_attempts.c.attempt.desc(), delivery_attempts.c.id.desc())
        .limit(1)
        .lateral("last_attempt")
    )
    return select(
        *deliveries.c,
        last_attempt.c.started_at.label("last_attempt_at"),
        last_attempt.c.status_code.label("last_status_code"),
    ).select_from(deliveries.outerjoin(last_attempt, true()))


def _webhook_delivery(row: Row[Any]) -> WebhookDelivery:
    return WebhookDelivery(
        id=row.id,
        webhook_id=row.webhook_id,
        event_id=row.event_id,
        event_type=row.event_type,
        state=row.state,
        attempts=row.attempts,
        last_attempt_at=row.last_attempt_at,
        last_status_code=row.last_status_code,
        last_error=_shortened(row.last_error),
        next_attempt_at=row.next_attempt_at if row.state == PENDING else None,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
        redelivery_of=row.redelivery_of,
    )


def _page_bounds(limit: int, offset: int) -> tuple[int, int]:
    """(limit, offset) as the other list calls take them: 0 means the default page, larger
    pages are cut to the most one may hold."""
    if limit < 0 or offset < 0:
        raise InvalidArgument("page limit and offset must not be negative")
    return min(limit or DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT), offset


async def list_webhook_deliveries(
    *,
    session: AsyncSession,
    webhook_id: uuid.UUID,
    state: str = "",
    limit: int = 0,
    offset: int = 0,
) -> WebhookDeliveryPage:
    """One page of a webhook's deliveries, newest first (redeliveries included), optionally
    in one state. The caller has checked that the webhook is the asker's."""
    limit, offset = _page_bounds(limit, offset)
    filters = [deliveries.c.webhook_id == webhook_id, *_in_state(state)]
    total = await session.scalar(select(func.count()).select_from(deliveries).where(*filters))
    rows = await session.execute(
        _newest_first(_webhook_deliveries().where(*filters)).limit(limit).offset(offset)
    )
    return WebhookDeliveryPage(
        deliveries=[_webhook_delivery(row) for row in rows],
        total=total or 0,
        limit=limit,
        offset=offset,
    )


async def redeliver_webhook_delivery(
    *, session: AsyncSession, webhook: Webhook, delivery_id: str
) -> WebhookDelivery:
    """Queue a delivered or dead-lettered delivery's event to its webhook again, due now.

    A new row linked to the original (redelivery_of), with the original's body byte for byte
    (same event id, so receivers deduplicate), sent by the dispatcher like any other delivery:
    the destination is checked and the body signed with a fresh timestamp when it goes. The
    original keeps its attempts and outcome. While a delivery of the event to this webhook is
    pending (a redelivery asked for a moment ago), that one is returned instead of a second.
    Not to a disabled webhook (FailedPrecondition): it would be given up unsent, and its
    owner enables it first (ADR 0046).
    The caller has checked that the webhook is the asker's, and holds it against deletion.
    """
    webhook_id = webhook.id
    original_id = parse_uuid(delivery_id, what="delivery id", error=NotFound)
    original = (
        await session.execute(
            select(*deliveries.c).where(
                deliveries.c.id == original_id, deliveries.c.webhook_id == webhook_id
            )
        )
    ).one_or_none()
    if original is None:
        raise NotFound("no such delivery")
    if original.state == PENDING:
        raise FailedPrecondition(
            f"delivery {original.id} is still pending and will be retried on its own; "
            "redeliver it once it is delivered or dead-lettered"
        )
    if not webhook.enabled:
        raise FailedPrecondition(
            "the webhook is disabled: enable it (PATCH with enabled true), then redeliver",
            code=WEBHOOK_DISABLED,
        )
    redelivery = await session.execute(
        pg_insert(deliveries)
        .values(
            id=uuid.uuid4(),
            event_id=original.event_id,
            event_type=original.event_type,
            user_id=original.user_id,
            channel=WEBHOOK,
            target=webhook.url,
            webhook_id=webhook_id,
            payload=original.payload,
            redelivery_of=original.id,
        )
        .on_conflict_do_nothing(
            index_elements=["event_id", "webhook_id"], index_where=text("state = 'pending'")
        )
        .returning(deliveries.c.id)
    )
    queued = redelivery.scalar_one_or_none()
    # Not queued: the pending delivery that kept it out is the newest of this event to this
    # webhook (even if it has been sent since).
    which = (
        [deliveries.c.id == queued]
        if queued is not None
        else [deliveries.c.event_id == original.event_id, deliveries.c.webhook_id == webhook_id]
    )
    answer = await session.execute(_newest_first(_webhook_deliveries().where(*which)).limit(1))
    return _webhook_delivery(answer.one())


async def queue_ping(
    *, session: AsyncSession, webhook: Webhook, links: ConsoleLinks
) -> WebhookDelivery:
    """A `webhook.ping` delivery to this webhook alone, due now (ADR 0046); its event is
    recorded as processed with it, as every delivery's event is. While a ping of this webhook
    is pending, that one is answered instead of a second, as a redelivery is: asking again
    and again queues one ping, not a backlog of sends to a receiver that may never answer.
    One waiting for a retry is made due now (a mended receiver is tried at once); one being
    sent is left to finish. The caller has checked that the webhook is the asker's, and holds
    it against deletion."""
    pending = (
        await session.execute(
            select(deliveries.c.id, deliveries.c.attempts)
            .where(
                deliveries.c.webhook_id == webhook.id,
                deliveries.c.event_type == PING,
                deliveries.c.state == PENDING,
            )
            .order_by(deliveries.c.created_at.desc())
            .limit(1)
            .with_for_update()
        )
    ).one_or_none()
    if pending is not None:
        recorded = await session.scalar(
            select(func.count())
            .select_from(delivery_attempts)
            .where(delivery_attempts.c.delivery_id == pending.id)
        )
        if recorded == pending.attempts:
            await session.execute(
                update(deliveries)
                .where(deliveries.c.id == pending.id)
                .values(next_attempt_at=func.least(deliveries.c.next_attempt_at, func.now()))
            )
        answer = await session.execute(_webhook_deliveries().where(deliveries.c.id == pending.id))
        return _webhook_delivery(answer.one())
    event = ping_event(webhook.id)
    event_id = uuid.UUID(event.id)
    await session.execute(insert(processed_events).values(event_id=event_id, event_type=PING))
    delivery_id = uuid.uuid4()
    await session.execute(
        insert(deliveries).values(
            id=delivery_id,
            event_id=event_id,
            event_type=PING,
            user_id=webhook.user_id,
            channel=WEBHOOK,
            target=webhook.url,
            webhook_id=webhook.id,
            payload={"body": webhook_body(event, links=links)},
        )
    )
    answer = await session.execute(_webhook_deliveries().where(deliveries.c.id == delivery_id))
    return _webhook_delivery(answer.one())


async def user_delivery_ids(
    *, session: AsyncSession, user_id: uuid.UUID, limit: int
) -> list[uuid.UUID]:
    """Up to `limit` of the deliveries made for the user, in any state: the next chunk of an
    account's erasure (ADR 0025)."""
    ids = await session.scalars(
        select(deliveries.c.id)
        .where(deliveries.c.user_id == user_id)
        .order_by(deliveries.c.id)
        .limit(limit)
    )
    return list(ids)


async def delete_deliveries(*, session: AsyncSession, delivery_ids: Sequence[uuid.UUID]) -> int:
    """Delete these deliveries with their attempts and redeliveries (by cascade); returns how
    many of them were still there. One being sent meanwhile records nothing (GONE)."""
    result = await session.execute(
        delete(deliveries).where(deliveries.c.id.in_(delivery_ids)).returning(deliveries.c.id)
    )
    return len(result.all())


async def attempts_of(*, session: AsyncSession, delivery_id: uuid.UUID) -> list[Row[Any]]:
    rows = await session.execute(
        select(*delivery_attempts.c)
        .where(delivery_attempts.c.delivery_id == delivery_id)
        .order_by(delivery_attempts.c.attempt, delivery_attempts.c.id)
    )
    return list(rows.all())
