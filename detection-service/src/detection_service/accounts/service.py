"""Erasing a deleted account: its jobs (running ones cancelled first), detections, images,
videos and their files, and the result cache's answers for its images (ADR 0025).

Every step is one of the deletions users make themselves (ADR 0024), run in chunks of at
most `chunk_size` rows, each chunk its own transaction followed by its files: a user with a
hundred thousand detections never holds one giant transaction, and a crash at any point
leaves a prefix of the erasure done and the rest for the redelivered event, which starts
again from the top and finds less to do. Run again once finished, it finds nothing and does
nothing. Files a crash left after their rows' commit are the orphan sweep's, as for any
deletion.
"""

import functools
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from detection_service.accounts.models import ERASED_ACCOUNTS
from detection_service.history import service as history
from detection_service.images import service as stored_images
from detection_service.images.storage import ObjectStorage
from detection_service.jobs import service as jobs
from detection_service.retention import service as retention
from detection_service.sharing import service as sharing
from detection_service.usage import service as usage
from objectvision_common.erasure import close_account
from objectvision_common.errors import FailedPrecondition, NotFound

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Erased:
    """What one run of an erasure found to remove (a redelivered event's run: all zero);
    for the log line that says an account was erased."""

    cancelled_jobs: int = 0
    jobs: int = 0
    detections: int = 0
    images: int = 0


async def erase_account(
    *,
    sessions: async_sessionmaker[AsyncSession],
    storage: ObjectStorage,
    user_id: str,
    deleted_at: datetime,
    chunk_size: int,
    forget: stored_images.Forget | None = None,
) -> Erased:
    """Erase everything user `user_id` stored; returns what this run found to remove.

    First the account is recorded as erased, once every upload of theirs still in flight
    has committed (objectvision_common.erasure): from then on nothing new is stored for
    them, so what the steps below find is all there will ever be. Then their unfinished jobs
    are cancelled (ADR 0022: workers stop at their next item or commit of frames) and every
    job is deleted with its items, detections, images and video; then the detections no job
    made, with their images; then any image row left; then the account's metered usage and
    quota (ADR 0030), its retention period (ADR 0031) and its recorded suspension (ADR
    0048). Share links go with the detections they show; from the first step on, they show
    nothing (`share_link_unavailable`). Each deletion also `forget`s its images' bytes (the
    result cache).
    """
    async with sessions.begin() as session:
        await close_account(session, ERASED_ACCOUNTS, user_id, deleted_at=deleted_at)
    cancelled = await _cancel_unfinished_jobs(
        sessions=sessions, user_id=user_id, chunk_size=chunk_size
    )
    deleted_jobs = await _delete_jobs(
        sessions=sessions, storage=storage, user_id=user_id, chunk_size=chunk_size, forget=forget
    )
    detections = images = 0
    while ids := await _read(history.detection_ids_outside_jobs, sessions, user_id, chunk_size):
        removed = await _remove(
            sessions=sessions,
            storage=storage,
            forget=forget,
            delete_rows=functools.partial(
                history.delete_detections_outside_jobs_rows, user_id=user_id, detection_ids=ids
            ),
        )
        detections += len(ids)
        images += len(removed.images)
    while ids := await _read(stored_images.unreferenced_image_ids, sessions, user_id, chunk_size):
        removed = await _remove(
            sessions=sessions,
            storage=storage,
            forget=forget,
            delete_rows=functools.partial(_image_rows, user_id=user_id, ids=ids),
        )
        images += len(removed.images)
    async with sessions.begin() as session:
        await usage.erase_usage(session=session, user_id=user_id)
        await retention.clear_custom_period(session=session, user_id=user_id)
        await sharing.forget_standing(session=session, user_id=user_id)
    erased = Erased(
        cancelled_jobs=cancelled, jobs=deleted_jobs, detections=detections, images=images
    )
    logger.info(
        "account erased",
        extra={
            "user_id": user_id,
            "cancelled_jobs": erased.cancelled_jobs,
            "jobs": erased.jobs,
            "detections_outside_jobs": erased.detections,
            "images_outside_jobs": erased.images,
        },
    )
    return erased


async def _read(
    chunk: Callable[..., Awaitable[list[uuid.UUID]]],
    sessions: async_sessionmaker[AsyncSession],
    user_id: str,
    limit: int,
) -> list[uuid.UUID]:
    """The next chunk of ids, read in a snapshot of its own: an empty one means none is left
    (a chunk another run of the same erasure still holds is read again until it is gone)."""
    async with sessions() as session:
        return await chunk(session=session, user_id=user_id, limit=limit)


async def _cancel_unfinished_jobs(
    *, sessions: async_sessionmaker[AsyncSession], user_id: str, chunk_size: int
) -> int:
    """Cancel each pending or processing job as its owner's CancelJob would, one transaction
    each; a job that finished or went meanwhile needs nothing more."""
    cancelled = 0
    while ids := await _read(_unfinished_job_ids, sessions, user_id, chunk_size):
        for job_id in ids:
            try:
                async with sessions.begin() as session:
                    await jobs.cancel_job(session=session, job_id=job_id, user_id=user_id)
            except (NotFound, FailedPrecondition):
                continue
            cancelled += 1
    return cancelled


async def _unfinished_job_ids(
    *, session: AsyncSession, user_id: str, limit: int
) -> list[uuid.UUID]:
    return await jobs.job_ids_of_user(
        session=session, user_id=user_id, limit=limit, unfinished=True
    )


async def _delete_jobs(
    *,
    sessions: async_sessionmaker[AsyncSession],
    storage: ObjectStorage,
    user_id: str,
    chunk_size: int,
    forget: stored_images.Forget | None,
) -> int:
    """Delete every job as its owner's DeleteJob would (all are finished by now), one job, at
    most MAX_BATCH_FILES items or one video's frames, per transaction."""
    deleted = 0
    while ids := await _read(jobs.job_ids_of_user, sessions, user_id, chunk_size):
        for job_id in ids:
            try:
                await jobs.delete_job(
                    sessions=sessions,
                    storage=storage,
                    user_id=user_id,
                    job_id=job_id,
                    forget=forget,
                )
            except NotFound:
                continue
            deleted += 1
    return deleted


async def _image_rows(
    *, session: AsyncSession, user_id: str, ids: Sequence[uuid.UUID]
) -> stored_images.RemovedObjects:
    keys = await stored_images.delete_images(session=session, user_id=user_id, image_ids=ids)
    return stored_images.RemovedObjects(images=keys)


async def _remove(
    *,
    sessions: async_sessionmaker[AsyncSession],
    storage: ObjectStorage,
    forget: stored_images.Forget | None,
    delete_rows: stored_images.DeleteRows,
) -> stored_images.RemovedObjects:
    """images.service.remove, keeping what it removed for the erasure's count."""
    removed: list[stored_images.RemovedObjects] = []

    async def delete_and_keep(*, session: AsyncSession) -> stored_images.RemovedObjects:
        removed.append(await delete_rows(session=session))
        return removed[-1]

    await stored_images.remove(
        sessions=sessions, storage=storage, delete_rows=delete_and_keep, forget=forget
    )
    return removed[0]
