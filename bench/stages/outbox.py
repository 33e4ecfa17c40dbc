"""Event latency through the outbox (ADR 0006): how long after its commit an event reaches
the events stream, with the relay woken by the commit's NOTIFY against the relay polling
every 0.5 s as it did before, from one run.

The stage makes an outbox table of its own in a scratch schema of the stack's PostgreSQL and
a stream of its own on the stack's Redis, so no service of the stack relays or consumes what
it writes. For each mode one relay runs; events are staged one at a time, each in its own
transaction, at a random moment of the poll (a pause of 0 to 0.5 s between them), and each
one's latency is from just before its commit to its arrival on the stream (XREAD BLOCK).
Reported per mode: median and p90; and listening over polling, as a ratio of medians.

Why it matters: every webhook, email, WebSocket message and job-progress event waits this
long before notification-service can even see it.
"""

import asyncio
import random
import statistics
import time
import uuid
from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis

from bench.stages import StageContext, logger
from bench.stats import percentile, ratio
from objectvision.v1 import notification_pb2
from objectvision_common.db import create_engine_for, schema_metadata, session_factory
from objectvision_common.outbox import OutboxRelay, add_event, outbox_table

STAGE = "outbox"
MODES = ("listening", "polling")
# What every producer's relay polls at when it cannot listen (OutboxRelay's default).
POLL_INTERVAL_S = 0.5
EVENTS = {True: 20, False: 60}
# How long one event may take before the stage gives up on the run.
ARRIVAL_TIMEOUT_S = 10.0
# The most the stage takes on the 2-core machine (about 40 s in full), for the budget.
_ESTIMATE_S = 60.0


def _event(sequence: int) -> notification_pb2.Event:
    return notification_pb2.Event(
        type="job.progress",
        user_id="bench-outbox",
        job_progress=notification_pb2.JobProgress(job_id="bench", total=1, processed=sequence),
    )


async def _latencies(
    database_url: str, redis: Redis, *, listen: bool, events: int, seed: int
) -> list[float]:
    """Milliseconds from commit to stream for `events` events through one relay."""
    schema = f"bench_outbox_{uuid.uuid4().hex[:8]}"
    metadata = schema_metadata(schema)
    table = outbox_table(metadata)
    stream = f"bench:outbox:{schema}"
    engine = create_engine_for(database_url, pool_size=2)
    sessions = session_factory(engine)
    async with engine.begin() as connection:
        await connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        await connection.run_sync(metadata.create_all)
    relay = OutboxRelay(
        sessions, table, redis, stream=stream, poll_interval=POLL_INTERVAL_S, listen=listen
    )
    task = asyncio.create_task(relay.run())
    pauses = random.Random(seed)
    found: list[float] = []
    try:
        if listen:
            deadline = time.monotonic() + ARRIVAL_TIMEOUT_S
            while not relay.listening:
                if time.monotonic() > deadline:
                    raise RuntimeError("the relay did not start listening")
                await asyncio.sleep(0.01)
        last_id = "0-0"
        for sequence in range(events):
            await asyncio.sleep(pauses.uniform(0, POLL_INTERVAL_S))
            started = time.perf_counter()
            async with sessions.begin() as session:
                await add_event(session, table, _event(sequence))
            # [[stream, [(entry id, fields)]]] (RESP2), which redis-py's types do not say.
            answer: Any = await redis.xread(
                {stream: last_id}, count=1, block=int(ARRIVAL_TIMEOUT_S * 1000)
            )
            if not answer:
                raise RuntimeError(f"event {sequence} did not reach the stream")
            found.append((time.perf_counter() - started) * 1000)
            last_id = answer[0][1][0][0]
    finally:
        relay.stop()
        await task
        await redis.delete(stream)
        async with engine.begin() as connection:
            await connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        await engine.dispose()
    return found


async def measure(database_url: str, redis_url: str, *, events: int) -> dict[str, Any]:
    """The figures of both modes, the same pauses for each."""
    redis = Redis.from_url(redis_url)
    rows: dict[str, dict[str, Any]] = {}
    try:
        for mode in MODES:
            times = sorted(
                await _latencies(
                    database_url, redis, listen=mode == "listening", events=events, seed=7
                )
            )
            rows[mode] = {
                "events": events,
                "median_ms": round(statistics.median(times), 2),
                "p90_ms": round(percentile(times, 90), 2),
            }
            logger.info(
                "%-13s %-9s median %7.2f ms  p90 %7.2f ms",
                STAGE,
                mode,
                rows[mode]["median_ms"],
                rows[mode]["p90_ms"],
            )
    finally:
        await redis.aclose()
    return {
        "poll_interval_s": POLL_INTERVAL_S,
        "modes": rows,
        "listening_over_polling_median": ratio(
            rows["listening"]["median_ms"], rows["polling"]["median_ms"]
        ),
    }


async def run(ctx: StageContext, *, database_url: str, redis_url: str) -> dict[str, Any] | None:
    if not ctx.within_budget(STAGE, seconds=_ESTIMATE_S):
        return None
    return await measure(database_url, redis_url, events=EVENTS[ctx.config.quick])


def markdown(section: Mapping[str, Any]) -> list[str]:
    lines = [
        "## Outbox: from commit to the events stream (ADR 0006)",
        "",
        "One event at a time, at a random moment of the poll, through one relay: woken by the"
        f" commit's NOTIFY, against polling every {section['poll_interval_s']} s.",
        "",
        "| relay | events | median ms | p90 ms |",
        "|---|---:|---:|---:|",
    ]
    for mode, row in section["modes"].items():
        lines.append(f"| {mode} | {row['events']} | {row['median_ms']} | {row['p90_ms']} |")
    over = section["listening_over_polling_median"]
    lines += ["", f"Listening over polling, median: {'—' if over is None else over}.", ""]
    return lines
