"""One benchmark run: stages in order, the whole stack started once, results written.

Order: raw (in process), the naive app, tracking's in-process part, then the real stack (paired
c=1 rounds, tracing on against off, result-cache hits against misses, Triton, detection
service, gateway, int8 against fp32, a 4K frame tiled against whole, a caller beside job work
in the micro-batcher's lanes, tracked against untracked streams, the live WebSocket against a
REST request a frame, and last the job worker's give-way question and the outbox against its
PostgreSQL and Redis) started once through `objectvision_devstack.Stack`
on free loopback ports with its own data directory, and stopped before the results are
written.
A stage that fails is recorded as skipped with its error and the run goes on.
"""

import asyncio
import logging
import os
import shutil
import tempfile
from collections.abc import Awaitable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.config import REPOSITORY, BenchConfig
from bench.cpu import CpuMeter
from bench.images import load_images
from bench.machine import machine_info
from bench.records import LOADGEN, SCHEMA_VERSION
from bench.stages import (
    Budget,
    StageContext,
    cache,
    detection,
    gateway,
    live,
    models,
    naive,
    outbox,
    paired,
    priority,
    raw,
    scheduling,
    tiling,
    tracing,
    tracking,
    triton,
)
from bench.targets import ratios
from objectvision_devstack.processes import free_port
from objectvision_devstack.stack import Stack, StackConfig

logger = logging.getLogger("bench")

STACK_STAGES = (
    "triton",
    "detect",
    "detect_stream",
    "gateway",
    "models",
    "tiling",
    "tracing",
    "cache",
    "priority",
    "tracking",
    "live",
    "scheduling",
    "outbox",
)
# int8 against fp32: c=1 rounds, and the concurrency of the throughput windows.
MODELS_ROUNDS = {True: 10, False: 30}
MODELS_CONCURRENCY = {True: 8, False: 16}
# Tracked against untracked streams: streams at once (each worker one), quick and full.
TRACKING_CONCURRENCY = {True: 4, False: 8}
# Processes whose CPU serves each stack stage (all are measured; these are summed per image).
INVOLVED = {
    "triton": ["triton"],
    "detect": ["detection", "triton"],
    "gateway": ["gateway", "auth", "detection", "triton", "redis", "postgres"],
}


async def _guarded(ctx: StageContext, stage: str, work: Awaitable[None]) -> None:
    """Run a stage; an error skips what is left of it, not the run."""
    try:
        await work
    except Exception as error:
        logger.exception("stage %s failed", stage)
        ctx.skip(stage, f"failed: {error!r}"[:300])


def _start_stack(config: BenchConfig, data_dir: Path) -> Stack:
    stack = Stack(
        StackConfig(
            data_dir=data_dir,
            gateway_port=free_port(),
            served_model=config.served_model.resolve(),
            # The stages measure inference: every request must reach it, not the result cache
            # (the same ten images go round and round).
            extra_env={"LOG_LEVEL": config.log_level, "RESULT_CACHE_TTL_SECONDS": "0"},
        )
    )
    try:
        stack.start()
    except BaseException:
        stack.stop()
        raise
    return stack


async def _stack_stages(ctx: StageContext, work_dir: Path) -> None:
    config = ctx.config
    if not config.served_model.exists():
        ctx.skip("triton", f"{config.served_model} is missing: run `make model`")
        return
    logger.info("starting the stack (PostgreSQL, Redis, Triton, services, gateway)")
    stack = await asyncio.to_thread(_start_stack, config, work_dir / "stack")
    try:
        for name, process in stack.processes.items():
            ctx.meter.add(name, process.pid)
        triton_url = stack.triton_url
        # First: cheap (seconds), and the target it serves is the one drift skews most.
        if {"raw", "detect", "gateway"} <= set(config.stages) and config.paired_rounds:
            await _guarded(ctx, "paired", _paired(ctx, stack))
        # Early, like paired (c=1, about a minute), so that the sweeps' use of the budget
        # cannot crowd it out; it leaves the gateway and services restarted with tracing off.
        if "tracing" in config.stages:
            await _guarded(ctx, "tracing", _tracing(ctx, stack))
        # Also c=1 and short (two windows of a few seconds, three restarts of detection-service
        # at most); it leaves detection-service restarted with the stack's own cache setting.
        if "cache" in config.stages:
            await _guarded(ctx, "cache", _cache(ctx, stack))
        if "triton" in config.stages:
            await _guarded(
                ctx, "triton", triton.run(ctx, url=triton_url, involved=INVOLVED["triton"])
            )
        if "detect" in config.stages or "detect_stream" in config.stages:
            metrics_port = stack.env["DETECTION_METRICS_PORT"]
            await _guarded(
                ctx,
                "detect",
                detection.run(
                    ctx,
                    address=stack.service_address("detection"),
                    secret=stack.env["SERVICE_TOKEN_SECRET"],
                    metrics_url=f"http://127.0.0.1:{metrics_port}/metrics",
                    triton_url=triton_url,
                    involved=INVOLVED["detect"],
                ),
            )
        if "gateway" in config.stages:
            await _guarded(
                ctx,
                "gateway",
                gateway.run(ctx, base_url=stack.gateway_url, involved=INVOLVED["gateway"]),
            )
        if "models" in config.stages:
            await _guarded(ctx, "models", _models(ctx, stack))
        # c=1 paired rounds, about 20 s: a 4K frame whole against tiled (ADR 0051).
        if "tiling" in config.stages:
            await _guarded(ctx, "tiling", _tiling(ctx, stack))
        # Three short windows against Triton alone; among the first to go when time is short.
        if "priority" in config.stages:
            await _guarded(ctx, "priority", _priority(ctx, triton_url))
        # Late, among the first to go: four windows of half the configured length (its
        # in-process part ran before the stack, so a short budget still leaves that).
        if "tracking" in config.stages:
            await _guarded(ctx, "tracking", _tracking_stream(ctx, stack))
        # Twelve short windows through the gateway, REST against the live WebSocket and one
        # stream pipelined; after tracking, so the first to go when the budget is short.
        if "live" in config.stages:
            await _guarded(ctx, "live", _live(ctx, stack))
        # Seconds, against the stack's PostgreSQL alone.
        if "scheduling" in config.stages:
            await _guarded(ctx, "scheduling", _scheduling(ctx, stack))
        # Seconds, against the stack's PostgreSQL and Redis alone (its own table and stream).
        if "outbox" in config.stages:
            await _guarded(ctx, "outbox", _outbox(ctx, stack))
        exited = stack.exited()
        if exited:
            ctx.note(f"stack processes exited during the run: {', '.join(exited)}")
    finally:
        for name in stack.processes:
            ctx.meter.remove(name)
        await asyncio.to_thread(stack.stop)


async def _paired(ctx: StageContext, stack: Stack) -> None:
    ctx.paired = await paired.run(
        ctx,
        rounds=ctx.config.paired_rounds,
        address=stack.service_address("detection"),
        secret=stack.env["SERVICE_TOKEN_SECRET"],
        gateway_url=stack.gateway_url,
    )


async def _models(ctx: StageContext, stack: Stack) -> None:
    ctx.models = await models.run(
        ctx,
        address=stack.service_address("detection"),
        secret=stack.env["SERVICE_TOKEN_SECRET"],
        rounds=MODELS_ROUNDS[ctx.config.quick],
        concurrency=MODELS_CONCURRENCY[ctx.config.quick],
    )


async def _tiling(ctx: StageContext, stack: Stack) -> None:
    ctx.tiling = await tiling.run(
        ctx, address=stack.service_address("detection"), secret=stack.env["SERVICE_TOKEN_SECRET"]
    )


async def _tracing(ctx: StageContext, stack: Stack) -> None:
    ctx.tracing = await tracing.run(ctx, stack=stack)


async def _cache(ctx: StageContext, stack: Stack) -> None:
    ctx.cache = await cache.run(ctx, stack=stack)


async def _priority(ctx: StageContext, triton_url: str) -> None:
    ctx.priority = await priority.run(ctx, triton_url=triton_url)


async def _live(ctx: StageContext, stack: Stack) -> None:
    ctx.live = await live.run(ctx, base_url=stack.gateway_url, involved=INVOLVED["gateway"])


async def _scheduling(ctx: StageContext, stack: Stack) -> None:
    ctx.scheduling = await scheduling.run(ctx, database_url=stack.database_url)


async def _outbox(ctx: StageContext, stack: Stack) -> None:
    ctx.outbox = await outbox.run(ctx, database_url=stack.database_url, redis_url=stack.redis_url)


def _keep_tracking(ctx: StageContext, part: str, found: dict[str, Any] | None) -> None:
    """Record one part of the tracking section; the other stays as it was (None: not run)."""
    if found is not None:
        ctx.tracking = {"in_process": None, "stream": None, **(ctx.tracking or {}), part: found}


async def _tracking_in_process(ctx: StageContext) -> None:
    _keep_tracking(ctx, "in_process", await tracking.in_process(ctx))


async def _tracking_stream(ctx: StageContext, stack: Stack) -> None:
    found = await tracking.stream(
        ctx,
        address=stack.service_address("detection"),
        secret=stack.env["SERVICE_TOKEN_SECRET"],
        concurrency=TRACKING_CONCURRENCY[ctx.config.quick],
    )
    _keep_tracking(ctx, "stream", found)


def _config_json(config: BenchConfig, image_count: int) -> dict[str, Any]:
    return {
        "stages": list(config.stages),
        "raw_batches": list(config.raw_batches),
        "concurrencies": {
            stage: list(config.concurrencies_for(stage))
            for stage in config.stages
            if stage != "raw"
        },
        "warmup_s": config.warmup_s,
        "measure_s": config.measure_s,
        "max_requests": config.max_requests,
        "paired_rounds": config.paired_rounds,
        "request_timeout_s": config.request_timeout_s,
        "budget_s": config.budget_s,
        "model": str(config.model),
        "served_model": str(config.served_model),
        "images": str(config.images),
        "image_count": image_count,
    }


async def run(config: BenchConfig) -> dict[str, Any]:
    """Measure every configured stage and return the result document (not yet written)."""
    started = datetime.now(UTC)
    machine = machine_info(REPOSITORY, quick=config.quick)
    meter = CpuMeter()
    meter.add(LOADGEN, os.getpid(), tree=False)
    images = load_images(config.images)
    ctx = StageContext(config=config, images=images, meter=meter, budget=Budget(config.budget_s))
    work_dir = Path(tempfile.mkdtemp(prefix="objectvision-bench-"))
    try:
        if "raw" in config.stages:
            await _guarded(ctx, "raw", raw.run(ctx))
        if "naive" in config.stages:
            await _guarded(ctx, "naive", naive.run(ctx, log_dir=work_dir / "logs"))
        # In this process, seconds, no server: before the stack, on a quieter machine.
        if "tracking" in config.stages:
            await _guarded(ctx, "tracking", _tracking_in_process(ctx))
        if any(stage in config.stages for stage in STACK_STAGES):
            await _guarded(ctx, "stack", _stack_stages(ctx, work_dir))
    finally:
        failed = any(skip.reason.startswith("failed") for skip in ctx.skipped)
        if failed:
            ctx.note(f"logs of the failed run are kept in {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
    finished = datetime.now(UTC)
    points = [point.to_json() for point in ctx.points]
    return {
        "schema_version": SCHEMA_VERSION,
        "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "finished_at": finished.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "duration_s": round((finished - started).total_seconds(), 1),
        "machine": {**machine, "loadavg_at_end": [round(x, 2) for x in os.getloadavg()]},
        "config": _config_json(config, len(images)),
        "points": points,
        "paired": ctx.paired,
        "models": ctx.models,
        "tiling": ctx.tiling,
        "tracing": ctx.tracing,
        "cache": ctx.cache,
        "priority": ctx.priority,
        "tracking": ctx.tracking,
        "live": ctx.live,
        "scheduling": ctx.scheduling,
        "outbox": ctx.outbox,
        "ratios": [ratio.to_json() for ratio in ratios(points, paired=ctx.paired)],
        "skipped": [skip.to_json() for skip in ctx.skipped],
        "notes": list(ctx.notes),
    }
