"""The job queue: a Redis Stream of job ids read through one consumer group.

A message stays in the group's pending list until a worker acknowledges it after the job's
results are committed; a message whose consumer went quiet longer than the claim idle time is
taken over with XAUTOCLAIM. A live worker resets its message's idle time (XCLAIM JUSTID) while it
works, so only dead consumers lose their messages.
"""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import ResponseError
from redis.typing import EncodableT, FieldT

from objectvision_common.tracing import inject_context

_FIELD = "job_id"


@dataclass(frozen=True)
class Message:
    id: str
    job_id: uuid.UUID | None
    # The submitting request's trace context (``traceparent``...), so the job's work joins it.
    trace: Mapping[str, str] = field(default_factory=dict)

    @property
    def queued_at(self) -> datetime:
        """When Redis added the message: its id's first part, in milliseconds."""
        milliseconds = int(self.id.split("-", 1)[0])
        return datetime.fromtimestamp(milliseconds / 1000, UTC)


def _message(message_id: str, fields: dict[str, str] | None) -> Message:
    try:
        job_id = uuid.UUID(fields[_FIELD]) if fields else None
    except (KeyError, ValueError):
        job_id = None
    trace = {k: v for k, v in (fields or {}).items() if k != _FIELD}
    return Message(message_id, job_id, trace)


def _fields(job_id: uuid.UUID | None, trace: Mapping[str, str]) -> dict[FieldT, EncodableT]:
    """A message's fields: the job id and the trace context its work joins (`_message`'s
    inverse)."""
    fields: dict[FieldT, EncodableT] = dict(trace.items())
    fields[_FIELD] = str(job_id)
    return fields


class JobQueue:
    def __init__(self, redis: Redis, *, stream: str, group: str) -> None:
        self.redis = redis
        self.stream = stream
        self.group = group

    async def ensure_group(self) -> None:
        """Create the stream and group if missing; from id 0 so nothing added earlier is skipped."""
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    async def enqueue(self, job_id: uuid.UUID) -> str:
        """Add the job, with the current trace context so its items join the request's trace."""
        return str(await self.redis.xadd(self.stream, _fields(job_id, inject_context())))

    async def read(self, consumer: str, *, block_ms: int) -> Message | None:
        """The next never-delivered message, waiting up to block_ms for one."""
        reply = await self.redis.xreadgroup(
            self.group, consumer, {self.stream: ">"}, count=1, block=block_ms
        )
        # The client speaks RESP2 (redis-py's default): [[stream, [(id, fields), ...]], ...].
        # redis types the RESP3 answer, a dict keyed by stream, into the same union.
        streams = cast(list[tuple[Any, list[tuple[str, dict[str, str]]]]], reply or [])
        for _stream, entries in streams:
            for message_id, fields in entries:
                return _message(message_id, fields)
        return None

    async def reclaim(
        self, consumer: str, *, min_idle_ms: int, cursor: str
    ) -> tuple[Message | None, str]:
        """Take over one message idle longer than min_idle_ms; returns it and the next cursor."""
        reply = await self.redis.xautoclaim(
            self.stream, self.group, consumer, min_idle_ms, start_id=cursor, count=1
        )
        next_cursor, entries = str(reply[0]), reply[1]
        for message_id, fields in entries:
            if message_id is not None:
                return _message(message_id, fields), next_cursor
        return None, next_cursor

    async def to_back(self, message: Message) -> None:
        """Move the message to the end of the stream: added again and acknowledged in one
        transaction, so the job is never off the stream nor on it twice."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.stream, _fields(message.job_id, message.trace))
            self._acknowledge(pipe, message.id)
            await pipe.execute()

    async def job_ids(self, *, page: int = 1000) -> set[uuid.UUID]:
        """The jobs with a message on the stream, waiting to be read or held by a consumer:
        acknowledged messages are deleted, so these are the jobs the stream still carries."""
        found: set[uuid.UUID] = set()
        start = "-"
        while True:
            # The client decodes answers (str); redis types them as bytes or str.
            entries = cast(
                list[tuple[str, dict[str, str]]],
                await self.redis.xrange(self.stream, min=start, max="+", count=page),
            )
            for message_id, fields in entries:
                job_id = _message(message_id, fields).job_id
                if job_id is not None:
                    found.add(job_id)
            if len(entries) < page:
                return found
            # Exclusive: the page after the last id read.
            start = f"({entries[-1][0]}"

    async def touch(self, consumer: str, message_id: str) -> None:
        """Reset the message's idle time: proof of life for XAUTOCLAIM."""
        await self.redis.xclaim(self.stream, self.group, consumer, 0, [message_id], justid=True)

    async def ack(self, message_id: str) -> None:
        """Acknowledge and delete together, so the stream holds only unfinished work."""
        async with self.redis.pipeline(transaction=True) as pipe:
            self._acknowledge(pipe, message_id)
            await pipe.execute()

    def _acknowledge(self, pipe: Pipeline, message_id: str) -> None:
        """Queue the acknowledgement and the deletion of a message on a transaction."""
        pipe.xack(self.stream, self.group, message_id)
        pipe.xdel(self.stream, message_id)
