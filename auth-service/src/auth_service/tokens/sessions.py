"""Ending sessions. A session is one refresh-token family together with every access token
minted from it, which carry the family's id as their `sid` claim.

Revoking only the refresh tokens would leave the family's access tokens working for the rest
of their lifetime (up to ACCESS_TOKEN_EXPIRE_MINUTES), so every path that revokes a family
(logout, refresh-token reuse, a new password) goes through here and revokes both.
"""

import uuid
from collections.abc import Collection
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.tokens import refresh
from auth_service.tokens.revocation import RevokedAccessTokens


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
