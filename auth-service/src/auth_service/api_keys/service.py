"""Creating, listing, revoking and checking API keys.

A key reads `ov_<prefix>_<secret>`: the prefix (8 hex characters) lets a user recognise a
key in a list and secret scanners spot leaked ones; the secret carries 256 random bits.
Only SHA-256 of the whole key is stored. A fast hash is right here, unlike for passwords:
with 256 bits of entropy there is nothing to brute-force, and a slow hash would make every
API call pay for it.

A key carries scopes (what it may do, objectvision_common.api_keys.Scope) and may expire; both
travel in the Principal that `authenticate` answers, and the gateway enforces them. Neither
can be changed after creation: a key that needs other rights is a new key.
"""

import hashlib
import secrets
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import outbox
from auth_service.api_keys.models import ApiKey
from auth_service.database import utcnow
from auth_service.users.models import User
from auth_service.users.schemas import Caller, normalise_name
from objectvision_common.api_keys import (
    MAX_KEYS_IN_USE,
    MAX_LIFETIME_DAYS,
    MAX_PAST_KEYS_LISTED,
    requested_scopes,
)
from objectvision_common.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unauthenticated,
)

KEY_SCHEME = "ov"
INVALID_API_KEY = "the API key is invalid or revoked"
# Said only to whoever holds the whole key (it was found by its hash), so it tells them
# nothing they could not know; it tells a script's owner to make a new key rather than
# look for a typo.
EXPIRED_API_KEY = "the API key has expired"
# `last_used_at` is for humans; writing it more often than this would put a database write
# on every API call.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def _new_key() -> tuple[str, str]:
    """A fresh key and its displayable prefix."""
    prefix = f"{KEY_SCHEME}_{secrets.token_hex(4)}"
    return f"{prefix}_{secrets.token_urlsafe(32)}", prefix


def _expiry(created_at: datetime, expires_in_days: int | None) -> datetime | None:
    if expires_in_days is None:
        return None
    if not 1 <= expires_in_days <= MAX_LIFETIME_DAYS:
        raise InvalidArgument(
            f"expires_in_days must be from 1 to {MAX_LIFETIME_DAYS}, or left out for a key "
            "that lasts until it is revoked"
        )
    return created_at + timedelta(days=expires_in_days)


async def create(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    name: str,
    scopes: Iterable[str] = (),
    expires_in_days: int | None = None,
) -> tuple[ApiKey, str]:
    """A new key and its secret; the secret is returned here and never again. No `scopes`
    means every scope; no `expires_in_days`, a key that lasts until it is revoked.
    FailedPrecondition when the account has MAX_KEYS_IN_USE keys in use already (the
    account's row is locked while they are counted, so two creations cannot both pass)."""
    name = normalise_name(name)
    granted = requested_scopes(scopes)
    created_at = utcnow()
    expires_at = _expiry(created_at, expires_in_days)
    await session.execute(select(User.id).where(User.id == user_id).with_for_update())
    in_use = await session.scalar(
        select(func.count())
        .select_from(ApiKey)
        .where(ApiKey.user_id == user_id, _in_use(created_at))
    )
    if (in_use or 0) >= MAX_KEYS_IN_USE:
        raise FailedPrecondition(
            f"this account has {in_use} API keys in use, as many as one account may:"
            " revoke one it no longer needs"
        )
    secret, prefix = _new_key()
    key = ApiKey(
        id=uuid.uuid4(),
        user_id=user_id,
        name=name,
        prefix=prefix,
        key_hash=hash_key(secret),
        created_at=created_at,
        scopes=[scope.value for scope in granted],
        expires_at=expires_at,
    )
    session.add(key)
    await session.commit()
    return key, secret


def _in_use(now: datetime) -> ColumnElement[bool]:
    """Neither revoked nor expired at `now`."""
    return ApiKey.revoked_at.is_(None) & or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now)


async def list_for_user(*, session: AsyncSession, user_id: uuid.UUID) -> list[ApiKey]:
    """The user's keys, newest first: every key in use, then the newest MAX_PAST_KEYS_LISTED
    revoked or expired ones, so the history stays visible and the list stays bounded."""
    now = utcnow()
    newest_first = (ApiKey.created_at.desc(), ApiKey.id)
    in_use = await session.scalars(
        select(ApiKey).where(ApiKey.user_id == user_id, _in_use(now)).order_by(*newest_first)
    )
    past = await session.scalars(
        select(ApiKey)
        .where(ApiKey.user_id == user_id, ~_in_use(now))
        .order_by(*newest_first)
        .limit(MAX_PAST_KEYS_LISTED)
    )
    return sorted([*in_use, *past], key=lambda key: key.created_at, reverse=True)


async def revoke(*, session: AsyncSession, caller: Caller, key_id: str) -> None:
    """Revoke one of the caller's keys (admins: anyone's). Revoking twice is harmless.

    The first revocation stages `api_key.revoked` in its own commit, so the webhooks made
    with the key are deleted (ADR 0026, amendment); a second finds the key revoked and
    stages nothing."""
    try:
        parsed = uuid.UUID(key_id)
    except ValueError as exc:
        raise InvalidArgument("key_id must be a UUID") from exc
    key = await session.get(ApiKey, parsed, with_for_update=True)
    if key is None or (key.user_id != caller.user.id and not caller.is_admin):
        raise NotFound("API key not found")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await outbox.add_api_key_revoked(
            session=session, user_id=key.user_id, key_id=key.id, occurred_at=key.revoked_at
        )
        await session.commit()


async def authenticate(*, session: AsyncSession, api_key: str) -> tuple[ApiKey, User]:
    """The live key and its live owner; one message for every failure but expiry."""
    scheme, _, rest = api_key.partition("_")
    if scheme != KEY_SCHEME or not rest:
        raise Unauthenticated(INVALID_API_KEY)
    row = await session.execute(
        select(ApiKey, User)
        .join(User, User.id == ApiKey.user_id)
        .where(ApiKey.key_hash == hash_key(api_key))
    )
    found = row.one_or_none()
    if found is None:
        raise Unauthenticated(INVALID_API_KEY)
    key, user = found
    if key.revoked_at is not None or not user.is_active:
        raise Unauthenticated(INVALID_API_KEY)
    now = utcnow()
    if key.expires_at is not None and key.expires_at <= now:
        raise Unauthenticated(EXPIRED_API_KEY, code="api_key_expired")
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        key.last_used_at = now
        await session.commit()
    return key, user
