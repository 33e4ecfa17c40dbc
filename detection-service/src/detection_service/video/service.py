"""Video job rows: submission, the caller's frames and annotated video, and the transactions a
worker commits frames and the job's end in.

A video job is a `jobs` row of kind 'video', so its progress and final events, its WebSocket
and its report email are the batch jobs' own (ADR 0005, 0006). Frames commit in small groups,
each group with one `job.progress` event; a frame row is inserted once (`ON CONFLICT DO
NOTHING` on (job, frame)), and only rows actually inserted move the counters, so a worker that
resumes a job after a crash, or two workers on one job, never count a frame twice. The final
event is written in the transaction that sees the job still unfinished under a row lock:
exactly once.
"""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NotRequired, TypedDict

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from detection_service.images.storage import ObjectStorage
from detection_service.jobs import service as jobs_service
from detection_service.jobs.models import (
    CANCELLED,
    COMPLETED,
    FAILED,
    KIND_VIDEO,
    UNFINISHED,
    jobs,
)
from detection_service.jobs.queue import JobQueue
from detection_service.pipeline.types import DetectedObject, DetectionOptions
from detection_service.tracking.lines import CountingLine, LineCrossing
from detection_service.tracking.zones import CountingZone
from detection_service.video.models import video_frames, video_jobs
from detection_service.video.probe import Sampling, VideoContainer, VideoProbe
from detection_service.video.views import VideoView, job_counts, video_view
from objectvision_common.errors import FailedPrecondition, NotFound


class JobEnded(Exception):
    """The job ended while a worker still ran it: its owner cancelled it, or another worker
    finished it. The worker stops; what it had not committed is not wanted."""


@dataclass(frozen=True)
class FrameRecord:
    """One sampled frame's outcome: its objects, or why it could not be detected."""

    frame_index: int
    timestamp_seconds: float
    objects: list[DetectedObject]
    error: str | None = None
    # The objects that crossed a counting line in this frame (ADR 0039).
    crossings: tuple[LineCrossing, ...] = ()


@dataclass(frozen=True)
class VideoWork:
    """What a worker needs to (re)process a video job; `done` are frames already committed,
    whose stored objects are drawn again instead of being detected again."""

    job_id: uuid.UUID
    user_id: str
    options: DetectionOptions
    storage_key: str
    container: VideoContainer
    sampling: Sampling
    width: int
    height: int
    frame_rate: float
    done: dict[int, list[DetectedObject]]
    # The model asked for at submission (None: the deployment's default).
    model: str | None = None
    # Objects are followed from frame to frame (ADR 0038).
    tracked: bool = False
    # Their crossings of these lines are counted (ADR 0039).
    lines: tuple[CountingLine, ...] = ()
    # Each object is told the zones it stands in (ADR 0042).
    zones: tuple[CountingZone, ...] = ()
    # Classes (lower-case names) the annotated video shows pixelated (ADR 0049).
    redact: frozenset[str] = frozenset()


def _now() -> datetime:
    return datetime.now(UTC)


class StoredObject(TypedDict):
    """A frame's object as `video_frames.objects` holds it; a track id and zones only where
    the job tracks objects and names zones."""

    class_id: int
    class_name: str
    confidence: float
    x1: float
    y1: float
    x2: float
    y2: float
    track_id: NotRequired[int]
    zones: NotRequired[list[str]]


def _object_json(obj: DetectedObject) -> StoredObject:
    value: StoredObject = {
        "class_id": obj.class_id,
        "class_name": obj.class_name,
        "confidence": obj.confidence,
        "x1": obj.x1,
        "y1": obj.y1,
        "x2": obj.x2,
        "y2": obj.y2,
    }
    if obj.track_id is not None:
        value["track_id"] = obj.track_id
    if obj.zones:
        value["zones"] = list(obj.zones)
    return value


def _object(value: StoredObject) -> DetectedObject:
    track_id = value.get("track_id")
    return DetectedObject(
        class_id=int(value["class_id"]),
        class_name=str(value["class_name"]),
        confidence=float(value["confidence"]),
        x1=float(value["x1"]),
        y1=float(value["y1"]),
        x2=float(value["x2"]),
        y2=float(value["y2"]),
        track_id=int(track_id) if track_id is not None else None,
        zones=tuple(str(zone) for zone in value.get("zones", [])),
    )


async def submit_video_job(
    *,
    sessions: async_sessionmaker[AsyncSession],
    storage: ObjectStorage,
    queue: JobQueue,
    user_id: str,
    max_unfinished: int,
    scratch: Path,
    probe: VideoProbe,
    filename: str,
    size_bytes: int,
    options: DetectionOptions,
    sampling: Sampling,
    idempotency_key: str | None,
    model: str | None = None,
    tracked: bool = False,
    lines: tuple[CountingLine, ...] = (),
    zones: tuple[CountingZone, ...] = (),
    metadata: Mapping[str, str] | None = None,
    redact: frozenset[str] = frozenset(),
    rerun_of: uuid.UUID | None = None,
    admit: jobs_service.JobAdmission | None = None,
) -> jobs_service.JobView:
    """Take the checked upload into storage, commit the job, then put it on the job stream
    (`admit` asked as submit_new_job says).

    The file is stored before its row commits and removed if the commit fails; a lost XADD
    leaves the job pending for the sweeper, as with batch jobs.
    """

    async def write_video(
        session: AsyncSession, job_id: uuid.UUID, keys: list[str], now: datetime
    ) -> None:
        await session.execute(
            video_jobs.insert().values(
                job_id=job_id,
                storage_key=keys[0],
                filename=filename,
                size_bytes=size_bytes,
                **probe.file_fields(),
                sample_fps=sampling.fps,
                sample_every=sampling.every,
                tracked=tracked,
                counting_lines=[line.to_json() for line in lines],
                counting_zones=[zone.to_json() for zone in zones],
                redact_classes=sorted(redact),
            )
        )

    return await jobs_service.submit_new_job(
        sessions=sessions,
        storage=storage,
        queue=queue,
        user_id=user_id,
        max_unfinished=max_unfinished,
        kind=KIND_VIDEO,
        total=probe.sampled_frames,
        refused=0,
        options=options,
        model=model,
        idempotency_key=idempotency_key,
        objects=[scratch],
        write_rows=write_video,
        metadata=metadata,
        rerun_of=rerun_of,
        admit=admit,
    )


async def stored_video(
    *, session: AsyncSession, job_id: uuid.UUID, sampled_frames: int
) -> tuple[str, VideoView]:
    """A video job's stored upload (its storage key) and how it was sampled, tracked,
    counted and redacted: what running it again (ADR 0058) copies."""
    key = await session.scalar(
        sa.select(video_jobs.c.storage_key).where(video_jobs.c.job_id == job_id)
    )
    view = await video_view(session=session, job_id=job_id, sampled_frames=sampled_frames)
    if key is None or view is None:
        raise NotFound("no such video job")
    return key, view


async def _owned_video_job(
    session: AsyncSession, *, job_id: uuid.UUID, user_id: str
) -> sa.Row[Any]:
    row = (
        await session.execute(
            sa.select(jobs.c.status, jobs.c.kind, video_jobs)
            .join(video_jobs, video_jobs.c.job_id == jobs.c.id)
            .where(jobs.c.id == job_id, jobs.c.user_id == user_id)
        )
    ).first()
    if row is None:
        raise NotFound("no such video job")
    return row


async def list_frames(
    *, session: AsyncSession, job_id: uuid.UUID, user_id: str, limit: int, offset: int
) -> tuple[list[FrameRecord], int, int, int]:
    """One page of the job's committed frames in frame order, their count, and the frame size."""
    video = await _owned_video_job(session, job_id=job_id, user_id=user_id)
    total = await session.scalar(
        sa.select(sa.func.count()).select_from(video_frames).where(video_frames.c.job_id == job_id)
    )
    rows = await session.execute(
        sa.select(video_frames)
        .where(video_frames.c.job_id == job_id)
        .order_by(video_frames.c.frame_index)
        .limit(limit)
        .offset(offset)
    )
    return [_frame_record(row) for row in rows], int(total or 0), video.width, video.height


@dataclass(frozen=True)
class CommittedFrames:
    """Every committed frame of a video job, with its frame size and whether it was tracked."""

    width: int
    height: int
    tracked: bool
    frames: list[FrameRecord]


async def committed_frames(
    *, session: AsyncSession, job_id: uuid.UUID, user_id: str
) -> CommittedFrames:
    """The caller's video job's frames in frame order, all at once: for scoring them, which
    needs every frame (a job samples at most MAX_VIDEO_SECONDS of frames)."""
    video = await _owned_video_job(session, job_id=job_id, user_id=user_id)
    rows = await session.execute(
        sa.select(video_frames)
        .where(video_frames.c.job_id == job_id)
        .order_by(video_frames.c.frame_index)
    )
    return CommittedFrames(
        width=video.width,
        height=video.height,
        tracked=video.tracked,
        frames=[_frame_record(row) for row in rows],
    )


def _frame_record(row: sa.Row[Any]) -> FrameRecord:
    return FrameRecord(
        frame_index=row.frame_index,
        timestamp_seconds=row.timestamp_seconds,
        objects=[_object(value) for value in row.objects],
        error=row.error,
        crossings=tuple(LineCrossing.from_json(value) for value in row.crossings),
    )


async def annotated_key(*, session: AsyncSession, job_id: uuid.UUID, user_id: str) -> str:
    """The stored annotated video's key; FailedPrecondition while the job has not made it."""
    video = await _owned_video_job(session, job_id=job_id, user_id=user_id)
    if video.annotated_key is None:
        if video.status in UNFINISHED:
            raise FailedPrecondition(
                "the annotated video is not ready yet: the job is still "
                f"{video.status}; try again when it has completed"
            )
        if video.status == CANCELLED:
            raise FailedPrecondition("this video job was cancelled and has no annotated video")
        raise FailedPrecondition("this video job failed and has no annotated video")
    return str(video.annotated_key)


async def job_kind(*, session: AsyncSession, job_id: uuid.UUID) -> str | None:
    return await session.scalar(sa.select(jobs.c.kind).where(jobs.c.id == job_id))


async def start_video_job(
    *, session: AsyncSession, job_id: uuid.UUID, lease: timedelta | None = None
) -> VideoWork | None:
    """Mark the job processing and return what is left to do; None if finished or gone, or
    held by a live worker (`jobs.service.mark_processing`)."""
    job = await jobs_service.mark_processing(
        session=session, job_id=job_id, kind=KIND_VIDEO, lease=lease
    )
    if job is None:
        return None
    video = (
        await session.execute(sa.select(video_jobs).where(video_jobs.c.job_id == job_id))
    ).one()
    done_rows = await session.execute(
        sa.select(video_frames.c.frame_index, video_frames.c.objects).where(
            video_frames.c.job_id == job_id
        )
    )
    return VideoWork(
        job_id=job_id,
        user_id=job.user_id,
        options=job.options,
        storage_key=video.storage_key,
        container=VideoContainer(video.container),
        sampling=Sampling(fps=video.sample_fps, every=video.sample_every),
        width=video.width,
        height=video.height,
        frame_rate=video.frame_rate,
        done={row.frame_index: [_object(v) for v in row.objects] for row in done_rows},
        model=job.model,
        tracked=video.tracked,
        lines=tuple(CountingLine.from_json(value) for value in video.counting_lines),
        zones=tuple(CountingZone.from_json(value) for value in video.counting_zones),
        redact=frozenset(video.redact_classes),
    )


async def _lock_unfinished(session: AsyncSession, job_id: uuid.UUID) -> bool:
    status = await session.scalar(
        sa.select(jobs.c.status).where(jobs.c.id == job_id).with_for_update()
    )
    return status in UNFINISHED


async def record_frames(
    *,
    session: AsyncSession,
    job_id: uuid.UUID,
    user_id: str,
    frames: list[FrameRecord],
    model_version: str = "",
    with_counts: bool = False,
) -> int:
    """Commit frames not yet stored, move the counters by those, stage one progress event;
    `with_counts`, carrying the job's line and zone counts over its frames so far, these
    included (the query GetJob runs, in this transaction).

    Returns how many frames were new (0 when another worker stored them). JobEnded when the
    job is no longer unfinished (cancelled, or finished by another worker): each commit is
    where a running worker learns that it should stop.
    """
    if not frames:
        return 0
    if not await _lock_unfinished(session, job_id):
        raise JobEnded(f"job {job_id} has ended")
    inserted = (
        await session.execute(
            pg_insert(video_frames)
            .values(
                [
                    {
                        "job_id": job_id,
                        "frame_index": frame.frame_index,
                        "timestamp_seconds": frame.timestamp_seconds,
                        "objects": [_object_json(obj) for obj in frame.objects],
                        "object_count": len(frame.objects),
                        "error": frame.error,
                        "crossings": [crossing.to_json() for crossing in frame.crossings],
                    }
                    for frame in frames
                ]
            )
            .on_conflict_do_nothing(index_elements=["job_id", "frame_index"])
            .returning(video_frames.c.error)
        )
    ).all()
    if not inserted:
        return 0
    failed = sum(1 for row in inserted if row.error is not None)
    await jobs_service.count_progress(
        session=session,
        job_id=job_id,
        user_id=user_id,
        processed=len(inserted),
        failed=failed,
        model_version=model_version,
        now=_now(),
        grow_total=True,
        counts=await job_counts(session=session, job_id=job_id) if with_counts else None,
    )
    return len(inserted)


async def finish_video_job(
    *,
    session: AsyncSession,
    job_id: uuid.UUID,
    user_id: str,
    annotated: str | None,
    error: str | None,
) -> bool:
    """The job's end, once: completed with its annotated video, or failed with the reason.

    The counts come from the committed frames, so the total is what the decoder really
    delivered. True when the job completed with `annotated` as its video; False otherwise
    (another worker finished it first, or it failed), and the caller deletes its file.
    """
    if not await _lock_unfinished(session, job_id):
        return False
    recorded, failed = (
        await session.execute(
            sa.select(sa.func.count(), sa.func.count(video_frames.c.error)).where(
                video_frames.c.job_id == job_id
            )
        )
    ).one()
    if error is None and recorded == 0:
        error = "the video has no frames to detect"
    elif error is None and failed == recorded:
        error = "every sampled frame failed"
    status = FAILED if error is not None else COMPLETED
    total = await session.scalar(sa.select(jobs.c.total).where(jobs.c.id == job_id))
    if status == COMPLETED:
        total = recorded
    now = _now()
    await session.execute(
        sa.update(jobs)
        .where(jobs.c.id == job_id)
        .values(
            status=status,
            error=error,
            total=total,
            processed=recorded,
            failed=failed,
            updated_at=now,
            completed_at=now,
        )
    )
    if annotated is not None and status == COMPLETED:
        await session.execute(
            sa.update(video_jobs)
            .where(video_jobs.c.job_id == job_id)
            .values(annotated_key=annotated)
        )
    await jobs_service.stage_job_finished(
        session=session,
        job_id=job_id,
        user_id=user_id,
        kind=KIND_VIDEO,
        status=status,
        total=int(total or 0),
        processed=int(recorded),
        failed=int(failed),
        now=now,
        error=error,
    )
    return status == COMPLETED
