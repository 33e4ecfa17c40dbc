"""A video job's description as the caller sees it, read beside its `jobs` row (GetJob,
ListJobs), the objects its frames hold (the final event's class counts), and the files it
keeps in storage (what deleting the job removes)."""

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from detection_service.tracking.lines import CountingLine, CrossingDirection, LineCount
from detection_service.tracking.zones import CountingZone, ZoneCount
from detection_service.video.models import video_frames, video_jobs
from detection_service.video.probe import Sampling, VideoProbe

_Count = TypeVar("_Count", LineCount, ZoneCount)


@dataclass(frozen=True)
class VideoView:
    """The uploaded file, what its probe found when the job was accepted (held whole, not
    copied field by field; its `sampled_frames` is the job's total), how it is sampled, and
    whether its annotated video is stored."""

    filename: str
    size_bytes: int
    probe: VideoProbe
    sampling: Sampling
    annotated_available: bool
    tracked: bool
    lines: tuple[CountingLine, ...] = ()
    # By line (in the order of `lines`), then class id; over the frames committed so far.
    line_counts: tuple[LineCount, ...] = ()
    zones: tuple[CountingZone, ...] = ()
    # By zone (in the order of `zones`), then class id; over the frames committed so far.
    zone_counts: tuple[ZoneCount, ...] = ()
    # Classes (lower-case names) the annotated video shows pixelated (ADR 0049).
    redact: tuple[str, ...] = ()


async def video_view(
    *, session: AsyncSession, job_id: uuid.UUID, sampled_frames: int
) -> VideoView | None:
    """The job's video; `sampled_frames` is the job's total, which starts as the probe's
    count and follows the frames the decoder really delivers (it is not stored twice)."""
    row = (
        await session.execute(sa.select(video_jobs).where(video_jobs.c.job_id == job_id))
    ).first()
    if row is None:
        return None
    line_counts, zone_counts = await _counts(session, [row])
    return _view(row, sampled_frames, line_counts.get(job_id, []), zone_counts.get(job_id, []))


async def video_views(
    *, session: AsyncSession, totals: Mapping[uuid.UUID, int]
) -> dict[uuid.UUID, VideoView]:
    """The videos of several jobs (`totals`: each job's total) in one query, by job id."""
    if not totals:
        return {}
    rows = (
        await session.execute(sa.select(video_jobs).where(video_jobs.c.job_id.in_(totals)))
    ).all()
    line_counts, zone_counts = await _counts(session, rows)
    return {
        row.job_id: _view(
            row,
            totals[row.job_id],
            line_counts.get(row.job_id, []),
            zone_counts.get(row.job_id, []),
        )
        for row in rows
    }


async def job_counts(
    *, session: AsyncSession, job_id: uuid.UUID
) -> tuple[list[LineCount], list[ZoneCount]]:
    """What crossed the job's counting lines and who was in its zones, over its committed
    frames; none for a job that counts nothing (or is not a video job)."""
    row = (
        await session.execute(sa.select(video_jobs).where(video_jobs.c.job_id == job_id))
    ).first()
    if row is None:
        return [], []
    line_counts, zone_counts = await _counts(session, [row])
    return line_counts.get(job_id, []), zone_counts.get(job_id, [])


async def _counts(
    session: AsyncSession, videos: Sequence[sa.Row[Any]]
) -> tuple[dict[uuid.UUID, list[LineCount]], dict[uuid.UUID, list[ZoneCount]]]:
    """The line and zone counts of the videos (rows of video_jobs) that ask for any."""
    return (
        await _line_counts(session, [video for video in videos if video.counting_lines]),
        await _zone_counts(session, [video for video in videos if video.counting_zones]),
    )


def _in_given_order(
    counts: dict[uuid.UUID, list[_Count]],
    videos: Sequence[sa.Row[Any]],
    *,
    regions: Callable[[sa.Row[Any]], list[dict[str, Any]]],
    region_of: Callable[[_Count], str],
) -> dict[uuid.UUID, list[_Count]]:
    """Each job's counts in the order its lines or zones were given, then by class id."""
    order = {
        video.job_id: {value["name"]: n for n, value in enumerate(regions(video))}
        for video in videos
    }
    for job_id, job_counts in counts.items():
        job_counts.sort(key=lambda count: (order[job_id].get(region_of(count), 0), count.class_id))
    return counts


async def _line_counts(
    session: AsyncSession, videos: list[sa.Row[Any]]
) -> dict[uuid.UUID, list[LineCount]]:
    """Crossings summed by job, line and class over the committed frames of `videos` (rows of
    video_jobs), each job's in the order of its lines, then by class id; one query."""
    if not videos:
        return {}
    element = sa.func.jsonb_array_elements(video_frames.c.crossings).table_valued("value")
    line = element.c.value.op("->>")("line")
    class_id = element.c.value.op("->>")("class_id").cast(sa.Integer)
    class_name = element.c.value.op("->>")("class_name")
    direction = element.c.value.op("->>")("direction")
    rows = await session.execute(
        sa.select(
            video_frames.c.job_id,
            line,
            class_id,
            sa.func.min(class_name),
            sa.func.count().filter(direction == CrossingDirection.IN.value),
            sa.func.count().filter(direction == CrossingDirection.OUT.value),
        )
        .select_from(video_frames)
        .join(element, sa.true())
        .where(video_frames.c.job_id.in_([video.job_id for video in videos]))
        .group_by(video_frames.c.job_id, line, class_id)
    )
    counts: dict[uuid.UUID, list[LineCount]] = {}
    for job_id, line_name, class_number, name, crossed_in, crossed_out in rows:
        counts.setdefault(job_id, []).append(
            LineCount(
                line=str(line_name),
                class_id=int(class_number),
                class_name=str(name),
                crossed_in=int(crossed_in),
                crossed_out=int(crossed_out),
            )
        )
    return _in_given_order(
        counts,
        videos,
        regions=lambda video: video.counting_lines,
        region_of=lambda count: count.line,
    )


async def _zone_counts(
    session: AsyncSession, videos: list[sa.Row[Any]]
) -> dict[uuid.UUID, list[ZoneCount]]:
    """Who stood in each zone, by job, zone and class, over the committed frames of `videos`
    (rows of video_jobs): tracked objects seen inside (visited) and their mean stay, from
    the first to the last sampled frame each was seen inside; and the most inside in one
    frame (peak), tracked or not. One query."""
    if not videos:
        return {}
    obj = sa.func.jsonb_array_elements(video_frames.c.objects).table_valued("value").alias("obj")
    zone = (
        sa.func.jsonb_array_elements_text(obj.c.value.op("->")("zones"))
        .table_valued("value")
        .alias("zone")
    )
    inside = (
        sa.select(
            video_frames.c.job_id,
            video_frames.c.frame_index,
            video_frames.c.timestamp_seconds.label("seconds"),
            zone.c.value.label("zone"),
            obj.c.value.op("->>")("class_id").cast(sa.Integer).label("class_id"),
            obj.c.value.op("->>")("class_name").label("class_name"),
            obj.c.value.op("->>")("track_id").cast(sa.Integer).label("track_id"),
        )
        .select_from(video_frames)
        .join(obj, sa.true())
        .join(zone, sa.true())
        .where(video_frames.c.job_id.in_([video.job_id for video in videos]))
        .cte("inside")
    )
    key = (inside.c.job_id, inside.c.zone, inside.c.class_id)
    per_frame = (
        sa.select(
            *key,
            sa.func.min(inside.c.class_name).label("class_name"),
            sa.func.count().label("inside"),
        )
        .group_by(*key, inside.c.frame_index)
        .cte("per_frame")
    )
    peaks = (
        sa.select(
            per_frame.c.job_id,
            per_frame.c.zone,
            per_frame.c.class_id,
            sa.func.min(per_frame.c.class_name).label("class_name"),
            sa.func.max(per_frame.c.inside).label("peak"),
        )
        .group_by(per_frame.c.job_id, per_frame.c.zone, per_frame.c.class_id)
        .cte("peaks")
    )
    stays = (
        sa.select(
            *key, (sa.func.max(inside.c.seconds) - sa.func.min(inside.c.seconds)).label("stay")
        )
        .where(inside.c.track_id.is_not(None))
        .group_by(*key, inside.c.track_id)
        .cte("stays")
    )
    visits = (
        sa.select(
            stays.c.job_id,
            stays.c.zone,
            stays.c.class_id,
            sa.func.count().label("visited"),
            sa.func.avg(stays.c.stay).label("mean_stay"),
        )
        .group_by(stays.c.job_id, stays.c.zone, stays.c.class_id)
        .cte("visits")
    )
    rows = await session.execute(
        sa.select(
            peaks.c.job_id,
            peaks.c.zone,
            peaks.c.class_id,
            peaks.c.class_name,
            sa.func.coalesce(visits.c.visited, 0),
            peaks.c.peak,
            sa.func.coalesce(visits.c.mean_stay, 0.0),
        ).select_from(
            peaks.outerjoin(
                visits,
                sa.and_(
                    visits.c.job_id == peaks.c.job_id,
                    visits.c.zone == peaks.c.zone,
                    visits.c.class_id == peaks.c.class_id,
                ),
            )
        )
    )
    counts: dict[uuid.UUID, list[ZoneCount]] = {}
    for job_id, zone_name, class_number, name, visited, peak, mean_stay in rows:
        counts.setdefault(job_id, []).append(
            ZoneCount(
                zone=str(zone_name),
                class_id=int(class_number),
                class_name=str(name),
                visited=int(visited),
                peak=int(peak),
                mean_stay_seconds=round(float(mean_stay), 3),
            )
        )
    return _in_given_order(
        counts,
        videos,
        regions=lambda video: video.counting_zones,
        region_of=lambda count: count.zone,
    )


async def stored_video_keys(*, session: AsyncSession, job_id: uuid.UUID) -> list[str]:
    """The storage keys of the job's upload and, once made, its annotated video; none for a
    job that is not a video job."""
    row = (
        await session.execute(
            sa.select(video_jobs.c.storage_key, video_jobs.c.annotated_key).where(
                video_jobs.c.job_id == job_id
            )
        )
    ).first()
    if row is None:
        return []
    return [key for key in (row.storage_key, row.annotated_key) if key is not None]


async def frame_class_counts(*, session: AsyncSession, job_id: uuid.UUID) -> dict[str, int]:
    """Objects per class over the job's committed frames."""
    element = sa.func.jsonb_array_elements(video_frames.c.objects).table_valued("value")
    class_name = element.c.value.op("->>")("class_name")
    counts = await session.execute(
        sa.select(class_name, sa.func.count())
        .select_from(video_frames)
        .join(element, sa.true())
        .where(video_frames.c.job_id == job_id)
        .group_by(class_name)
    )
    return {str(name): int(count) for name, count in counts}


def _view(
    row: sa.Row[Any],
    sampled_frames: int,
    line_counts: list[LineCount],
    zone_counts: list[ZoneCount],
) -> VideoView:
    return VideoView(
        filename=row.filename,
        size_bytes=row.size_bytes,
        probe=VideoProbe.from_file_fields(row._asdict(), sampled_frames=sampled_frames),
        sampling=Sampling(fps=row.sample_fps, every=row.sample_every),
        annotated_available=row.annotated_key is not None,
        tracked=row.tracked,
        lines=tuple(CountingLine.from_json(value) for value in row.counting_lines),
        line_counts=tuple(line_counts),
        zones=tuple(CountingZone.from_json(value) for value in row.counting_zones),
        zone_counts=tuple(zone_counts),
        redact=tuple(row.redact_classes),
    )
