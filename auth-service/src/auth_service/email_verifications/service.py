"""Issuing verification links and using them (ADR 0029). The design is the password reset's
(ADR 0021): a token of 256 random bits, `ove_<43 base64url characters>`, stored only as its
SHA-256, single use, with an expiry, carried to the owner by an outbox event staged in the
same commit and by nothing else.

A change of address uses the same links (ADR 0033): the new address waits on the account as
`pending_email`, and the link mailed to it is what moves the account there. Until then the
sign-in address stays as it was, so asking for a change tells the caller nothing about
whether another account has the new address. A link confirms the address it was made for:
the account's own (a verification) or the one it waits to move to (a change); any other is
dead. Each kind ends only its own kind's earlier links, so asking for a change leaves a
pending verification of the current address working, and the other way round.

`issue`, `request_change` and `withdraw_change` join the caller's unit of work (a sign-up,
a profile update); `resend` and `verify_email` commit their own.
"""

import logging
import uuid
from datetime import datetime

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import outbox
from auth_service.database import utcnow
from auth_service.email_verifications.models import EmailVerificationToken
from auth_service.emailed_links import lock_working_link, revoke_unused
from auth_service.opaque_tokens import LinkTerms, hash_token, new_token
from auth_service.users.models import User, flush_unique_email
from objectvision_common.errors import FailedPrecondition, InvalidArgument, Unauthenticated

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "ove_"  # noqa: S105 - a prefix, not a secret
INVALID_LINK_CODE = "invalid_verification_token"
# One message for every token that does not work (unknown, used, superseded, expired, for an
# address the account no longer has, or its account disabled), as for reset links.
INVALID_LINK = "this email verification link is invalid, already used or expired; ask for a new one"
ALREADY_VERIFIED_CODE = "email_already_verified"
ALREADY_VERIFIED = "this account's email address is verified already"
EMAIL_TAKEN_CODE = "email_taken"
EMAIL_TAKEN = (
    "another account has this address now, so the change was not made; the account keeps "
    "its address"
)


def _invalid_token() -> InvalidArgument:
    return InvalidArgument(INVALID_LINK, code=INVALID_LINK_CODE)


async def issue(
    *, session: AsyncSession, user: User, terms: LinkTerms, now: datetime | None = None
) -> None:
    """Make a link for the account's current address, end the account's earlier unused ones
    for it and stage the `user.email_verification_requested` event that mails it, in the
    caller's transaction (the caller commits; its row lock, if any, covers this too)."""
    now = now or utcnow()
    await _revoke_unused(session, user, now, EmailVerificationToken.email == user.email)
    await _mail_link(session=session, user=user, address=user.email, terms=terms, now=now)


async def request_change(
    *,
    session: AsyncSession,
    user: User,
    new_email: str,
    address_taken: bool,
    terms: LinkTerms,
    now: datetime,
) -> None:
    """Let `user` wait to move to `new_email` until the link's lifetime ends, ending any
    earlier change's links, in the caller's transaction. A free address gets the link; a
    taken one none (its owner is told instead, by the caller), but waits on the account all
    the same, so the caller cannot tell the two apart."""
    await withdraw_change(session=session, user=user, now=now)
    user.pending_email = new_email
    user.pending_email_expires_at = now + terms.lifetime
    if not address_taken:
        await _mail_link(
            session=session, user=user, address=new_email, terms=terms, now=now, change=True
        )


async def withdraw_change(*, session: AsyncSession, user: User, now: datetime) -> None:
    """Forget the change `user` waits for, if any, and end its links."""
    user.pending_email = None
    user.pending_email_expires_at = None
    await _revoke_unused(session, user, now, EmailVerificationToken.email != user.email)


def pending_change(user: User, now: datetime) -> tuple[str, datetime] | None:
    """The address `user` waits to move to and when its link expires; None when none waits
    or the wait is over."""
    if user.pending_email is None or user.pending_email_expires_at is None:
        return None
    if user.pending_email_expires_at <= now:
        return None
    return user.pending_email, user.pending_email_expires_at


async def _mail_link(
    *,
    session: AsyncSession,
    user: User,
    address: str,
    terms: LinkTerms,
    now: datetime,
    change: bool = False,
) -> None:
    """Store a new link for `address` (only its hash) and stage the event that mails it."""
    token = new_token(TOKEN_PREFIX)
    expires_at = now + terms.lifetime
    session.add(
        EmailVerificationToken(
            id=uuid.uuid4(),
            user_id=user.id,
            email=address,
            token_hash=hash_token(token),
            created_at=now,
            expires_at=expires_at,
        )
    )
    await outbox.add_email_verification_requested(
        session=session,
        user_id=user.id,
        email=address,
        token=token,
        sealer=terms.sealer,
        expires_at=expires_at,
        occurred_at=now,
        change_of_address=change,
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
) -> tuple[str, bool]:
    """Mark the address the token was issued for as verified, use the token up and revoke
    the account's other unused ones for that address, in one commit; returns the verified
    address and whether it is a new one the account has moved to.

    A link for the address the account waits to move to makes the move (ADR 0033): the
    address becomes the account's, verified, every other link ends (the old address's too),
    the change is announced to the old address (`user.email_changed`) in the same commit, and
    whatever waited is forgotten. If another account took the address meanwhile, nothing
    changes and the answer is FailedPrecondition `email_taken` (the link stays unused, but
    can only fail again while the address is taken).

    An address in `admin_emails` makes the account an admin here: ADMIN_EMAILS names the
    people who read those inboxes, and this is where one proves it (ADR 0029). A token that
    does not work is InvalidArgument `invalid_verification_token`, one message whatever the
    reason; that includes a token for an address the account has since left.

    Locks the account's row first and the token's second, the order `issue` runs in under a
    sign-up, an email change or a resend, so one link verifies once however many uses race.
    """
    now = now or utcnow()
    found = await lock_working_link(session, EmailVerificationToken, token, now)
    if found is None:
        raise _invalid_token()
    user, row = found
    pending = pending_change(user, now)
    moving = pending is not None and row.email == pending[0]
    if row.email != user.email and not moving:
        raise _invalid_token()
    row.used_at = now
    if moving:
        await _move_to(session=session, user=user, new_email=row.email, now=now)
    else:
        await _revoke_unused(session, user, now, EmailVerificationToken.email == user.email)
    user.email_verified_at = now
    user.updated_at = now
    promoted = not user.is_admin and user.email in admin_emails
    if promoted:
        user.is_admin = True
    await session.commit()
    logger.info(
        "email address verified",
        extra={"user_id": str(user.id), "promoted_to_admin": promoted, "address_changed": moving},
    )
    return user.email, moving


async def _move_to(*, session: AsyncSession, user: User, new_email: str, now: datetime) -> None:
    """Make `new_email` the account's address, under the row lock the caller holds: ends
    every other link, forgets the wait and stages the notice to the old address. A taken
    address (looked up, or lost to a racing writer at the flush) is `email_taken`."""
    taken = await session.scalar(select(User.id).where(User.email == new_email))
    if taken is not None:
        await session.rollback()
        raise FailedPrecondition(EMAIL_TAKEN, code=EMAIL_TAKEN_CODE)
    old_email = user.email
    user.email = new_email
    user.pending_email = None
    user.pending_email_expires_at = None
    await _revoke_unused(session, user, now)
    await flush_unique_email(session, FailedPrecondition(EMAIL_TAKEN, code=EMAIL_TAKEN_CODE))
    await outbox.add_email_changed(
        session=session, user_id=user.id, old_email=old_email, new_email=new_email, occurred_at=now
    )


async def _revoke_unused(
    session: AsyncSession, user: User, now: datetime, *among: ColumnElement[bool]
) -> None:
    """End the account's unused links, of those that match `among` where given (which
    addresses' links: the current one's or the others')."""
    await revoke_unused(session, EmailVerificationToken, *among, user_id=user.id, now=now)
