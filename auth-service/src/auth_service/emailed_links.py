"""What every kind of emailed link (a password reset, ADR 0021; an email verification, ADR
0029) does once it is stored: find the one a token names, with its account, and end a user's
unused ones. Each kind has its own table (EmailedLinkColumns) and decides what a working
link then does; how one is found and ended is the same for both, so it is written here once.
"""

import uuid
from datetime import datetime
from typing import TypeVar

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.opaque_tokens import EmailedLinkColumns, hash_token, plausible
from auth_service.users.models import User

Link = TypeVar("Link", bound=EmailedLinkColumns)


async def lock_working_link(
    session: AsyncSession, kind: type[Link], token: str, now: datetime
) -> tuple[User, Link] | None:
    """The active account a link of `kind` was issued to and the link `token` names, both
    rows locked until the commit; None when the token does not work: not one at all,
    unknown, used, revoked, expired, or its account gone or disabled (the caller answers
    each case with the same message, so a guesser learns nothing from it).

    The account's row is locked first and the link's second, the order links are issued in
    (account, then its links), so a use and a new link for the same account wait for each
    other instead of deadlocking, and one link works once however many uses race. Both rows
    are read afresh under their locks, whatever the session held before.
    """
    if not plausible(token):
        return None
    token_hash = hash_token(token)
    owner_id = await session.scalar(select(kind.user_id).where(kind.token_hash == token_hash))
    if owner_id is None:
        return None
    user = await session.scalar(
        select(User)
        .where(User.id == owner_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    link = await session.scalar(
        select(kind)
        .where(kind.token_hash == token_hash)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if user is None or not user.is_active or link is None:
        return None
    if link.used_at is not None or link.revoked_at is not None or link.expires_at <= now:
        return None
    return user, link


async def revoke_unused(
    session: AsyncSession,
    kind: type[EmailedLinkColumns],
    *among: ColumnElement[bool],
    user_id: uuid.UUID,
    now: datetime,
) -> None:
    """End every link of `kind` the user has that is neither used nor revoked yet (expired
    ones too: they no longer work either way), of those that match `among` where given."""
    await session.execute(
        update(kind)
        .where(kind.user_id == user_id, kind.used_at.is_(None), kind.revoked_at.is_(None), *among)
        .values(revoked_at=now)
    )
