"""Reading and writing per-account retention periods (keyword-only, session first)."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from detection_service.accounts import settings
from detection_service.retention.models import retention_periods

# The longest period an admin may set, as RETENTION_DAYS's upper bound: a hundred years.
MAX_RETENTION_DAYS = 36_500


async def custom_period(*, session: AsyncSession, user_id: str) -> int | None:
    """The period an admin set for this account, in days (0: kept forever); None if none."""
    days = await session.scalar(
        sa.select(retention_periods.c.days).where(retention_periods.c.user_id == user_id)
    )
    return None if days is None else int(days)


async def set_custom_period(
    *, session: AsyncSession, user_id: str, days: int, now: datetime
) -> None:
    await settings.set_value(
        session=session, value=retention_periods.c.days, user_id=user_id, to=days, now=now
    )


async def clear_custom_period(*, session: AsyncSession, user_id: str) -> None:
    """The account follows RETENTION_DAYS again."""
    await settings.clear_value(session=session, table=retention_periods, user_id=user_id)
