"""The auth schema's outbox and the events this service announces through it.

The table and the staging function are the shared ones (objectvision_common.outbox), so the
relay reads every producer's outbox the same way, and the event types are spelled once, in
objectvision_common.account_events, for notification-service to match. An event row commits
with the change it describes, or not at all.
"""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.database import Base
from objectvision.v1 import notification_pb2
from objectvision_common import account_events
from objectvision_common.outbox import add_event, outbox_table
from objectvision_common.sealing import SecretBox

# How a password was changed, as the notice tells its owner (PasswordChanged.method).
CHANGED_IN_SETTINGS = "settings"
CHANGED_BY_ADMINISTRATOR = "administrator"
CHANGED_WITH_RESET_LINK = "reset_link"

SECOND_FACTOR_NOTICES = frozenset(
    {
        account_events.TWO_FACTOR_ENABLED,
        account_events.TWO_FACTOR_DISABLED,
        account_events.RECOVERY_CODE_USED,
    }
)

# Declared on the auth metadata, like the ORM models, so migrations and the drift test see it.
OUTBOX = outbox_table(Base.metadata)


async def add_user_registered(
    *, session: AsyncSession, user_id: uuid.UUID, email: str, name: str, occurred_at: datetime
) -> uuid.UUID:
    """Stage a `user.registered` event in the caller's transaction; returns the event id."""
    return await _stage(
        session,
        account_events.USER_REGISTERED,
        user_id=user_id,
        occurred_at=occurred_at,
        user_registered=notification_pb2.UserRegistered(email=email, name=name),
    )


async def add_signup_attempted(
    *, session: AsyncSession, user_id: uuid.UUID, occurred_at: datetime
) -> uuid.UUID:
    """Stage a `user.signup_attempted` event for account `user_id`; returns the event id.

    It names only the account: the owner's address and name are looked up from it (as for
    job reports), so nothing the sign-up request chose, its name least of all, reaches the
    owner's mail.
    """
    return await _stage(
        session, account_events.SIGNUP_ATTEMPTED, user_id=user_id, occurred_at=occurred_at
    )


async def add_email_change_attempted(
    *, session: AsyncSession, user_id: uuid.UUID, occurred_at: datetime
) -> uuid.UUID:
    """Stage a `user.email_change_attempted` event for account `user_id`, whose address
    another account asked to take; returns the event id.

    Like `user.signup_attempted` it names only the owner's account, not the account that
    asked: the owner learns that their address was tried, nothing about anyone else.
    """
    return await _stage(
        session, account_events.EMAIL_CHANGE_ATTEMPTED, user_id=user_id, occurred_at=occurred_at
    )


async def add_password_reset_requested(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    token: str,
    sealer: SecretBox,
    expires_at: datetime,
    occurred_at: datetime,
) -> uuid.UUID:
    """Stage a `user.password_reset_requested` event for account `user_id`; returns the event
    id.

    An event with a secret in it: the token, for the email's link and nothing else (ADR
    0021), sealed by `sealer` (objectvision_common.sealing.event_secrets), so the outbox and
    the events stream hold no usable link. Like the address notices it names the account,
    not the address the request typed, so the link goes to the address the account has when
    the mail is made.
    """
    requested = notification_pb2.PasswordResetRequested(sealed_token=sealer.seal(token))
    requested.expires_at.FromDatetime(expires_at)
    return await _stage(
        session,
        account_events.PASSWORD_RESET_REQUESTED,
        user_id=user_id,
        occurred_at=occurred_at,
        password_reset_requested=requested,
    )


async def add_email_verification_requested(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    email: str,
    token: str,
    sealer: SecretBox,
    expires_at: datetime,
    occurred_at: datetime,
    change_of_address: bool = False,
) -> uuid.UUID:
    """Stage a `user.email_verification_requested` event for account `user_id`; returns the
    event id.

    Like the reset link's event it carries a secret, the token, for the email's link and
    nothing else (ADR 0029), sealed the same way. Unlike it, it names the address: the link
    confirms that address and is mailed to it alone. `change_of_address` says the address is
    a new one the account waits to move to (ADR 0033), so the email says what opening it does.
    """
    requested = notification_pb2.EmailVerificationRequested(
        sealed_token=sealer.seal(token), email=email, change_of_address=change_of_address
    )
    requested.expires_at.FromDatetime(expires_at)
    return await _stage(
        session,
        account_events.EMAIL_VERIFICATION_REQUESTED,
        user_id=user_id,
        occurred_at=occurred_at,
        email_verification_requested=requested,
    )


async def add_password_changed(
    *, session: AsyncSession, user_id: uuid.UUID, method: str, occurred_at: datetime
) -> uuid.UUID:
    """Stage a `user.password_changed` event for account `user_id`, changed by `method`
    (one of the CHANGED_* values); returns the event id.

    Staged in the change's own transaction, so the owner hears of every password that was
    set and of none that was refused. It names the account and how, nothing about the
    password: the notice goes to the address the account has when it is made, like the reset
    link.
    """
    return await _stage(
        session,
        account_events.PASSWORD_CHANGED,
        user_id=user_id,
        occurred_at=occurred_at,
        password_changed=notification_pb2.PasswordChanged(method=method),
    )


async def add_two_factor_changed(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    event_type: str,
    occurred_at: datetime,
    method: str = "",
    recovery_codes_left: int = 0,
) -> uuid.UUID:
    """Stage one of the second-factor notices (ADR 0034) for account `user_id`:
    `TWO_FACTOR_ENABLED`, `TWO_FACTOR_DISABLED` (with `method`, one of the CHANGED_* values)
    or `RECOVERY_CODE_USED` (with how many codes are left); returns the event id. Nothing
    about the secret or the codes themselves travels."""
    if event_type not in SECOND_FACTOR_NOTICES:
        raise ValueError(f"not a second-factor notice: {event_type}")
    return await _stage(
        session,
        event_type,
        user_id=user_id,
        occurred_at=occurred_at,
        two_factor_changed=notification_pb2.TwoFactorChanged(
            method=method, recovery_codes_left=recovery_codes_left
        ),
    )


async def add_new_login(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    client_ip: str,
    user_agent: str,
    second_factor: bool,
    occurred_at: datetime,
) -> uuid.UUID:
    """Stage a `user.new_login` event: account `user_id` was logged in to from an address and
    User-Agent none of its earlier logins had (ADR 0035); returns the event id. Where from,
    as the gateway saw it, and whether a second factor was given; nothing secret."""
    return await _stage(
        session,
        account_events.NEW_LOGIN,
        user_id=user_id,
        occurred_at=occurred_at,
        new_login=notification_pb2.NewLogin(
            client_ip=client_ip, user_agent=user_agent, second_factor=second_factor
        ),
    )


async def add_email_changed(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    old_email: str,
    new_email: str,
    occurred_at: datetime,
) -> uuid.UUID:
    """Stage a `user.email_changed` event for account `user_id`; returns the event id.

    The notice goes to `old_email`, which only this event still knows once the change has
    committed: whoever took the account over reads the new address, its owner the old one.
    Of the new address it carries a hint (`email_hint`), all the notice shows, so the old
    inbox, which may no longer be the owner's, learns no full address from it.
    """
    return await _stage(
        session,
        account_events.EMAIL_CHANGED,
        user_id=user_id,
        occurred_at=occurred_at,
        email_changed=notification_pb2.EmailChanged(
            old_email=old_email, new_email_hint=email_hint(new_email)
        ),
    )


async def add_user_deleted(
    *, session: AsyncSession, user_id: uuid.UUID, email: str, occurred_at: datetime
) -> uuid.UUID:
    """Stage a `user.deleted` event for account `user_id`, in the transaction that deletes
    it; returns the event id.

    Every other service erases the user's data when it reads it (ADR 0025), so it is staged
    with the deletion or not at all: a refused deletion erases nothing, and a committed one
    cannot lose its erasure. The address is for the goodbye email alone: nothing can look it
    up once the account is gone. No name: the email does not need one.
    """
    return await _stage(
        session,
        account_events.USER_DELETED,
        user_id=user_id,
        occurred_at=occurred_at,
        user_deleted=notification_pb2.UserDeleted(email=email),
    )


async def add_api_key_revoked(
    *, session: AsyncSession, user_id: uuid.UUID, key_id: uuid.UUID, occurred_at: datetime
) -> uuid.UUID:
    """Stage an `api_key.revoked` event for key `key_id` of account `user_id` (its owner,
    whoever revoked it), in the transaction that revokes it; returns the event id.

    notification-service deletes the webhooks registered with the key when it reads it
    (ADR 0026, amendment), so a webhook cannot outlive the revocation of the key that made
    it. Staged with the revocation or not at all: a key revoked once is announced once.
    """
    return await _stage(
        session,
        account_events.API_KEY_REVOKED,
        user_id=user_id,
        occurred_at=occurred_at,
        api_key_revoked=notification_pb2.ApiKeyRevoked(key_id=str(key_id)),
    )


def email_hint(email: str) -> str:
    """The address with its local part reduced to the first character: `a***@example.com`.

    Enough for an owner to tell their own new address from a stranger's; the fixed `***`
    does not give away the local part's length.
    """
    local, _, domain = email.rpartition("@")
    return f"{local[:1]}***@{domain}"


async def add_account_status_changed(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    email: str,
    name: str,
    active: bool,
    occurred_at: datetime,
) -> uuid.UUID:
    """Stage `user.suspended` (`active` False) or `user.restored` for account `user_id`: its
    owner is told by email (ADR 0032). The address and name travel in the event, since a
    suspended account is shown to nobody when the mail is made."""
    kind = account_events.ACCOUNT_RESTORED if active else account_events.ACCOUNT_SUSPENDED
    return await _stage(
        session,
        kind,
        user_id=user_id,
        occurred_at=occurred_at,
        account_status_changed=notification_pb2.AccountStatusChanged(email=email, name=name),
    )


async def _stage(
    session: AsyncSession,
    event_type: str,
    *,
    user_id: uuid.UUID,
    occurred_at: datetime,
    **payload: Any,
) -> uuid.UUID:
    """Stage an event of `event_type` about account `user_id` in the caller's transaction;
    returns the event id. `payload` is the event's payload field, if it has one (the address
    notices have none: they name only the account)."""
    event = notification_pb2.Event(type=event_type, user_id=str(user_id), **payload)
    event.occurred_at.FromDatetime(occurred_at)
    return await add_event(session, OUTBOX, event)
