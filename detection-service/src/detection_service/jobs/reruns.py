"""Running a job again over what it stored (ADR 0058): the job's settings, and a batch job's
images read back from storage for a new job, as an upload would bring them.

The servicer admits the new job (limits, quota: they need the caller's principal) and submits
it through `jobs.service.submit_job` or `video.service.submit_video_job`, as uploads are.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from detection_service.history import service as history
from detection_service.history.service import HistoryFilter
from detection_service.images.models import images
from detection_service.images.storage import ObjectNotFoundError, ObjectStorage
from detection_service.images.uploads import SpooledUpload
from detection_service.jobs.models import KIND_BATCH, job_items, jobs
from detection_service.jobs.service import Refusal
from detection_service.pipeline.header import ImageHeader
from detection_service.pipeline.types import DetectionOptions
from objectvision_common.errors import DomainError, FailedPrecondition, NotFound


@dataclass(frozen=True)
class StoredItem:
    """One stored image of a batch job, where it stands in the job and in storage."""

    position: int
    filename: str
    storage_key: str


@dataclass(frozen=True)
class RerunSource:
    """What running a job again starts from (ADR 0058): its kind, options, model and
    metadata; a batch job's images still stored, in their order (a video job's video is read
    by the video service)."""

    job_id: uuid.UUID
    kind: str
    total: int
    options: DetectionOptions
    model: str | None
    metadata: dict[str, str]
    items: Sequence[StoredItem] = ()


async def rerun_source(*, session: AsyncSession, job_id: uuid.UUID, user_id: str) -> RerunSource:
    """The caller's job's settings and, for a batch job, its stored images. Its files refused
    at submission were never stored and are left out; so are images deleted since. NotFound
    for another account's job; FailedPrecondition for a batch job with no stored image left."""
    job = (
        await session.execute(
            sa.select(
                jobs.c.kind, jobs.c.total, jobs.c.params, jobs.c.model, jobs.c.metadata
            ).where(jobs.c.id == job_id, jobs.c.user_id == user_id)
        )
    ).first()
    if job is None:
        raise NotFound("no such job")
    source = RerunSource(
        job_id=job_id,
        kind=job.kind,
        total=job.total,
        options=DetectionOptions.from_json(job.params),
        model=job.model,
        metadata=dict(job.metadata),
    )
    if job.kind != KIND_BATCH:
        return source
    rows = await session.execute(
        sa.select(job_items.c.position, images.c.original_filename, images.c.storage_key)
        .join(images, images.c.id == job_items.c.image_id)
        .where(job_items.c.job_id == job_id)
        .order_by(job_items.c.position)
    )
    items = [StoredItem(row.position, row.original_filename, row.storage_key) for row in rows]
    if not items:
        raise FailedPrecondition(
            "this job has no stored image left to run again: its files were refused, or their"
            " images were deleted"
        )
    return replace(source, items=items)


async def history_items(
    *, session: AsyncSession, user_id: str, filters: HistoryFilter, most: int
) -> list[StoredItem]:
    """The stored images of the caller's detections that `filters` keeps, oldest first, as a
    new job's items (at most `most`: a batch's limit)."""
    found = await history.stored_images_of(
        session=session, user_id=user_id, filters=filters, most=most
    )
    return [
        StoredItem(position, filename, storage_key)
        for position, (filename, storage_key) in enumerate(found)
    ]


@asynccontextmanager
async def stored_uploads(
    *,
    storage: ObjectStorage,
    inspect: Callable[[bytes], ImageHeader],
    items: Sequence[StoredItem],
) -> AsyncIterator[tuple[list[tuple[int, SpooledUpload]], list[Refusal]]]:
    """A job's stored images read back for a new job, in their order from position 0, each
    header checked by `inspect` as an upload's is: an image gone from storage, or one that no
    longer passes (limits lowered since), is a failed item of the new job with the reason.
    FailedPrecondition when none can be read.

    One image is in memory at a time: each is copied to a scratch file, which submitting the
    job moves into storage, and those not taken in are removed when the block ends (a history
    rerun takes up to MAX_BATCH_FILES images of up to MAX_UPLOAD_BYTES each, gigabytes if
    held together)."""
    accepted: list[tuple[int, SpooledUpload]] = []
    refused: list[Refusal] = []
    try:
        for position, item in enumerate(items):
            try:
                data = await storage.get(item.storage_key)
                header = inspect(data)
            except ObjectNotFoundError:
                refused.append(Refusal(position, item.filename, "its stored image is gone"))
                continue
            except DomainError as error:
                refused.append(Refusal(position, item.filename, error.message))
                continue
            scratch = storage.scratch_path()
            spooled = SpooledUpload(scratch, len(data), item.filename, header)
            accepted.append((position, spooled))
            await asyncio.to_thread(scratch.write_bytes, data)
            del data
        if not accepted:
            raise FailedPrecondition("none of this job's stored images could be read again")
        yield accepted, refused
    finally:
        await asyncio.to_thread(_remove, [upload.path for _, upload in accepted])


def _remove(paths: Sequence[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
