"""Deleted accounts, as each service that keeps a user's data records them: the table of erased
accounts and the lock that keeps a late write from outliving an erasure (ADR 0025).

A service erases a user's data when it reads the `user.deleted` event, moments or minutes
after the account was deleted. A write for that user can still be in flight then: a video
upload that passed the gateway's checks before the account was deleted streams for minutes,
a batch job commits its rows when its last file arrived. Committed after the erasure, such
rows would outlive it for good, since nothing would ever erase them again.

So the erasure first records the account here (`close_account`), under an exclusive
transaction-level advisory lock on the account, and every transaction that writes new rows
for a user first takes the same lock shared and checks the record (`hold_open_account`).
A write that took its lock before the record waits for nothing and commits first, and its
rows are there for the erasure that follows; a write after the record is refused. Shared
locks do not wait for each other, so users' writes only ever wait for their own erasure.

The record holds the account's id and when it was deleted, nothing that identifies a person:
it is what keeps the erasure final, and it answers an operator asking whether an account's
data was erased.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, MetaData, Table, Text, func, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from objectvision_common.errors import Unauthenticated

ERASED_ACCOUNTS_TABLE = "erased_accounts"
ACCOUNT_DELETED = "this account has been deleted"


def _columns() -> list[Column[Any]]:
    return [
        # The account's id as the service stores its users' ids (text: detection's are text).
        Column("user_id", Text, primary_key=True),
        # When the account was deleted (the event's time), not when this service learnt it.
        Column("deleted_at", DateTime(timezone=True), nullable=False),
        Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ]


def erased_accounts_table(metadata: MetaData) -> Table:
    """The `erased_accounts` table of one schema's MetaData, declared the same way by every
    service that erases accounts (as `outbox_table` is by every producer)."""
    key = f"{metadata.schema}.{ERASED_ACCOUNTS_TABLE}" if metadata.schema else ERASED_ACCOUNTS_TABLE
    existing = metadata.tables.get(key)
    if existing is not None:
        return existing
    return Table(ERASED_ACCOUNTS_TABLE, metadata, *_columns())


def create_erased_accounts_table(op: Any, *, schema: str) -> None:
    """For a service's Alembic migration: `create_erased_accounts_table(op, schema="...")`."""
    op.create_table(ERASED_ACCOUNTS_TABLE, *_columns(), schema=schema)


def _account_lock(table: Table, user_id: str) -> Any:
    """The advisory lock key of one account in one schema: a 64-bit hash of both, so two
    services' erasures, or two accounts, share a key only by a (harmless) collision."""
    return func.hashtextextended(literal(f"{table.schema}:{user_id}"), 0)


async def hold_open_account(session: AsyncSession, table: Table, user_id: str) -> None:
    """In a transaction about to write new rows for `user_id`: hold off the account's erasure
    until this transaction ends, and refuse (Unauthenticated) if the account was deleted."""
    await session.execute(select(func.pg_advisory_xact_lock_shared(_account_lock(table, user_id))))
    erased = await session.scalar(select(table.c.user_id).where(table.c.user_id == user_id))
    if erased is not None:
        raise Unauthenticated(ACCOUNT_DELETED)


async def close_account(
    session: AsyncSession, table: Table, user_id: str, *, deleted_at: datetime
) -> None:
    """Record `user_id` as deleted once its writes in flight have committed; the caller
    commits, and erases what those writes left once it has. Recording it again is harmless."""
    await session.execute(select(func.pg_advisory_xact_lock(_account_lock(table, user_id))))
    await session.execute(
        pg_insert(table)
        .values(user_id=user_id, deleted_at=deleted_at)
        .on_conflict_do_nothing(index_elements=[table.c.user_id])
    )
