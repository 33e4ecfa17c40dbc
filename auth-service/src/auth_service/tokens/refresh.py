"""Refresh tokens: opaque, high-entropy, stored as SHA-256, rotated on every use.

Opaque rather than JWT because only this service ever reads them and every use must hit the
database anyway (rotation, reuse detection). A 256-bit random token needs no slow hash:
nobody can guess it, so SHA-256 only keeps a database leak from handing out live tokens.
"""

import hashlib
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.tokens.models import RefreshToken
from objectvision_common.errors import Unauthenticated

logger = logging.getLogger(__name__)

REFRESH_PREFIX = "ovr_"
INVALID_REFRESH = "the refresh token is invalid"
EXPIRED_REFRESH = "the refresh token has expired"
REUSED_REFRESH = "the refresh token was already used; the session has been revoked"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Rotation:
    user_id: uuid.UUID
    refresh_token: str


def issue(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    lifetime: timedelta,
    family_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> str:
    """Stage a new refresh token (a new family unless one is given); returns the token."""
    now = now or datetime.now(UTC)
    token = REFRESH_PREFIX + secrets.token_urlsafe(32)
    session.add(
        RefreshToken(
            user_id=user_id,
            family_id=family_id or uuid.uuid4(),
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

    Presenting a token that was already rotated means two parties hold the family (one of
    them a thief), so the whole family is revoked and committed before refusing: neither
    party can continue the session. The row lock makes two concurrent uses of one token
    count as a reuse rather than both succeeding.
    """
    now = now or datetime.now(UTC)
    row = await find(session=session, token=token, for_update=True)
    if row.revoked_at is not None:
        raise Unauthenticated(INVALID_REFRESH)
    if row.rotated_at is not None:
        await revoke_family(session=session, family_id=row.family_id, now=now)
        await session.commit()
        logger.warning(
            "refresh token reuse; family revoked",
            extra={"user_id": str(row.user_id), "family_id": str(row.family_id)},
        )
        raise Unauthenticated(REUSED_REFRESH)
    if row.expires_at <= now:
        raise Unauthenticated(EXPIRED_REFRESH)
    row.rotated_at = now
    successor = issue(
        session=session, user_id=row.user_id, lifetime=lifetime, family_id=row.family_id, now=now
    )
    return Rotation(user_id=row.user_id, refresh_token=successor)


async def revoke_family(
    *, session: AsyncSession, family_id: uuid.UUID, now: datetime | None = None
) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now or datetime.now(UTC))
    )


async def revoke_all_for_user(
    *, session: AsyncSession, user_id: uuid.UUID, now: datetime | None = None
) -> None:
    """End every session of a user (after a password change)."""
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now or datetime.now(UTC))
    )
