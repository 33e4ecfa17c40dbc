"""An export as a stream of byte chunks: records from the database a page at a time, each page
formatted in a worker thread, the output cut into chunks small enough for one gRPC message.

Memory stays bounded by one page of records plus one page of output however large the
history is; a database session is held only while a page is read, never while a slow
client drains the stream.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator, Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from detection_service.exports.formats import ExportWriter
from detection_service.history import service as history
from detection_service.history.service import DetectionRecord, HistoryFilter
from detection_service.jobs import service as jobs
from detection_service.jobs.models import KIND_BATCH, KIND_VIDEO, UNFINISHED
from detection_service.pipeline.detector import Detector
from objectvision_common.errors import FailedPrecondition, InvalidArgument

T = TypeVar("T")
# A page's rows and the key the next page starts after.
R = TypeVar("R")
C = TypeVar("C")

# Detections per database page: up to 1000 objects each, so a page is at most a few MB.
PAGE_SIZE = 100


def model_classes(detector: Detector) -> tuple[str, ...]:
    """The class names an export lists (COCO categories, YOLO data.yaml): the classes of the
    model that produced the results. The one place this is decided: today one model serves
    every result; once results record their model, this is where its list is looked up."""
    return detector.class_names


async def history_pages(
    *, sessions: async_sessionmaker[AsyncSession], user_id: str, filters: HistoryFilter
) -> AsyncIterator[Sequence[DetectionRecord]]:
    """The filtered history, newest first, one short-lived session per page."""

    async def page(
        session: AsyncSession, after: tuple[datetime, uuid.UUID] | None
    ) -> list[DetectionRecord]:
        return await history.history_export_page(
            session=session,
            user_id=user_id,
            limit=PAGE_SIZE,
            after=after,
            filters=filters,
        )

    async for records in _keyset_pages(
        sessions=sessions, page=page, start=None, cursor=lambda last: (last.created_at, last.id)
    ):
        yield records


async def finished_job(
    *,
    sessions: async_sessionmaker[AsyncSession],
    user_id: str,
    job_id: uuid.UUID,
    action: str = "export",
    kinds: Collection[str] = (KIND_BATCH,),
) -> jobs.JobView:
    """The caller's batch job, once it has finished, for `action` ("export", "evaluate").
    A running job is refused rather than answered with the images done so far: an export is
    usually a dataset, and one (or a score) that silently lacks the images still queued is
    worse than a clear "wait"."""
    async with sessions() as session:
        job = await jobs.get_job(session=session, job_id=job_id, user_id=user_id)
    # Video jobs keep their frames elsewhere: refuse them plainly rather than answer with an
    # empty file.
    if job.kind not in kinds:
        raise InvalidArgument(
            f"job {job_id} is a video job; a job's {action} covers batch jobs only"
        )
    if job.status in UNFINISHED:
        unit = "frames" if job.kind == KIND_VIDEO else "images"
        raise FailedPrecondition(
            f"job {job_id} is still {job.status} ({job.processed} of {job.total} {unit} done);"
            " try again once it has finished"
        )
    return job


async def job_pages(
    *, sessions: async_sessionmaker[AsyncSession], user_id: str, job_id: uuid.UUID
) -> AsyncIterator[Sequence[DetectionRecord]]:
    """A job's detections in upload order, one short-lived session per page."""

    async def page(session: AsyncSession, after: int) -> list[tuple[int, DetectionRecord]]:
        return await history.job_export_page(
            session=session, user_id=user_id, job_id=job_id, limit=PAGE_SIZE, after_position=after
        )

    async for rows in _keyset_pages(
        sessions=sessions, page=page, start=-1, cursor=lambda last: last[0]
    ):
        yield [record for _, record in rows]


async def _keyset_pages(
    *,
    sessions: async_sessionmaker[AsyncSession],
    page: Callable[[AsyncSession, C], Awaitable[Sequence[R]]],
    start: C,
    cursor: Callable[[R], C],
) -> AsyncIterator[Sequence[R]]:
    """Every non-empty page that `page` returns, reading from `start` and then after the
    `cursor` of each page's last row, until a page is shorter than PAGE_SIZE.

    The history and job exports page the same way, each by its own key; this is that loop,
    with a short-lived session per page so that no session is held while a slow client
    drains the stream.
    """
    after = start
    while True:
        async with sessions() as session:
            rows = await page(session, after)
        if rows:
            yield rows
        if len(rows) < PAGE_SIZE:
            return
        after = cursor(rows[-1])


async def _in_thread(call: Callable[..., T], *args: object) -> T:
    """`asyncio.to_thread`, except that a cancelled caller (the client went away) still waits
    for the thread to return, so the writer is never closed under a thread using it."""
    future = asyncio.ensure_future(asyncio.to_thread(call, *args))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait([future])
        raise


def _pieces(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def export_chunks(
    writer: ExportWriter,
    pages: AsyncIterator[Sequence[DetectionRecord]],
    *,
    chunk_bytes: int,
) -> AsyncIterator[bytes]:
    """The writer's output for every page, in chunks of at most `chunk_bytes`.

    Formatting (JSON, CSV, deflate) and spool I/O run in a worker thread, so a large page
    never stalls the event loop that serves detections."""
    try:
        for piece in _pieces(await _in_thread(writer.start), chunk_bytes):
            yield piece
        async for page in pages:
            for piece in _pieces(await _in_thread(writer.add, page), chunk_bytes):
                yield piece
        tail = writer.finish()
        while (data := await _in_thread(next, tail, None)) is not None:
            for piece in _pieces(data, chunk_bytes):
                yield piece
    finally:
        writer.close()
