"""Live job progress over Redis pub/sub, for the job's owner only.

The event consumer publishes every job event to `objectvision:jobs:<job_id>` and keeps the
final one for a week, so a subscriber that arrives after the job finished still gets it.
A subscriber subscribes first and asks detection-service for the job second, so no event
between the two is missed; duplicates are possible and harmless.
"""

import logging
import time
import uuid
from collections.abc import AsyncIterator

from google.protobuf import json_format
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from notification_service.progress.jobs import TERMINAL, JobLookup
from objectvision.v1 import common_pb2, detection_pb2, notification_pb2
from objectvision_common.events import job_id_of

logger = logging.getLogger(__name__)

CHANNEL_PREFIX = "objectvision:jobs:"
JOB_PROGRESS = "job.progress"
JOB_COMPLETED = "job.completed"
JOB_FAILED = "job.failed"
# Its owner stopped the job (ADR 0022): final as completed and failed are.
JOB_CANCELLED = "job.cancelled"
FINAL_TYPES = frozenset({JOB_COMPLETED, JOB_FAILED, JOB_CANCELLED})
JOB_TYPES = frozenset({JOB_PROGRESS, *FINAL_TYPES})
FINAL_EVENT_TTL_SECONDS = 7 * 24 * 3600
# A job that finished this recently may have its final event still on the way (producer
# relay, stream, consumer): a subscriber waits for the real one, class counts and id
# included, instead of getting one rebuilt from the job.
FINAL_EVENT_WAIT_SECONDS = 5.0


def job_channel(job_id: str) -> str:
    return f"{CHANNEL_PREFIX}{job_id}"


def final_event_key(job_id: str) -> str:
    return f"{CHANNEL_PREFIX}{job_id}:final"


def _progress_snapshot(job: detection_pb2.Job, user_id: str) -> notification_pb2.Event:
    """Where the job stands, for a subscriber that just arrived; a video job that counts
    lines or zones with its counts so far, as its own progress events carry them."""
    counting = job.HasField("video") and (job.video.lines or job.video.zones)
    event = notification_pb2.Event(
        id=str(uuid.uuid4()),
        type=JOB_PROGRESS,
        user_id=user_id,
        job_progress=notification_pb2.JobProgress(
            job_id=job.id,
            total=job.total,
            processed=job.processed,
            failed=job.failed,
            metadata=job.metadata,
            counts=(
                notification_pb2.LiveCounts(
                    line_counts=job.video.line_counts, zone_counts=job.video.zone_counts
                )
                if counting
                else None
            ),
        ),
    )
    if job.HasField("estimated_completion_at"):
        event.job_progress.items_per_second = job.items_per_second
        event.job_progress.estimated_completion_at.CopyFrom(job.estimated_completion_at)
    event.occurred_at.CopyFrom(job.updated_at)
    return event


# A finished job's status as its final event names it (JobFinished.status; the event type is
# "job." and the status).
_FINAL_STATUSES = {
    detection_pb2.JOB_STATUS_COMPLETED: "completed",
    detection_pb2.JOB_STATUS_FAILED: "failed",
    detection_pb2.JOB_STATUS_CANCELLED: "cancelled",
}


def _final_from_job(job: detection_pb2.Job, user_id: str) -> notification_pb2.Event:
    """The final event rebuilt from the job, when the stored one has expired."""
    status = _FINAL_STATUSES.get(job.status, "failed")
    event_type = f"job.{status}"
    event = notification_pb2.Event(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"objectvision:job:{job.id}:{event_type}")),
        type=event_type,
        user_id=user_id,
        job_finished=notification_pb2.JobFinished(
            job_id=job.id,
            status=status,
            total=job.total,
            processed=job.processed,
            failed=job.failed,
            metadata=job.metadata,
        ),
    )
    event.occurred_at.CopyFrom(job.completed_at if job.HasField("completed_at") else job.updated_at)
    return event


def _finished_at(job: detection_pb2.Job) -> float:
    stamp = job.completed_at if job.HasField("completed_at") else job.updated_at
    return stamp.seconds + stamp.nanos / 1e9


def _parse(data: str) -> notification_pb2.Event | None:
    try:
        return json_format.Parse(data, notification_pb2.Event(), ignore_unknown_fields=True)
    except json_format.ParseError:
        logger.warning("unreadable job event on the progress channel")
        return None


class ProgressHub:
    def __init__(
        self,
        *,
        redis: Redis,
        jobs: JobLookup,
        poll_seconds: float,
        final_wait_seconds: float = FINAL_EVENT_WAIT_SECONDS,
    ) -> None:
        self._redis = redis
        self._jobs = jobs
        self._poll = poll_seconds
        self._final_wait = final_wait_seconds

    async def publish(self, event: notification_pb2.Event) -> None:
        """Tell live subscribers; keep a final event for late ones."""
        job_id = job_id_of(event)
        if event.type not in JOB_TYPES or not job_id:
            return
        data = json_format.MessageToJson(event, indent=None)
        async with self._redis.pipeline(transaction=False) as pipe:
            if event.type in FINAL_TYPES:
                pipe.set(final_event_key(job_id), data, ex=FINAL_EVENT_TTL_SECONDS)
            pipe.publish(job_channel(job_id), data)
            await pipe.execute()

    async def _stored_final(self, job_id: str, user_id: str) -> notification_pb2.Event | None:
        stored = await self._redis.get(final_event_key(job_id))
        event = _parse(stored) if isinstance(stored, str) else None
        if event is not None and event.user_id == user_id and event.type in FINAL_TYPES:
            return event
        return None

    async def _final(self, job: detection_pb2.Job, user_id: str) -> notification_pb2.Event:
        stored = await self._stored_final(job.id, user_id)
        return stored if stored is not None else _final_from_job(job, user_id)

    async def _final_of_finished(
        self, pubsub: PubSub, job: detection_pb2.Job, user_id: str
    ) -> notification_pb2.Event:
        """The final event of a job finished before the subscriber came: the stored one; for
        a job that has only just finished, the one still on its way; else one rebuilt."""
        stored = await self._stored_final(job.id, user_id)
        if stored is not None:
            return stored
        deadline = _finished_at(job) + self._final_wait
        while (remaining := deadline - time.time()) > 0:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=remaining)
            event = _parse(str(message.get("data", ""))) if message is not None else None
            if (
                event is not None
                and event.type in FINAL_TYPES
                and event.user_id == user_id
                and job_id_of(event) == job.id
            ):
                return event
        return await self._final(job, user_id)

    async def follow(
        self, principal: common_pb2.Principal, job_id: str
    ) -> AsyncIterator[notification_pb2.Event]:
        """The job's current progress, then its events as they happen, ending with the
        final one. NotFound (before anything is sent) when the caller does not own it."""
        user_id = principal.user_id
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(job_channel(job_id))
        try:
            job = await self._jobs.get(principal, job_id)
            if job.status in TERMINAL:
                yield await self._final_of_finished(pubsub, job, user_id)
                return
            yield _progress_snapshot(job, user_id)
            seen = job.processed + job.failed
            quiet_since = time.monotonic()
            while True:
                remaining = self._poll - (time.monotonic() - quiet_since)
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=max(0.01, remaining)
                )
                if message is None:
                    if time.monotonic() - quiet_since < self._poll:
                        continue
                    # Silence: the consumer may have been down. Ask the source of truth.
                    quiet_since = time.monotonic()
                    job = await self._jobs.get(principal, job_id)
                    if job.status in TERMINAL:
                        yield await self._final(job, user_id)
                        return
                    continue
                quiet_since = time.monotonic()
                event = _parse(str(message.get("data", "")))
                if event is None or event.user_id != user_id or job_id_of(event) != job_id:
                    continue
                if event.type == JOB_PROGRESS:
                    advanced = event.job_progress.processed + event.job_progress.failed
                    if advanced < seen:
                        continue
                    seen = advanced
                yield event
                if event.type in FINAL_TYPES:
                    return
        finally:
            await pubsub.unsubscribe()
            await pubsub.aclose()
