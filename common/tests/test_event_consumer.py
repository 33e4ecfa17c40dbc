"""The shared EventConsumer (objectvision_common.events) against the session's real Redis: a
batch is handled concurrently, bounded by its concurrency, one subject (a job, else a user) at
a time in stream order; every consumer group sees every event.

Handlers here are plain functions that record calls and wait on asyncio.Events, so each test
states an order of events instead of timing. A consumer that handled events one at a time
would deadlock in the tests on concurrency; LIVENESS bounds them so they fail instead.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any

import pytest
from google.protobuf import json_format
from pydantic import ValidationError
from redis.asyncio import Redis

from objectvision.v1 import notification_pb2
from objectvision_common.events import EventConsumer, Handler, ordering_key
from objectvision_common.outbox import stream_fields
from objectvision_common.settings import EventsConsumerSettings
from objectvision_devstack.pytest_plugin import Infrastructure

LIVENESS = 30.0
GROUP = "notification"


@dataclass
class Stream:
    """A stream of its own for one test, with the consumer group's view of it."""

    redis: Redis
    name: str

    async def add(self, event: notification_pb2.Event) -> Any:
        fields = stream_fields(event.id, event.type, json_format.MessageToDict(event))
        return await self.redis.xadd(self.name, fields)

    async def add_raw(self, fields: dict[str, str]) -> Any:
        return await self.redis.xadd(self.name, fields)

    def consumer(self, handle: Handler, *, name: str = "c1", **options: Any) -> EventConsumer:
        options.setdefault("block_ms", 50)
        return EventConsumer(
            redis=self.redis, stream=self.name, group=GROUP, consumer=name, handle=handle, **options
        )

    async def pending_ids(self) -> list[bytes]:
        pending = await self.redis.xpending_range(self.name, GROUP, min="-", max="+", count=1000)
        return [entry["message_id"] for entry in pending]

    async def pending_count(self) -> int:
        return int((await self.redis.xpending(self.name, GROUP))["pending"])


@pytest.fixture
async def stream(infrastructure: Infrastructure) -> AsyncIterator[Stream]:
    redis = Redis.from_url(infrastructure.redis_url)
    name = f"test:event-consumer:{uuid.uuid4().hex}"
    yield Stream(redis, name)
    await redis.delete(name, f"{name}:dead")
    await redis.aclose()


async def live(awaitable: Awaitable[Any]) -> Any:
    return await asyncio.wait_for(awaitable, timeout=LIVENESS)


def progress(job_id: str, processed: int, *, user_id: str = "") -> notification_pb2.Event:
    return notification_pb2.Event(
        id=str(uuid.uuid4()),
        type="job.progress",
        user_id=user_id or str(uuid.uuid4()),
        job_progress=notification_pb2.JobProgress(job_id=job_id, total=100, processed=processed),
    )


def completed(job_id: str, *, user_id: str = "") -> notification_pb2.Event:
    return notification_pb2.Event(
        id=str(uuid.uuid4()),
        type="job.completed",
        user_id=user_id or str(uuid.uuid4()),
        job_finished=notification_pb2.JobFinished(job_id=job_id, status="completed"),
    )


def registered(user_id: str) -> notification_pb2.Event:
    return notification_pb2.Event(
        id=str(uuid.uuid4()),
        type="user.registered",
        user_id=user_id,
        user_registered=notification_pb2.UserRegistered(email="a@example.test", name="Ada"),
    )


async def yield_times(times: int) -> None:
    """Give the other handlers `times` turns of the event loop."""
    for _ in range(times):
        await asyncio.sleep(0)


def test_the_ordering_key_is_the_job_else_the_user_else_the_event() -> None:
    user_id = str(uuid.uuid4())
    assert ordering_key(progress("job-1", 1, user_id=user_id)) == "job:job-1"
    assert ordering_key(completed("job-1", user_id=user_id)) == "job:job-1"
    assert ordering_key(registered(user_id)) == f"user:{user_id}"
    anonymous = notification_pb2.Event(id=str(uuid.uuid4()), type="system.tick")
    assert ordering_key(anonymous) == f"event:{anonymous.id}"


def test_events_concurrency_defaults_to_16_and_must_be_positive() -> None:
    assert EventsConsumerSettings(_env_file=None).events_concurrency == 16
    assert EventsConsumerSettings(_env_file=None, EVENTS_CONCURRENCY=4).events_concurrency == 4
    with pytest.raises(ValidationError):
        EventsConsumerSettings(_env_file=None, EVENTS_CONCURRENCY=0)


async def test_a_consumer_from_settings_reads_the_shared_stream_in_a_group_of_its_own(
    stream: Stream,
) -> None:
    settings = EventsConsumerSettings(
        _env_file=None, EVENTS_STREAM=stream.name, EVENTS_CONSUMER_NAME="replica-1"
    )
    event = registered(str(uuid.uuid4()))
    await stream.add(event)
    handled: dict[str, list[str]] = {"notification": [], "erasure": []}

    def handler(group: str) -> Handler:
        async def handle(seen: notification_pb2.Event) -> None:
            handled[group].append(seen.id)

        return handle

    for group in handled:
        consumer = EventConsumer.from_settings(
            settings, redis=stream.redis, group=group, handle=handler(group)
        )
        await consumer.ensure_group()
        assert await live(consumer.read_new()) == 1
        assert consumer.dead_letter_stream == f"{stream.name}:dead"

    # Each group sees every event, and reads it as the replica the settings name.
    assert handled == {"notification": [event.id], "erasure": [event.id]}
    for group in handled:
        [member] = await stream.redis.xinfo_consumers(stream.name, group)
        assert (member["name"], member["pending"]) == (b"replica-1", 0)


async def test_a_slow_subject_does_not_hold_back_the_others(stream: Stream) -> None:
    slow_first, slow_second = progress("job-slow", 1), completed("job-slow")
    others = [progress("job-other", 1), registered(str(uuid.uuid4())), progress("job-third", 7)]
    other_ids = {event.id for event in others}
    others_done = asyncio.Event()
    handled: list[str] = []

    async def handle(event: notification_pb2.Event) -> None:
        if event.id == slow_first.id:
            # Released only once every other subject was handled: one at a time, it never is.
            await others_done.wait()
        handled.append(event.id)
        if other_ids <= set(handled):
            others_done.set()

    for event in [slow_first, slow_second, *others]:
        await stream.add(event)
    consumer = stream.consumer(handle)
    await consumer.ensure_group()

    assert await live(consumer.read_new()) == 5
    assert set(handled[:3]) == other_ids
    assert handled[3:] == [slow_first.id, slow_second.id]
    assert await stream.pending_count() == 0


async def test_events_of_one_subject_are_handled_in_stream_order(stream: Stream) -> None:
    jobs = ["job-a", "job-b", "job-c"]
    steps = 14
    user_id = str(uuid.uuid4())
    for processed in range(1, steps + 1):
        for job_id in jobs:
            await stream.add(progress(job_id, processed, user_id=user_id))
    for job_id in jobs:
        await stream.add(completed(job_id, user_id=user_id))
    second_registration = registered(user_id)
    await stream.add(registered(user_id))
    await stream.add(second_registration)

    seen: dict[str, list[str]] = {}
    active: dict[str, int] = {}
    overlaps: list[str] = []
    running = 0
    peak = 0

    async def handle(event: notification_pb2.Event) -> None:
        nonlocal running, peak
        key = ordering_key(event)
        active[key] = active.get(key, 0) + 1
        if active[key] > 1:
            overlaps.append(key)
        running += 1
        peak = max(peak, running)
        # Earlier events take longer: run in parallel, a subject's later events would finish
        # first.
        step = event.job_progress.processed if event.HasField("job_progress") else steps + 1
        await yield_times(3 * (steps + 2 - step))
        label = event.id if event.type == "user.registered" else f"{event.type}:{step}"
        seen.setdefault(key, []).append(label)
        running -= 1
        active[key] -= 1

    consumer = stream.consumer(handle, batch=len(jobs) * (steps + 1) + 2)
    await consumer.ensure_group()

    assert await live(consumer.read_new()) == len(jobs) * (steps + 1) + 2
    expected = [f"job.progress:{step}" for step in range(1, steps + 1)]
    expected.append(f"job.completed:{steps + 1}")
    for job_id in jobs:
        assert seen[f"job:{job_id}"] == expected
    assert seen[f"user:{user_id}"][-1] == second_registration.id
    assert overlaps == []
    assert peak > 1, "different subjects should have run side by side"
    assert await stream.pending_count() == 0


async def test_in_flight_handling_never_exceeds_the_concurrency(stream: Stream) -> None:
    limit = 3
    count = 20
    running = 0
    peak = 0
    full = asyncio.Event()
    handled = 0

    async def handle(event: notification_pb2.Event) -> None:
        nonlocal running, peak, handled
        running += 1
        peak = max(peak, running)
        if running >= limit:
            full.set()
        # Nobody finishes before the limit was reached once: the bound is really exercised.
        await full.wait()
        await yield_times(5)
        running -= 1
        handled += 1

    for index in range(count):
        await stream.add(progress(f"job-{index}", 1))
    consumer = stream.consumer(handle, concurrency=limit)
    await consumer.ensure_group()

    assert await live(consumer.read_new()) == count
    assert handled == count
    assert peak == limit
    assert await stream.pending_count() == 0


async def test_a_failed_handling_stays_pending_while_the_others_are_acked(
    stream: Stream,
) -> None:
    failing = progress("job-a", 1)
    after_failing = completed("job-a")
    fine = [progress("job-b", 1), progress("job-c", 1), registered(str(uuid.uuid4()))]
    handled: list[str] = []

    async def handle(event: notification_pb2.Event) -> None:
        if event.id == failing.id:
            raise RuntimeError("database unavailable")
        handled.append(event.id)

    failing_id = await stream.add(failing)
    for event in [after_failing, *fine]:
        await stream.add(event)
    consumer = stream.consumer(handle, claim_idle_ms=0)
    await consumer.ensure_group()

    assert await live(consumer.read_new()) == 5
    assert set(handled) == {after_failing.id, *(event.id for event in fine)}
    assert await stream.pending_ids() == [failing_id]

    # Exactly as before: the claim takes it again, and this time it commits.
    retried: list[str] = []

    async def recovered(event: notification_pb2.Event) -> None:
        retried.append(event.id)

    again = stream.consumer(recovered, name="c2", claim_idle_ms=0)
    assert await live(again.claim_stuck()) == 1
    assert retried == [failing.id]
    assert await stream.pending_count() == 0


async def test_claimed_events_are_handled_concurrently_in_order_per_subject(
    stream: Stream,
) -> None:
    slow_first, slow_second = progress("job-slow", 1), completed("job-slow")
    others = [progress("job-other", 1), progress("job-third", 1)]
    for event in [slow_first, slow_second, *others]:
        await stream.add(event)

    async def failing(event: notification_pb2.Event) -> None:
        raise RuntimeError("auth-service unavailable")

    dying = stream.consumer(failing)
    await dying.ensure_group()
    assert await live(dying.read_new()) == 4
    assert await stream.pending_count() == 4

    others_done = asyncio.Event()
    handled: list[str] = []

    async def handle(event: notification_pb2.Event) -> None:
        if event.id == slow_first.id:
            await others_done.wait()
        handled.append(event.id)
        if {event.id for event in others} <= set(handled):
            others_done.set()

    taking_over = stream.consumer(handle, name="c2", claim_idle_ms=0)
    assert await live(taking_over.claim_stuck()) == 4
    assert set(handled[:2]) == {event.id for event in others}
    assert handled[2:] == [slow_first.id, slow_second.id]
    assert await stream.pending_count() == 0


async def test_unreadable_events_still_go_to_the_dead_letter_stream(stream: Stream) -> None:
    handled: list[str] = []

    async def handle(event: notification_pb2.Event) -> None:
        handled.append(event.id)

    good = [progress("job-a", 1), progress("job-b", 1)]
    await stream.add(good[0])
    unreadable_id = await stream.add_raw({"id": "x", "type": "job.progress", "payload": "{oops"})
    await stream.add(good[1])
    consumer = stream.consumer(handle)
    await consumer.ensure_group()

    assert await live(consumer.read_new()) == 3
    assert sorted(handled) == sorted(event.id for event in good)
    dead = await stream.redis.xrange(consumer.dead_letter_stream)
    assert len(dead) == 1
    assert dead[0][1][b"message_id"] == unreadable_id
    assert dead[0][1][b"reason"].startswith(b"unreadable")
    assert dead[0][1][b"group"] == GROUP.encode()
    assert await stream.pending_count() == 0


async def test_stop_lets_in_flight_handling_finish_and_acks_it(stream: Stream) -> None:
    in_flight = [progress("job-a", 1), progress("job-b", 1)]
    both_started = asyncio.Event()
    release = asyncio.Event()
    started: list[str] = []
    committed: list[str] = []

    async def handle(event: notification_pb2.Event) -> None:
        started.append(event.id)
        if len(started) == len(in_flight):
            both_started.set()
        await release.wait()
        committed.append(event.id)

    consumer = stream.consumer(handle)
    await consumer.ensure_group()
    ids = [await stream.add(event) for event in in_flight]
    task = asyncio.create_task(consumer.run())
    try:
        await live(both_started.wait())
        consumer.stop()
        late = await stream.add(progress("job-late", 1))

        done, _ = await asyncio.wait({task}, timeout=0.2)
        assert not done, "run() returned with handling still in flight"
        assert sorted(await stream.pending_ids()) == sorted(ids), "acked before it committed"

        release.set()
        await live(task)
    finally:
        release.set()
        if not task.done():
            task.cancel()

    assert sorted(committed) == sorted(event.id for event in in_flight)
    assert await stream.pending_count() == 0
    # Nothing new was read after stop(): the late event waits for the next consumer.
    unread = await stream.redis.xreadgroup(GROUP, "c2", {stream.name: ">"}, count=10)
    assert [message_id for message_id, _ in unread[0][1]] == [late]
