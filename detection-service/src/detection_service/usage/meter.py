"""The usage meter: counts every image the detector answered, per account, UTC day and
source, in memory, and adds the counts to PostgreSQL every USAGE_FLUSH_SECONDS; and the
quota check that work is admitted by (ADR 0030).

Why in memory first: an upsert per image would put a row lock of one (account, day) on the
hot path, and one account's stream of thousands of frames a second would queue on it. A
batch of counts per interval costs one statement however busy the account is. What that
costs: a process killed without its shutdown (SIGKILL, OOM) loses at most its last
interval's counts, in the user's favour; a stop flushes, and a failed flush keeps its
counts for the next one.

Quotas are checked against the stored month plus this process's unflushed counts, plus the
images the account's unfinished jobs have still to detect: a job accepted always runs to its
end, so its images are held from the moment it is accepted, and running a job again and
again cannot queue work past the quota. The stored parts are re-read at most once an interval
per account (a job's submission re-reads them at once). Replicas therefore see each other's
usage an interval late: under load an account may pass its quota by about what the other
replicas served in one interval.
"""

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from prometheus_client import Gauge
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from detection_service.usage import service as usage
from detection_service.usage.service import DayOfUsage, UsageKey
from detection_service.usage.sources import SOURCE_CALLS, SOURCE_JOBS
from objectvision_common.background import BackgroundLoop
from objectvision_common.errors import QuotaExceeded

logger = logging.getLogger(__name__)

# No quota: the value of USAGE_MONTHLY_IMAGE_QUOTA and of an account's own quota alike.
UNLIMITED = 0


class WaitingImages(Protocol):
    """How many images an account's unfinished jobs have still to detect
    (jobs.service.images_waiting): read by the meter, which knows no job, in its session."""

    def __call__(self, *, session: AsyncSession, user_id: str) -> Awaitable[int]: ...


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month_start(day: date) -> date:
    first = month_start(day)
    return (
        first.replace(year=first.year + 1, month=1)
        if first.month == 12
        else first.replace(month=first.month + 1)
    )


@dataclass(frozen=True)
class Standing:
    """An account's month so far: images used (stored and not yet flushed), those its
    unfinished jobs hold, and its quota."""

    month_start: date
    used: int
    quota: int
    custom_quota: bool
    held: int = 0

    @property
    def remaining(self) -> int | None:
        """Images that may still be sent this month; None without a quota."""
        return None if self.quota == UNLIMITED else max(self.quota - self.used - self.held, 0)

    @property
    def renews(self) -> date:
        return next_month_start(self.month_start)


@dataclass
class _StoredMonth:
    month_start: date
    images: int
    # Images the account's unfinished jobs had still to detect when read; lowered as this
    # process detects job images (they move from held to used).
    held: int
    read_at: float


class UsageMeter(BackgroundLoop):
    """Counts, flushes and checks; one per serving process of the full service.

    Not one of the runner's background workers, which run in the first serving process
    only: every process counts, so every process flushes. `start()` and `close()` are the
    service's start and close hooks; `close()` flushes what the last calls and job items
    counted, after the server drained and the workers stopped.
    """

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        default_quota: int,
        flush_interval_s: float,
        waiting_images: WaitingImages,
        unflushed: Gauge | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sessions = sessions
        self._waiting_images = waiting_images
        self._default_quota = default_quota
        self._interval_s = flush_interval_s
        self._unflushed_gauge = unflushed
        self._now = now
        self._pending: Counter[UsageKey] = Counter()
        # The same counts by account and month, so a quota check need not scan them all.
        self._pending_months: Counter[tuple[str, date]] = Counter()
        self._custom: dict[str, int] = {}
        self._custom_read = False
        self._stored: dict[str, _StoredMonth] = {}
        self._flush_lock = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._flusher = asyncio.create_task(self.run(), name="usage-flush")

    async def close(self) -> None:
        self.stop()
        if self._flusher is not None:
            await self._flusher
        try:
            await self.flush()
        except Exception:
            unflushed = sum(self._pending.values())
            logger.exception("could not write the last usage counts", extra={"images": unflushed})

    def record(self, user_id: str, source: str, images: int = 1) -> None:
        """Count images the detector answered for `user_id` (cheap: no I/O)."""
        day = self._now().date()
        self._pending[UsageKey(user_id, day, source)] += images
        self._pending_months[(user_id, month_start(day))] += images
        if source == SOURCE_JOBS and (stored := self._stored.get(user_id)) is not None:
            stored.held = max(stored.held - images, 0)
        if self._unflushed_gauge is not None:
            self._unflushed_gauge.inc(images)

    async def admit(
        self,
        user_id: str,
        images: int,
        *,
        job: bool = False,
        session: AsyncSession | None = None,
    ) -> None:
        """Raise QuotaExceeded unless `images` more fit in the account's month beside what
        its unfinished jobs hold. A `job`'s submission reads both afresh (the last one may
        have been accepted a moment ago); a call's are at most an interval old. With
        `session`, they are read in it: the transaction that adds a job asks again, under the
        account's job lock, so submissions at once cannot all pass (jobs.service). Fails open
        (logged) when PostgreSQL cannot be read: a quota is not worth refusing callers over."""
        try:
            quota = await self._quota_of(user_id)
            if quota == UNLIMITED:
                return
            max_age_s = 0.0 if job else self._interval_s
            standing = await self._standing(
                user_id, quota=quota, max_age_s=max_age_s, session=session
            )
            held = standing.held
        except Exception:
            logger.warning("could not read usage to check a quota; admitted", exc_info=True)
            return
        if standing.used + held + images <= quota:
            return
        renews = standing.renews
        left = max(quota - standing.used - held, 0)
        if left:
            holding = f" ({held} more are held by its unfinished jobs)" if held else ""
            said = (
                f"{images} images sent, but this account's quota of {quota} images a month"
                f" has {left} left{holding}"
            )
        elif held:
            said = (
                f"this account's quota of {quota} images a month is taken: {standing.used}"
                f" used, {held} held by its unfinished jobs (cancelling one frees what it has"
                " still to detect)"
            )
        else:
            said = f"this account's quota of {quota} images a month is used up"
        retry_after = datetime(renews.year, renews.month, renews.day, tzinfo=UTC) - self._now()
        raise QuotaExceeded(
            f"{said}; it renews on {renews.isoformat()} (UTC)",
            retry_after_seconds=max(int(retry_after.total_seconds()) + 1, 1),
        )

    async def standing(self, user_id: str) -> Standing:
        """The account's month as stored now plus what this process has not flushed yet."""
        return await self._standing(user_id, quota=await self._quota_of(user_id), max_age_s=0)

    async def report(self, user_id: str, *, days: int) -> tuple[Standing, list[DayOfUsage]]:
        """The account's month (`standing`) and its last `days` days (today, UTC, the last),
        both with this process's unflushed counts added."""
        today = self._now().date()
        since = today - timedelta(days=days - 1)
        # Under the flush lock: a flush takes the pending counts before it commits them, and
        # a report read in between would find them in neither place.
        async with self._flush_lock:
            standing = await self.standing(user_id)
            async with self._sessions() as session:
                stored = await usage.days_of_usage(
                    session=session, user_id=user_id, since=since, until=today
                )
            counts = {day.day: {SOURCE_CALLS: day.calls, SOURCE_JOBS: day.jobs} for day in stored}
            for key, images in self._pending.items():
                if key.user_id == user_id and since <= key.day <= today:
                    by_source = counts.setdefault(key.day, {SOURCE_CALLS: 0, SOURCE_JOBS: 0})
                    by_source[key.source] += images
        return standing, [
            DayOfUsage(day, by_source[SOURCE_CALLS], by_source[SOURCE_JOBS])
            for day, by_source in sorted(counts.items())
        ]

    async def set_quota(self, user_id: str, monthly_images: int | None) -> None:
        """An admin's quota for one account (None: back to USAGE_MONTHLY_IMAGE_QUOTA)."""
        async with self._sessions.begin() as session:
            if monthly_images is None:
                await usage.clear_custom_quota(session=session, user_id=user_id)
            else:
                await usage.set_custom_quota(
                    session=session,
                    user_id=user_id,
                    monthly_images=monthly_images,
                    now=self._now(),
                )
        await self._read_custom_quotas()

    async def flush(self) -> None:
        """Add the counts gathered since the last flush to PostgreSQL. On failure they are
        kept and go with the next flush."""
        async with self._flush_lock:
            counts, self._pending = self._pending, Counter()
            months, self._pending_months = self._pending_months, Counter()
            try:
                async with self._sessions.begin() as session:
                    await usage.add_usage(session=session, counts=counts)
            except BaseException:
                self._pending.update(counts)
                self._pending_months.update(months)
                raise
            flushed = sum(counts.values())
            if self._unflushed_gauge is not None:
                self._unflushed_gauge.dec(flushed)
            for key, images in counts.items():
                stored = self._stored.get(key.user_id)
                if stored is not None and month_start(key.day) == stored.month_start:
                    stored.images += images

    async def _loop(self) -> None:
        while not self.stopping:
            await self.pause(self._interval_s)
            try:
                await self.flush()
                await self._read_custom_quotas()
            except Exception:
                logger.warning("could not write usage; kept for the next flush", exc_info=True)
            self._forget_idle_accounts()

    async def _quota_of(self, user_id: str) -> int:
        if not self._custom_read:
            await self._read_custom_quotas()
        return self._custom.get(user_id, self._default_quota)

    async def _read_custom_quotas(self) -> None:
        async with self._sessions() as session:
            self._custom = await usage.custom_quotas(session=session)
        self._custom_read = True

    async def _standing(
        self,
        user_id: str,
        *,
        quota: int,
        max_age_s: float,
        session: AsyncSession | None = None,
    ) -> Standing:
        first = month_start(self._now().date())
        stored = self._stored.get(user_id)
        if (
            stored is None
            or stored.month_start != first
            or time.monotonic() - stored.read_at >= max_age_s
        ):
            if session is None:
                async with self._sessions() as own:
                    images, held = await self._read_month(own, user_id, first)
            else:
                images, held = await self._read_month(session, user_id, first)
            stored = _StoredMonth(first, images, held, time.monotonic())
            self._stored[user_id] = stored
        return Standing(
            month_start=first,
            used=stored.images + self._pending_months[(user_id, first)],
            quota=quota,
            custom_quota=user_id in self._custom,
            held=stored.held,
        )

    async def _read_month(
        self, session: AsyncSession, user_id: str, first: date
    ) -> tuple[int, int]:
        """The account's stored images since `first`, and those its unfinished jobs hold."""
        images = await usage.images_since(session=session, user_id=user_id, since=first)
        return images, await self._waiting_images(session=session, user_id=user_id)

    def _forget_idle_accounts(self) -> None:
        """Stored months not read for a while are dropped, so the cache holds active
        accounts only."""
        oldest = time.monotonic() - max(60.0, 10 * self._interval_s)
        for user_id in [u for u, s in self._stored.items() if s.read_at < oldest]:
            del self._stored[user_id]
