"""A video job's description as the caller sees it, read beside its `jobs` row (GetJob)."""

import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from detection_service.video.models import video_jobs
from detection_service.video.probe import Sampling


@dataclass(frozen=True)
class VideoView:
    filename: str
    container: str
    codec: str
    width: int
    height: int
    duration_seconds: float
    frame_rate: float
    frame_count: int
    sampling: Sampling
    size_bytes: int
    annotated_available: bool


async def video_view(*, session: AsyncSession, job_id: uuid.UUID) -> VideoView | None:
    row = (
        await session.execute(sa.select(video_jobs).where(video_jobs.c.job_id == job_id))
    ).first()
    if row is None:
        return None
    return VideoView(
        filename=row.filename,
        container=row.container,
        codec=row.codec,
        width=row.width,
        height=row.height,
        duration_seconds=row.duration_seconds,
        frame_rate=row.frame_rate,
        frame_count=row.frame_count,
        sampling=Sampling(fps=row.sample_fps, every=row.sample_every),
        size_bytes=row.size_bytes,
        annotated_available=row.annotated_key is not None,
    )
