"""The outbox and its relay against the real PostgreSQL and Redis of the test session."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import Table, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from objectvision.v1 import notification_pb2
from objectvision_common.db import create_engine_for, schema_metadata, session_factory
from objectvision_common.outbox import (
    OutboxRelay,
    add_event,
    event_from_stream,
    outbox_channel,
    outbox_table,
)
from objectvision_devstack.processes import free_port
from objectvision_devstack.pytest_plugin import Infrastructure
from objectvision_devstack.redis import EmbeddedRedis


async def eventually(check: Callable[[], Awaitable[bool]], *, within: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
async def outbox(
    infrastructure: Infrastructure,
) -> AsyncIterator[tuple[async_sessionmaker[AsyncSession], Table]]:
    schema = f"outbox_test_{uuid.uuid4().hex[:8]}"
    metadata = schema_metadata(schema)
    table = outbox_table(metadata)
    engine = create_engine_for(infrastructure.database_url, pool_size=4)
    async with engine.begin() as connection:
        await connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        await connection.run_sync(metadata.create_all)
    yield session_factory(engine), table
    async with engine.begin() as connection:
        await connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    await engine.dispose()


def job_progress(user_id: str = "u-1", processed: int = 1) -> notification_pb2.Event:
    return notification_pb2.Event(
        type="job.progress",
        user_id=user_id,
        job_progress=notification_pb2.JobProgress(job_id="j-1", total=3, processed=processed),
    )


async def stage(
    sessions: async_sessionmaker[AsyncSession], table: Table, *events: notification_pb2.Event
) -> list[str]:
    async with sessions() as session, session.begin():
        return [str(await add_event(session, table, event)) for event in events]


async def stream_events(redis: Redis, stream: str) -> list[notification_pb2.Event]:
    return [event_from_stream(fields) for _, fields in await redis.xrange(stream)]


async def unpublished(sessions: async_sessionmaker[AsyncSession], table: Table) -> int:
    async with sessions() as session:
        rows = await session.execute(select(table.c.id).where(table.c.published_at.is_(None)))
        return len(rows.all())


async def test_outbox_table_is_declared_once_per_metadata() -> None:
    metadata = schema_metadata("somewhere")
    assert outbox_table(metadata) is outbox_table(metadata)
    assert set(outbox_table(metadata).c.keys()) == {
        "id",
        "event_type",
        "payload",
        "created_at",
        "published_at",
    }


async def test_committed_events_reach_the_stream_once_and_round_trip(
    outbox, infrastructure: Infrastructure
) -> None:
    sessions, table = outbox
    stream = f"test:outbox:{uuid.uuid4().hex}"
    redis = Redis.from_url(infrastructure.redis_url)
    relay = OutboxRelay(sessions, table, redis, stream=stream, batch=2)
    first, second = job_progress(processed=1), job_progress(processed=2)
    ids = await stage(sessions, table, first, second, job_progress(processed=3))
    async with sessions() as session, session.begin():
        await add_event(session, table, job_progress(processed=99))
        await session.rollback()

    assert await relay.publish_pending() == 2
    assert await relay.publish_pending() == 1
    assert await relay.publish_pending() == 0

    published = await stream_events(redis, stream)
    assert [event.id for event in published] == ids
    assert published[0] == first
    assert published[1].job_progress.processed == 2
    entry = (await redis.xrange(stream, count=1))[0][1]
    assert entry[b"type"] == b"job.progress" and entry[b"id"] == ids[0].encode()
    await redis.aclose()


async def test_two_relays_never_publish_the_same_row_twice(
    outbox, infrastructure: Infrastructure
) -> None:
    sessions, table = outbox
    stream = f"test:outbox:{uuid.uuid4().hex}"
    redis = Redis.from_url(infrastructure.redis_url)
    ids = await stage(sessions, table, *(job_progress(processed=n) for n in range(60)))
    relays = [
        OutboxRelay(sessions, table, redis, stream=stream, batch=7, poll_interval=0.02)
        for _ in range(3)
    ]
    tasks = [asyncio.create_task(relay.run()) for relay in relays]

    async def all_published() -> bool:
        return await unpublished(sessions, table) == 0

    await eventually(all_published)
    for relay in relays:
        relay.stop()
    await asyncio.gather(*tasks)
    published = [event.id for event in await stream_events(redis, stream)]
    assert sorted(published) == sorted(ids)
    await redis.aclose()


async def test_events_wait_in_the_outbox_while_redis_is_down(outbox, tmp_path: Path) -> None:
    """Not the session's Redis: this test stops and restarts its own on the same port."""
    sessions, table = outbox
    port = free_port()
    servers = [EmbeddedRedis(tmp_path, port=port)]
    servers[0].start()
    stream = "objectvision:events"
    redis = Redis.from_url(servers[0].url, socket_connect_timeout=0.5, socket_timeout=1)
    relay = OutboxRelay(sessions, table, redis, stream=stream, poll_interval=0.05, max_backoff=0.5)

    async def on_stream(ids: list[str]) -> bool:
        try:
            return {event.id for event in await stream_events(redis, stream)} >= set(ids)
        except (OSError, RedisConnectionError):  # Redis restarting: not there yet
            return False

    task = asyncio.create_task(relay.run())
    try:
        before = await stage(sessions, table, job_progress(processed=1))
        await eventually(lambda: on_stream(before))

        servers[0].stop()
        during = await stage(sessions, table, job_progress(processed=2), job_progress(processed=3))
        await asyncio.sleep(1.0)
        assert await unpublished(sessions, table) == 2

        servers.append(EmbeddedRedis(tmp_path, port=port))
        servers[-1].start()
        await eventually(lambda: on_stream(before + during))
        assert await unpublished(sessions, table) == 0
        assert not task.done()
    finally:
        relay.stop()
        await task
        await redis.aclose()
        for server in servers:
            server.stop()


async def _listening_backends(sessions: async_sessionmaker[AsyncSession], table: Table) -> list:
    """The server processes LISTENing on the table's channel (their last statement)."""
    async with sessions() as session:
        rows = await session.execute(
            text("SELECT pid FROM pg_stat_activity WHERE query = :listen"),
            {"listen": f'LISTEN "{outbox_channel(table)}"'},
        )
        return [row.pid for row in rows]


async def test_a_commit_wakes_the_relay_at_once_and_a_lost_listener_is_replaced(
    outbox, infrastructure: Infrastructure
) -> None:
    """With an hour between polls, only the NOTIFY of each commit can bring its event to the
    stream within the test's wait; a rolled-back transaction's event never comes."""
    sessions, table = outbox
    stream = f"test:outbox:{uuid.uuid4().hex}"
    redis = Redis.from_url(infrastructure.redis_url)
    relay = OutboxRelay(sessions, table, redis, stream=stream, poll_interval=3600)
    task = asyncio.create_task(relay.run())

    async def published() -> list[str]:
        return [event.id for event in await stream_events(redis, stream)]

    async def listening() -> bool:
        return relay.listening and len(await _listening_backends(sessions, table)) == 1

    try:
        await eventually(listening)
        async with sessions() as session, session.begin():
            await add_event(session, table, job_progress(processed=99))
            await session.rollback()
        first = await stage(sessions, table, job_progress(processed=1))
        await eventually(lambda: _equals(published(), first))

        # The listening connection is cut: the relay listens again and hears the next commit.
        (pid,) = await _listening_backends(sessions, table)
        async with sessions() as session:
            await session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await eventually(lambda: _gone(sessions, table, pid))
        await eventually(listening)
        second = await stage(sessions, table, job_progress(processed=2))
        await eventually(lambda: _equals(published(), first + second))
        assert not task.done()
    finally:
        relay.stop()
        await task
        await redis.aclose()
    assert not relay.listening


async def _equals(found: Awaitable[list[str]], expected: list[str]) -> bool:
    return await found == expected


async def _gone(sessions: async_sessionmaker[AsyncSession], table: Table, pid: int) -> bool:
    return pid not in await _listening_backends(sessions, table)
