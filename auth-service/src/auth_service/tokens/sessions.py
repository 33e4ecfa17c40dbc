"""Sessions: listing and ending them. A session is one refresh-token family together with
every access token minted from it, which carry the family's id as their `sid` claim; its
LoginSession row says what the login was (ADR 0035).

Revoking only the refresh tokens would leave the family's access tokens working for the rest
of their lifetime (up to ACCESS_TOKEN_EXPIRE_MINUTES), so every path that revokes a family
(logout, refresh-token reuse, a new password) goes through here and revokes both.
"""

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.tokens import refresh
from auth_service.tokens.models import LoginSession, RefreshToken
from auth_service.tokens.revocation import RevokedAccessTokens
from objectvision_common.errors import NotFound

# The columns' sizes (login_sessions): an IPv6 address with a zone fits in 64.
CLIENT_IP_LENGTH = 64
USER_AGENT_LENGTH = 256


async def end(
    *,
    session: AsyncSession,
    revoked: RevokedAccessTokens,
    family_ids: Collection[uuid.UUID],
    now: datetime,
) -> None:
    """Refuse the families' access tokens, then stage the revocation of their refresh tokens;
    the caller commits.

    Redis first: when the revocation list cannot be written, Unavailable is raised before the
    database changes, so the family is still live and a retry (logging out again, presenting
    the reused token again) ends it completely. The other order could leave a family whose
    refresh tokens are dead while its access tokens are still accepted, with nothing left
    that would revoke them on a retry.
    """
    for family_id in family_ids:
        await revoked.revoke_session(family_id)
    await refresh.revoke_families(session=session, family_ids=family_ids, now=now)


async def end_all_for_user(
    *,
    session: AsyncSession,
    revoked: RevokedAccessTokens,
    user_id: uuid.UUID,
    now: datetime,
) -> None:
    """End every session of a user (after a password change); the caller commits.

    Only the families that could still have live access tokens get a revocation entry; every
    refresh token of the user is revoked.
    """
    live = await refresh.families_minted_since(
        session=session, user_id=user_id, since=now - revoked.session_ttl
    )
    for family_id in live:
        await revoked.revoke_session(family_id)
    await refresh.revoke_all_for_user(session=session, user_id=user_id, now=now)


@dataclass(frozen=True)
class LoginOrigin:
    """Where a login came from, as the gateway saw it; shown, never checked. Cut to the
    columns' size when made, so what is compared is what is stored."""

    client_ip: str = ""
    user_agent: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "client_ip", self.client_ip[:CLIENT_IP_LENGTH])
        object.__setattr__(self, "user_agent", self.user_agent[:USER_AGENT_LENGTH])


@dataclass(frozen=True)
class LiveSession:
    """A session as its account's list shows it (ADR 0035)."""

    id: uuid.UUID
    # None for a session opened before logins were recorded.
    started_at: datetime | None
    last_active_at: datetime
    expires_at: datetime
    client_ip: str
    user_agent: str
    second_factor: bool


def record_login(
    *,
    session: AsyncSession,
    family_id: uuid.UUID,
    user_id: uuid.UUID,
    origin: LoginOrigin,
    second_factor: bool,
    now: datetime,
) -> None:
    """Stage what a new login was, for the account's session list; the caller commits. The
    gateway's words are cut to the columns' size: they describe, they prove nothing."""
    session.add(
        LoginSession(
            id=family_id,
            user_id=user_id,
            created_at=now,
            client_ip=origin.client_ip,
            user_agent=origin.user_agent,
            second_factor=second_factor,
        )
    )


async def from_new_place(*, session: AsyncSession, user_id: uuid.UUID, origin: LoginOrigin) -> bool:
    """Whether a login from `origin` is one the account's owner should hear of: the account
    has logged in before (its first login is its owner signing up) and never from this
    address with this User-Agent."""
    earlier = await session.execute(
        select(
            func.count(),
            func.count().filter(
                LoginSession.client_ip == origin.client_ip,
                LoginSession.user_agent == origin.user_agent,
            ),
        ).where(LoginSession.user_id == user_id)
    )
    logins, from_here = earlier.one()
    return logins > 0 and from_here == 0


async def live_sessions(
    *, session: AsyncSession, user_id: uuid.UUID, now: datetime
) -> list[LiveSession]:
    """The user's sessions that can still refresh, most recently active first: a family is
    live while its newest refresh token is neither rotated, revoked nor expired."""
    rows = await session.execute(
        select(RefreshToken, LoginSession)
        .outerjoin(LoginSession, LoginSession.id == RefreshToken.family_id)
        .where(
            RefreshToken.user_id == user_id,
            RefreshToken.rotated_at.is_(None),
            RefreshToken.revoked_at.is_(None),
            RefreshToken.expires_at > now,
        )
        .order_by(RefreshToken.created_at.desc())
    )
    return [
        LiveSession(
            id=token.family_id,
            started_at=login.created_at if login else None,
            last_active_at=token.created_at,
            expires_at=token.expires_at,
            client_ip=login.client_ip if login else "",
            user_agent=login.user_agent if login else "",
            second_factor=login.second_factor if login else False,
        )
        for token, login in rows
    ]


async def end_others(
    *,
    session: AsyncSession,
    revoked: RevokedAccessTokens,
    user_id: uuid.UUID,
    keep: Collection[uuid.UUID],
    now: datetime,
) -> int:
    """End every live session of the user but those in `keep`; how many ended. The caller
    commits."""
    ending = {
        live.id
        for live in await live_sessions(session=session, user_id=user_id, now=now)
        if live.id not in keep
    }
    await end(session=session, revoked=revoked, family_ids=ending, now=now)
    return len(ending)


async def end_one(
    *,
    session: AsyncSession,
    revoked: RevokedAccessTokens,
    user_id: uuid.UUID,
    session_id: uuid.UUID,
    now: datetime,
) -> None:
    """End one live session of the user (NotFound for anyone else's, an ended or an unknown
    one, alike). The caller commits."""
    live = {found.id for found in await live_sessions(session=session, user_id=user_id, now=now)}
    if session_id not in live:
        raise NotFound("no such session")
    await end(session=session, revoked=revoked, family_ids={session_id}, now=now)
