"""Job rows: submission, the caller's view of a job and list of jobs, cancelling, deleting,
and the one transaction that finishes an item.

`finish_item` locks the item row and does nothing if the item is no longer pending, so a job
that two workers process (a reclaimed message, a re-enqueued job) still gets each item's
detection exactly once; the job counters, its final status and its outbox events change in
that same transaction. `cancel_job` locks the job's items before the job, the order
`finish_item` takes them in, so the two wait for each other rather than deadlock, and an item
is either finished before the cancel or cancelled, never both (ADR 0022). `delete_job_rows`
takes the same locks in the same order.
"""

import functools
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
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
from detection_service.images.uploads import JobUpload
from detection_service.jobs.models import (
    CANCELLED,
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
from detection_service.tracking.lines import LineCount
from detection_service.tracking.messages import line_counts_reply, zone_counts_reply
from detection_service.tracking.zones import ZoneCount
from detection_service.video.views import (
    VideoView,
    frame_class_counts,
    job_counts,
    stored_video_keys,
    video_view,
    video_views,
)
from objectvision.v1 import notification_pb2
from objectvision_common.errors import FailedPrecondition, NotFound, TooManyJobs

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
class ProgressEstimate:
    """A running job's pace since a worker last started it, and when the rest would be done
    at that pace."""

    items_per_second: float
    completion_at: datetime


def estimate_progress(
    *,
    total: int,
    processed: int,
    processed_at_start: int | None,
    started_at: datetime | None,
    now: datetime,
) -> ProgressEstimate | None:
    """The pace of the items finished since `started_at` (images, or a video's frames),
    carried over what is left. None before the first of them: the time a job waits before
    its first item (a model loading, the images read) says nothing of its pace.

    The pace is the job's own, measured over its current run: it already counts the accounts
    it takes turns with (ADR 0044) and the service's load, and a job given back to the queue
    starts a new run when it resumes."""
    if started_at is None or processed_at_start is None:
        return None
    finished = processed - processed_at_start
    elapsed = (now - started_at).total_seconds()
    if finished <= 0 or elapsed <= 0:
        return None
    pace = finished / elapsed
    left = max(total - processed, 0)
    return ProgressEstimate(
        items_per_second=pace, completion_at=now + timedelta(seconds=left / pace)
    )


@dataclass(frozen=True)
class JobView:
    id: uuid.UUID
    user_id: str
    status: str
    total: int
    processed: int
    failed: int
    # Empty in a list of jobs (`list_jobs`): a batch's items are read one job at a time.
    items: list[JobItemView]
    created_at: datetime
    updated_at: datetime
    # When the job ended: completed, failed or cancelled.
    completed_at: datetime | None
    # 'batch' or 'video'; a video job has no items, its frames are listed apart (ADR 0016).
    kind: str = KIND_BATCH
    video: VideoView | None = None
    error: str | None = None
    # The model the job runs with and the version that answered its items ("" if none yet).
    model: str = ""
    model_version: str = ""
    # The caller's own key-value pairs given at submission (ADR 0045).
    metadata: dict[str, str] = field(default_factory=dict)
    # Once the job has ended: the objects per class it found, as its final event said.
    class_counts: dict[str, int] | None = None
    # While it runs and has finished something since it (re)started: when it should end.
    estimate: ProgressEstimate | None = None
    # The job whose stored images or video this one ran again (ADR 0058), while it exists.
    rerun_of: uuid.UUID | None = None


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


def _job_view(job: sa.Row[Any], *, items: list[JobItemView], video: VideoView | None) -> JobView:
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
        video=video,
        error=job.error,
        model=job.model or "",
        model_version=job.model_version or "",
        metadata=dict(job.metadata),
        class_counts=dict(job.class_counts) if job.class_counts is not None else None,
        estimate=estimate_progress(
            total=job.total,
            processed=job.processed,
            processed_at_start=job.processed_at_start,
            started_at=job.started_at,
            now=_now(),
        )
        if job.status == PROCESSING
        else None,
        rerun_of=job.rerun_of,
    )


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
    video = (
        await video_view(session=session, job_id=job_id, sampled_frames=job.total)
        if job.kind == KIND_VIDEO
        else None
    )
    return _job_view(job, items=items, video=video)


async def list_jobs(
    *,
    session: AsyncSession,
    user_id: str,
    limit: int,
    offset: int,
    status: str | None = None,
    kind: str | None = None,
    metadata: Mapping[str, str] | None = None,
    rerun_of: uuid.UUID | None = None,
) -> tuple[list[JobView], int]:
    """One page of the user's jobs, newest first (of one `status` and `kind` when given,
    whose metadata holds every pair of `metadata`, and that ran `rerun_of` again), and how
    many match in all.

    Without items: a page of batch jobs could hold limit x MAX_BATCH_FILES of them, and a
    list is for finding a job, whose items `get_job` reads. A video job keeps its video (one
    row each, read for the whole page at once)."""
    conditions = [jobs.c.user_id == user_id]
    if status is not None:
        conditions.append(jobs.c.status == status)
    if kind is not None:
        conditions.append(jobs.c.kind == kind)
    if metadata:
        conditions.append(jobs.c.metadata.contains(dict(metadata)))
    if rerun_of is not None:
        conditions.append(jobs.c.rerun_of == rerun_of)
    total = await session.scalar(sa.select(sa.func.count()).select_from(jobs).where(*conditions))
    rows = (
        await session.execute(
            sa.select(jobs)
            .where(*conditions)
            .order_by(jobs.c.created_at.desc(), jobs.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
    ).all()
    videos = await video_views(
        session=session, totals={row.id: row.total for row in rows if row.kind == KIND_VIDEO}
    )
    views = [_job_view(row, items=[], video=videos.get(row.id)) for row in rows]
    return views, int(total or 0)


async def _lock_owned_job_items(*, session: AsyncSession, job_id: uuid.UUID, user_id: str) -> None:
    """Lock the user's job's items, in position order, before its row: finish_item's order,
    which cancelling and deleting a job take too, so none of them deadlocks another. Another
    user's job is NotFound, as a missing one."""
    owned = await session.scalar(
        sa.select(jobs.c.id).where(jobs.c.id == job_id, jobs.c.user_id == user_id)
    )
    if owned is None:
        raise NotFound("no such job")
    await session.execute(
        sa.select(job_items.c.position)
        .where(job_items.c.job_id == job_id)
        .order_by(job_items.c.position)
        .with_for_update()
    )


async def cancel_job(*, session: AsyncSession, job_id: uuid.UUID, user_id: str) -> JobView:
    """Stop the user's unfinished job; the job as it now is.

    Its pending items become cancelled (a worker that reaches one finds it no longer pending
    and skips it); items already finished keep their detections, which stay in the history.
    A video job's worker sees the job ended at its next commit of frames and stops. The job
    ends `cancelled` with one `job.cancelled` event, the final event of the job, carrying the
    counts and per-class objects of what was done.

    Idempotent: a cancelled job is answered as it is. A completed or failed job cannot be
    cancelled (FailedPrecondition); another user's job is NotFound, as a missing one."""
    # An item commit in flight finishes (and is counted) before the job is cancelled; one
    # that starts later finds its item cancelled.
    await _lock_owned_job_items(session=session, job_id=job_id, user_id=user_id)
    job = (
        await session.execute(
            sa.select(jobs.c.status, jobs.c.kind, jobs.c.total, jobs.c.processed, jobs.c.failed)
            .where(jobs.c.id == job_id)
            .with_for_update(key_share=True)
        )
    ).first()
    if job is None:
        # A deletion of the job committed while this waited for its items.
        raise NotFound("no such job")
    if job.status in (COMPLETED, FAILED):
        raise FailedPrecondition(
            f"job {job_id} has already {job.status}; only a pending or processing job can be"
            " cancelled"
        )
    if job.status in UNFINISHED:
        now = _now()
        await session.execute(
            sa.update(job_items)
            .where(job_items.c.job_id == job_id, job_items.c.status == PENDING)
            .values(status=CANCELLED, updated_at=now)
        )
        await session.execute(
            sa.update(jobs)
            .where(jobs.c.id == job_id)
            .values(status=CANCELLED, updated_at=now, completed_at=now)
        )
        await stage_job_finished(
            session=session,
            job_id=job_id,
            user_id=user_id,
            kind=job.kind,
            status=CANCELLED,
            total=job.total,
            processed=job.processed,
            failed=job.failed,
            now=now,
        )
    return await get_job(session=session, job_id=job_id, user_id=user_id)


async def delete_job_rows(
    *, session: AsyncSession, job_id: uuid.UUID, user_id: str
) -> stored_images.RemovedObjects:
    """Delete the user's finished job with its items, their detections and image rows, and a
    video job's video and frames (the first step of `delete_job`); returns the storage keys,
    whose objects are still stored.

    A pending or processing job is FailedPrecondition: a worker may still be writing to it,
    and its owner cancels it first. A cancelled job can be deleted at once: a worker still
    running it finds its item or job gone at its next commit and stops (ADR 0022). Another
    user's job is NotFound, as a missing one."""
    await _lock_owned_job_items(session=session, job_id=job_id, user_id=user_id)
    status = await session.scalar(
        sa.select(jobs.c.status).where(jobs.c.id == job_id).with_for_update()
    )
    if status is None:
        # A concurrent deletion of the same job committed while this waited for its locks.
        raise NotFound("no such job")
    if status in UNFINISHED:
        raise FailedPrecondition(f"job {job_id} is still {status}; cancel it first, then delete it")
    image_ids = list(
        await session.scalars(
            sa.select(job_items.c.image_id).where(
                job_items.c.job_id == job_id, job_items.c.image_id.is_not(None)
            )
        )
    )
    video = await stored_video_keys(session=session, job_id=job_id)
    await session.execute(
        sa.delete(detections).where(detections.c.job_id == job_id, detections.c.user_id == user_id)
    )
    # Its items, a video job's video and frames go with it (ON DELETE CASCADE); the images
    # only once no item refers to them.
    await session.execute(sa.delete(jobs).where(jobs.c.id == job_id))
    keys = await stored_images.delete_images(session=session, user_id=user_id, image_ids=image_ids)
    return stored_images.RemovedObjects(images=keys, others=video)


async def delete_job(
    *,
    sessions: async_sessionmaker[AsyncSession],
    storage: ObjectStorage,
    user_id: str,
    job_id: uuid.UUID,
    forget: stored_images.Forget | None = None,
) -> None:
    """Delete the user's finished job and everything it stored, and `forget` its images'
    bytes (the result cache); rows first, then the files (images.service.remove). A video's
    frames were cached by encoded bytes that are not kept anywhere: those answers expire with
    the cache's TTL."""

    await stored_images.remove(
        sessions=sessions,
        storage=storage,
        delete_rows=functools.partial(delete_job_rows, job_id=job_id, user_id=user_id),
        forget=forget,
    )


async def job_ids_of_user(
    *, session: AsyncSession, user_id: str, limit: int, unfinished: bool = False
) -> list[uuid.UUID]:
    """Up to `limit` of the user's jobs (only pending or processing ones if `unfinished`),
    oldest first: the next chunk of an account's erasure."""
    conditions = [jobs.c.user_id == user_id]
    if unfinished:
        conditions.append(jobs.c.status.in_(UNFINISHED))
    ids = await session.scalars(
        sa.select(jobs.c.id).where(*conditions).order_by(jobs.c.created_at, jobs.c.id).limit(limit)
    )
    return list(ids)


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


# What the transaction that adds a job asks once it holds the account's job lock (the
# monthly quota, read in that transaction: ADR 0030): submissions at once wait for each
# other there, so each sees the jobs the others added.
JobAdmission = Callable[[AsyncSession], Awaitable[None]]


async def submit_job(
    *,
    sessions: async_sessionmaker[AsyncSession],
    storage: ObjectStorage,
    queue: JobQueue,
    user_id: str,
    max_unfinished: int,
    uploads: Sequence[tuple[int, JobUpload]],
    options: DetectionOptions,
    idempotency_key: str | None,
    refused: Sequence[Refusal] = (),
    model: str | None = None,
    metadata: Mapping[str, str] | None = None,
    rerun_of: uuid.UUID | None = None,
    admit: JobAdmission | None = None,
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
        max_unfinished=max_unfinished,
        kind=KIND_BATCH,
        total=len(uploads) + len(refused),
        refused=len(refused),
        options=options,
        model=model,
        idempotency_key=idempotency_key,
        objects=[upload.stored_object for _, upload in uploads],
        write_rows=write_items,
        metadata=metadata,
        rerun_of=rerun_of,
        admit=admit,
    )


# The rows a kind of job keeps beside its `jobs` row, written in the same transaction:
# (session, the new job's id, the storage keys of its objects, the submission time).
JobRowsWriter = Callable[[AsyncSession, uuid.UUID, list[str], datetime], Awaitable[None]]


# What a caller refused for too many unfinished jobs is told to wait before trying again: a
# hint, as nobody knows when one of its jobs ends.
TOO_MANY_JOBS_RETRY_AFTER_SECONDS = 60


async def images_waiting(*, session: AsyncSession, user_id: str) -> int:
    """The images (a video's sampled frames) the account's unfinished jobs have still to
    detect: accepted work, which always runs to its end, so the monthly quota holds them from
    the moment a job is accepted (ADR 0030)."""
    waiting = await session.scalar(
        sa.select(sa.func.sum(sa.func.greatest(jobs.c.total - jobs.c.processed, 0))).where(
            jobs.c.user_id == user_id, jobs.c.status.in_(UNFINISHED)
        )
    )
    return int(waiting or 0)


async def ensure_room_for_a_job(
    *, session: AsyncSession, user_id: str, limit: int, hold: bool = False
) -> None:
    """Refuse (TooManyJobs) a new job of an account that has `limit` unfinished jobs already
    (0: no limit). With `hold`, in the transaction that adds the job: the account's
    submissions then wait for each other until it ends, so concurrent ones cannot all slip
    under the limit together."""
    if hold:
        await session.execute(
            sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(f"jobs:{user_id}", 0)))
        )
    if not limit:
        return
    unfinished = await session.scalar(
        sa.select(sa.func.count())
        .select_from(jobs)
        .where(jobs.c.user_id == user_id, jobs.c.status.in_(UNFINISHED))
    )
    if unfinished is not None and unfinished >= limit:
        raise TooManyJobs(
            f"this account has {unfinished} unfinished jobs, as many as one account may"
            f" (MAX_UNFINISHED_JOBS_PER_USER={limit}); wait for one to finish or cancel one",
            retry_after_seconds=TOO_MANY_JOBS_RETRY_AFTER_SECONDS,
        )


async def submit_new_job(
    *,
    sessions: async_sessionmaker[AsyncSession],
    storage: ObjectStorage,
    queue: JobQueue,
    user_id: str,
    max_unfinished: int,
    kind: str,
    total: int,
    refused: int,
    options: DetectionOptions,
    model: str | None,
    idempotency_key: str | None,
    objects: Sequence[bytes | Path],
    write_rows: JobRowsWriter,
    metadata: Mapping[str, str] | None = None,
    rerun_of: uuid.UUID | None = None,
    admit: JobAdmission | None = None,
) -> JobView:
    """A new job of any kind: its pending `jobs` row and the kind's own rows (`write_rows`)
    committed as one step with its stored `objects`, then the job put on the stream;
    `admit` is asked first, under the account's job lock (its refusal discards the objects).

    Batch jobs (`submit_job`) and video jobs (`video.service.submit_video_job`) differ only
    in what they store and the rows beside the `jobs` row; this is the rest, in one place,
    so that both kinds get the same idempotency and enqueue behaviour.

    A repeated idempotency key that a concurrent submission committed first answers with
    that job (the objects stored here are discarded). An account with `max_unfinished` jobs
    unfinished is refused (TooManyJobs), its objects discarded too. If the XADD fails after
    the commit the job stays pending and the sweeper enqueues it later: nothing is lost.
    """
    job_id = uuid.uuid4()
    now = _now()

    async def write_all(session: AsyncSession, keys: list[str]) -> None:
        await ensure_room_for_a_job(
            session=session, user_id=user_id, limit=max_unfinished, hold=True
        )
        if admit is not None:
            await admit(session)
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
                metadata=dict(metadata or {}),
                rerun_of=rerun_of,
                idempotency_key=idempotency_key or None,
                created_at=now,
                updated_at=now,
                heartbeat_at=now,
                queued_at=now,
            )
            .on_conflict_do_nothing(constraint="uq_jobs_user_id_idempotency_key")
            .returning(jobs.c.id)
        )
        if inserted is None:
            raise _KeyTaken
        await write_rows(session, job_id, keys, now)

    try:
        await stored_images.store(
            sessions=sessions,
            storage=storage,
            owner=user_id,
            objects=objects,
            write_rows=write_all,
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
    uploads: Sequence[tuple[int, JobUpload]],
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
    *,
    session: AsyncSession,
    job_id: uuid.UUID,
    kind: str | None = None,
    lease: timedelta | None = None,
) -> StartedJob | None:
    """Mark an unfinished job (of `kind`, when given) processing with a fresh heartbeat;
    None if it is finished, gone or of another kind, or, with `lease`, held by a live worker:
    processing with a heartbeat younger than `lease`. A second message for a job that is being
    worked on (a consumer that stalled past the claim time) then starts no second run; a dead
    worker's job, quiet for longer, is taken over.

    Batch jobs (`start_job`) and video jobs (`video.service.start_video_job`) start the same
    way and differ only in the work they read next; this is the shared step."""
    now = _now()
    conditions = [jobs.c.id == job_id, jobs.c.status.in_(UNFINISHED)]
    if kind is not None:
        conditions.append(jobs.c.kind == kind)
    if lease is not None:
        conditions.append(sa.or_(jobs.c.status == PENDING, jobs.c.heartbeat_at < now - lease))
    job = (
        await session.execute(
            sa.update(jobs)
            .where(*conditions)
            .values(
                status=PROCESSING,
                heartbeat_at=now,
                started_at=now,
                processed_at_start=jobs.c.processed,
            )
            .returning(jobs.c.user_id, jobs.c.params, jobs.c.model)
        )
    ).first()
    if job is None:
        return None
    return StartedJob(
        user_id=job.user_id, options=DetectionOptions.from_json(job.params), model=job.model
    )


async def job_options(*, session: AsyncSession, job_id: uuid.UUID) -> DetectionOptions:
    """The thresholds, classes and regions the job was submitted with."""
    params = (
        await session.execute(sa.select(jobs.c.params).where(jobs.c.id == job_id))
    ).scalar_one()
    return DetectionOptions.from_json(params)


async def start_job(
    *, session: AsyncSession, job_id: uuid.UUID, lease: timedelta | None = None
) -> tuple[DetectionOptions, list[WorkItem]] | None:
    """Mark the job processing and return its pending items; None if it is finished or gone,
    or held by a live worker (`mark_processing`)."""
    job = await mark_processing(session=session, job_id=job_id, lease=lease)
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
    counts: tuple[Sequence[LineCount], Sequence[ZoneCount]] | None = None,
) -> sa.Row[Any]:
    """Move the job's counters by `processed` (of which `failed`), note the model version
    that answered (if any), and stage one job.progress event; returns the new
    (total, processed, failed, metadata). `grow_total`: a video's total is the probe's estimate,
    raised so that progress never reports more than 100 %. `counts`: a running video job's
    line and zone counts so far, carried by the event (JobProgress.counts)."""
    values: dict[str, object] = {
        "processed": jobs.c.processed + processed,
        "failed": jobs.c.failed + failed,
        "model_version": model_version or jobs.c.model_version,
        "updated_at": now,
        "heartbeat_at": now,
    }
    if grow_total:
        values["total"] = sa.func.greatest(jobs.c.total, jobs.c.processed + processed)
    moved = (
        await session.execute(
            sa.update(jobs)
            .where(jobs.c.id == job_id)
            .values(values)
            .returning(
                jobs.c.total,
                jobs.c.processed,
                jobs.c.failed,
                jobs.c.metadata,
                jobs.c.started_at,
                jobs.c.processed_at_start,
            )
        )
    ).one()
    progress = notification_pb2.JobProgress(
        job_id=str(job_id),
        total=moved.total,
        processed=moved.processed,
        failed=moved.failed,
        metadata=moved.metadata,
        counts=(
            notification_pb2.LiveCounts(
                line_counts=line_counts_reply(counts[0]),
                zone_counts=zone_counts_reply(counts[1]),
            )
            if counts is not None
            else None
        ),
    )
    estimate = estimate_progress(
        total=moved.total,
        processed=moved.processed,
        processed_at_start=moved.processed_at_start,
        started_at=moved.started_at,
        now=now,
    )
    if estimate is not None:
        progress.items_per_second = estimate.items_per_second
        progress.estimated_completion_at.FromDatetime(estimate.completion_at)
    await outbox.add_job_progress(session, user_id=user_id, occurred_at=now, progress=progress)
    return moved


async def item_pending(*, session: AsyncSession, item: WorkItem) -> bool:
    """Whether the item still waits for its detection: not once another worker recorded it,
    nor once its job was cancelled. Asked before detecting, so neither costs an inference."""
    status = await session.scalar(
        sa.select(job_items.c.status).where(
            job_items.c.job_id == item.job_id, job_items.c.position == item.position
        )
    )
    return status == PENDING


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
    await stage_job_finished(
        session=session,
        job_id=item.job_id,
        user_id=item.user_id,
        kind=KIND_BATCH,
        status=status,
        total=total,
        processed=total,
        failed=failed,
        now=now,
        error=error,
    )


async def stage_job_finished(
    *,
    session: AsyncSession,
    job_id: uuid.UUID,
    user_id: str,
    kind: str,
    status: str,
    total: int,
    processed: int,
    failed: int,
    now: datetime,
    error: str | None = None,
) -> None:
    """Stage the job's one final event (job.completed, job.failed or job.cancelled, after
    `status`) in the caller's transaction, with the objects per class of what it detected
    and, for a video job that counts, its line counts (ADR 0039) and zone counts (ADR 0042).

    A job ends in three places (its last batch item, a video worker's end, its owner's
    cancel) and each announces this same event, so it is built here once: a video job's
    objects are counted over its frames and a batch job's over its items' detections, and
    only a video job names its kind (the event's `kind` is empty for a batch of images)."""
    video = kind == KIND_VIDEO
    count_objects = frame_class_counts if video else _item_class_counts
    class_counts = await count_objects(session=session, job_id=job_id)
    line_counts, zone_counts = (
        await job_counts(session=session, job_id=job_id) if video else ([], [])
    )
    # Kept on the job too, so that reading it answers what its final event said.
    metadata = await session.scalar(
        sa.update(jobs)
        .where(jobs.c.id == job_id)
        .values(class_counts=class_counts)
        .returning(jobs.c.metadata)
    )
    await outbox.add_job_finished(
        session,
        user_id=user_id,
        occurred_at=now,
        finished=notification_pb2.JobFinished(
            job_id=str(job_id),
            status=status,
            total=total,
            processed=processed,
            failed=failed,
            class_counts=class_counts,
            error=error or "",
            kind=KIND_VIDEO if video else "",
            line_counts=line_counts_reply(line_counts),
            zone_counts=zone_counts_reply(zone_counts),
            metadata=metadata or {},
        ),
    )


async def _item_class_counts(*, session: AsyncSession, job_id: uuid.UUID) -> dict[str, int]:
    """Objects per class over the detections of a batch job's items."""
    counts = await session.execute(
        sa.select(results.c.class_name, sa.func.count())
        .join(detections, detections.c.id == results.c.detection_id)
        .where(detections.c.job_id == job_id)
        .group_by(results.c.class_name)
    )
    return {name: int(count) for name, count in counts}


async def quiet_jobs(*, session: AsyncSession, older_than: timedelta) -> list[uuid.UUID]:
    """Unfinished jobs with no sign of life for `older_than`: waiting their turn on the
    stream, held by a consumer that died (its message is reclaimed), or lost (no message)."""
    rows = await session.execute(
        sa.select(jobs.c.id).where(
            jobs.c.status.in_(UNFINISHED), jobs.c.heartbeat_at < _now() - older_than
        )
    )
    return [row.id for row in rows]


async def requeue_jobs(
    *, session: AsyncSession, job_ids: Sequence[uuid.UUID], older_than: timedelta
) -> list[uuid.UUID]:
    """Mark these quiet jobs pending again, their clock restarted; the ones this call took.

    Pending, not processing: nobody works on them, and a worker that starts one is not kept
    away by the lease of a worker that is gone (`mark_processing`). Concurrent sweepers do not
    both take a job: the second one's UPDATE waits on the row lock and then no longer matches
    the age condition.
    """
    if not job_ids:
        return []
    now = _now()
    rows = await session.execute(
        sa.update(jobs)
        .where(
            jobs.c.id.in_(job_ids),
            jobs.c.status.in_(UNFINISHED),
            jobs.c.heartbeat_at < now - older_than,
        )
        .values(status=PENDING, heartbeat_at=now, queued_at=now)
        .returning(jobs.c.id)
    )
    return [row.id for row in rows]


# The last start of an account that never had a job started: before any real one.
_NEVER_STARTED = datetime(1970, 1, 1, tzinfo=UTC)


def _running(user_id: Any, alive_since: datetime) -> Any:
    """How many jobs of `user_id` a live worker runs (a heartbeat since `alive_since`)."""
    running = jobs.alias("running")
    return (
        sa.select(sa.func.count())
        .select_from(running)
        .where(
            running.c.user_id == user_id,
            running.c.status == PROCESSING,
            running.c.heartbeat_at > alive_since,
        )
        .scalar_subquery()
    )


def _last_start(user_id: Any) -> Any:
    """When a job of `user_id` last started; long ago for an account never served."""
    started = jobs.alias("started")
    return (
        sa.select(sa.func.coalesce(sa.func.max(started.c.started_at), _NEVER_STARTED))
        .where(started.c.user_id == user_id)
        .scalar_subquery()
    )


async def give_way(
    *, session: AsyncSession, job_id: uuid.UUID, message_queued_at: datetime, lease: timedelta
) -> bool:
    """Whether this pending job gives its turn to another account (ADR 0044), and if so its
    queue time restarted now, just before its message goes back at the end of the stream.

    It does when another account has a pending job whose message stands behind this one's
    (queued after `message_queued_at`, this message's time on the stream) and that account
    stands before this job's: fewer jobs running on live workers (heartbeat within `lease`),
    or as many and its last start longer ago. Accounts so take turns at the workers however
    many jobs one of them queued first. The order is strict, so two jobs never give way to
    each other; and a job gives way only to one behind it, so a pending job whose message
    was lost or sits on another stream makes no job circle the stream.
    """
    owner = await session.scalar(
        sa.select(jobs.c.user_id).where(jobs.c.id == job_id, jobs.c.status == PENDING)
    )
    if owner is None:
        return False
    alive_since = _now() - lease
    my_running, my_last_start = (
        await session.execute(sa.select(_running(owner, alive_since), _last_start(owner)))
    ).one()
    waiting = jobs.alias("waiting")
    # The accounts first, then each one's standing: a long queue of one account is one row.
    queued_behind = (
        sa.select(waiting.c.user_id)
        .where(
            waiting.c.status == PENDING,
            waiting.c.user_id != owner,
            waiting.c.queued_at > message_queued_at,
        )
        .distinct()
        .subquery()
    )
    theirs_running = _running(queued_behind.c.user_id, alive_since)
    behind = await session.scalar(
        sa.select(queued_behind.c.user_id)
        .where(
            sa.or_(
                theirs_running < my_running,
                sa.and_(
                    theirs_running == my_running,
                    _last_start(queued_behind.c.user_id) < my_last_start,
                ),
            )
        )
        .limit(1)
    )
    if behind is None:
        return False
    await session.execute(sa.update(jobs).where(jobs.c.id == job_id).values(queued_at=_now()))
    return True
