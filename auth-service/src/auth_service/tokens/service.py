"""Sessions: logging in, refreshing, logging out and verifying access tokens."""

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import outbox
from auth_service.database import utcnow
from auth_service.passwords import PasswordHasher
from auth_service.tokens import refresh, sessions
from auth_service.tokens.access import (
    CLOCK_SKEW,
    INVALID_ACCESS,
    AccessClaims,
    AccessTokenCodec,
    IssuedAccessToken,
)
from auth_service.tokens.revocation import RevokedAccessTokens
from auth_service.two_factor import service as two_factor_service
from auth_service.two_factor.service import TwoFactorTerms
from auth_service.users import service as users_service
from auth_service.users.models import User
from auth_service.users.schemas import AdminPolicy
from objectvision_common.errors import InvalidArgument, Unauthenticated

logger = logging.getLogger(__name__)

REVOKED_ACCESS = "the access token has been revoked"


@dataclass(frozen=True)
class TokenPair:
    access: IssuedAccessToken
    refresh_token: str


@dataclass(frozen=True)
class VerifiedAccess:
    user: User
    claims: AccessClaims


@dataclass(frozen=True, kw_only=True)
class SessionTokens:
    """What every session operation needs besides the database session: the access-token
    codec, the revocation list and how long a refresh token lives.

    Built once when the service is wired and handed around whole, so the servicer does not
    repeat the same three dependencies on each login, refresh, logout and verification.
    """

    access_tokens: AccessTokenCodec
    revoked: RevokedAccessTokens
    refresh_lifetime: timedelta
    # Whose admin rights an access token (and an API key's principal) carries.
    admins: AdminPolicy


async def login(
    *,
    session: AsyncSession,
    passwords: PasswordHasher,
    tokens: SessionTokens,
    two_factor: TwoFactorTerms,
    email: str,
    password: str,
    second_factor_code: str | None,
    origin: sessions.LoginOrigin,
) -> TokenPair:
    """Check the credentials, and for an account with a second factor its code (ADR 0034),
    then open a new session (a new refresh-token family), recording what the login was for
    the account's session list (ADR 0035)."""
    user = await users_service.authenticate(
        session=session, passwords=passwords, email=email, password=password
    )
    now = utcnow()
    await two_factor_service.check_login(
        session=session, terms=two_factor, user=user, code=second_factor_code, now=now
    )
    family_id = uuid.uuid4()
    refresh_token = refresh.issue(
        session=session,
        user_id=user.id,
        lifetime=tokens.refresh_lifetime,
        family_id=family_id,
        now=now,
    )
    second_factor = user.two_factor_enabled_at is not None
    if await sessions.from_new_place(session=session, user_id=user.id, origin=origin):
        await outbox.add_new_login(
            session=session,
            user_id=user.id,
            client_ip=origin.client_ip,
            user_agent=origin.user_agent,
            second_factor=second_factor,
            occurred_at=now,
        )
    sessions.record_login(
        session=session,
        family_id=family_id,
        user_id=user.id,
        origin=origin,
        second_factor=second_factor,
        now=now,
    )
    await session.commit()
    access = tokens.access_tokens.issue(
        user_id=user.id,
        is_admin=tokens.admins.grants(user),
        email_verified=user.email_verified_at is not None,
        session_id=family_id,
        now=now,
    )
    return TokenPair(access=access, refresh_token=refresh_token)


async def refresh_session(
    *,
    session: AsyncSession,
    tokens: SessionTokens,
    refresh_token: str,
) -> TokenPair:
    """Rotate the refresh token and issue a fresh access token for its account.

    A reused refresh token ends its whole session, the access tokens minted earlier in the
    family included: whoever replayed it may hold one of those too.
    """
    if not refresh_token:
        raise InvalidArgument("refresh_token is required")
    now = utcnow()
    try:
        rotation = await refresh.rotate(
            session=session, token=refresh_token, lifetime=tokens.refresh_lifetime, now=now
        )
    except refresh.ReusedRefreshToken as reuse:
        await sessions.end(
            session=session, revoked=tokens.revoked, family_ids={reuse.family_id}, now=now
        )
        await session.commit()
        logger.warning(
            "refresh token reuse; session revoked",
            extra={"user_id": str(reuse.user_id), "family_id": str(reuse.family_id)},
        )
        raise
    user = await session.get(User, rotation.user_id)
    if user is None or not user.is_active:
        raise Unauthenticated(refresh.INVALID_REFRESH)
    await session.commit()
    access = tokens.access_tokens.issue(
        user_id=user.id,
        is_admin=tokens.admins.grants(user),
        email_verified=user.email_verified_at is not None,
        session_id=rotation.family_id,
        now=now,
    )
    return TokenPair(access=access, refresh_token=rotation.refresh_token)


async def logout(
    *,
    session: AsyncSession,
    tokens: SessionTokens,
    access_token: str,
    refresh_token: str,
) -> None:
    """End a session: its refresh-token family and every access token minted from it.

    Any refresh token of the family will do, a stale (already rotated or revoked) one
    included: a client that lost the race with its own refresh still holds one, and the
    session must end all the same. Both tokens are checked before anything is revoked, and
    revoking twice is harmless, so a client can simply retry a logout that failed half-way.
    """
    if not access_token and not refresh_token:
        raise InvalidArgument("access_token or refresh_token is required")
    claims = (
        tokens.access_tokens.decode(access_token, verify_expiry=False) if access_token else None
    )
    stored = await refresh.find(session=session, token=refresh_token) if refresh_token else None
    if claims is not None and stored is not None and stored.user_id != claims.user_id:
        raise Unauthenticated("the access and refresh tokens belong to different sessions")
    families = {claims.session_id} if claims is not None else set()
    if stored is not None:
        families.add(stored.family_id)
    now = utcnow()
    if claims is not None:
        # Covered by its session's entry too; the token's own entry is what verifiers that
        # predate session entries check, so a rolling upgrade does not reopen it.
        await tokens.revoked.revoke(jti=claims.jti, until=claims.expires_at + CLOCK_SKEW, now=now)
    await sessions.end(session=session, revoked=tokens.revoked, family_ids=families, now=now)
    await session.commit()


async def verify_access_token(
    *,
    session: AsyncSession,
    tokens: SessionTokens,
    access_token: str,
) -> VerifiedAccess:
    """Everything the gateway checks, plus that the account still exists and is active."""
    if not access_token:
        raise Unauthenticated(INVALID_ACCESS)
    claims = tokens.access_tokens.decode(access_token)
    if await tokens.revoked.is_revoked(jti=claims.jti, session_id=claims.session_id):
        raise Unauthenticated(REVOKED_ACCESS)
    user = await session.get(User, claims.user_id)
    if user is None or not user.is_active:
        raise Unauthenticated(INVALID_ACCESS)
    return VerifiedAccess(user=user, claims=claims)
