"""Stored detections: writing a finished detection, a user's history, one detection, its image.

Plain functions over an AsyncSession (the caller owns the transaction), every read scoped to
the caller's user id: another user's detection is simply not found.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from detection_service.detector import DetectionResult
from detection_service.history.models import DETECTION_COMPLETED, detections, images, results
from detection_service.postprocess import DetectedObject, DetectionOptions
from detection_service.uploads import Upload
from objectvision_common.errors import NotFound


@dataclass(frozen=True)
class DetectionRecord:
    id: uuid.UUID
    status: str
    job_id: uuid.UUID | None
    filename: str
    width: int
    height: int
    objects: list[DetectedObject]
    timings: dict[str, float]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ImageRecord:
    storage_key: str
    content_type: str
    detection_id: uuid.UUID


async def insert_detection(
    session: AsyncSession,
    *,
    detection_id: uuid.UUID,
    user_id: str,
    job_id: uuid.UUID | None,
    filename: str,
    result: DetectionResult,
    options: DetectionOptions,
    now: datetime,
) -> None:
    await session.execute(
        detections.insert().values(
            id=detection_id,
            user_id=user_id,
            job_id=job_id,
            status=DETECTION_COMPLETED,
            filename=filename,
            width=result.width,
            height=result.height,
            object_count=len(result.objects),
            timings=result.timings.to_json(),
            params=options.to_json(),
            created_at=now,
            updated_at=now,
        )
    )
    if result.objects:
        await session.execute(
            results.insert(),
            [
                {
                    "detection_id": detection_id,
                    "class_id": obj.class_id,
                    "class_name": obj.class_name,
                    "confidence": obj.confidence,
                    "x": obj.x1,
                    "y": obj.y1,
                    "width": obj.x2 - obj.x1,
                    "height": obj.y2 - obj.y1,
                }
                for obj in result.objects
            ],
        )


async def insert_image(
    session: AsyncSession,
    *,
    image_id: uuid.UUID,
    user_id: str,
    upload: Upload,
    storage_key: str,
    detection_id: uuid.UUID | None,
    now: datetime,
) -> None:
    await session.execute(
        images.insert().values(
            id=image_id,
            user_id=user_id,
            detection_id=detection_id,
            storage_key=storage_key,
            content_type=upload.content_type,
            size_bytes=len(upload.data),
            original_filename=upload.filename,
            processed=detection_id is not None,
            created_at=now,
        )
    )


async def store_detections(
    session: AsyncSession,
    *,
    user_id: str,
    uploads: Sequence[Upload],
    storage_keys: Sequence[str],
    outcomes: Sequence[DetectionResult],
    options: DetectionOptions,
    now: datetime,
) -> list[uuid.UUID]:
    """Rows for images already written to storage under `storage_keys`; returns detection ids."""
    ids = []
    for upload, key, result in zip(uploads, storage_keys, outcomes, strict=True):
        detection_id = uuid.uuid4()
        await insert_detection(
            session,
            detection_id=detection_id,
            user_id=user_id,
            job_id=None,
            filename=upload.filename,
            result=result,
            options=options,
            now=now,
        )
        await insert_image(
            session,
            image_id=uuid.uuid4(),
            user_id=user_id,
            upload=upload,
            storage_key=key,
            detection_id=detection_id,
            now=now,
        )
        ids.append(detection_id)
    return ids


async def _objects_of(
    session: AsyncSession, detection_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[DetectedObject]]:
    found: dict[uuid.UUID, list[DetectedObject]] = {i: [] for i in detection_ids}
    if not detection_ids:
        return found
    rows = await session.execute(
        sa.select(results)
        .where(results.c.detection_id.in_(detection_ids))
        .order_by(results.c.detection_id, results.c.confidence.desc(), results.c.id)
    )
    for row in rows:
        found[row.detection_id].append(
            DetectedObject(
                class_id=row.class_id,
                class_name=row.class_name,
                confidence=row.confidence,
                x1=row.x,
                y1=row.y,
                x2=row.x + row.width,
                y2=row.y + row.height,
            )
        )
    return found


def _record(row: sa.Row, objects: list[DetectedObject]) -> DetectionRecord:
    return DetectionRecord(
        id=row.id,
        status=row.status,
        job_id=row.job_id,
        filename=row.filename,
        width=row.width,
        height=row.height,
        objects=objects,
        timings=row.timings,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def list_detections(
    session: AsyncSession,
    *,
    user_id: str,
    limit: int,
    offset: int,
    class_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[list[DetectionRecord], int]:
    """One page of a user's detections, newest first, and how many match in all."""
    conditions = [detections.c.user_id == user_id]
    if since is not None:
        conditions.append(detections.c.created_at >= since)
    if until is not None:
        conditions.append(detections.c.created_at < until)
    if class_id is not None:
        conditions.append(
            sa.exists().where(
                results.c.detection_id == detections.c.id, results.c.class_id == class_id
            )
        )
    total = await session.scalar(
        sa.select(sa.func.count()).select_from(detections).where(*conditions)
    )
    rows = (
        await session.execute(
            sa.select(detections)
            .where(*conditions)
            .order_by(detections.c.created_at.desc(), detections.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
    ).all()
    objects = await _objects_of(session, [row.id for row in rows])
    return [_record(row, objects[row.id]) for row in rows], int(total or 0)


async def get_detection(
    session: AsyncSession, *, user_id: str, detection_id: uuid.UUID
) -> DetectionRecord:
    row = (
        await session.execute(
            sa.select(detections).where(
                detections.c.id == detection_id, detections.c.user_id == user_id
            )
        )
    ).first()
    if row is None:
        raise NotFound("no such detection")
    objects = await _objects_of(session, [row.id])
    return _record(row, objects[row.id])


async def get_image(session: AsyncSession, *, user_id: str, detection_id: uuid.UUID) -> ImageRecord:
    row = (
        await session.execute(
            sa.select(images.c.storage_key, images.c.content_type).where(
                images.c.detection_id == detection_id, images.c.user_id == user_id
            )
        )
    ).first()
    if row is None:
        raise NotFound("no such detection")
    return ImageRecord(row.storage_key, row.content_type, detection_id)
