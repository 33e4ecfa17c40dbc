"""The events stream, read through a consumer group: every event is handled by one replica
of the group, acknowledged only after its handling committed, and claimed again if a replica
dies. Every service that acts on events (notification-service's emails, webhooks and live
progress; detection-service's erasure of deleted accounts) reads the stream through this one
consumer, each in a consumer group of its own, so each sees every event.

A batch is handled concurrently, at most `concurrency` events at a time, but the events of
one subject (see `ordering_key`) run one after the other in stream order. The next batch is
read only when the whole batch is done: in-flight work stays bounded, order holds across
batches, and a claim never takes a message this consumer is still handling. A failed
handling does not hold its subject back: it stays pending and is claimed again later, as
with one-at-a-time handling (a repeated progress event is harmless, the final one is kept).
"""

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from objectvision.v1 import notification_pb2
from objectvision_common.background import BackgroundLoop
from objectvision_common.outbox import event_from_stream
from objectvision_common.settings import EventsConsumerSettings
from objectvision_common.tracing import extract_context, tracer

logger = logging.getLogger(__name__)
_TRACER = tracer(__name__)

Handler = Callable[[notification_pb2.Event], Awaitable[None]]
Message = tuple[Any, Any]
Process = Callable[[Any, Any], Awaitable[None]]


def job_id_of(event: notification_pb2.Event) -> str:
    """The job a job event is about; empty for any other event."""
    if event.HasField("job_progress"):
        return event.job_progress.job_id
    if event.HasField("job_finished"):
        return event.job_finished.job_id
    return ""


def ordering_key(event: notification_pb2.Event) -> str:
    """The subject whose events must be handled in stream order.

    A job event's subject is its job: live progress is published to the job's channel and its
    final event kept under the job's key, so a job's progress must come before its completion.
    Jobs of one user share no state here (each report email reads the user from auth-service),
    so they run in parallel. Any other event is ordered by its user (an account's deletion
    after what happened to it before), and one with neither concerns nothing else and is its
    own subject.
    """
    job_id = job_id_of(event)
    if job_id:
        return f"job:{job_id}"
    if event.user_id:
        return f"user:{event.user_id}"
    return f"event:{event.id}"


def _key_of(message_id: Any, fields: Any) -> str:
    """An entry that was deleted or cannot be read is only acknowledged or dead-lettered:
    nothing depends on it, so it is a subject of its own."""
    if fields is not None:
        with contextlib.suppress(ValueError):
            return ordering_key(event_from_stream(fields))
    return f"message:{message_id}"


class EventConsumer(BackgroundLoop):
    def __init__(
        self,
        *,
        redis: Redis,
        stream: str,
        group: str,
        consumer: str,
        handle: Handler,
        block_ms: int = 2000,
        batch: int = 50,
        claim_idle_ms: int = 60_000,
        max_deliveries: int = 10,
        concurrency: int = 16,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._redis = redis
        self._stream = stream
        self._group = group
        self._consumer = consumer
        self._handle = handle
        self._block_ms = block_ms
        # A batch smaller than the concurrency would leave slots idle.
        self._batch = max(batch, concurrency)
        self._claim_idle_ms = claim_idle_ms
        self._max_deliveries = max_deliveries
        self._slots = asyncio.Semaphore(concurrency)

    @classmethod
    def from_settings(
        cls, settings: EventsConsumerSettings, *, redis: Redis, group: str, handle: Handler
    ) -> "EventConsumer":
        """The consumer of `group` on the settings' events stream, with the EVENTS_* variables
        every consumer group shares; named hostname-pid unless EVENTS_CONSUMER_NAME says."""
        return cls(
            redis=redis,
            stream=settings.events_stream,
            group=group,
            consumer=settings.events_consumer_name or f"{socket.gethostname()}-{os.getpid()}",
            handle=handle,
            block_ms=settings.events_block_ms,
            claim_idle_ms=int(settings.events_claim_idle_seconds * 1000),
            max_deliveries=settings.events_max_deliveries,
            concurrency=settings.events_concurrency,
        )

    @property
    def dead_letter_stream(self) -> str:
        return f"{self._stream}:dead"

    async def ensure_group(self) -> None:
        """Create the group at the start of the stream, so events from before the first
        start of this service are handled too."""
        try:
            await self._redis.xgroup_create(self._stream, self._group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _loop(self) -> None:
        """Until stop(), which lets the batch in flight finish: every event it started is
        handled and acknowledged, or left pending, never acknowledged half-handled."""
        loop = asyncio.get_running_loop()
        failures = 0
        group_ready = False
        next_claim = 0.0
        while not self.stopping:
            try:
                if not group_ready:
                    await self.ensure_group()
                    group_ready = True
                if loop.time() >= next_claim:
                    await self.claim_stuck()
                    next_claim = loop.time() + max(1.0, self._claim_idle_ms / 2000)
                await self.read_new()
                failures = 0
            except Exception as exc:
                if isinstance(exc, ResponseError) and "NOGROUP" in str(exc):
                    group_ready = False
                failures += 1
                delay = min(30.0, 0.2 * 2**failures)
                logger.warning(
                    "events consumer failed; retrying",
                    extra={"failures": failures, "retry_in_s": delay},
                    exc_info=failures == 1,
                )
                await self.pause(delay)

    async def read_new(self) -> int:
        response = await self._redis.xreadgroup(
            self._group,
            self._consumer,
            {self._stream: ">"},
            count=self._batch,
            block=self._block_ms,
        )
        # The client speaks RESP2 (redis-py's default): [[stream, [(id, fields), ...]], ...].
        # redis types the RESP3 answer, a dict keyed by stream, into the same union.
        streams = cast(list[tuple[Any, list[Message]]], response or [])
        messages = [message for _stream, batch in streams for message in batch]
        await self._handle_concurrently(messages, self._process)
        return len(messages)

    async def claim_stuck(self) -> int:
        """Take over messages idle past the limit: their consumer died or their handling
        failed. One delivered too often goes to the dead-letter stream instead."""
        claimed = 0
        start: Any = "0-0"
        while True:
            response = await self._redis.xautoclaim(
                self._stream,
                self._group,
                self._consumer,
                min_idle_time=self._claim_idle_ms,
                start_id=start,
                count=self._batch,
            )
            start, messages = response[0], response[1]
            claimed += len(messages)
            await self._handle_concurrently(messages, self._process_claimed)
            if start in ("0-0", b"0-0"):
                return claimed

    async def _handle_concurrently(self, messages: list[Message], process: Process) -> None:
        """One chain per subject, in stream order; the chains run side by side, each message
        taking one of the `concurrency` slots while it is processed.

        A chain that fails on Redis stops there, leaving its later messages pending so a
        claim takes them in order; the other chains finish before the error is raised."""
        chains: dict[str, list[Message]] = {}
        for message_id, fields in messages:
            chains.setdefault(_key_of(message_id, fields), []).append((message_id, fields))
        results = await asyncio.gather(
            *(self._run_chain(chain, process) for chain in chains.values()),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _run_chain(self, chain: list[Message], process: Process) -> None:
        for message_id, fields in chain:
            async with self._slots:
                await process(message_id, fields)

    async def _process_claimed(self, message_id: Any, fields: dict[Any, Any] | None) -> None:
        if fields is None:
            # Deleted from the stream (trimmed) while pending: nothing left to handle.
            await self._redis.xack(self._stream, self._group, message_id)
            return
        if await self._delivered_too_often(message_id):
            await self._dead_letter(message_id, fields, "delivered too many times")
            return
        await self._process(message_id, fields)

    async def _delivered_too_often(self, message_id: Any) -> bool:
        pending = await self._redis.xpending_range(
            self._stream, self._group, min=message_id, max=message_id, count=1
        )
        return bool(pending) and int(pending[0]["times_delivered"]) > self._max_deliveries

    async def _dead_letter(self, message_id: Any, fields: dict[Any, Any], reason: str) -> None:
        logger.error(
            "event moved to the dead-letter stream",
            extra={"message_id": str(message_id), "reason": reason, "group": self._group},
        )
        entry = dict(fields)
        entry["reason"] = reason
        entry["message_id"] = message_id
        # Every group dead-letters into the one stream: this says whose handling gave up.
        entry["group"] = self._group
        await self._redis.xadd(self.dead_letter_stream, entry, maxlen=100_000, approximate=True)
        await self._redis.xack(self._stream, self._group, message_id)

    async def _process(self, message_id: Any, fields: dict[Any, Any]) -> None:
        try:
            event = event_from_stream(fields)
        except ValueError as exc:
            await self._dead_letter(message_id, fields, f"unreadable: {exc}")
            return
        try:
            # The event's handling joins the trace of the request that caused it.
            with _TRACER.start_as_current_span(
                f"handle {event.type}",
                context=extract_context(dict(event.trace_context)),
                attributes={
                    "objectvision.event_id": event.id,
                    "objectvision.event_type": event.type,
                },
            ):
                await self._handle(event)
        except Exception:
            logger.warning(
                "event handling failed; it stays pending and will be claimed again",
                extra={"event_id": event.id, "event_type": event.type},
                exc_info=True,
            )
            return
        await self._redis.xack(self._stream, self._group, message_id)
