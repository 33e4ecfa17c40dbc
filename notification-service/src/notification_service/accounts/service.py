"""Erasing what a deleted account kept here: its webhooks, and every delivery made for it,
whatever its state, with the attempts (ADR 0025).

Delivered ones go too: a delivery keeps the rendered email (the address, the name, what a job
found) or the webhook's body, and the erasure is of everything the account left. The goodbye
email the handler adds afterwards is the one delivery that stays (with no account id on it):
the record that the owner was told.
"""

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notification_service.accounts.models import ERASED_ACCOUNTS
from notification_service.deliveries import service as deliveries_service
from notification_service.webhooks import service as webhooks_service
from objectvision_common.erasure import close_account


async def erase_account(
    *,
    session_factory: async_sessionmaker[AsyncSession],
    user_id: uuid.UUID,
    deleted_at: datetime,
    chunk_size: int,
) -> int:
    """Close the account here and delete its webhooks in one transaction, then its deliveries
    `chunk_size` at a time, each chunk its own transaction; returns how many deliveries went.

    Closed first, so no webhook is created for the account afterwards; its webhooks gone, no
    job event makes a delivery for it either (and no email goes to a deleted account). So the
    chunks that follow find every delivery there will be. Idempotent: run again (the event
    redelivered after a crash) it deletes what is left, finally nothing.
    """
    async with session_factory.begin() as session:
        await close_account(session, ERASED_ACCOUNTS, str(user_id), deleted_at=deleted_at)
        await webhooks_service.delete_user_webhooks(session=session, user_id=user_id)
    deleted = 0
    while True:
        async with session_factory() as session:
            ids = await deliveries_service.user_delivery_ids(
                session=session, user_id=user_id, limit=chunk_size
            )
        if not ids:
            return deleted
        async with session_factory.begin() as session:
            deleted += await deliveries_service.delete_deliveries(session=session, delivery_ids=ids)
