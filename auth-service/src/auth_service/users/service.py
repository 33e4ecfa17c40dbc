"""Account operations. Each function takes the session and commits its own unit of work."""

import logging
import uuid

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import outbox
from auth_service.database import utcnow
from auth_service.email_verifications import service as email_verifications
from auth_service.opaque_tokens import LinkTerms
from auth_service.passwords import PasswordHasher
from auth_service.preferences import service as preferences_service
from auth_service.tokens import sessions
from auth_service.tokens.revocation import RevokedAccessTokens
from auth_service.users import schemas
from auth_service.users.models import User, flush_unique_email
from auth_service.users.notices import SignUpNotices
from auth_service.users.schemas import AdminPolicy, Caller
from objectvision.v1 import common_pb2
from objectvision_common.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)

logger = logging.getLogger(__name__)

# One message for every failed login, so the answer never tells whether an email exists.
LOGIN_FAILED = "incorrect email or password"
EMAIL_TAKEN = "an account with this email already exists"
USER_NOT_FOUND = "user not found"


async def get_by_email(*, session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == email))


async def register(
    *,
    session: AsyncSession,
    passwords: PasswordHasher,
    notices: SignUpNotices,
    verification: LinkTerms,
    email: str,
    password: str,
    name: str,
) -> None:
    """Create an account with default settings, its `user.registered` event and a link that
    verifies its address (`user.email_verification_requested`), atomically; for an address
    that already has an account, leave that account as it is and tell its owner instead
    (`user.signup_attempted`).

    No account is made an admin here, whatever ADMIN_EMAILS says: that waits until its
    address is verified (ADR 0029), so typing an admin's address earns nothing.

    Both cases return the same nothing and cost one Argon2 hash, so neither the answer nor its
    time tells the caller whether the address has an account. The caller proceeds to log in
    either way; only the owner's password opens an existing account.
    """
    email = schemas.new_account_email(email)
    password = schemas.check_password(password)
    name = schemas.normalise_name(name)
    password_hash = await passwords.hash(password)
    owner = await get_by_email(session=session, email=email)
    if owner is None:
        try:
            await _create(
                session=session,
                email=email,
                name=name,
                password_hash=password_hash,
                verification=verification,
            )
            return
        except AlreadyExists:
            # A concurrent sign-up committed this address between the lookup and the insert.
            owner = await get_by_email(session=session, email=email)
            if owner is None:
                raise
    if await notices.claim(owner.id):
        await outbox.add_signup_attempted(session=session, user_id=owner.id, occurred_at=utcnow())
        await session.commit()


async def _create(
    *,
    session: AsyncSession,
    email: str,
    name: str,
    password_hash: str,
    verification: LinkTerms,
) -> None:
    now = utcnow()
    user = User(
        id=uuid.uuid4(),
        email=email,
        name=name,
        password_hash=password_hash,
        is_admin=False,
        created_at=now,
        updated_at=now,
    )
    session.add(user)
    # The rows below reference the user; without ORM relationships the unit of work does
    # not order inserts by foreign key, so the user goes first explicitly.
    await flush_unique_email(session, AlreadyExists(EMAIL_TAKEN))
    preferences_service.add_defaults(session=session, user_id=user.id, now=now)
    await outbox.add_user_registered(
        session=session, user_id=user.id, email=email, name=name, occurred_at=now
    )
    await email_verifications.issue(session=session, user=user, terms=verification, now=now)
    await session.commit()


async def authenticate(
    *, session: AsyncSession, passwords: PasswordHasher, email: str, password: str
) -> User:
    """The account these credentials open, upgrading its hash if the parameters changed.

    Unknown emails still pay for one verification, so timing does not reveal accounts.
    The caller commits (a rehash is written with the login's other changes).
    """
    user = None
    if len(password) <= schemas.MAX_PASSWORD_LENGTH:
        try:
            user = await get_by_email(session=session, email=schemas.account_email(email))
        except InvalidArgument:
            user = None
    if user is None:
        await passwords.verify_dummy(password[: schemas.MAX_PASSWORD_LENGTH])
        raise Unauthenticated(LOGIN_FAILED)
    if not await passwords.verify(user.password_hash, password) or not user.is_active:
        raise Unauthenticated(LOGIN_FAILED)
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = await passwords.hash(password)
    return user


async def get_caller(
    *, session: AsyncSession, principal: common_pb2.Principal, admins: AdminPolicy
) -> Caller:
    """The live account behind a gateway-signed principal.

    Admin rights come from the database and `admins`, not the principal, so a demotion (or
    a second factor turned off where admins need one) applies at once.
    """
    try:
        user_id = uuid.UUID(principal.user_id)
    except ValueError as exc:
        raise Unauthenticated("the caller's identity is not a user") from exc
    user = await session.get(User, user_id)
    if user is None or not user.is_active:
        raise Unauthenticated("the caller's account does not exist or is disabled")
    return Caller(
        user=user,
        auth_method=principal.auth_method,
        is_admin=admins.grants(user),
        session_id=principal.session_id,
    )


def visible_user_id(*, caller: Caller, user_id: str) -> uuid.UUID:
    """The id of the account the caller may act on; empty means the caller.

    Another user's id is answered with NotFound, not PermissionDenied, so ids cannot be
    probed; admins may act on anyone.
    """
    if not user_id:
        return caller.user.id
    try:
        target = uuid.UUID(user_id)
    except ValueError as exc:
        raise InvalidArgument("user_id must be a UUID") from exc
    if target != caller.user.id and not caller.is_admin:
        raise NotFound(USER_NOT_FOUND)
    return target


async def confirm_password(
    *, passwords: PasswordHasher, caller: Caller, current_password: str | None, to: str
) -> None:
    """The caller's own password, given again for something a stolen session alone must not
    do (`to`, as the refusal names it): InvalidArgument when missing, PermissionDenied when
    wrong (which the gateway counts against RATE_LIMIT_PASSWORD_CONFIRM)."""
    if not current_password:
        raise InvalidArgument(f"current_password is required to {to}")
    if not await passwords.verify(caller.user.password_hash, current_password):
        raise PermissionDenied("current_password is incorrect")


async def get_visible(*, session: AsyncSession, caller: Caller, user_id: str) -> User:
    target_id = visible_user_id(caller=caller, user_id=user_id)
    if target_id == caller.user.id:
        return caller.user
    user = await session.get(User, target_id)
    if user is None:
        raise NotFound(USER_NOT_FOUND)
    return user


async def update(
    *,
    session: AsyncSession,
    passwords: PasswordHasher,
    revoked: RevokedAccessTokens,
    notices: SignUpNotices,
    verification: LinkTerms,
    caller: Caller,
    user_id: str,
    name: str | None,
    email: str | None,
    password: str | None,
    current_password: str | None,
) -> User:
    """Change a profile. Email and password changes need the caller's current password,
    so a stolen session alone cannot take the account over; a new password ends every
    session of the account, access tokens included (the caller logs in with it again), so a
    thief's session ends with the password it knew.

    A new address does not apply here (ADR 0033): it waits on the account as `pending_email`
    until the link mailed to it is opened (`email_verifications.verify_email` makes the move
    and announces it to the old address). An address that already has another account waits
    just the same, with no link, and its owner is told instead (`user.email_change_attempted`,
    at most one notice an hour per account, shared with sign-up's); so the answer, and every
    read of the account after it, is the same whether or not the address was free. Asking
    for the address the account has withdraws a waiting change.

    A changed password is announced to the owner in the same commit
    (`user.password_changed`), so a thief who knew the password cannot quietly take the
    account: its owner is told either way.
    """
    target = await get_visible(session=session, caller=caller, user_id=user_id)
    new_name = schemas.normalise_name(name) if name is not None else None
    new_email = schemas.new_account_email(email) if email is not None else None
    new_password = schemas.check_password(password) if password is not None else None
    if new_email is not None or new_password is not None:
        await confirm_password(
            passwords=passwords,
            caller=caller,
            current_password=current_password,
            to="change email or password",
        )
    now = utcnow()
    if new_name is not None:
        target.name = new_name
    if new_email == target.email:
        await email_verifications.withdraw_change(session=session, user=target, now=now)
    elif new_email is not None:
        owner = await get_by_email(session=session, email=new_email)
        await email_verifications.request_change(
            session=session,
            user=target,
            new_email=new_email,
            address_taken=owner is not None,
            terms=verification,
            now=now,
        )
        if owner is not None and await notices.claim(owner.id):
            await outbox.add_email_change_attempted(
                session=session, user_id=owner.id, occurred_at=now
            )
    if new_password is not None:
        target.password_hash = await passwords.hash(new_password)
        await sessions.end_all_for_user(
            session=session, revoked=revoked, user_id=target.id, now=now
        )
    target.updated_at = now
    if new_password is not None:
        await outbox.add_password_changed(
            session=session,
            user_id=target.id,
            method=(
                outbox.CHANGED_IN_SETTINGS
                if target.id == caller.user.id
                else outbox.CHANGED_BY_ADMINISTRATOR
            ),
            occurred_at=now,
        )
    await session.commit()
    return target


async def delete_account(
    *,
    session: AsyncSession,
    passwords: PasswordHasher,
    revoked: RevokedAccessTokens,
    caller: Caller,
    current_password: str,
) -> None:
    """Delete the caller's own account, given its current password (as for a password
    change, a stolen session or API key alone is not enough; a wrong password is the same
    PermissionDenied, and changes nothing).

    In one commit: every session ends the way a new password ends them (access tokens
    refused at once through the revocation list, written first), the account row goes and
    its refresh tokens, API keys, settings and reset links with it (ON DELETE CASCADE), so
    its address is free for a new sign-up, and a `user.deleted` event is staged, on which
    the other services erase the user's data (ADR 0025). The row is locked first, so two
    deletions at once stage one event; the second finds no account (Unauthenticated).
    """
    await confirm_password(
        passwords=passwords,
        caller=caller,
        current_password=current_password,
        to="delete the account",
    )
    user = await session.get(User, caller.user.id, with_for_update=True, populate_existing=True)
    if user is None:
        raise Unauthenticated("the caller's account does not exist or is disabled")
    now = utcnow()
    await sessions.end_all_for_user(session=session, revoked=revoked, user_id=user.id, now=now)
    await outbox.add_user_deleted(
        session=session, user_id=user.id, email=user.email, occurred_at=now
    )
    await session.execute(delete(User).where(User.id == user.id))
    await session.commit()


async def list_accounts(
    *, session: AsyncSession, caller: Caller, query: str, limit: int, offset: int
) -> tuple[list[User], int]:
    """An admin's look-up (ADR 0032): the accounts whose email contains `query` (any case),
    or the one whose id it is; all of them when it is empty; newest first, one page, and
    how many match in all. A non-admin is refused (PermissionDenied)."""
    caller.require_admin("list accounts")
    query = query.strip()
    matching = select(User)
    if query:
        try:
            matching = matching.where(User.id == uuid.UUID(query))
        except ValueError:
            matching = matching.where(User.email.icontains(query, autoescape=True))
    total = await session.scalar(select(func.count()).select_from(matching.subquery()))
    page = await session.scalars(
        matching.order_by(User.created_at.desc(), User.id).limit(limit).offset(offset)
    )
    return list(page), int(total or 0)


async def set_status(
    *,
    session: AsyncSession,
    revoked: RevokedAccessTokens,
    caller: Caller,
    user_id: str,
    active: bool | None,
    admin: bool | None,
) -> User:
    """An admin suspends or restores an account (`active`), grants or withdraws admin rights
    (`admin`); unset leaves that as it is (ADR 0032).

    Suspending or demoting ends every session of the account in the same commit, the way a
    new password does (access tokens refused at once), since a token says `admin` and the
    gateway trusts it until it expires; a suspended account's API keys stop with
    `is_active`, and it cannot log in or refresh. Restoring or promoting ends nothing: the
    account's next login or refresh says so. An admin cannot suspend or demote their own
    account, so the last admin cannot lock everyone out by mistake. Suspending or restoring
    stages `user.suspended` or `user.restored`, so the owner is told. A non-admin is refused
    (PermissionDenied), and an unknown id is NotFound. The row is locked, so two admins at
    once apply one after the other.
    """
    caller.require_admin("suspend, restore, promote or demote accounts")
    if active is None and admin is None:
        raise InvalidArgument("give `active`, `admin` or both")
    target_id = visible_user_id(caller=caller, user_id=user_id)
    if target_id == caller.user.id and (active is False or admin is False):
        raise FailedPrecondition(
            "an admin cannot suspend or demote their own account; ask another admin",
            code="own_account",
        )
    user = await session.get(User, target_id, with_for_update=True, populate_existing=True)
    if user is None:
        raise NotFound(USER_NOT_FOUND)
    now = utcnow()
    ends_sessions = (active is False and user.is_active) or (admin is False and user.is_admin)
    if active is not None and active != user.is_active:
        await outbox.add_account_status_changed(
            session=session,
            user_id=user.id,
            email=user.email,
            name=user.name,
            active=active,
            occurred_at=now,
        )
    if active is not None:
        user.is_active = active
    if admin is not None:
        user.is_admin = admin
    user.updated_at = now
    if ends_sessions:
        await sessions.end_all_for_user(session=session, revoked=revoked, user_id=user.id, now=now)
    await session.commit()
    logger.info(
        "account status set",
        extra={
            "user_id": str(user.id),
            "by_admin": str(caller.user.id),
            "active": user.is_active,
            "admin": user.is_admin,
        },
    )
    return user
