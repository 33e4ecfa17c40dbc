"""The auth schema's outbox and the events this service announces through it.

The table and the staging function are the shared ones (objectvision_common.outbox), so the
relay reads every producer's outbox the same way. An event row commits with the change it
describes, or not at all.
"""

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.database import Base
from objectvision.v1 import notification_pb2
from objectvision_common.outbox import add_event, outbox_table

USER_REGISTERED = "user.registered"
# Someone tried to sign up with the address of an existing account; its owner is told.
SIGNUP_ATTEMPTED = "user.signup_attempted"
# Someone tried to change another account's email to the address of an existing account; its
# owner is told.
EMAIL_CHANGE_ATTEMPTED = "user.email_change_attempted"

# Declared on the auth metadata, like the ORM models, so migrations and the drift test see it.
OUTBOX = outbox_table(Base.metadata)


async def add_user_registered(
    *, session: AsyncSession, user_id: uuid.UUID, email: str, name: str, occurred_at: datetime
) -> uuid.UUID:
    """Stage a `user.registered` event in the caller's transaction; returns the event id."""
    event = notification_pb2.Event(
        type=USER_REGISTERED,
        user_id=str(user_id),
        user_registered=notification_pb2.UserRegistered(email=email, name=name),
    )
    event.occurred_at.FromDatetime(occurred_at)
    return await add_event(session, OUTBOX, event)


async def add_signup_attempted(
    *, session: AsyncSession, user_id: uuid.UUID, occurred_at: datetime
) -> uuid.UUID:
    """Stage a `user.signup_attempted` event for account `user_id`; returns the event id.

    It names only the account: the owner's address and name are looked up from it (as for
    job reports), so nothing the sign-up request chose, its name least of all, reaches the
    owner's mail.
    """
    return await _add_address_notice(
        session=session, event_type=SIGNUP_ATTEMPTED, user_id=user_id, occurred_at=occurred_at
    )


async def add_email_change_attempted(
    *, session: AsyncSession, user_id: uuid.UUID, occurred_at: datetime
) -> uuid.UUID:
    """Stage a `user.email_change_attempted` event for account `user_id`, whose address
    another account asked to take; returns the event id.

    Like `user.signup_attempted` it names only the owner's account, not the account that
    asked: the owner learns that their address was tried, nothing about anyone else.
    """
    return await _add_address_notice(
        session=session,
        event_type=EMAIL_CHANGE_ATTEMPTED,
        user_id=user_id,
        occurred_at=occurred_at,
    )


async def _add_address_notice(
    *, session: AsyncSession, event_type: str, user_id: uuid.UUID, occurred_at: datetime
) -> uuid.UUID:
    event = notification_pb2.Event(type=event_type, user_id=str(user_id))
    event.occurred_at.FromDatetime(occurred_at)
    return await add_event(session, OUTBOX, event)
