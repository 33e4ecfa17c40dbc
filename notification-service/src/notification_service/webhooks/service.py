"""Webhook registrations: plain functions over a session the caller passes in."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from notification_service.accounts.models import ERASED_ACCOUNTS
from notification_service.ids import parse_uuid
from notification_service.webhooks.models import BY_OWNER, webhooks
from notification_service.webhooks.secrets import new_secret
from notification_service.webhooks.targets import checked_target
from objectvision_common.erasure import hold_open_account
from objectvision_common.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from objectvision_common.sealing import SecretBox

JOB_EVENT_TYPES = ("job.progress", "job.completed", "job.failed", "job.cancelled")
# The longest a replaced signing secret keeps signing beside the new one (ADR 0036).
MAX_KEEP_PREVIOUS = timedelta(days=7)


@dataclass(frozen=True)
class Webhook:
    id: uuid.UUID
    user_id: uuid.UUID
    url: str
    events: tuple[str, ...]
    created_at: datetime
    # The API key that registered it and when that key expires; None for a session's.
    api_key_id: uuid.UUID | None = None
    api_key_expires_at: datetime | None = None
    # Until when the secret the last rotation replaced still signs (ADR 0036).
    previous_secret_expires_at: datetime | None = None
    # Set while nothing is sent to it, with why (models.DISABLED_REASONS; ADR 0046).
    disabled_at: datetime | None = None
    disabled_reason: str | None = None
    # Deliveries dead-lettered in a row since the last delivered one.
    consecutive_failures: int = 0

    @property
    def enabled(self) -> bool:
        return self.disabled_at is None


@dataclass(frozen=True)
class SigningTarget:
    url: str
    secret: str
    # When the API key that registered the webhook expires; None: never, or no key.
    api_key_expires_at: datetime | None = None
    # The secret a rotation replaced, while it still signs beside `secret` (ADR 0036).
    previous_secret: str | None = None
    # Disabled webhooks are sent pings only (ADR 0046).
    disabled: bool = False

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret a delivery is signed with now: the current one first."""
        return (
            (self.secret,) if self.previous_secret is None else (self.secret, self.previous_secret)
        )

    def key_expired(self, now: datetime | None = None) -> bool:
        """Whether the key the webhook is tied to (the one that registered it, or last gave it a
        URL or secret) has expired: it delivers no more."""
        if self.api_key_expires_at is None:
            return False
        return self.api_key_expires_at <= (now or datetime.now(UTC))


def _webhook(row: Row[Any]) -> Webhook:
    return Webhook(
        id=row.id,
        user_id=row.user_id,
        url=row.url,
        events=tuple(row.events),
        created_at=row.created_at,
        api_key_id=row.api_key_id,
        api_key_expires_at=row.api_key_expires_at,
        previous_secret_expires_at=_still_signing(row.previous_secret_expires_at),
        disabled_at=row.disabled_at,
        disabled_reason=row.disabled_reason,
        consecutive_failures=row.consecutive_failures,
    )


def _still_signing(expires_at: datetime | None, now: datetime | None = None) -> datetime | None:
    """A replaced secret's end, while it has not come; None once it has."""
    if expires_at is None or expires_at <= (now or datetime.now(UTC)):
        return None
    return expires_at


def event_types(requested: Sequence[str]) -> tuple[str, ...]:
    """The subscribed types, deduplicated and ordered; none requested means every job event."""
    unknown = sorted(set(requested) - set(JOB_EVENT_TYPES))
    if unknown:
        raise InvalidArgument(f"unknown event types {unknown}; choose from {list(JOB_EVENT_TYPES)}")
    chosen = set(requested) or set(JOB_EVENT_TYPES)
    return tuple(t for t in JOB_EVENT_TYPES if t in chosen)


async def create_webhook(
    *,
    session: AsyncSession,
    box: SecretBox,
    user_id: str,
    url: str,
    events: Sequence[str],
    allow_private: bool,
    max_per_user: int,
    api_key_id: uuid.UUID | None = None,
    api_key_expires_at: datetime | None = None,
) -> tuple[Webhook, str]:
    """Register a webhook; returns it with its signing secret, which is never shown again.

    `api_key_id` and `api_key_expires_at` record the API key the caller used (None from a
    signed-in session): the webhook is deleted when that key is revoked, and at its first due
    delivery after the key expired (ADR 0026, amendment).

    Not for a deleted account (Unauthenticated), even one whose request passed the gateway
    just before: the caller's transaction holds the account's erasure off until it commits,
    and the erasure then deletes this webhook with the others (objectvision_common.erasure).
    """
    owner = parse_uuid(user_id, what="user id")
    url = url.strip()
    await checked_target(url, allow_private=allow_private)
    types = event_types(events)
    await hold_open_account(session, ERASED_ACCOUNTS, str(owner))
    count = await session.scalar(
        select(func.count()).select_from(webhooks).where(webhooks.c.user_id == owner)
    )
    if (count or 0) >= max_per_user:
        raise FailedPrecondition(f"at most {max_per_user} webhooks per user")
    secret = new_secret()
    row = (
        await session.execute(
            pg_insert(webhooks)
            .values(
                id=uuid.uuid4(),
                user_id=owner,
                url=url,
                events=list(types),
                secret_ciphertext=box.seal(secret),
                api_key_id=api_key_id,
                api_key_expires_at=api_key_expires_at,
            )
            .on_conflict_do_nothing(constraint="uq_webhooks_user_id_url")
            .returning(*webhooks.c)
        )
    ).one_or_none()
    if row is None:
        raise AlreadyExists("a webhook with this URL already exists")
    return _webhook(row), secret


async def update_webhook(
    *,
    session: AsyncSession,
    user_id: str,
    webhook_id: str,
    allow_private: bool,
    url: str | None = None,
    events: Sequence[str] | None = None,
    enabled: bool | None = None,
    api_key_id: uuid.UUID | None = None,
    api_key_expires_at: datetime | None = None,
) -> Webhook:
    """Change what is given (None keeps it) of the caller's webhook; someone else's is as
    absent as a missing one.

    A new URL ties the webhook to the caller's credential as creating it does
    (`api_key_id`, `api_key_expires_at`; None from a session): it now sends where that API key
    said, so it lives no longer than that key, and a session's new URL unties it from any.

    A new URL is checked as a new webhook's is and must not be another of the account's
    webhooks' (AlreadyExists). Deliveries read the URL when they are sent, so pending ones
    go to the new URL. Disabling records the owner as why (a webhook the service disabled
    for failing stays so); enabling clears the failure count, so the next failures start
    afresh (ADR 0046).
    """
    if url is None and events is None and enabled is None:
        raise InvalidArgument("nothing to update: give url, events or enabled")
    hook = await owned_webhook(session=session, user_id=user_id, webhook_id=webhook_id)
    values: dict[str, Any] = {}
    if url is not None:
        url = url.strip()
        await checked_target(url, allow_private=allow_private)
        values.update(url=url, api_key_id=api_key_id, api_key_expires_at=api_key_expires_at)
    if events is not None:
        values["events"] = list(event_types(events))
    if enabled is True:
        values.update(
            disabled_at=None, disabled_reason=None, consecutive_failures=0, failing_since=None
        )
    elif enabled is False:
        values.update(
            disabled_at=func.coalesce(webhooks.c.disabled_at, func.now()),
            disabled_reason=func.coalesce(webhooks.c.disabled_reason, BY_OWNER),
        )
    try:
        # A savepoint: the unique URL per account is what refuses a taken URL, also against
        # another request taking it at the same moment, and the caller's transaction lives on.
        async with session.begin_nested():
            row = (
                await session.execute(
                    webhooks.update()
                    .where(webhooks.c.id == hook.id)
                    .values(**values)
                    .returning(*webhooks.c)
                )
            ).one()
    except IntegrityError as exc:
        raise AlreadyExists("another of your webhooks has this URL") from exc
    return _webhook(row)


async def list_webhooks(*, session: AsyncSession, user_id: str) -> list[Webhook]:
    owner = parse_uuid(user_id, what="user id")
    rows = await session.execute(
        select(*webhooks.c).where(webhooks.c.user_id == owner).order_by(webhooks.c.created_at)
    )
    return [_webhook(row) for row in rows]


async def owned_webhook(
    *, session: AsyncSession, user_id: str, webhook_id: str, hold: bool = False
) -> Webhook:
    """The caller's webhook; someone else's is as absent as a missing one. `hold` keeps it
    from being deleted until the transaction ends (rows that will point at it are coming)."""
    owner = parse_uuid(user_id, what="user id")
    hook = parse_uuid(webhook_id, what="webhook id", error=NotFound)
    query = select(*webhooks.c).where(webhooks.c.id == hook, webhooks.c.user_id == owner)
    if hold:
        query = query.with_for_update(key_share=True, read=True)
    row = (await session.execute(query)).one_or_none()
    if row is None:
        raise NotFound("no such webhook")
    return _webhook(row)


async def _delete_webhooks(session: AsyncSession, *where: ColumnElement[bool]) -> int:
    """Delete the webhooks that match; returns how many. Every deletion of a webhook goes
    through here: its deliveries lose their webhook (set null), so one still pending is
    dead-lettered at its next attempt ("the webhook was deleted") and nothing more is sent."""
    deleted = await session.execute(webhooks.delete().where(*where).returning(webhooks.c.id))
    return len(deleted.all())


async def delete_webhook(*, session: AsyncSession, user_id: str, webhook_id: str) -> None:
    """Delete the caller's webhook; someone else's is as absent as a missing one."""
    owner = parse_uuid(user_id, what="user id")
    hook = parse_uuid(webhook_id, what="webhook id", error=NotFound)
    if not await _delete_webhooks(session, webhooks.c.id == hook, webhooks.c.user_id == owner):
        raise NotFound("no such webhook")


async def delete_user_webhooks(*, session: AsyncSession, user_id: uuid.UUID) -> int:
    """Delete every webhook of the user (at most WEBHOOK_MAX_PER_USER); returns how many.
    Their deliveries lose their webhook (set null) and are erased apart, by user."""
    return await _delete_webhooks(session, webhooks.c.user_id == user_id)


async def delete_key_webhooks(
    *, session: AsyncSession, user_id: uuid.UUID, api_key_id: uuid.UUID
) -> int:
    """Delete the webhooks of the user that API key `api_key_id` registered (the key was
    revoked); returns how many. Idempotent: run again, it finds none."""
    return await _delete_webhooks(
        session, webhooks.c.user_id == user_id, webhooks.c.api_key_id == api_key_id
    )


async def delete_webhook_of_expired_key(
    *, session: AsyncSession, webhook_id: uuid.UUID, now: datetime | None = None
) -> bool:
    """Delete the webhook if the API key that registered it has expired by `now`; whether it
    was deleted. A webhook of a key that never expires, or of a session, stays."""
    return bool(
        await _delete_webhooks(
            session,
            webhooks.c.id == webhook_id,
            webhooks.c.api_key_expires_at <= (now or datetime.now(UTC)),
        )
    )


async def subscribed_webhooks(
    *, session: AsyncSession, user_id: uuid.UUID, event_type: str
) -> list[Webhook]:
    rows = await session.execute(
        select(*webhooks.c).where(
            webhooks.c.user_id == user_id, webhooks.c.events.any_() == event_type
        )
    )
    return [_webhook(row) for row in rows]


async def rotate_secret(
    *,
    session: AsyncSession,
    box: SecretBox,
    user_id: str,
    webhook_id: str,
    keep_previous: timedelta,
    now: datetime | None = None,
    api_key_id: uuid.UUID | None = None,
    api_key_expires_at: datetime | None = None,
) -> tuple[Webhook, str]:
    """A new signing secret for the caller's webhook; returns the webhook and the secret,
    which exists in clear only in this answer. The secret it replaces keeps signing beside
    it for `keep_previous` (none: it stops now), so a receiver can move to the new one
    without missing a delivery; a secret replaced earlier stops now either way. The webhook
    is tied to the caller's credential, as a new URL ties it (update_webhook): whoever holds
    the new secret holds what that key gave."""
    if not timedelta(0) <= keep_previous <= MAX_KEEP_PREVIOUS:
        raise InvalidArgument(
            f"keep_previous_seconds must be between 0 and {int(MAX_KEEP_PREVIOUS.total_seconds())}"
        )
    now = now or datetime.now(UTC)
    hook = await owned_webhook(session=session, user_id=user_id, webhook_id=webhook_id)
    secret = new_secret()
    keeps = keep_previous > timedelta(0)
    row = (
        await session.execute(
            webhooks.update()
            .where(webhooks.c.id == hook.id)
            .values(
                secret_ciphertext=box.seal(secret),
                previous_secret_ciphertext=webhooks.c.secret_ciphertext if keeps else None,
                previous_secret_expires_at=now + keep_previous if keeps else None,
                api_key_id=api_key_id,
                api_key_expires_at=api_key_expires_at,
            )
            .returning(*webhooks.c)
        )
    ).one()
    return _webhook(row), secret


async def signing_target(
    *, session: AsyncSession, box: SecretBox, webhook_id: uuid.UUID
) -> SigningTarget | None:
    row = (
        await session.execute(
            select(
                webhooks.c.url,
                webhooks.c.secret_ciphertext,
                webhooks.c.api_key_expires_at,
                webhooks.c.previous_secret_ciphertext,
                webhooks.c.previous_secret_expires_at,
                webhooks.c.disabled_at,
            ).where(webhooks.c.id == webhook_id)
        )
    ).one_or_none()
    if row is None:
        return None
    previous = (
        box.open(row.previous_secret_ciphertext)
        if row.previous_secret_ciphertext is not None
        and _still_signing(row.previous_secret_expires_at) is not None
        else None
    )
    return SigningTarget(
        url=row.url,
        secret=box.open(row.secret_ciphertext),
        previous_secret=previous,
        api_key_expires_at=row.api_key_expires_at,
        disabled=row.disabled_at is not None,
    )
