"""Issuing verification links and using them (ADR 0029). The design is the password reset's
(ADR 0021): a token of 256 random bits, `ove_<43 base64url characters>`, stored only as its
SHA-256, single use, with an expiry, carried to the owner by an outbox event staged in the
same commit and by nothing else.

`issue` joins the caller's unit of work (a sign-up, an email change); `resend` and
`verify_email` commit their own.
"""

import logging
import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import outbox
from auth_service.database import utcnow
from auth_service.email_verifications.models import EmailVerificationToken
from auth_service.opaque_tokens import LinkTerms, hash_token, new_token, plausible
from auth_service.users.models import User
from objectvision_common.errors import FailedPrecondition, InvalidArgument, Unauthenticated

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "ove_"  # noqa: S105 - a prefix, not a secret
INVALID_LINK_CODE = "invalid_verification_token"
# One message for every token that does not work (unknown, used, superseded, expired, for an
# address the account no longer has, or its account disabled), as for reset links.
INVALID_LINK = "this email verification link is invalid, already used or expired; ask for a new one"
ALREADY_VERIFIED_CODE = "email_already_verified"
ALREADY_VERIFIED = "this account's email address is verified already"


def _invalid_token() -> InvalidArgument:
    return InvalidArgument(INVALID_LINK, code=INVALID_LINK_CODE)


async def issue(
    *, session: AsyncSession, user: User, terms: LinkTerms, now: datetime | None = None
) -> None:
    """Make a link for the account's current address, end the account's earlier unused ones
    and stage the `user.email_verification_requested` event that mails it, in the caller's
    transaction (the caller commits; its row lock, if any, covers this too)."""
    now = now or utcnow()
    token = new_token(TOKEN_PREFIX)
    expires_at = now + terms.lifetime
    await _revoke_unused(session=session, user_id=user.id, now=now)
    session.add(
        EmailVerificationToken(
            id=uuid.uuid4(),
            user_id=user.id,
            email=user.email,
            token_hash=hash_token(token),
            created_at=now,
            expires_at=expires_at,
        )
    )
    await outbox.add_email_verification_requested(
        session=session,
        user_id=user.id,
        email=user.email,
        token=token,
        sealer=terms.sealer,
        expires_at=expires_at,
        occurred_at=now,
    )


async def resend(
    *, session: AsyncSession, user_id: uuid.UUID, terms: LinkTerms, now: datetime | None = None
) -> None:
    """A new link for the account's address, ending its earlier ones, in one commit. An
    address verified already is FailedPrecondition `email_already_verified`: there is
    nothing to confirm. The account's row is locked, so two requests at once still leave one
    working link."""
    now = now or utcnow()
    user = await session.scalar(
        select(User)
        .where(User.id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if user is None or not user.is_active:
        raise Unauthenticated("the caller's account does not exist or is disabled")
    if user.email_verified_at is not None:
        raise FailedPrecondition(ALREADY_VERIFIED, code=ALREADY_VERIFIED_CODE)
    await issue(session=session, user=user, terms=terms, now=now)
    await session.commit()
    logger.info("email verification link issued again", extra={"user_id": str(user.id)})


async def verify_email(
    *,
    session: AsyncSession,
    token: str,
    admin_emails: frozenset[str],
    now: datetime | None = None,
) -> str:
    """Mark the address the token was issued for as verified, use the token up and revoke
    the account's other unused ones, in one commit; returns the verified address.

    An address in `admin_emails` makes the account an admin here: ADMIN_EMAILS names the
    people who read those inboxes, and this is where one proves it (ADR 0029). A token that
    does not work is InvalidArgument `invalid_verification_token`, one message whatever the
    reason; that includes a token for an address the account has since left.

    Locks the account's row first and the token's second, the order `issue` runs in under a
    sign-up, an email change or a resend, so one link verifies once however many uses race.
    """
    now = now or utcnow()
    if not plausible(token):
        raise _invalid_token()
    token_hash = hash_token(token)
    owner_id = await session.scalar(
        select(EmailVerificationToken.user_id).where(
            EmailVerificationToken.token_hash == token_hash
        )
    )
    if owner_id is None:
        raise _invalid_token()
    user = await session.scalar(
        select(User)
        .where(User.id == owner_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    row = await session.scalar(
        select(EmailVerificationToken)
        .where(EmailVerificationToken.token_hash == token_hash)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if user is None or not user.is_active or row is None:
        raise _invalid_token()
    if row.used_at is not None or row.revoked_at is not None or row.expires_at <= now:
        raise _invalid_token()
    if row.email != user.email:
        raise _invalid_token()
    row.used_at = now
    user.email_verified_at = now
    user.updated_at = now
    promoted = not user.is_admin and user.email in admin_emails
    if promoted:
        user.is_admin = True
    await _revoke_unused(session=session, user_id=user.id, now=now)
    await session.commit()
    logger.info(
        "email address verified",
        extra={"user_id": str(user.id), "promoted_to_admin": promoted},
    )
    return user.email


async def _revoke_unused(*, session: AsyncSession, user_id: uuid.UUID, now: datetime) -> None:
    """End every link of the user that is neither used nor revoked yet."""
    await session.execute(
        update(EmailVerificationToken)
        .where(
            EmailVerificationToken.user_id == user_id,
            EmailVerificationToken.used_at.is_(None),
            EmailVerificationToken.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
