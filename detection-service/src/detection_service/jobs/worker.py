"""Job consumers and the sweeper.

A worker takes one message at a time (reclaimed from a dead consumer first, else new), runs
every pending item of that job through the shared micro-batcher, commits each item on its own,
and acknowledges the message only after the last commit. Triton being down is not an item's
fault: the worker waits and retries without acknowledging, and the job completes when Triton
returns. A bad image fails only its item. An item that is no longer pending when its turn
comes (its job was cancelled, ADR 0022, or another worker recorded it) is skipped before it
is detected; a cancelled job's message is acknowledged like any other.

Before a pending job starts, its account may owe another account a turn: the message then
goes to the back of the stream and the worker reads the next one; a job another live worker
holds is not started a second time (ADR 0044).
"""

import asyncio
import logging
import uuid
from datetime import timedelta

from redis.exceptions import ResponseError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from detection_service.images.storage import ObjectNotFoundError, ObjectStorage
from detection_service.jobs import service
from detection_service.jobs.queue import JobQueue, Message
from detection_service.metrics import DetectionMetrics
from detection_service.pipeline.detector import Detector
from detection_service.pipeline.types import DetectionOptions, DetectionResult
from detection_service.video.worker import VideoProcessor
from objectvision_common.background import BackgroundLoop
from objectvision_common.errors import DomainError
from objectvision_common.tracing import extract_context, tracer

logger = logging.getLogger(__name__)
_TRACER = tracer(__name__)

_IDLE_ERROR_SECONDS = 1.0


class JobProcessor:
    """Runs one job's pending items; safe to run twice on the same job at once.

    `lease`: a job processing with a heartbeat younger than this is left to the worker that
    holds it (a duplicate message starts no second run)."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        storage: ObjectStorage,
        detector: Detector,
        metrics: DetectionMetrics,
        concurrency: int,
        lease: timedelta,
        video: VideoProcessor | None = None,
    ) -> None:
        self._sessions = sessions
        self._lease = lease
        self._storage = storage
        self._detector = detector
        self._metrics = metrics
        self._concurrency = concurrency
        self._video = video

    async def give_way(self, message: Message) -> bool:
        """Whether the message's job lets another account's job start first (ADR 0044)."""
        if message.job_id is None:
            return False
        async with self._sessions.begin() as session:
            gives_way = await service.give_way(
                session=session,
                job_id=message.job_id,
                message_queued_at=message.queued_at,
                lease=self._lease,
            )
        if gives_way:
            self._metrics.job_turns_given.inc()
        return gives_way

    async def run(self, job_id: uuid.UUID) -> None:
        # Video jobs share the stream, the heartbeats and the sweeper; their work is their own.
        if self._video is not None and await self._video.run(job_id):
            return
        async with self._sessions.begin() as session:
            started = await service.start_job(session=session, job_id=job_id, lease=self._lease)
        if started is not None:
            await self.process(*started)

    async def process(self, options: DetectionOptions, items: list[service.WorkItem]) -> None:
        """The items of a started job, up to `concurrency` at once, each committed alone."""
        slots = asyncio.Semaphore(self._concurrency)

        async def one(item: service.WorkItem) -> None:
            async with slots:
                await self._process(item, options)

        # A failed commit (database down) fails the job run: the message stays unacknowledged.
        async with asyncio.TaskGroup() as group:
            for item in items:
                group.create_task(one(item))

    async def heartbeat(self, job_id: uuid.UUID) -> None:
        async with self._sessions.begin() as session:
            await service.heartbeat(session=session, job_id=job_id)

    async def _process(self, item: service.WorkItem, options: DetectionOptions) -> None:
        async with self._sessions() as session:
            if not await service.item_pending(session=session, item=item):
                return
        with _TRACER.start_as_current_span(
            "detection job item", attributes={"objectvision.job_item": item.position}
        ) as span:
            result, error = await self._detect(item, options)
            if error is not None:
                span.set_attribute("objectvision.error", error)
        async with self._sessions.begin() as session:
            recorded = await service.finish_item(
                session=session, item=item, options=options, result=result, error=error
            )
        if recorded:
            self._metrics.job_items.labels("completed" if result else "failed").inc()

    async def _detect(
        self, item: service.WorkItem, options: DetectionOptions
    ) -> tuple[DetectionResult | None, str | None]:
        try:
            data = await self._storage.get(item.storage_key)
        except ObjectNotFoundError:
            return None, "the stored image is missing"

        def waiting() -> None:
            logger.warning(
                "inference unavailable; the job item waits for it",
                extra={"job": str(item.job_id), "item": item.position},
            )

        try:
            # A model that is loading makes the item wait (like an outage); one removed from
            # the repository fails it with the known models.
            result = await self._detector.detect_when_available(
                data, options, user_id=item.user_id, model=item.model, on_first_wait=waiting
            )
        except DomainError as error:
            return None, error.message
        except Exception:
            logger.exception("job item failed", extra={"job": str(item.job_id)})
            return None, "internal error while processing the image"
        return result, None


class JobWorker(BackgroundLoop):
    """One consumer of the job stream."""

    # A job cut short stays unacknowledged; another consumer reclaims it.
    cancel_on_stop = True

    def __init__(
        self,
        *,
        queue: JobQueue,
        processor: JobProcessor,
        consumer: str,
        claim_idle_ms: int,
        block_ms: int = 2000,
    ) -> None:
        self._queue = queue
        self._processor = processor
        self.consumer = consumer
        self._claim_idle_ms = claim_idle_ms
        self._block_ms = block_ms
        self._cursor = "0-0"

    async def _loop(self) -> None:
        group_missing = False
        while True:
            try:
                if group_missing:
                    await self._queue.ensure_group()
                    group_missing = False
                message = await self._next()
                if message is not None:
                    await self._handle(message)
            except Exception as error:
                # The stream or group is gone (Redis lost its data): recreate it and go on.
                group_missing = isinstance(error, ResponseError) and "NOGROUP" in str(error)
                if not group_missing:
                    logger.exception("job worker error", extra={"consumer": self.consumer})
                    await asyncio.sleep(_IDLE_ERROR_SECONDS)

    async def _next(self) -> Message | None:
        message, self._cursor = await self._queue.reclaim(
            self.consumer, min_idle_ms=self._claim_idle_ms, cursor=self._cursor
        )
        if message is not None:
            logger.info(
                "reclaimed a job from an idle consumer",
                extra={"job": str(message.job_id), "consumer": self.consumer},
            )
            return message
        return await self._queue.read(self.consumer, block_ms=self._block_ms)

    async def _handle(self, message: Message) -> None:
        if await self._processor.give_way(message):
            await self._queue.to_back(message)
            return
        if message.job_id is not None:
            beat = asyncio.create_task(self._heartbeat(message))
            parent = extract_context(message.trace)
            try:
                with _TRACER.start_as_current_span(
                    "detection job",
                    context=parent,
                    attributes={"objectvision.job_id": str(message.job_id)},
                ):
                    await self._processor.run(message.job_id)
            finally:
                beat.cancel()
        await self._queue.ack(message.id)

    async def _heartbeat(self, message: Message) -> None:
        """Keep the message ours and the job fresh while a long job (or a Triton outage) lasts."""
        assert message.job_id is not None
        while True:
            await asyncio.sleep(self._claim_idle_ms / 3000)
            try:
                await self._queue.touch(self.consumer, message.id)
                await self._processor.heartbeat(message.job_id)
            except Exception:
                logger.warning("job heartbeat failed", extra={"job": str(message.job_id)})


class JobSweeper(BackgroundLoop):
    """Puts back on the stream the unfinished jobs it no longer carries (an XADD lost after
    the job's commit, a stream Redis lost): only those, so a queue that takes longer than
    `requeue_after_s` to drain is left as it is instead of gaining a message per job each time.
    A job whose worker died keeps its message, which another worker reclaims (XAUTOCLAIM)."""

    cancel_on_stop = True

    def __init__(
        self, *, sessions: async_sessionmaker[AsyncSession], queue: JobQueue, requeue_after_s: float
    ) -> None:
        self._sessions = sessions
        self._queue = queue
        self._requeue_after = timedelta(seconds=requeue_after_s)

    async def _loop(self) -> None:
        interval = max(0.5, self._requeue_after.total_seconds() / 4)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep()
            except Exception:
                logger.exception("job sweep failed")

    async def sweep(self) -> int:
        """How many jobs this sweep put back on the stream."""
        async with self._sessions() as session:
            quiet = await service.quiet_jobs(session=session, older_than=self._requeue_after)
        if not quiet:
            return 0
        carried = await self._queue.job_ids()
        lost = [job_id for job_id in quiet if job_id not in carried]
        async with self._sessions.begin() as session:
            taken = await service.requeue_jobs(
                session=session, job_ids=lost, older_than=self._requeue_after
            )
        for job_id in taken:
            await self._queue.enqueue(job_id)
            logger.info("re-enqueued a job the stream had lost", extra={"job": str(job_id)})
        return len(taken)
