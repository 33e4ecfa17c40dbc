"""The backlog gauges, measured from the real PostgreSQL and Redis of the test session.

Ages are made by writing old rows and old stream ids (an hour or a minute in the past, by the
store's own clock), so every assertion is about data, not about how long the test took.
"""

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from sqlalchemy import Table, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from objectvision.v1 import notification_pb2
from objectvision_common.backlog import (
    BacklogMonitor,
    OutboxBacklog,
    measure_outbox,
    measure_stream,
    outbox_probe,
    stream_length_probe,
    stream_probe,
)
from objectvision_common.db import create_engine_for, schema_metadata, session_factory
from objectvision_common.outbox import OutboxRelay, add_event, outbox_table
from objectvision_devstack.pytest_plugin import Infrastructure

HOUR_S = 3600
MINUTE_S = 60


@pytest.fixture(scope="module")
async def outbox(
    infrastructure: Infrastructure,
) -> AsyncIterator[tuple[async_sessionmaker[AsyncSession], Table]]:
    schema = f"backlog_test_{uuid.uuid4().hex[:8]}"
    metadata = schema_metadata(schema)
    table = outbox_table(metadata)
    engine = create_engine_for(infrastructure.database_url, pool_size=2)
    async with engine.begin() as connection:
        await connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        await connection.run_sync(metadata.create_all)
    yield session_factory(engine), table
    async with engine.begin() as connection:
        await connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    await engine.dispose()


@pytest.fixture
async def redis(infrastructure: Infrastructure) -> AsyncIterator[Redis]:
    client = Redis.from_url(infrastructure.redis_url)
    yield client
    await client.aclose()


async def _stage(
    sessions: async_sessionmaker[AsyncSession], table: Table, *, seconds_ago: int
) -> None:
    event = notification_pb2.Event(type="job.progress", user_id="u-1")
    async with sessions() as session, session.begin():
        event_id = await add_event(session, table, event)
        await session.execute(
            update(table)
            .where(table.c.id == event_id)
            .values(created_at=table.c.created_at - timedelta(seconds=seconds_ago))
        )


def _gauge(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def test_outbox_backlog_is_the_unpublished_rows_and_the_oldest_ones_age(
    outbox, redis: Redis
) -> None:
    sessions, table = outbox
    assert await measure_outbox(sessions, table) == OutboxBacklog(0, 0.0)

    await _stage(sessions, table, seconds_ago=HOUR_S)
    await _stage(sessions, table, seconds_ago=MINUTE_S)
    backlog = await measure_outbox(sessions, table)
    assert backlog.unpublished == 2
    assert backlog.oldest_age_seconds >= HOUR_S

    # What Prometheus scrapes: the same numbers, labelled with the outbox's schema.
    await BacklogMonitor([outbox_probe(sessions, table)], interval_s=60).measure()
    assert _gauge("objectvision_outbox_unpublished_events", outbox=table.schema) == 2
    age = _gauge("objectvision_outbox_backlog_age_seconds", outbox=table.schema)
    assert age is not None and age >= HOUR_S

    stream = f"test:backlog:{uuid.uuid4().hex}"
    assert await OutboxRelay(sessions, table, redis, stream=stream).publish_pending() == 2
    await BacklogMonitor([outbox_probe(sessions, table)], interval_s=60).measure()
    assert _gauge("objectvision_outbox_unpublished_events", outbox=table.schema) == 0
    assert _gauge("objectvision_outbox_backlog_age_seconds", outbox=table.schema) == 0


async def test_stream_backlog_counts_pending_and_undelivered_entries(redis: Redis) -> None:
    stream, group = f"test:backlog:{uuid.uuid4().hex}", "workers"
    missing = await measure_stream(redis, stream=stream, group=group)
    assert (missing.length, missing.pending, missing.oldest_age_seconds) == (0, 0, 0.0)

    seconds, micros = await redis.time()
    now_ms = seconds * 1000 + micros // 1000
    await redis.xgroup_create(stream, group, id="0", mkstream=True)
    an_hour_ago = await redis.xadd(stream, {"n": "1"}, id=f"{now_ms - HOUR_S * 1000}-0")
    await redis.xadd(stream, {"n": "2"}, id=f"{now_ms - MINUTE_S * 1000}-0")

    # Neither delivered yet: the backlog is as old as the first entry.
    backlog = await measure_stream(redis, stream=stream, group=group)
    assert (backlog.length, backlog.pending) == (2, 0)
    assert backlog.oldest_age_seconds >= HOUR_S

    # The first delivered and not acknowledged: still the oldest waiting entry.
    ((_, [(delivered, _)]),) = await redis.xreadgroup(group, "c-1", {stream: ">"}, count=1)
    assert delivered == an_hour_ago
    backlog = await measure_stream(redis, stream=stream, group=group)
    assert (backlog.length, backlog.pending) == (2, 1)
    assert backlog.oldest_age_seconds >= HOUR_S

    # Acknowledged: the second, never delivered, is now the oldest.
    await redis.xack(stream, group, delivered)
    backlog = await measure_stream(redis, stream=stream, group=group)
    assert (backlog.length, backlog.pending) == (2, 0)
    assert MINUTE_S <= backlog.oldest_age_seconds < HOUR_S

    await BacklogMonitor(
        [stream_probe(redis, stream=stream, group=group), stream_length_probe(redis, stream="x")],
        interval_s=60,
    ).measure()
    assert _gauge("objectvision_stream_length", stream=stream) == 2
    assert _gauge("objectvision_stream_pending_entries", stream=stream, group=group) == 0
    age = _gauge("objectvision_stream_backlog_age_seconds", stream=stream, group=group)
    assert age is not None and MINUTE_S <= age < HOUR_S

    # Everything read and acknowledged: nothing waits, whatever the stream still holds.
    ((_, entries),) = await redis.xreadgroup(group, "c-1", {stream: ">"})
    await redis.xack(stream, group, *(entry_id for entry_id, _ in entries))
    backlog = await measure_stream(redis, stream=stream, group=group)
    assert (backlog.length, backlog.pending, backlog.oldest_age_seconds) == (2, 0, 0.0)
    await redis.delete(stream)


async def test_a_failing_probe_leaves_the_others_measuring(redis: Redis) -> None:
    stream = f"test:backlog:{uuid.uuid4().hex}"
    await redis.xadd(stream, {"n": "1"})

    async def broken() -> None:
        raise ConnectionError("the database is down")

    await BacklogMonitor(
        [broken, stream_length_probe(redis, stream=stream)], interval_s=60
    ).measure()
    assert _gauge("objectvision_stream_length", stream=stream) == 1
    await redis.delete(stream)
