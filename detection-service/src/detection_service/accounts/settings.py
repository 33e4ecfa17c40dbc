"""Values an admin sets for one account in place of the service's default (a monthly usage
quota, a retention period): a table each, with a row only for the accounts that have one, set
and cleared the same way whatever the value means."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from detection_service.database import metadata


def setting_table(name: str, value: sa.Column[int]) -> sa.Table:
    """The table of one non-negative `value` per account, and when an admin last set it."""
    return sa.Table(
        name,
        metadata,
        sa.Column("user_id", sa.Text, primary_key=True),
        value,
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"{value.name} >= 0", name=f"{value.name}_not_negative"),
    )


async def set_value(
    *, session: AsyncSession, value: sa.Column[int], user_id: str, to: int, now: datetime
) -> None:
    """The account's `value` (a column of a `setting_table`) becomes `to`, set or not before."""
    table = value.table
    statement = insert(table).values({"user_id": user_id, value.name: to, "updated_at": now})
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[table.c.user_id], set_={value.name: to, "updated_at": now}
        )
    )


async def clear_value(*, session: AsyncSession, table: sa.Table, user_id: str) -> None:
    """The account has no value of its own in `table` any more: the default applies."""
    await session.execute(sa.delete(table).where(table.c.user_id == user_id))
