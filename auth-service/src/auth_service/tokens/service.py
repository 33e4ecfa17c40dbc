"""Sessions: logging in, refreshing, logging out and verifying access tokens."""

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.database import utcnow
from auth_service.passwords import PasswordHasher
from auth_service.tokens import refresh
from auth_service.tokens.access import (
    CLOCK_SKEW,
    INVALID_ACCESS,
    AccessClaims,
    AccessTokenCodec,
    IssuedAccessToken,
)
from auth_service.tokens.revocation import RevokedAccessTokens
from auth_service.users import service as users_service
from auth_service.users.models import User
from objectvision_common.errors import InvalidArgument, Unauthenticated

REVOKED_ACCESS = "the access token has been revoked"


@dataclass(frozen=True)
class TokenPair:
    access: IssuedAccessToken
    refresh_token: str


@dataclass(frozen=True)
class VerifiedAccess:
    user: User
    claims: AccessClaims


async def login(
    *,
    session: AsyncSession,
    passwords: PasswordHasher,
    access_tokens: AccessTokenCodec,
    refresh_lifetime: timedelta,
    email: str,
    password: str,
) -> TokenPair:
    """Check the credentials and open a new session (a new refresh-token family)."""
    user = await users_service.authenticate(
        session=session, passwords=passwords, email=email, password=password
    )
    now = utcnow()
    refresh_token = refresh.issue(
        session=session, user_id=user.id, lifetime=refresh_lifetime, now=now
    )
    await session.commit()
    access = access_tokens.issue(user_id=user.id, is_admin=user.is_admin, now=now)
    return TokenPair(access=access, refresh_token=refresh_token)


async def refresh_session(
    *,
    session: AsyncSession,
    access_tokens: AccessTokenCodec,
    refresh_lifetime: timedelta,
    refresh_token: str,
) -> TokenPair:
    """Rotate the refresh token and issue a fresh access token for its account."""
    if not refresh_token:
        raise InvalidArgument("refresh_token is required")
    now = utcnow()
    rotation = await refresh.rotate(
        session=session, token=refresh_token, lifetime=refresh_lifetime, now=now
    )
    user = await session.get(User, rotation.user_id)
    if user is None or not user.is_active:
        raise Unauthenticated(refresh.INVALID_REFRESH)
    await session.commit()
    access = access_tokens.issue(user_id=user.id, is_admin=user.is_admin, now=now)
    return TokenPair(access=access, refresh_token=rotation.refresh_token)


async def logout(
    *,
    session: AsyncSession,
    access_tokens: AccessTokenCodec,
    revoked: RevokedAccessTokens,
    access_token: str,
    refresh_token: str,
) -> None:
    """End a session: the access token is refused from now on, the refresh family too.

    Both tokens are checked before anything is revoked, and revoking twice is harmless,
    so a client can simply retry a logout that failed half-way.
    """
    if not access_token and not refresh_token:
        raise InvalidArgument("access_token or refresh_token is required")
    claims = access_tokens.decode(access_token, verify_expiry=False) if access_token else None
    stored = await refresh.find(session=session, token=refresh_token) if refresh_token else None
    if claims is not None and stored is not None and stored.user_id != claims.user_id:
        raise Unauthenticated("the access and refresh tokens belong to different sessions")
    if stored is not None:
        await refresh.revoke_family(session=session, family_id=stored.family_id)
        await session.commit()
    if claims is not None:
        # Tokens are accepted up to CLOCK_SKEW past `exp`, so they stay listed that long.
        await revoked.revoke(jti=claims.jti, until=claims.expires_at + CLOCK_SKEW)


async def verify_access_token(
    *,
    session: AsyncSession,
    access_tokens: AccessTokenCodec,
    revoked: RevokedAccessTokens,
    access_token: str,
) -> VerifiedAccess:
    """Everything the gateway checks, plus that the account still exists and is active."""
    if not access_token:
        raise Unauthenticated(INVALID_ACCESS)
    claims = access_tokens.decode(access_token)
    if await revoked.is_revoked(claims.jti):
        raise Unauthenticated(REVOKED_ACCESS)
    user = await session.get(User, claims.user_id)
    if user is None or not user.is_active:
        raise Unauthenticated(INVALID_ACCESS)
    return VerifiedAccess(user=user, claims=claims)
