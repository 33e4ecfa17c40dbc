"""Reading and writing metered usage and per-account quotas (keyword-only, session first)."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from detection_service.accounts import settings
from detection_service.usage.models import usage_days, usage_quotas
from detection_service.usage.sources import SOURCE_CALLS, SOURCE_JOBS


@dataclass(frozen=True)
class UsageKey:
    """One counter: an account's images from one source on one UTC day."""

    user_id: str
    day: date
    source: str


@dataclass(frozen=True)
class DayOfUsage:
    day: date
    calls: int
    jobs: int

    @property
    def images(self) -> int:
        return self.calls + self.jobs


async def add_usage(*, session: AsyncSession, counts: Mapping[UsageKey, int]) -> None:
    """Add these counts to the stored ones: one upsert, so replicas that flush the same
    account's day at once add up instead of overwriting each other."""
    if not counts:
        return
    statement = insert(usage_days).values(
        [
            {"user_id": key.user_id, "day": key.day, "source": key.source, "images": images}
            for key, images in sorted(counts.items(), key=lambda item: _order(item[0]))
        ]
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[usage_days.c.user_id, usage_days.c.day, usage_days.c.source],
            set_={"images": usage_days.c.images + statement.excluded.images},
        )
    )


def _order(key: UsageKey) -> tuple[str, date, str]:
    """Rows are locked in one order by every replica, so two flushes cannot deadlock."""
    return key.user_id, key.day, key.source


async def images_since(*, session: AsyncSession, user_id: str, since: date) -> int:
    """The account's stored count of images from `since` (a month's first day) on."""
    total = await session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(usage_days.c.images), 0)).where(
            usage_days.c.user_id == user_id, usage_days.c.day >= since
        )
    )
    return int(total or 0)


async def days_of_usage(
    *, session: AsyncSession, user_id: str, since: date, until: date
) -> list[DayOfUsage]:
    """The account's stored usage for each day in [since, until] that has any, oldest first."""
    rows = await session.execute(
        sa.select(usage_days.c.day, usage_days.c.source, usage_days.c.images)
        .where(
            usage_days.c.user_id == user_id,
            usage_days.c.day >= since,
            usage_days.c.day <= until,
        )
        .order_by(usage_days.c.day)
    )
    by_day: dict[date, dict[str, int]] = {}
    for day, source, images in rows:
        by_day.setdefault(day, {})[source] = int(images)
    return [
        DayOfUsage(day, counts.get(SOURCE_CALLS, 0), counts.get(SOURCE_JOBS, 0))
        for day, counts in by_day.items()
    ]


async def custom_quotas(*, session: AsyncSession) -> dict[str, int]:
    """Every account whose quota an admin set, with it (a small table: read whole)."""
    rows = await session.execute(sa.select(usage_quotas.c.user_id, usage_quotas.c.monthly_images))
    return {user_id: int(quota) for user_id, quota in rows}


async def set_custom_quota(
    *, session: AsyncSession, user_id: str, monthly_images: int, now: datetime
) -> None:
    await settings.set_value(
        session=session,
        value=usage_quotas.c.monthly_images,
        user_id=user_id,
        to=monthly_images,
        now=now,
    )


async def clear_custom_quota(*, session: AsyncSession, user_id: str) -> None:
    await settings.clear_value(session=session, table=usage_quotas, user_id=user_id)


async def erase_usage(*, session: AsyncSession, user_id: str) -> None:
    """A deleted account's usage and quota (ADR 0025: nothing of the account is kept)."""
    await session.execute(sa.delete(usage_days).where(usage_days.c.user_id == user_id))
    await clear_custom_quota(session=session, user_id=user_id)
