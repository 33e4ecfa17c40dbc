"""Job scheduling (ADR 0044): what a job worker's question "does this job give way?" costs,
from one run.

Before it starts a pending job, a worker asks `jobs.service.give_way` whether another account
queued behind should go first. The stage asks it directly against the stack's PostgreSQL
(the detection schema its service migrated), over synthetic rows it writes and removes: one
pending job that asks, and behind its message a backlog of N pending jobs of another account
that stands after it (one job running, served a moment ago), so that no turn is owed and the
whole question is read, the most it reads. Reported per N: the median and p90 of the calls,
and the median over the median with no backlog, as a ratio from this run.

Why it matters: the question is on the path of every message a worker reads, and what it
reads grows with the pending jobs of other accounts queued behind, which
MAX_UNFINISHED_JOBS_PER_USER bounds for each account.
"""

import statistics
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.stages import StageContext, logger
from bench.stats import percentile, ratio
from detection_service.jobs import service
from detection_service.jobs.models import PENDING, PROCESSING, jobs
from objectvision_common.db import create_engine_for, session_factory

STAGE = "scheduling"
CALL = "detection_service.jobs.service.give_way"
# Pending jobs of the other account behind the asking job's message (quick, full), and calls
# per backlog.
BACKLOGS = {True: (0, 1000), False: (0, 1000, 10000)}
ROUNDS = {True: 50, False: 200}
# What the lease of a live worker is in a default deployment (half of JOB_CLAIM_IDLE_MS).
LEASE = timedelta(seconds=15)
# The most the stage takes on the 2-core machine (about 10 s measured in full), for the budget.
_ESTIMATE_S = 60.0
_INSERT_CHUNK = 5000


def _job_row(user_id: str, *, at: datetime, status: str = PENDING) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "user_id": user_id,
        "status": status,
        "kind": "batch",
        "total": 1,
        "params": {},
        "created_at": at,
        "updated_at": at,
        "heartbeat_at": at,
        "queued_at": at,
        "started_at": at if status == PROCESSING else None,
    }


async def _insert(
    sessions: async_sessionmaker[AsyncSession], rows: Sequence[dict[str, Any]]
) -> None:
    async with sessions.begin() as session:
        for start in range(0, len(rows), _INSERT_CHUNK):
            await session.execute(sa.insert(jobs), list(rows[start : start + _INSERT_CHUNK]))


async def _ask(
    sessions: async_sessionmaker[AsyncSession], job_id: uuid.UUID, message_at: datetime
) -> tuple[float, bool]:
    """One question, in its own transaction as a worker asks it: milliseconds, answer."""
    started = time.perf_counter()
    async with sessions.begin() as session:
        gives_way = await service.give_way(
            session=session, job_id=job_id, message_queued_at=message_at, lease=LEASE
        )
    return (time.perf_counter() - started) * 1000, gives_way


async def measure(database_url: str, *, backlogs: Sequence[int], rounds: int) -> dict[str, Any]:
    """The figures for `backlogs` (ascending), `rounds` calls each, over rows removed after."""
    engine = create_engine_for(database_url, pool_size=2)
    sessions = session_factory(engine)
    tag = uuid.uuid4().hex[:8]
    asking, other = f"bench-scheduling-{tag}-asking", f"bench-scheduling-{tag}-other"
    now = datetime.now(UTC)
    message_at = now - timedelta(minutes=10)
    asker = _job_row(asking, at=message_at)
    rows: list[dict[str, Any]] = []
    try:
        await _insert(sessions, [asker, _job_row(other, at=now, status=PROCESSING)])
        queued = 0
        for backlog in backlogs:
            await _insert(
                sessions,
                [
                    _job_row(other, at=message_at + timedelta(microseconds=1 + n))
                    for n in range(queued, backlog)
                ],
            )
            queued = max(queued, backlog)
            async with engine.connect() as connection:
                await connection.execute(sa.text("ANALYZE detection.jobs"))
            calls = [await _ask(sessions, asker["id"], message_at) for _ in range(rounds)]
            if any(gives_way for _, gives_way in calls):
                raise RuntimeError("the asking job gave way: the backlog is not what it should be")
            times = sorted(ms for ms, _ in calls)
            rows.append(
                {
                    "pending_behind": backlog,
                    "calls": rounds,
                    "median_ms": round(statistics.median(times), 3),
                    "p90_ms": round(percentile(times, 90), 3),
                }
            )
            logger.info(
                "%-13s backlog %6d  median %6.2f ms  p90 %6.2f ms",
                STAGE,
                backlog,
                rows[-1]["median_ms"],
                rows[-1]["p90_ms"],
            )
    finally:
        async with sessions.begin() as session:
            await session.execute(sa.delete(jobs).where(jobs.c.user_id.in_([asking, other])))
        await engine.dispose()
    empty = rows[0]["median_ms"] if rows and rows[0]["pending_behind"] == 0 else None
    for row in rows:
        row["over_empty"] = ratio(row["median_ms"], empty)
    return {"call": CALL, "lease_s": LEASE.total_seconds(), "rows": rows}


async def run(ctx: StageContext, *, database_url: str) -> dict[str, Any] | None:
    if not ctx.within_budget(STAGE, seconds=_ESTIMATE_S):
        return None
    quick = ctx.config.quick
    return await measure(database_url, backlogs=BACKLOGS[quick], rounds=ROUNDS[quick])


def markdown(section: Mapping[str, Any]) -> list[str]:
    lines = [
        "## Job scheduling: the question before each job (ADR 0044)",
        "",
        f"`{section['call']}` against the stack's PostgreSQL: N pending jobs of another account"
        " queued behind the asking job, none owed a turn (the whole question read).",
        "",
        "| pending behind | calls | median ms | p90 ms | median / none behind |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in section["rows"]:
        over = "—" if row["over_empty"] is None else f"{row['over_empty']}"
        lines.append(
            f"| {row['pending_behind']} | {row['calls']} | {row['median_ms']} |"
            f" {row['p90_ms']} | {over} |"
        )
    lines.append("")
    return lines
