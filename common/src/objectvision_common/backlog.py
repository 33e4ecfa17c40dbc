"""Backlog gauges: how much work waits in an outbox or a Redis stream, and for how long.

Why gauges measured from the stores, not counters kept by the code: the question an operator
asks ("are events stuck?") is about state that outlives any process. A relay that crashed
increments nothing, and a counter in a replica that was restarted starts from zero; the
outbox table and the stream's consumer group still say how old the oldest waiting item is.
Each service measures the stores it owns (a producer its outbox, a consumer its group) in a
background loop, every BACKLOG_METRICS_INTERVAL_SECONDS, and Prometheus scrapes the last
measurement. Replicas measure the same rows, so the alerts take the `max` over them.

Ages come from the store's own clock (PostgreSQL's now(), Redis' TIME against the
millisecond time in a stream entry's id), so a skewed host clock cannot fake a backlog.
"""

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from prometheus_client import Gauge
from redis.asyncio import Redis
from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from objectvision_common.background import BackgroundLoop

logger = logging.getLogger(__name__)

# Only one serving process of a process group runs the background loops (process_group.py);
# with several, the parent merges the gauges of the live ones, and only that one has samples.
_MODE: Final[Literal["livemostrecent"]] = "livemostrecent"

OUTBOX_UNPUBLISHED = Gauge(
    "objectvision_outbox_unpublished_events",
    "Events committed to this outbox (the schema name) and not yet appended to the stream.",
    ["outbox"],
    multiprocess_mode=_MODE,
)
OUTBOX_AGE = Gauge(
    "objectvision_outbox_backlog_age_seconds",
    "Age of the oldest unpublished event in this outbox; 0 when none waits.",
    ["outbox"],
    multiprocess_mode=_MODE,
)
STREAM_LENGTH = Gauge(
    "objectvision_stream_length",
    "Entries in this Redis stream (XLEN), consumed or not.",
    ["stream"],
    multiprocess_mode=_MODE,
)
STREAM_PENDING = Gauge(
    "objectvision_stream_pending_entries",
    "Entries delivered to a consumer of this group and not yet acknowledged (XPENDING).",
    ["stream", "group"],
    multiprocess_mode=_MODE,
)
STREAM_AGE = Gauge(
    "objectvision_stream_backlog_age_seconds",
    "Age of the oldest entry this group has not acknowledged (pending, or not yet delivered); "
    "0 when none waits.",
    ["stream", "group"],
    multiprocess_mode=_MODE,
)

Probe = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class OutboxBacklog:
    unpublished: int
    oldest_age_seconds: float


@dataclass(frozen=True)
class StreamBacklog:
    length: int
    pending: int
    oldest_age_seconds: float


async def measure_outbox(sessions: async_sessionmaker[AsyncSession], table: Table) -> OutboxBacklog:
    """One query on the relay's own partial index (unpublished rows by created_at)."""
    t = table
    statement = select(
        func.count(),
        func.coalesce(func.extract("epoch", func.now() - func.min(t.c.created_at)), 0),
    ).where(t.c.published_at.is_(None))
    async with sessions() as session:
        count, age = (await session.execute(statement)).one()
    return OutboxBacklog(unpublished=int(count), oldest_age_seconds=max(0.0, float(age)))


def _id_millis(entry_id: str | bytes) -> int:
    """The millisecond part of a stream entry id ("1733312345678-0")."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])


async def measure_stream(redis: Redis, *, stream: str, group: str) -> StreamBacklog:
    """Length, pending count and the oldest unacknowledged entry's age of one group.

    The oldest waiting entry is the oldest pending one (XPENDING's summary) or, when older,
    the first entry after the group's last delivered id (read, never delivered). Works on
    Redis 6.2 (no XINFO `lag`). A missing stream or group is an empty backlog.
    """
    length = int(await redis.xlen(stream))
    seconds, micros = await redis.time()
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    groups = await redis.xinfo_groups(stream) if length else []
    info = next((g for g in groups if _text(g.get("name")) == group), None)
    if info is None:
        return StreamBacklog(length=length, pending=0, oldest_age_seconds=0.0)
    summary = await redis.xpending(stream, group)
    pending = int(summary.get("pending") or 0)
    oldest: list[int] = []
    oldest_pending = summary.get("min")
    if pending and oldest_pending:
        oldest.append(_id_millis(oldest_pending))
    last_delivered = _text(info.get("last-delivered-id")) or "0-0"
    undelivered = await redis.xrange(stream, min=f"({last_delivered}", max="+", count=1)
    first_undelivered = undelivered[0][0] if undelivered else None
    if isinstance(first_undelivered, str | bytes):
        oldest.append(_id_millis(first_undelivered))
    age = max(0.0, (now_ms - min(oldest)) / 1000) if oldest else 0.0
    return StreamBacklog(length=length, pending=pending, oldest_age_seconds=age)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


def outbox_probe(sessions: async_sessionmaker[AsyncSession], table: Table) -> Probe:
    """Measures `table` into the outbox gauges, labelled with its schema."""
    name = table.schema or table.name

    async def probe() -> None:
        backlog = await measure_outbox(sessions, table)
        OUTBOX_UNPUBLISHED.labels(name).set(backlog.unpublished)
        OUTBOX_AGE.labels(name).set(backlog.oldest_age_seconds)

    return probe


def stream_probe(redis: Redis, *, stream: str, group: str) -> Probe:
    """Measures one consumer group of `stream` into the stream gauges."""

    async def probe() -> None:
        backlog = await measure_stream(redis, stream=stream, group=group)
        STREAM_LENGTH.labels(stream).set(backlog.length)
        STREAM_PENDING.labels(stream, group).set(backlog.pending)
        STREAM_AGE.labels(stream, group).set(backlog.oldest_age_seconds)

    return probe


def stream_length_probe(redis: Redis, *, stream: str) -> Probe:
    """Only the length: for a stream nobody consumes, such as a dead-letter stream."""

    async def probe() -> None:
        STREAM_LENGTH.labels(stream).set(int(await redis.xlen(stream)))

    return probe


class BacklogMonitor(BackgroundLoop):
    """Runs its probes now and every `interval_s` until stopped (a BackgroundLoop).

    A probe that fails (database or Redis down) is logged and leaves its gauges at their last
    measurement; the outage itself is what ObjectVisionTargetDown and the gRPC error alerts
    report. The others still run.
    """

    def __init__(self, probes: Sequence[Probe], *, interval_s: float) -> None:
        self._probes = list(probes)
        self._interval_s = interval_s

    async def measure(self) -> None:
        """Every probe once."""
        for probe in self._probes:
            try:
                await probe()
            except Exception:
                logger.warning("could not measure a backlog", exc_info=True)

    async def _loop(self) -> None:
        while not self.stopping:
            await self.measure()
            await self.pause(self._interval_s)
