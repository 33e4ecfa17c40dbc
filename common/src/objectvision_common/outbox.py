"""The transactional outbox and its relay to Redis Streams.

A producer writes an event row in the same transaction as the change it describes, so an
event exists if and only if its change committed. `OutboxRelay` later copies unpublished
rows to the events stream and marks them published. Delivery is at least once: a crash
between XADD and the commit publishes a row again, so consumers dedupe by event id.

The relay does not wait for a poll to find a new row: the transaction that stages an event
also sends a PostgreSQL NOTIFY on the table's channel, which PostgreSQL delivers when (and
only if) it commits, and the relay LISTENs on it. Polling remains, rarely, as the safety net
for a notification lost while the listening connection was down.
"""

import asyncio
import contextlib
import json
import logging
import random
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import asyncpg
from google.protobuf import json_format
from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT
from sqlalchemy import (
    Column,
    DateTime,
    Index,
    MetaData,
    Table,
    Text,
    Uuid,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from objectvision.v1 import notification_pb2
from objectvision_common.background import BackgroundLoop
from objectvision_common.tracing import inject_context

logger = logging.getLogger(__name__)

OUTBOX_TABLE = "outbox"
UNPUBLISHED_INDEX = "ix_outbox_unpublished_created_at"
DEFAULT_STREAM = "objectvision:events"
# Enough for days of events at our rates; XADD trims approximately, which is O(1).
DEFAULT_STREAM_MAXLEN = 1_000_000
# A listening relay's poll: NOTIFY wakes it for every commit; this only catches what was
# committed while its listening connection was down.
LISTENING_POLL_SECONDS = 5.0
# How long a relay that could not LISTEN polls before it tries again.
LISTEN_RETRY_SECONDS = 60.0


def _outbox_columns() -> list[Column[Any]]:
    return [
        Column("id", Uuid, primary_key=True),
        Column("event_type", Text, nullable=False),
        # google.protobuf.json_format.MessageToDict of an objectvision.v1.Event.
        Column("payload", JSONB, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True), nullable=True),
    ]


def outbox_table(metadata: MetaData) -> Table:
    """The `outbox` table of one schema's MetaData, declared the same way by every producer."""
    key = f"{metadata.schema}.{OUTBOX_TABLE}" if metadata.schema else OUTBOX_TABLE
    existing = metadata.tables.get(key)
    if existing is not None:
        return existing
    return Table(
        OUTBOX_TABLE,
        metadata,
        *_outbox_columns(),
        # The relay's only query: the oldest unpublished events.
        Index(UNPUBLISHED_INDEX, "created_at", postgresql_where=text("published_at IS NULL")),
    )


def outbox_channel(table: Table) -> str:
    """The NOTIFY channel of one outbox table (one per schema, so one producer's commits do
    not wake another's relays)."""
    return f"objectvision_outbox_{table.schema or 'public'}"


def create_outbox_table(op: Any, *, schema: str) -> None:
    """For a producer's Alembic migration: `create_outbox_table(op, schema="auth")`."""
    op.create_table(OUTBOX_TABLE, *_outbox_columns(), schema=schema)
    op.create_index(
        UNPUBLISHED_INDEX,
        OUTBOX_TABLE,
        ["created_at"],
        schema=schema,
        postgresql_where=text("published_at IS NULL"),
    )


async def add_event(
    session: AsyncSession, table: Table, event: notification_pb2.Event
) -> uuid.UUID:
    """Stage `event` in the caller's transaction; it is published only if that commits.

    An unset id or occurred_at is filled in on `event` itself, so the caller can log it.
    """
    if not event.type:
        raise ValueError("an event needs a type")
    if not event.id:
        event.id = str(uuid.uuid4())
    event_id = uuid.UUID(event.id)
    if not event.HasField("occurred_at"):
        event.occurred_at.GetCurrentTime()
    if not event.trace_context:
        event.trace_context.update(inject_context())
    await session.execute(
        insert(table).values(
            id=event_id,
            event_type=event.type,
            payload=json_format.MessageToDict(event),
            created_at=func.now(),
        )
    )
    # Delivered at commit, and only if the transaction commits; PostgreSQL folds the same
    # notification sent twice in one transaction into one.
    await session.execute(select(func.pg_notify(outbox_channel(table), "")))
    return event_id


def stream_fields(
    event_id: str, event_type: str, payload: Mapping[str, Any]
) -> dict[FieldT, EncodableT]:
    """The entry the relay appends to the stream for one event (str keys and values, typed
    as redis' `xadd` takes them)."""
    return {
        "id": event_id,
        "type": event_type,
        "payload": json.dumps(payload, separators=(",", ":"), sort_keys=True),
    }


def event_from_stream(fields: Mapping[Any, Any]) -> notification_pb2.Event:
    """Parse a stream entry back into the envelope; unknown fields from newer producers pass.

    Raises ValueError (json or protobuf parse errors included) when the entry is malformed.
    """
    decoded = {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in fields.items()
    }
    payload = decoded.get("payload")
    if not isinstance(payload, str):
        raise ValueError("stream entry has no payload")
    event = notification_pb2.Event()
    try:
        json_format.ParseDict(json.loads(payload), event, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise ValueError(f"stream entry payload is not an Event: {exc}") from exc
    if not event.id or not event.type:
        raise ValueError("stream entry has no event id or type")
    uuid.UUID(event.id)
    return event


class OutboxRelay(BackgroundLoop):
    """Copies committed outbox rows to the events stream, oldest first, as soon as they
    commit: woken by the NOTIFY of the committing transaction, on a connection of its own
    opened from the session factory's engine. Without one (the database refused it, or it
    dropped) it polls every `poll_interval` and tries to listen again.

    Several relays (one per replica) may run against one table: each batch is claimed with
    FOR UPDATE SKIP LOCKED, so two relays never publish the same rows at the same time.
    """

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        table: Table,
        redis: Redis,
        *,
        stream: str = DEFAULT_STREAM,
        batch: int = 100,
        poll_interval: float = 0.5,
        max_backoff: float = 30.0,
        publish_timeout: float = 5.0,
        stream_maxlen: int = DEFAULT_STREAM_MAXLEN,
        retention: timedelta | None = timedelta(days=7),
        listen: bool = True,
    ) -> None:
        self._session_factory = session_factory
        self._table = table
        self._redis = redis
        self._stream = stream
        self._batch = batch
        self._poll_interval = poll_interval
        self._max_backoff = max_backoff
        self._publish_timeout = publish_timeout
        self._stream_maxlen = stream_maxlen
        self._retention = retention
        # False: poll only, never LISTEN (a connection pooler in transaction mode cannot
        # hold a LISTEN; the benchmark's baseline).
        self._listen_enabled = listen
        self._listener: asyncpg.Connection | None = None
        self._next_listen_at = 0.0

    @property
    def listening(self) -> bool:
        """Whether a NOTIFY wakes this relay now (else it polls every `poll_interval`)."""
        return self._listener is not None and not self._listener.is_closed()

    async def _listen(self) -> None:
        """Open the listening connection, unless one is open or the last try was too recent;
        a failure is logged and leaves the relay polling."""
        loop = asyncio.get_running_loop()
        engine = self._session_factory.kw.get("bind")
        if (
            not self._listen_enabled
            or self.listening
            or not isinstance(engine, AsyncEngine)
            or loop.time() < self._next_listen_at
        ):
            return
        self._next_listen_at = loop.time() + LISTEN_RETRY_SECONDS
        channel = outbox_channel(self._table)
        # The parameters SQLAlchemy itself connects with (host, port, credentials, ssl).
        _, parameters = engine.dialect.create_connect_args(engine.url)
        connection: asyncpg.Connection | None = None
        try:
            connection = await asyncpg.connect(**parameters, timeout=self._publish_timeout)
            await connection.add_listener(channel, lambda *_: self.wake())
        except Exception:
            # Any failure, whatever the driver raises: listening only makes the relay sooner,
            # so it must never stop the relay; it polls until the next try.
            if connection is not None:
                connection.terminate()
            logger.warning(
                "outbox relay cannot LISTEN; it polls instead",
                extra={"channel": channel, "poll_interval_s": self._poll_interval},
                exc_info=True,
            )
            return
        connection.add_termination_listener(self._listener_lost)
        self._listener = connection
        logger.info("outbox relay listening", extra={"channel": channel})

    def _listener_lost(self, *_: object) -> None:
        """The listening connection ended: a pass now (a commit may have gone unheard), and
        a new connection at once."""
        self._listener = None
        self._next_listen_at = 0.0
        self.wake()

    async def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError, asyncpg.PostgresError, TimeoutError):
                await listener.close(timeout=self._publish_timeout)

    @property
    def _poll_seconds(self) -> float:
        """Between passes with nothing woken: rarely when listening, a safety net only."""
        if self.listening:
            return max(self._poll_interval, LISTENING_POLL_SECONDS)
        return self._poll_interval

    async def publish_pending(self) -> int:
        """Publish one batch; returns how many rows it published.

        The rows stay locked while they are appended, and are marked published in the same
        transaction, so a failure anywhere leaves them unpublished for the next pass.
        """
        t = self._table
        async with self._session_factory() as session, session.begin():
            rows = (
                await session.execute(
                    select(t.c.id, t.c.event_type, t.c.payload)
                    .where(t.c.published_at.is_(None))
                    .order_by(t.c.created_at)
                    .limit(self._batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            async with asyncio.timeout(self._publish_timeout):
                async with self._redis.pipeline(transaction=False) as pipe:
                    for row in rows:
                        pipe.xadd(
                            self._stream,
                            stream_fields(str(row.id), row.event_type, row.payload),
                            maxlen=self._stream_maxlen,
                            approximate=True,
                        )
                    await pipe.execute()
            await session.execute(
                update(t)
                .where(t.c.id.in_([row.id for row in rows]))
                .values(published_at=func.now())
            )
        return len(rows)

    async def purge_published(self) -> int:
        """Delete rows published longer ago than the retention; they are in the stream."""
        if self._retention is None:
            return 0
        t = self._table
        async with self._session_factory() as session, session.begin():
            result = await session.execute(
                delete(t).where(t.c.published_at < func.now() - self._retention)
            )
        return int(getattr(result, "rowcount", 0) or 0)

    async def _loop(self) -> None:
        """Publish until stop(); when Redis or the database is down, back off and retry."""
        try:
            await self._publish_until_stopped()
        finally:
            await self._close_listener()

    async def _publish_until_stopped(self) -> None:
        failures = 0
        loop = asyncio.get_running_loop()
        next_purge = loop.time()
        while not self.stopping:
            await self._listen()
            try:
                published = await self.publish_pending()
                if loop.time() >= next_purge:
                    await self.purge_published()
                    next_purge = loop.time() + 3600
            except Exception:
                failures += 1
                delay = min(self._max_backoff, self._poll_interval * 2**failures)
                delay = delay / 2 + random.uniform(0, delay / 2)
                logger.warning(
                    "outbox relay could not publish; events stay in the outbox",
                    extra={"stream": self._stream, "failures": failures, "retry_in_s": delay},
                    exc_info=failures == 1,
                )
                await self.pause(delay)
                continue
            if failures:
                logger.info("outbox relay recovered", extra={"after_failures": failures})
                failures = 0
            if published < self._batch:
                # A NOTIFY during the pass ends this at once: its commit may have come after
                # the pass read the table.
                await self.idle(self._poll_seconds)
