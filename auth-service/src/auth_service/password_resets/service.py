"""Asking for a reset link and using it. Each function takes the session and commits its own
unit of work (ADR 0021).

A token reads `ovp_<43 base64url characters>`: 256 random bits, URL-safe, so it goes into
the link as it is. Only its SHA-256 is stored: with that much entropy there is nothing to
brute-force, so a slow hash would buy nothing, and a database leak still hands out no link.
"""

import logging
import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import outbox
from auth_service.database import utcnow
from auth_service.emailed_links import lock_working_link, revoke_unused
from auth_service.opaque_tokens import LinkTerms, hash_token, new_token
from auth_service.password_resets.models import PasswordResetToken
from auth_service.passwords import PasswordHasher
from auth_service.tokens import sessions
from auth_service.tokens.revocation import RevokedAccessTokens
from auth_service.users import schemas
from auth_service.users.models import User
from objectvision_common.errors import InvalidArgument

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "ovp_"  # noqa: S105 - a prefix, not a secret
INVALID_LINK_CODE = "invalid_reset_token"
# One message for every token that does not work (unknown, used, superseded, expired, or
# its account disabled): the holder of an old link needs a new one, whichever it was.
INVALID_LINK = "this password reset link is invalid, already used or expired; ask for a new one"


def _invalid_token() -> InvalidArgument:
    return InvalidArgument(INVALID_LINK, code=INVALID_LINK_CODE)


async def request_reset(
    *, session: AsyncSession, email: str, terms: LinkTerms, now: datetime | None = None
) -> None:
    """Issue a reset link for the active account of `email`, ending its earlier unused ones,
    and stage the `user.password_reset_requested` event that mails it; for an address with
    no (active) account, do the same work short of storing anything.

    Both cases return the same nothing after the same steps (a token made and hashed, one
    lookup, one revoking UPDATE, one commit); only an account's commit also carries the new
    row and its event. Text that is no address at all is InvalidArgument, which depends on
    the text alone. The account's row is locked until the commit, so two requests at once
    still leave one working link.
    """
    now = now or utcnow()
    account_key = schemas.account_email(email)
    token = new_token(TOKEN_PREFIX)
    token_hash = hash_token(token)
    user = await session.scalar(select(User).where(User.email == account_key).with_for_update())
    account = user if user is not None and user.is_active else None
    # An id no row has when there is no account, so the statement runs all the same.
    await revoke_unused(
        session, PasswordResetToken, user_id=account.id if account else uuid.uuid4(), now=now
    )
    if account is not None:
        expires_at = now + terms.lifetime
        session.add(
            PasswordResetToken(
                id=uuid.uuid4(),
                user_id=account.id,
                token_hash=token_hash,
                created_at=now,
                expires_at=expires_at,
            )
        )
        await outbox.add_password_reset_requested(
            session=session,
            user_id=account.id,
            token=token,
            sealer=terms.sealer,
            expires_at=expires_at,
            occurred_at=now,
        )
    await session.commit()
    if account is not None:
        logger.info("password reset link issued", extra={"user_id": str(account.id)})


async def reset_password(
    *,
    session: AsyncSession,
    passwords: PasswordHasher,
    revoked: RevokedAccessTokens,
    token: str,
    new_password: str,
    now: datetime | None = None,
) -> None:
    """Set the password of the account the token was issued for, use the token up, revoke
    the account's other unused tokens and end every session of the account (as a password
    change does: refresh tokens revoked, access tokens refused from now on) and stage the
    `user.password_changed` notice to the owner; all in one commit.

    The password is checked first, so a refused one leaves the link usable. A token that does
    not work is InvalidArgument `invalid_reset_token`, one message whatever the reason.

    The account's row is locked first and the token's second, the order `request_reset`
    takes them in (account, then its tokens), so a reset and a new request for the same
    account wait for each other instead of deadlocking; and one link resets once, however
    many requests race with it.
    """
    new_password = schemas.check_password(new_password)
    now = now or utcnow()
    found = await lock_working_link(session, PasswordResetToken, token, now)
    if found is None:
        raise _invalid_token()
    user, row = found
    user.password_hash = await passwords.hash(new_password)
    user.updated_at = now
    row.used_at = now
    await revoke_unused(session, PasswordResetToken, user_id=user.id, now=now)
    await sessions.end_all_for_user(session=session, revoked=revoked, user_id=user.id, now=now)
    await outbox.add_password_changed(
        session=session, user_id=user.id, method=outbox.CHANGED_WITH_RESET_LINK, occurred_at=now
    )
    await session.commit()
    logger.info("password reset with an emailed link", extra={"user_id": str(user.id)})
