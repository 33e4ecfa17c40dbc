"""Deleting stored work once it is older than its account's retention period (ADR 0031).

An account's period is the one an admin set for it (`retention_periods`), else
RETENTION_DAYS; 0 keeps the account's work until its owner deletes it. The cutoff is worked
out per account in SQL, so one sweep serves every period, and with no period set and
RETENTION_DAYS=0 its queries simply find nothing.

Every deletion is one a user could make (ADR 0024): a finished job with everything it
stored, as DeleteJob does; a detection no job made, with its image, as DeleteDetection does.
So the rules are theirs: rows first, then the files (a crash in between leaves files the
orphan sweep takes), the result cache forgets the images' bytes, and a pending or
processing job is never touched, however old (a job counts from when it finished). Each job
and each chunk of detections is its own transaction, so a sweep over a year of history never
holds one giant transaction, and a sweep stopped half way leaves the rest for the next.
"""

import asyncio
import functools
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from detection_service.history import service as history
from detection_service.history.models import detections
from detection_service.images import service as stored_images
from detection_service.images.storage import ObjectStorage
from detection_service.jobs import service as jobs
from detection_service.jobs.models import FINISHED
from detection_service.jobs.models import jobs as jobs_table
from detection_service.retention.models import retention_periods
from objectvision_common.background import BackgroundLoop
from objectvision_common.errors import FailedPrecondition, NotFound

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Swept:
    jobs: int = 0
    detections: int = 0


class RetentionSweeper(BackgroundLoop):
    """`sweep()` every `interval_s`; stopping between deletions is harmless (each stands
    alone), so the loop is cancelled on stop."""

    cancel_on_stop = True

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        storage: ObjectStorage,
        default_days: int,
        interval_s: float,
        chunk_size: int,
        removed: Counter,
        forget: stored_images.Forget | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sessions = sessions
        self._storage = storage
        self._default_days = default_days
        self._interval_s = interval_s
        self._chunk_size = chunk_size
        self._removed = removed
        self._forget = forget
        self._now = now

    async def _loop(self) -> None:
        while True:
            try:
                swept = await self.sweep()
            except Exception:
                logger.exception("retention sweep failed; next try in one interval")
            else:
                if swept.jobs or swept.detections:
                    logger.info(
                        "retention sweep",
                        extra={"jobs": swept.jobs, "detections": swept.detections},
                    )
            await asyncio.sleep(self._interval_s)

    async def sweep(self) -> Swept:
        """Delete every finished job and every detection outside a job older than its
        account's period; returns how many went. With RETENTION_DAYS off and no account
        given a period, nothing can be due: the tables are not scanned."""
        if not self._default_days:
            async with self._sessions() as session:
                if not await session.scalar(sa.select(sa.exists().select_from(retention_periods))):
                    return Swept()
        now = self._now()
        return Swept(
            jobs=await self._sweep_jobs(now),
            detections=await self._sweep_detections(now),
        )

    def _expired(
        self, stored_at: sa.ColumnElement[datetime], now: datetime
    ) -> sa.ColumnElement[bool]:
        """Whether a row stored (or finished) at `stored_at` is past its account's period: the
        account's own if an admin set one, else RETENTION_DAYS; never with 0 days. The query
        outer-joins `retention_periods` on the row's user_id."""
        days = sa.func.coalesce(retention_periods.c.days, self._default_days)
        cutoff = sa.literal(now, sa.DateTime(timezone=True)) - days * sa.literal_column(
            "interval '1 day'", sa.Interval()
        )
        return sa.and_(days > 0, stored_at < cutoff)

    async def _next_expired(
        self,
        table: sa.Table,
        *,
        stored_at: sa.ColumnElement[datetime],
        sweepable: sa.ColumnElement[bool],
        now: datetime,
    ) -> Sequence[sa.Row[uuid.UUID, str]]:
        """The oldest chunk of `table`'s (id, user_id) rows that retention may delete
        (`sweepable`) and that are past their account's period; read again once a chunk is
        deleted, it goes on where that one ended."""
        async with self._sessions() as session:
            return (
                await session.execute(
                    sa.select(table.c.id, table.c.user_id)
                    .select_from(
                        table.outerjoin(
                            retention_periods, retention_periods.c.user_id == table.c.user_id
                        )
                    )
                    .where(sweepable, self._expired(stored_at, now))
                    .order_by(stored_at, table.c.id)
                    .limit(self._chunk_size)
                )
            ).all()

    async def _sweep_jobs(self, now: datetime) -> int:
        """Finished jobs that finished before their account's cutoff, oldest first, one per
        transaction."""
        deleted = 0
        finished_at = sa.func.coalesce(jobs_table.c.completed_at, jobs_table.c.updated_at)
        while expired := await self._next_expired(
            jobs_table,
            stored_at=finished_at,
            sweepable=jobs_table.c.status.in_(FINISHED),
            now=now,
        ):
            for job_id, user_id in expired:
                try:
                    await jobs.delete_job(
                        sessions=self._sessions,
                        storage=self._storage,
                        user_id=user_id,
                        job_id=job_id,
                        forget=self._forget,
                    )
                except (NotFound, FailedPrecondition):
                    # Deleted by its owner meanwhile, or (never finished jobs are chosen)
                    # changed under the sweep: nothing for retention to do.
                    continue
                deleted += 1
                self._removed.labels("job").inc()
        return deleted

    async def _sweep_detections(self, now: datetime) -> int:
        """Detections no job made, stored before their account's cutoff, a chunk per
        transaction and user."""
        deleted = 0
        while expired := await self._next_expired(
            detections,
            stored_at=detections.c.created_at,
            sweepable=detections.c.job_id.is_(None),
            now=now,
        ):
            by_user: dict[str, list[uuid.UUID]] = defaultdict(list)
            for detection_id, user_id in expired:
                by_user[user_id].append(detection_id)
            for user_id, ids in by_user.items():
                await stored_images.remove(
                    sessions=self._sessions,
                    storage=self._storage,
                    delete_rows=functools.partial(
                        history.delete_detections_outside_jobs_rows,
                        user_id=user_id,
                        detection_ids=ids,
                    ),
                    forget=self._forget,
                )
                deleted += len(ids)
                self._removed.labels("detection").inc(len(ids))
        return deleted
