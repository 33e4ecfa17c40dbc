"""A video job's description as the caller sees it, read beside its `jobs` row (GetJob)."""

import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from detection_service.video.models import video_jobs
from detection_service.video.probe import Sampling, VideoContainer, VideoProbe


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
    return VideoView(
        filename=row.filename,
        size_bytes=row.size_bytes,
        probe=VideoProbe(
            container=VideoContainer(row.container),
            codec=row.codec,
            width=row.width,
            height=row.height,
            duration_seconds=row.duration_seconds,
            frame_rate=row.frame_rate,
            frame_count=row.frame_count,
            sampled_frames=sampled_frames,
        ),
        sampling=Sampling(fps=row.sample_fps, every=row.sample_every),
        annotated_available=row.annotated_key is not None,
    )
