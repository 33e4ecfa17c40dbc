"""Stored images: bytes into object storage and the rows that refer to them, as one step,
and out again the same way.

An object is written before the transaction that refers to it commits (so a committed row
always has its bytes) and discarded when that transaction does not commit; it is deleted only
after the transaction that removed its rows has committed (so a row never points at missing
bytes). What a crash between the two leaves behind, the orphan sweep (images.orphans) removes
later.
"""

import uuid
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from detection_service.accounts.models import ERASED_ACCOUNTS
from detection_service.images.models import images
from detection_service.images.storage import ObjectNotFoundError, ObjectStorage, discard
from detection_service.images.uploads import JobUpload
from detection_service.jobs.models import job_items
from objectvision_common.erasure import hold_open_account
from objectvision_common.errors import NotFound

T = TypeVar("T")


@dataclass(frozen=True)
class ImageRecord:
    storage_key: str
    content_type: str
    detection_id: uuid.UUID


@dataclass(frozen=True)
class RemovedObjects:
    """The storage keys of the rows a deletion removed: uploaded images, whose answers the
    result cache may hold too, and other objects (a video job's upload and annotated video)."""

    images: list[str] = field(default_factory=list)
    others: list[str] = field(default_factory=list)
    # How many detections the deletion removed, where it is one that answers a count (a
    # filtered deletion of the history); 0 elsewhere.
    detections: int = 0


async def store(
    *,
    sessions: async_sessionmaker[AsyncSession],
    storage: ObjectStorage,
    owner: str,
    objects: Sequence[bytes | Path],
    write_rows: Callable[[AsyncSession, list[str]], Awaitable[T]],
) -> T:
    """Put each object into storage (bytes, or a finished scratch file, which is moved in),
    then run `write_rows(session, keys)` in one transaction for user `owner`; returns what
    it returns.

    If anything fails, or `write_rows` raises (to refuse the rows), the transaction rolls
    back and the stored objects are discarded before the error propagates. So does an
    `owner` whose account was deleted (Unauthenticated): the transaction holds the account's
    erasure off until it commits, so what it stores is erased with the rest, and once the
    erasure has begun nothing more is stored for them (objectvision_common.erasure).
    """
    keys: list[str] = []
    try:
        for item in objects:
            keys.append(
                await storage.put_file(item) if isinstance(item, Path) else await storage.put(item)
            )
        async with sessions.begin() as session:
            await hold_open_account(session, ERASED_ACCOUNTS, owner)
            return await write_rows(session, keys)
    except BaseException:
        await discard(storage, keys)
        raise


# Drops the result cache's answers for an image's bytes (Detector.forget).
Forget = Callable[[bytes], Awaitable[None]]


class DeleteRows(Protocol):
    """Removes rows in the transaction it is given (`session=`) and names the stored
    objects they referred to: a row-deleting service function with its other arguments
    bound (`functools.partial`)."""

    def __call__(self, *, session: AsyncSession) -> Awaitable[RemovedObjects]: ...


async def remove(
    *,
    sessions: async_sessionmaker[AsyncSession],
    storage: ObjectStorage,
    delete_rows: DeleteRows,
    forget: Forget | None = None,
) -> RemovedObjects:
    """The one way stored objects leave: `delete_rows(session=…)` removes the rows that refer
    to them, in one transaction (raising refuses the deletion and changes nothing); once
    that has committed, each image's bytes are read to `forget` them (the result cache's
    answers), then every object is deleted.

    Rows first, never objects first, so a row never points at missing bytes. A crash (or a
    storage error) after the commit leaves objects that nothing refers to, and the orphan
    sweep deletes them: it takes unreferenced objects older than ORPHAN_GRACE_SECONDS,
    counted from when they were written, so a deleted upload is swept at the next sweep, or
    once the grace period has passed since its upload if that was more recent. Cached answers
    a crash kept from being forgotten expire with RESULT_CACHE_TTL_SECONDS.
    """
    async with sessions.begin() as session:
        removed = await delete_rows(session=session)
    if forget is not None:
        for key in removed.images:
            try:
                data = await storage.get(key)
            except (ObjectNotFoundError, OSError):
                continue
            await forget(data)
    await discard(storage, [*removed.images, *removed.others])
    return removed


async def delete_images(
    *,
    session: AsyncSession,
    user_id: str,
    image_ids: Collection[uuid.UUID] = (),
    detection_ids: Collection[uuid.UUID] = (),
) -> list[str]:
    """Delete the user's image rows with these ids or made into these detections; returns
    their storage keys, whose objects `remove` deletes once the transaction has committed.

    A job item that refers to one of them must be gone first (its foreign key has no
    cascade: an item never silently loses its image)."""
    if not image_ids and not detection_ids:
        return []
    keys = await session.scalars(
        sa.delete(images)
        .where(
            images.c.user_id == user_id,
            sa.or_(images.c.id.in_(image_ids), images.c.detection_id.in_(detection_ids)),
        )
        .returning(images.c.storage_key)
    )
    return list(keys)


async def unreferenced_image_ids(
    *, session: AsyncSession, user_id: str, limit: int
) -> list[uuid.UUID]:
    """Up to `limit` of the user's image rows that no job item refers to (an account's
    erasure removes its jobs first and its detections with their images, then these, if any
    are left)."""
    ids = await session.scalars(
        sa.select(images.c.id)
        .where(
            images.c.user_id == user_id,
            ~sa.exists().where(job_items.c.image_id == images.c.id),
        )
        .order_by(images.c.id)
        .limit(limit)
    )
    return list(ids)


async def insert_image(
    *,
    session: AsyncSession,
    image_id: uuid.UUID,
    user_id: str,
    upload: JobUpload,
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
            size_bytes=upload.size,
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
