"""Stored images: bytes into object storage and the rows that refer to them, as one step.

An object is written before the transaction that refers to it commits (so a committed row
always has its bytes) and discarded when that transaction does not commit; what a crash
between the two leaves behind, the orphan sweep (images.orphans) removes later.
"""

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from detection_service.images.models import images
from detection_service.images.storage import ObjectStorage, discard
from detection_service.images.uploads import Upload
from objectvision_common.errors import NotFound

T = TypeVar("T")


@dataclass(frozen=True)
class ImageRecord:
    storage_key: str
    content_type: str
    detection_id: uuid.UUID


async def store(
    *,
    sessions: async_sessionmaker[AsyncSession],
    storage: ObjectStorage,
    objects: Sequence[bytes | Path],
    write_rows: Callable[[AsyncSession, list[str]], Awaitable[T]],
) -> T:
    """Put each object into storage (bytes, or a finished scratch file, which is moved in),
    then run `write_rows(session, keys)` in one transaction; returns what it returns.

    If anything fails, or `write_rows` raises (to refuse the rows), the transaction rolls
    back and the stored objects are discarded before the error propagates.
    """
    keys: list[str] = []
    try:
        for item in objects:
            keys.append(
                await storage.put_file(item) if isinstance(item, Path) else await storage.put(item)
            )
        async with sessions.begin() as session:
            return await write_rows(session, keys)
    except BaseException:
        await discard(storage, keys)
        raise


async def insert_image(
    *,
    session: AsyncSession,
    image_id: uuid.UUID,
    user_id: str,
    upload: Upload,
    storage_key: str,
    detection_id: uuid.UUID | None,
    now: datetime,
) -> None:
    """The row of an upload stored under `storage_key`; processed once it has a detection."""
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


async def mark_processed(
    *, session: AsyncSession, image_id: uuid.UUID, detection_id: uuid.UUID
) -> None:
    """A queued image (a job's item) now has the detection made from it."""
    await session.execute(
        sa.update(images)
        .where(images.c.id == image_id)
        .values(processed=True, detection_id=detection_id)
    )


async def get_image(*, session: AsyncSession, user_id: str, detection_id: uuid.UUID) -> ImageRecord:
    """The stored upload a user's detection was made from; NotFound for anyone else's."""
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
