"""Job rows: submission, the caller's view of a job, and the one transaction that finishes an item.

`finish_item` locks the item row and does nothing if the item is no longer pending, so a job
that two workers process (a reclaimed message, a re-enqueued job) still gets each item's
detection exactly once; the job counters, its final status and its outbox events change in
that same transaction.
"""

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from redis.exceptions import RedisError
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from detection_service import outbox
from detection_service.history import service as history
from detection_service.history.models import detections, results
from detection_service.images import service as stored_images
from detection_service.images.models import images
from detection_service.images.storage import ObjectStorage
from detection_service.images.uploads import Upload
from detection_service.jobs.models import (
    COMPLETED,
    FAILED,
    KIND_BATCH,
    KIND_VIDEO,
    PENDING,
    PROCESSING,
    UNFINISHED,
    job_items,
    jobs,
)
from detection_service.jobs.queue import JobQueue
from detection_service.pipeline.types import DetectionOptions, DetectionResult
from detection_service.video.views import VideoView, video_view
from objectvision.v1 import notification_pb2
from objectvision_common.errors import NotFound

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobItemView:
    position: int
    filename: str
    status: str
    detection_id: uuid.UUID | None
    error: str | None
    object_count: int


@dataclass(frozen=True)
class JobView:
    id: uuid.UUID
    user_id: str
    status: str
    total: int
    processed: int
    failed: int
    items: list[JobItemView]
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    # 'batch' or 'video'; a video job has no items, its frames are listed apart (ADR 0016).
    kind: str = KIND_BATCH
    video: VideoView | None = None
    error: str | None = None
    # The model the job runs with and the version that answered its items ("" if none yet).
    model: str = ""
    model_version: str = ""


@dataclass(frozen=True)
class Refusal:
    """A file of a batch that will not be processed, and why (shown in the job)."""

    position: int
    filename: str
    reason: str


@dataclass(frozen=True)
class WorkItem:
    """What a worker needs to process one pending item."""

    job_id: uuid.UUID
    user_id: str
    position: int
    image_id: uuid.UUID
    storage_key: str
    filename: str
    # The model the job asked for (None: jobs from before models were a resource, which get
    # the default).
    model: str | None = None


def _now() -> datetime:
    return datetime.now(UTC)


async def get_job(*, session: AsyncSession, job_id: uuid.UUID, user_id: str | None) -> JobView:
    """A job with its items; scoped to user_id unless None (workers)."""
    query = sa.select(jobs).where(jobs.c.id == job_id)
    if user_id is not None:
        query = query.where(jobs.c.user_id == user_id)
    job = (await session.execute(query)).first()
    if job is None:
        raise NotFound("no such job")
    rows = await session.execute(
        sa.select(job_items, images.c.original_filename)
        .outerjoin(images, images.c.id == job_items.c.image_id)
        .where(job_items.c.job_id == job_id)
        .order_by(job_items.c.position)
    )
    items = [
        JobItemView(
            position=row.position,
            filename=row.original_filename or row.filename or "",
            status=row.status,
            detection_id=row.detection_id,
            error=row.error,
            object_count=row.object_count,
        )
        for row in rows
    ]
    return JobView(
        id=job.id,
        user_id=job.user_id,
        status=job.status,
        total=job.total,
        processed=job.processed,
        failed=job.failed,
        items=items,
        created_at=job.created_at,
        updated_at=job.updated_at,
        completed_at=job.completed_at,
        kind=job.kind,
        video=(
            await video_view(session=session, job_id=job_id, sampled_frames=job.total)
            if job.kind == KIND_VIDEO
            else None
        ),
        error=job.error,
        model=job.model or "",
        model_version=job.model_version or "",
    )


async def existing_job(
    *, sessions: async_sessionmaker[AsyncSession], user_id: str, idempotency_key: str
) -> JobView | None:
    """The job an earlier submission with this key made, if any."""
    async with sessions() as session:
        job_id = await session.scalar(
            sa.select(jobs.c.id).where(
                jobs.c.user_id == user_id, jobs.c.idempotency_key == idempotency_key
            )
        )
        if job_id is None:
            return None
        return await get_job(session=session, job_id=job_id, user_id=user_id)


class _KeyTaken(Exception):
    """A concurrent submission with the same idempotency key committed its job first."""


async def submit_job(
    *,
    sessions: async_sessionmaker[AsyncSession],
    storage: ObjectStorage,
    queue: JobQueue,
    user_id: str,
    uploads: Sequence[tuple[int, Upload]],
    options: DetectionOptions,
    idempotency_key: str | None,
    refused: Sequence[Refusal] = (),
    model: str | None = None,
) -> JobView:
    """Store the uploads and the job, then put the job on the stream.

    ``uploads`` carry their positions in the batch; ``refused`` files become failed items at
    theirs, already counted as processed, so the job reports every file the user sent.
    A repeated idempotency key returns the first job.
    """
    if idempotency_key:
        found = await existing_job(
            sessions=sessions, user_id=user_id, idempotency_key=idempotency_key
        )
        if found is not None:
            return found

    async def write_items(
        session: AsyncSession, job_id: uuid.UUID, keys: list[str], now: datetime
    ) -> None:
        await _insert_items(session, job_id, user_id, uploads, keys, now)
        await _insert_refusals(session, job_id, refused, now)

    return await submit_new_job(
        sessions=sessions,
        storage=storage,
        queue=queue,
        user_id=user_id,
        kind=KIND_BATCH,
        total=len(uploads) + len(refused),
        refused=len(refused),
        options=options,
        model=model,
        idempotency_key=idempotency_key,
        objects=[upload.data for _, upload in uploads],
        write_rows=write_items,
    )


# The rows a kind of job keeps beside its `jobs` row, written in the same transaction:
# (session, the new job's id, the storage keys of its objects, the submission time).
JobRowsWriter = Callable[[AsyncSession, uuid.UUID, list[str], datetime], Awaitable[None]]


async def submit_new_job(
    *,
    sessions: async_sessionmaker[AsyncSession],
    storage: ObjectStorage,
    queue: JobQueue,
    user_id: str,
    kind: str,
    total: int,
    refused: int,
    options: DetectionOptions,
    model: str | None,
    idempotency_key: str | None,
    objects: Sequence[bytes | Path],
    write_rows: JobRowsWriter,
) -> JobView:
    """A new job of any kind: its pending `jobs` row and the kind's own rows (`write_rows`)
    committed as one step with its stored `objects`, then the job put on the stream.

    Batch jobs (`submit_job`) and video jobs (`video.service.submit_video_job`) differ only
    in what they store and the rows beside the `jobs` row; this is the rest, in one place,
    so that both kinds get the same idempotency and enqueue behaviour.

    A repeated idempotency key that a concurrent submission committed first answers with
    that job (the objects stored here are discarded). If the XADD fails after the commit the
    job stays pending and the sweeper enqueues it later: nothing is lost.
    """
    job_id = uuid.uuid4()
    now = _now()

    async def write_all(session: AsyncSession, keys: list[str]) -> None:
        # The pending row; _KeyTaken (rolling the submission back) when another job of this
        # user already has the idempotency key.
        inserted = await session.scalar(
            pg_insert(jobs)
            .values(
                id=job_id,
                user_id=user_id,
                status=PENDING,
                kind=kind,
                total=total,
                processed=refused,
                failed=refused,
                params=options.to_json(),
                model=model,
                idempotency_key=idempotency_key or None,
                created_at=now,
                updated_at=now,
                heartbeat_at=now,
            )
            .on_conflict_do_nothing(constraint="uq_jobs_user_id_idempotency_key")
            .returning(jobs.c.id)
        )
        if inserted is None:
            raise _KeyTaken
        await write_rows(session, job_id, keys, now)

    try:
        await stored_images.store(
            sessions=sessions, storage=storage, objects=objects, write_rows=write_all
        )
    except _KeyTaken:
        found = await existing_job(
            sessions=sessions, user_id=user_id, idempotency_key=idempotency_key or ""
        )
        assert found is not None
        return found
    try:
        await queue.enqueue(job_id)
    except RedisError:
        logger.warning(
            "job stored but not enqueued; the sweeper will",
            extra={"job": str(job_id)},
            exc_info=True,
        )
    async with sessions() as session:
        return await get_job(session=session, job_id=job_id, user_id=user_id)


async def _insert_refusals(
    session: AsyncSession, job_id: uuid.UUID, refused: Sequence[Refusal], now: datetime
) -> None:
    for refusal in refused:
        await session.execute(
            job_items.insert().values(
                job_id=job_id,
                position=refusal.position,
                image_id=None,
                filename=refusal.filename,
                status=FAILED,
                error=refusal.reason,
                updated_at=now,
            )
        )


async def _insert_items(
    session: AsyncSession,
    job_id: uuid.UUID,
    user_id: str,
    uploads: Sequence[tuple[int, Upload]],
    keys: Sequence[str],
    now: datetime,
) -> None:
    for (position, upload), key in zip(uploads, keys, strict=True):
        image_id = uuid.uuid4()
        await stored_images.insert_image(
            session=session,
            image_id=image_id,
            user_id=user_id,
            upload=upload,
            storage_key=key,
            detection_id=None,
            now=now,
        )
        await session.execute(
            job_items.insert().values(
                job_id=job_id, position=position, image_id=image_id, status=PENDING, updated_at=now
            )
        )


@dataclass(frozen=True)
class StartedJob:
    """What every kind of job runs with, read as it is marked processing."""

    user_id: str
    options: DetectionOptions
    # The model asked for at submission (None: the deployment's default).
    model: str | None


async def mark_processing(
    *, session: AsyncSession, job_id: uuid.UUID, kind: str | None = None
) -> StartedJob | None:
    """Mark an unfinished job (of `kind`, when given) processing with a fresh heartbeat;
    None if it is finished, gone or of another kind.

    Batch jobs (`start_job`) and video jobs (`video.service.start_video_job`) start the same
    way and differ only in the work they read next; this is the shared step."""
    conditions = [jobs.c.id == job_id, jobs.c.status.in_(UNFINISHED)]
    if kind is not None:
        conditions.append(jobs.c.kind == kind)
    job = (
        await session.execute(
            sa.update(jobs)
            .where(*conditions)
            .values(status=PROCESSING, heartbeat_at=_now())
            .returning(jobs.c.user_id, jobs.c.params, jobs.c.model)
        )
    ).first()
    if job is None:
        return None
    return StartedJob(
        user_id=job.user_id, options=DetectionOptions.from_json(job.params), model=job.model
    )


async def start_job(
    *, session: AsyncSession, job_id: uuid.UUID
) -> tuple[DetectionOptions, list[WorkItem]] | None:
    """Mark the job processing and return its pending items; None if it is finished or gone."""
    job = await mark_processing(session=session, job_id=job_id)
    if job is None:
        return None
    rows = await session.execute(
        sa.select(
            job_items.c.position, images.c.id, images.c.storage_key, images.c.original_filename
        )
        .join(images, images.c.id == job_items.c.image_id)
        .where(job_items.c.job_id == job_id, job_items.c.status == PENDING)
        .order_by(job_items.c.position)
    )
    items = [
        WorkItem(
            job_id,
            job.user_id,
            row.position,
            row.id,
            row.storage_key,
            row.original_filename,
            job.model,
        )
        for row in rows
    ]
    return job.options, items


async def heartbeat(*, session: AsyncSession, job_id: uuid.UUID) -> None:
    await session.execute(
        sa.update(jobs)
        .where(jobs.c.id == job_id, jobs.c.status.in_(UNFINISHED))
        .values(heartbeat_at=_now())
    )


async def count_progress(
    *,
    session: AsyncSession,
    job_id: uuid.UUID,
    user_id: str,
    processed: int,
    failed: int,
    model_version: str,
    now: datetime,
    grow_total: bool = False,
) -> sa.Row[Any]:
    """Move the job's counters by `processed` (of which `failed`), note the model version
    that answered (if any), and stage one job.progress event; returns the new
    (total, processed, failed). `grow_total`: a video's total is the probe's estimate,
    raised so that progress never reports more than 100 %."""
    values: dict[str, object] = {
        "processed": jobs.c.processed + processed,
        "failed": jobs.c.failed + failed,
        "model_version": model_version or jobs.c.model_version,
        "updated_at": now,
        "heartbeat_at": now,
    }
    if grow_total:
        values["total"] = sa.func.greatest(jobs.c.total, jobs.c.processed + processed)
    counts = (
        await session.execute(
            sa.update(jobs)
            .where(jobs.c.id == job_id)
            .values(values)
            .returning(jobs.c.total, jobs.c.processed, jobs.c.failed)
        )
    ).one()
    await outbox.add_job_progress(
        session,
        user_id=user_id,
        occurred_at=now,
        progress=notification_pb2.JobProgress(
            job_id=str(job_id),
            total=counts.total,
            processed=counts.processed,
            failed=counts.failed,
        ),
    )
    return counts


async def finish_item(
    *,
    session: AsyncSession,
    item: WorkItem,
    options: DetectionOptions,
    result: DetectionResult | None,
    error: str | None,
) -> bool:
    """Record one item's outcome once; False if another worker already did."""
    status = await session.scalar(
        sa.select(job_items.c.status)
        .where(job_items.c.job_id == item.job_id, job_items.c.position == item.position)
        .with_for_update()
    )
    if status != PENDING:
        return False
    now = _now()
    detection_id = None
    if result is not None:
        detection_id = uuid.uuid4()
        await history.insert_detection(
            session=session,
            detection_id=detection_id,
            user_id=item.user_id,
            job_id=item.job_id,
            filename=item.filename,
            result=result,
            options=options,
            now=now,
        )
        await stored_images.mark_processed(
            session=session, image_id=item.image_id, detection_id=detection_id
        )
    await session.execute(
        sa.update(job_items)
        .where(job_items.c.job_id == item.job_id, job_items.c.position == item.position)
        .values(
            status=COMPLETED if result is not None else FAILED,
            error=error,
            detection_id=detection_id,
            object_count=len(result.objects) if result is not None else 0,
            updated_at=now,
        )
    )
    counts = await count_progress(
        session=session,
        job_id=item.job_id,
        user_id=item.user_id,
        processed=1,
        failed=0 if result is not None else 1,
        model_version=result.model_version if result is not None else "",
        now=now,
    )
    if counts.processed == counts.total:
        await _finish_job(session, item=item, total=counts.total, failed=counts.failed, now=now)
    return True


async def _finish_job(
    session: AsyncSession, *, item: WorkItem, total: int, failed: int, now: datetime
) -> None:
    """Completed unless every image failed; the final event carries per-class object counts."""
    status = FAILED if failed == total else COMPLETED
    error = "every image in the job failed" if status == FAILED else None
    await session.execute(
        sa.update(jobs)
        .where(jobs.c.id == item.job_id)
        .values(status=status, error=error, completed_at=now)
    )
    counts = await session.execute(
        sa.select(results.c.class_name, sa.func.count())
        .join(detections, detections.c.id == results.c.detection_id)
        .where(detections.c.job_id == item.job_id)
        .group_by(results.c.class_name)
    )
    await outbox.add_job_finished(
        session,
        user_id=item.user_id,
        occurred_at=now,
        finished=notification_pb2.JobFinished(
            job_id=str(item.job_id),
            status=status,
            total=total,
            processed=total,
            failed=failed,
            class_counts={name: int(count) for name, count in counts},
            error=error or "",
        ),
    )


async def stale_jobs(*, session: AsyncSession, older_than: timedelta) -> list[uuid.UUID]:
    """Unfinished jobs with no heartbeat for `older_than`; their clock restarts now.

    Concurrent sweepers do not both take a job: the second one's UPDATE waits on the row lock
    and then no longer matches the age condition.
    """
    now = _now()
    rows = await session.execute(
        sa.update(jobs)
        .where(jobs.c.status.in_(UNFINISHED), jobs.c.heartbeat_at < now - older_than)
        .values(heartbeat_at=now)
        .returning(jobs.c.id)
    )
    return [row.id for row in rows]
