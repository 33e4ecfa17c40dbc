"""Refresh tokens: opaque, high-entropy, stored as SHA-256, rotated on every use.

Opaque rather than JWT because only this service ever reads them and every use must hit the
database anyway (rotation, reuse detection). A 256-bit random token needs no slow hash:
nobody can guess it, so SHA-256 only keeps a database leak from handing out live tokens.
"""

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.opaque_tokens import hash_token, new_token
from auth_service.tokens.models import RefreshToken
from objectvision_common.errors import Unauthenticated

REFRESH_PREFIX = "ovr_"
INVALID_REFRESH = "the refresh token is invalid"
EXPIRED_REFRESH = "the refresh token has expired"
REUSED_REFRESH = "the refresh token was already used; the session has been revoked"


@dataclass(frozen=True)
class Rotation:
    user_id: uuid.UUID
    family_id: uuid.UUID
    refresh_token: str


class ReusedRefreshToken(Unauthenticated):
    """A rotated refresh token was presented again: two parties hold the family (one of them
    a thief). The caller ends the whole session (refresh tokens and access tokens) before
    this reaches the client, which sees an UNAUTHENTICATED like any other refusal."""

    def __init__(self, *, user_id: uuid.UUID, family_id: uuid.UUID) -> None:
        super().__init__(REUSED_REFRESH)
        self.user_id = user_id
        self.family_id = family_id


def issue(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    lifetime: timedelta,
    family_id: uuid.UUID,
    now: datetime | None = None,
) -> str:
    """Stage a new refresh token in family `family_id` (a new one at login); returns it."""
    now = now or datetime.now(UTC)
    token = new_token(REFRESH_PREFIX)
    session.add(
        RefreshToken(
            user_id=user_id,
            family_id=family_id,
            token_hash=hash_token(token),
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    return token


async def find(*, session: AsyncSession, token: str, for_update: bool = False) -> RefreshToken:
    statement = select(RefreshToken).where(RefreshToken.token_hash == hash_token(token))
    if for_update:
        statement = statement.with_for_update()
    row = await session.scalar(statement)
    if row is None:
        raise Unauthenticated(INVALID_REFRESH)
    return row


async def rotate(
    *, session: AsyncSession, token: str, lifetime: timedelta, now: datetime | None = None
) -> Rotation:
    """Exchange a live refresh token for its successor in the same family.

    Presenting a token that was already rotated raises ReusedRefreshToken, for the caller to
    end the session: neither party may continue it. The row lock makes two concurrent uses
    of one token count as a reuse rather than both succeeding.
    """
    now = now or datetime.now(UTC)
    row = await find(session=session, token=token, for_update=True)
    if row.revoked_at is not None:
        raise Unauthenticated(INVALID_REFRESH)
    if row.rotated_at is not None:
        raise ReusedRefreshToken(user_id=row.user_id, family_id=row.family_id)
    if row.expires_at <= now:
        raise Unauthenticated(EXPIRED_REFRESH)
    row.rotated_at = now
    successor = issue(
        session=session, user_id=row.user_id, lifetime=lifetime, family_id=row.family_id, now=now
    )
    return Rotation(user_id=row.user_id, family_id=row.family_id, refresh_token=successor)


async def revoke_families(
    *, session: AsyncSession, family_ids: Collection[uuid.UUID], now: datetime | None = None
) -> None:
    if not family_ids:
        return
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id.in_(family_ids), RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now or datetime.now(UTC))
    )


async def families_minted_since(
    *, session: AsyncSession, user_id: uuid.UUID, since: datetime
) -> set[uuid.UUID]:
    """The user's families that issued a refresh token after `since`.

    An access token is minted only together with a refresh token (at login and at each
    rotation), so these are exactly the families that may have access tokens minted after
    `since`; older families' access tokens have all expired.
    """
    rows = await session.scalars(
        select(RefreshToken.family_id)
        .where(RefreshToken.user_id == user_id, RefreshToken.created_at > since)
        .distinct()
    )
    return set(rows)


async def revoke_all_for_user(
    *, session: AsyncSession, user_id: uuid.UUID, now: datetime | None = None
) -> None:
    """Revoke every refresh token of a user; sessions.end_all_for_user, which calls this, also
    refuses their access tokens."""
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now or datetime.now(UTC))
    )
