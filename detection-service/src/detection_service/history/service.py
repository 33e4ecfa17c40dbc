"""Stored detections: writing a finished detection, a user's history, one detection, and
deleting one.

Plain functions over an AsyncSession (the caller owns the transaction; `store_detections` and
`delete_detection` take the sessionmaker, since they commit rows together with, or before,
the stored bytes), every read scoped to the caller's user id: another user's detection is
simply not found.
"""

import functools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from detection_service.history.models import (
    DETECTION_COMPLETED,
    IDEMPOTENCY_INDEX,
    detections,
    results,
)
from detection_service.images import service as images
from detection_service.images.models import images as image_rows
from detection_service.images.storage import ObjectStorage
from detection_service.images.uploads import Upload
from detection_service.jobs.models import UNFINISHED, job_items, jobs
from detection_service.pipeline.types import DetectedObject, DetectionOptions, DetectionResult
from objectvision_common.errors import FailedPrecondition, InvalidArgument, NotFound


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
    model: str = ""
    model_version: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    # The regions of interest it was detected with (ADR 0053), drawn on its annotated image.
    regions: tuple[tuple[tuple[float, float], ...], ...] = ()


@dataclass(frozen=True)
class HistoryFilter:
    """Which of a user's detections the history and its export keep: those with an object
    of `class_id`, made in [since, until), whose metadata holds every pair of `metadata` and
    whose file name contains `filename_contains` (ignoring case); with `confidence_below`, an
    object scoring below it (of `class_id`, when given): where the model was unsure."""

    class_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    filename_contains: str = ""
    confidence_below: float | None = None

    @property
    def keeps_everything(self) -> bool:
        """No filter given: every detection of the user matches."""
        return self == HistoryFilter()


# A bulk deletion (`delete_history`) removes this many detections per transaction, so no
# transaction holds many row locks or lasts long, and at most this many per call, so one call
# answers in bounded time; its answer says whether more remain.
DELETE_CHUNK_SIZE = 200
MAX_DELETED_PER_CALL = 5000


@dataclass(frozen=True)
class HistoryDeletion:
    deleted: int
    # Matching detections of jobs still pending or processing, left in place.
    kept_in_unfinished_jobs: int
    # More matched than one call deletes.
    more: bool


async def insert_detection(
    *,
    session: AsyncSession,
    detection_id: uuid.UUID,
    user_id: str,
    job_id: uuid.UUID | None,
    filename: str,
    result: DetectionResult,
    options: DetectionOptions,
    now: datetime,
    metadata: Mapping[str, str] | None = None,
    idempotency_key: str | None = None,
    request_position: int | None = None,
) -> None:
    """One detection and its objects. A job's detection carries its job's metadata, read by
    the same statement (so it cannot differ from the job's); a Detect's carries `metadata`,
    and, with an idempotency key, the image's place in its request (ADR 0047)."""
    kept_metadata: Any = dict(metadata or {})
    if job_id is not None:
        kept_metadata = sa.select(jobs.c.metadata).where(jobs.c.id == job_id).scalar_subquery()
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
            model=result.model or None,
            model_version=result.model_version or None,
            metadata=kept_metadata,
            idempotency_key=idempotency_key,
            request_position=request_position if idempotency_key else None,
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


async def store_detections(
    *,
    sessions: async_sessionmaker[AsyncSession],
    storage: ObjectStorage,
    user_id: str,
    uploads: Sequence[Upload],
    outcomes: Sequence[DetectionResult],
    options: DetectionOptions,
    now: datetime,
    metadata: Mapping[str, str] | None = None,
    idempotency_key: str = "",
) -> list[uuid.UUID]:
    """A stored Detect: each upload kept with its detection and the request's metadata,
    committed together (or the stored bytes discarded); returns the detection ids.

    With `idempotency_key`, KeyAlreadyUsed when a request of the account with the same key
    stored first (a concurrent retry): nothing of this one is kept, and the caller answers
    with that request's detections (`detections_of_request`)."""

    async def write_rows(session: AsyncSession, keys: list[str]) -> list[uuid.UUID]:
        ids = []
        for position, (upload, key, result) in enumerate(zip(uploads, keys, outcomes, strict=True)):
            detection_id = uuid.uuid4()
            await insert_detection(
                session=session,
                detection_id=detection_id,
                user_id=user_id,
                job_id=None,
                filename=upload.filename,
                result=result,
                options=options,
                now=now,
                metadata=metadata,
                idempotency_key=idempotency_key or None,
                request_position=position,
            )
            await images.insert_image(
                session=session,
                image_id=uuid.uuid4(),
                user_id=user_id,
                upload=upload,
                storage_key=key,
                detection_id=detection_id,
                now=now,
            )
            ids.append(detection_id)
        return ids

    try:
        return await images.store(
            sessions=sessions,
            storage=storage,
            owner=user_id,
            objects=[upload.data for upload in uploads],
            write_rows=write_rows,
        )
    except IntegrityError as exc:
        if idempotency_key and IDEMPOTENCY_INDEX in str(exc.orig):
            raise KeyAlreadyUsed(idempotency_key) from exc
        raise


class KeyAlreadyUsed(Exception):
    """Another request of the account stored its Detect under this idempotency key first."""


async def detections_of_request(
    *, session: AsyncSession, user_id: str, idempotency_key: str
) -> list[DetectionRecord]:
    """The detections a stored Detect with this idempotency key kept, in its request's
    order; none when the account has not used the key (or deleted them since)."""
    rows = (
        await session.execute(
            sa.select(detections)
            .where(
                detections.c.user_id == user_id,
                detections.c.idempotency_key == idempotency_key,
            )
            .order_by(detections.c.request_position)
        )
    ).all()
    objects = await _objects_of(session, [row.id for row in rows])
    return [_record(row, objects[row.id]) for row in rows]


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


def _record(row: sa.Row[Any], objects: list[DetectedObject]) -> DetectionRecord:
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
        model=row.model or "",
        model_version=row.model_version or "",
        metadata=dict(row.metadata),
        regions=DetectionOptions.regions_from_json(row.params),
    )


def _history_conditions(*, user_id: str, filters: HistoryFilter) -> list[sa.ColumnElement[bool]]:
    """A user's detections that `filters` keeps."""
    conditions: list[sa.ColumnElement[bool]] = [detections.c.user_id == user_id]
    if filters.since is not None:
        conditions.append(detections.c.created_at >= filters.since)
    if filters.until is not None:
        conditions.append(detections.c.created_at < filters.until)
    objects: list[sa.ColumnElement[bool]] = []
    if filters.class_id is not None:
        objects.append(results.c.class_id == filters.class_id)
    if filters.confidence_below is not None:
        objects.append(results.c.confidence < filters.confidence_below)
    if objects:
        # One object that is of the class and below the score, not one of each. Correlated on
        # the detection only, so that a query that also reads `results` (the summary's count
        # per class) keeps this subquery's own `results`.
        conditions.append(
            sa.exists()
            .where(results.c.detection_id == detections.c.id, *objects)
            .correlate(detections)
        )
    if filters.metadata:
        conditions.append(detections.c.metadata.contains(dict(filters.metadata)))
    if filters.filename_contains:
        # `%` and `_` in the search are escaped: they are characters of a name, not patterns.
        # No index serves it; the account's own rows (the user index) bound the scan.
        conditions.append(
            detections.c.filename.icontains(filters.filename_contains, autoescape=True)
        )
    return conditions


async def stored_images_of(
    *, session: AsyncSession, user_id: str, filters: HistoryFilter, most: int
) -> list[tuple[str, str]]:
    """The file name and storage key of the stored image of each detection `filters` keeps,
    oldest first, for a job to run them again (ADR 0058). InvalidArgument when more than
    `most` match (a batch's limit), saying how many; FailedPrecondition when none does."""
    conditions = _history_conditions(user_id=user_id, filters=filters)
    stored = detections.join(image_rows, image_rows.c.detection_id == detections.c.id)
    # One more than a job takes: only when there are too many are they all counted.
    rows = (
        await session.execute(
            sa.select(image_rows.c.original_filename, image_rows.c.storage_key)
            .select_from(stored)
            .where(*conditions)
            .order_by(detections.c.created_at, detections.c.id)
            .limit(most + 1)
        )
    ).all()
    if len(rows) > most:
        matched = await session.scalar(
            sa.select(sa.func.count()).select_from(stored).where(*conditions)
        )
        raise InvalidArgument(
            f"the filters keep {matched} stored detections; a job takes at most {most}: narrow"
            " them (since, until, metadata, class, file name)"
        )
    if not rows:
        raise FailedPrecondition("no stored detection of yours matches these filters")
    return [(row.original_filename, row.storage_key) for row in rows]


async def _newest_first(
    session: AsyncSession,
    conditions: Sequence[sa.ColumnElement[bool]],
    *,
    limit: int,
    offset: int | None = None,
) -> list[DetectionRecord]:
    """One page of the matching detections with their objects, newest first (the id breaks
    ties between equal timestamps, as the history index does)."""
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
    return [_record(row, objects[row.id]) for row in rows]


async def list_detections(
    *,
    session: AsyncSession,
    user_id: str,
    limit: int,
    offset: int,
    filters: HistoryFilter | None = None,
) -> tuple[list[DetectionRecord], int]:
    """One page of a user's detections, newest first, and how many match in all."""
    conditions = _history_conditions(user_id=user_id, filters=filters or HistoryFilter())
    total = await session.scalar(
        sa.select(sa.func.count()).select_from(detections).where(*conditions)
    )
    records = await _newest_first(session, conditions, limit=limit, offset=offset)
    return records, int(total or 0)


@dataclass(frozen=True)
class HistorySummary:
    """What a filtered history holds: its detections, and their objects per class name."""

    detections: int
    class_counts: dict[str, int]

    @property
    def objects(self) -> int:
        return sum(self.class_counts.values())


async def summarize_history(
    *, session: AsyncSession, user_id: str, filters: HistoryFilter
) -> HistorySummary:
    """How many of a user's detections `filters` keeps, and their objects per class: two
    aggregates over the rows the history would page through, none of them loaded."""
    conditions = _history_conditions(user_id=user_id, filters=filters)
    detections_kept = await session.scalar(
        sa.select(sa.func.count()).select_from(detections).where(*conditions)
    )
    per_class = await session.execute(
        sa.select(results.c.class_name, sa.func.count())
        .select_from(results.join(detections, detections.c.id == results.c.detection_id))
        .where(*conditions)
        .group_by(results.c.class_name)
    )
    return HistorySummary(
        detections=int(detections_kept or 0),
        class_counts={name: int(count) for name, count in per_class.all()},
    )


async def get_detection(
    *, session: AsyncSession, user_id: str, detection_id: uuid.UUID
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


async def history_export_page(
    *,
    session: AsyncSession,
    user_id: str,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None = None,
    filters: HistoryFilter | None = None,
) -> list[DetectionRecord]:
    """The next page of a filtered history for an export, newest first, after `after`
    (the last page's (created_at, id)). Keyset, not offset: detections stored while an
    export runs are newer than its first page, so they never shift or repeat a later page,
    and each page costs one index range scan however deep the export is."""
    conditions = _history_conditions(user_id=user_id, filters=filters or HistoryFilter())
    if after is not None:
        conditions.append(sa.tuple_(detections.c.created_at, detections.c.id) < after)
    return await _newest_first(session, conditions, limit=limit)


async def job_export_page(
    *,
    session: AsyncSession,
    user_id: str,
    job_id: uuid.UUID,
    limit: int,
    after_position: int = -1,
) -> list[tuple[int, DetectionRecord]]:
    """The next page of a job's detections in upload order, with each item's position (the
    cursor of the next page). Items without a detection (failed files) are left out."""
    rows = (
        await session.execute(
            sa.select(job_items.c.position, detections)
            .join(detections, detections.c.id == job_items.c.detection_id)
            .where(
                job_items.c.job_id == job_id,
                job_items.c.position > after_position,
                detections.c.user_id == user_id,
            )
            .order_by(job_items.c.position)
            .limit(limit)
        )
    ).all()
    objects = await _objects_of(session, [row.id for row in rows])
    return [(row.position, _record(row, objects[row.id])) for row in rows]


async def delete_detection_rows(
    *, session: AsyncSession, user_id: str, detection_id: uuid.UUID
) -> images.RemovedObjects:
    """Delete the user's detection, its objects and its image's row (the first step of
    `delete_detection`); returns the image's storage key, whose object is still stored.

    A detection made by a job that is still pending or processing is FailedPrecondition:
    the job is still counting its items and the objects its final event reports. Once the
    job has finished, its item for this image leaves the job (the job's counts keep saying
    what it processed). Another user's detection is NotFound, as a missing one.
    """
    found = (
        await session.execute(
            sa.select(detections.c.job_id).where(
                detections.c.id == detection_id, detections.c.user_id == user_id
            )
        )
    ).first()
    if found is None:
        raise NotFound("no such detection")
    if found.job_id is not None:
        # The item before anything else, the order cancel_job and delete_job lock in, so a
        # deletion of the whole job at the same time waits rather than deadlocks.
        await session.execute(
            sa.select(job_items.c.position)
            .where(job_items.c.detection_id == detection_id)
            .with_for_update()
        )
        status = await session.scalar(sa.select(jobs.c.status).where(jobs.c.id == found.job_id))
        if status in UNFINISHED:
            raise FailedPrecondition(
                f"detection {detection_id} belongs to job {found.job_id}, which is still"
                f" {status}; cancel the job or wait for it to finish, then delete the detection"
            )
        await session.execute(sa.delete(job_items).where(job_items.c.detection_id == detection_id))
    keys = await images.delete_images(
        session=session, user_id=user_id, detection_ids=[detection_id]
    )
    deleted = await session.scalar(
        sa.delete(detections)
        .where(detections.c.id == detection_id, detections.c.user_id == user_id)
        .returning(detections.c.id)
    )
    if deleted is None:
        # Its job was deleted while this waited for the item: gone either way.
        raise NotFound("no such detection")
    return images.RemovedObjects(images=keys)


async def detection_ids_outside_jobs(
    *, session: AsyncSession, user_id: str, limit: int
) -> list[uuid.UUID]:
    """Up to `limit` of the user's detections that no job made (stored Detects, or detections
    whose job was deleted): the next chunk of an account's erasure, after its jobs."""
    ids = await session.scalars(
        sa.select(detections.c.id)
        .where(detections.c.user_id == user_id, detections.c.job_id.is_(None))
        .order_by(detections.c.id)
        .limit(limit)
    )
    return list(ids)


async def delete_detections_outside_jobs_rows(
    *, session: AsyncSession, user_id: str, detection_ids: Sequence[uuid.UUID]
) -> images.RemovedObjects:
    """Delete these detections of the user that no job made, their objects and their image
    rows, in the caller's transaction; returns the images' storage keys, whose objects are
    still stored. Ids already deleted (a concurrent erasure) are skipped; a detection of a
    job is left to its job's deletion, which keeps its item and image together."""
    doomed = list(
        await session.scalars(
            sa.select(detections.c.id)
            .where(
                detections.c.id.in_(detection_ids),
                detections.c.user_id == user_id,
                detections.c.job_id.is_(None),
            )
            .with_for_update()
        )
    )
    keys = await images.delete_images(session=session, user_id=user_id, detection_ids=doomed)
    await session.execute(sa.delete(detections).where(detections.c.id.in_(doomed)))
    return images.RemovedObjects(images=keys)


def _settled() -> sa.ColumnElement[bool]:
    """A detection no unfinished job is still counting: made by no job, or by one that has
    ended (the condition `delete_detection_rows` refuses with FailedPrecondition)."""
    return sa.or_(
        detections.c.job_id.is_(None),
        ~sa.exists().where(jobs.c.id == detections.c.job_id, jobs.c.status.in_(UNFINISHED)),
    )


async def delete_matching_rows(
    *, session: AsyncSession, user_id: str, filters: HistoryFilter, limit: int
) -> images.RemovedObjects:
    """Delete up to `limit` of the user's detections that `filters` keeps and no unfinished
    job is counting, with their objects, their images' rows and their items in finished
    jobs (as `delete_detection_rows` does one); returns the images' storage keys and how
    many detections went (`detections`).

    Items are locked before detections, the order `delete_detection_rows`, cancel_job and
    delete_job lock in, so a concurrent deletion of a job waits rather than deadlocks; a
    detection deleted meanwhile is skipped."""
    conditions = [*_history_conditions(user_id=user_id, filters=filters), _settled()]
    candidates = list(
        await session.scalars(
            sa.select(detections.c.id).where(*conditions).order_by(detections.c.id).limit(limit)
        )
    )
    if not candidates:
        return images.RemovedObjects()
    await session.execute(
        sa.select(job_items.c.position)
        .where(job_items.c.detection_id.in_(candidates))
        .with_for_update()
    )
    doomed = list(
        await session.scalars(
            sa.select(detections.c.id)
            .where(detections.c.id.in_(candidates), *conditions)
            .with_for_update()
        )
    )
    await session.execute(sa.delete(job_items).where(job_items.c.detection_id.in_(doomed)))
    keys = await images.delete_images(session=session, user_id=user_id, detection_ids=doomed)
    await session.execute(sa.delete(detections).where(detections.c.id.in_(doomed)))
    return images.RemovedObjects(images=keys, detections=len(doomed))


async def delete_history(
    *,
    sessions: async_sessionmaker[AsyncSession],
    storage: ObjectStorage,
    user_id: str,
    filters: HistoryFilter,
    everything: bool = False,
    forget: images.Forget | None = None,
    chunk_size: int = DELETE_CHUNK_SIZE,
    most: int = MAX_DELETED_PER_CALL,
) -> HistoryDeletion:
    """Delete the user's stored detections that `filters` keeps, each as `delete_detection`
    deletes one, a chunk per transaction and its files after each commit
    (images.service.remove): a crash part-way loses nothing that was not meant to go, and
    calling again deletes the rest. At most `most` per call (`more` says whether any
    remain). Detections of jobs still pending or processing are left and counted.

    No filter at all deletes the whole history, and only with `everything`: otherwise
    InvalidArgument, so a caller who forgot a filter never empties an account."""
    if filters.keeps_everything and not everything:
        raise InvalidArgument(
            "no filter given: this would delete your whole history; give a filter, or ask"
            " for everything explicitly"
        )
    deleted = 0
    while deleted < most:
        chunk = min(chunk_size, most - deleted)
        removed = await images.remove(
            sessions=sessions,
            storage=storage,
            delete_rows=functools.partial(
                delete_matching_rows, user_id=user_id, filters=filters, limit=chunk
            ),
            forget=forget,
        )
        deleted += removed.detections
        if removed.detections < chunk:
            break
    async with sessions() as session:
        conditions = _history_conditions(user_id=user_id, filters=filters)
        remaining = await session.scalar(
            sa.select(sa.func.count()).select_from(detections).where(*conditions, _settled())
        )
        kept = await session.scalar(
            sa.select(sa.func.count()).select_from(detections).where(*conditions, ~_settled())
        )
    return HistoryDeletion(deleted=deleted, kept_in_unfinished_jobs=kept or 0, more=bool(remaining))


async def delete_detection(
    *,
    sessions: async_sessionmaker[AsyncSession],
    storage: ObjectStorage,
    user_id: str,
    detection_id: uuid.UUID,
    forget: images.Forget | None = None,
) -> None:
    """Delete the user's stored detection with its objects and its stored image, and
    `forget` the image's bytes (the result cache); rows first, then the file
    (images.service.remove). Afterwards the detection, its image, its place in the history
    and in exports are gone; deleting it again is NotFound."""

    await images.remove(
        sessions=sessions,
        storage=storage,
        delete_rows=functools.partial(
            delete_detection_rows, user_id=user_id, detection_id=detection_id
        ),
        forget=forget,
    )
