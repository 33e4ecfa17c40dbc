"""Callers against other work: one caller's latency while others keep the micro-batcher busy.

The detection service's micro-batcher (detection_service/pipeline/batcher.py) is driven in
this process against the stack's Triton, as the service builds it, in four windows:

- idle: one caller (c=1, Detect's path: the interactive lane) and nothing else;
- one line: the same caller while other loops send images in the caller's own lane and under
  its own name: one first-come line, which is how every image queued before ADR 0028;
- two lanes: the same loops as another user's job work in the background lane, as batch
  items and video frames are now sent (the service's default ``DETECT_BACKGROUND_SHARE``);
- neighbour: the same loops as another user's Detect calls in the caller's lane, where
  users take turns.

The other loops number twice what the batcher keeps in flight (``DETECT_MAX_INFLIGHT_BATCHES
x DETECT_MAX_BATCH``), so that half of them wait: that backlog is what lanes and turns
reorder. At or below the in-flight capacity nothing waits (the job workers alone keep
``JOB_WORKERS x DETECT_MAX_BATCH`` images in flight, exactly that capacity by default), and a
caller then waits only for a batch already at Triton, which no queue order can shorten.

Reported per window: the caller's p50/p95 and images/s, the other loops' images/s, and each
busy window's ratios to one line, from this one run. The batcher runs in process rather
than through a running job so that the load beside the caller is the same in every busy
window (a real job would finish, or be at a different point, by the next).
"""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from prometheus_client import CollectorRegistry

from bench.images import Image
from bench.loadgen import LoadResult, LoadSettings, Send, WorkerFactory, closed_loop
from bench.stages import StageContext, logger, window_estimate_s
from bench.stats import summarize as latency_summary
from detection_service.config import DetectionSettings
from detection_service.metrics import DetectionMetrics
from detection_service.pipeline.batcher import ModelBatchers
from detection_service.pipeline.header import read_header
from detection_service.pipeline.lanes import Lane
from detection_service.pipeline.triton import ImageRequest, TritonModel
from detection_service.pipeline.types import DetectionOptions

STAGE = "priority"
MODEL = "yolov8n"
CALLER = "caller"


@dataclass(frozen=True)
class Condition:
    """A window: who sends the other loops' images, and in which lane (None: nobody)."""

    name: str
    others_lane: Lane | None
    others_user: str


CONDITIONS = (
    Condition("idle", None, CALLER),
    Condition("one_line", Lane.INTERACTIVE, CALLER),
    Condition("two_lanes", Lane.BACKGROUND, "job-owner"),
    Condition("neighbour", Lane.INTERACTIVE, "neighbour"),
)
BUSY = tuple(condition.name for condition in CONDITIONS[2:])
_CLASS_COUNT = 80
# A short warm-up (one window's first answers): the stage runs last in `make bench`. The
# windows keep the run's length: busy, a caller's answer takes seconds on a 2-core machine.
MAX_WARMUP_S = 1.0


@dataclass(frozen=True)
class Defaults:
    """The detection service's own settings for what the stage builds (its defaults)."""

    max_batch: int
    max_inflight_batches: int
    max_queue: int
    max_queue_per_user: int
    background_share: float
    other_loops: int
    decode_workers: int

    @classmethod
    def of_the_service(cls) -> "Defaults":
        def default(name: str) -> Any:
            return DetectionSettings.model_fields[name].get_default(call_default_factory=True)

        return cls(
            max_batch=default("detect_max_batch"),
            max_inflight_batches=default("detect_max_inflight_batches"),
            max_queue=default("detect_max_queue"),
            max_queue_per_user=default("detect_max_queue_per_user"),
            background_share=default("detect_background_share"),
            other_loops=2 * default("detect_max_inflight_batches") * default("detect_max_batch"),
            decode_workers=default("decode_workers"),
        )


def _request(image: Image) -> ImageRequest:
    options = DetectionOptions(confidence=0.25, iou=0.7, max_detections=300)
    return ImageRequest.of(image.data, read_header(image.data), options)


def _caller(
    batchers: ModelBatchers, requests: list[ImageRequest], timeout_s: float
) -> WorkerFactory:
    @contextlib.asynccontextmanager
    async def factory(index: int) -> AsyncIterator[Send]:
        position = index

        async def send() -> int:
            nonlocal position
            request = requests[position % len(requests)]
            position += 1
            await batchers.infer(
                MODEL,
                request,
                user_id=CALLER,
                class_count=_CLASS_COUNT,
                time_limit_s=timeout_s,
            )
            return 1

        yield send

    return factory


async def _window(
    condition: Condition,
    batchers: ModelBatchers,
    requests: list[ImageRequest],
    settings: LoadSettings,
    loops: int,
) -> dict[str, Any]:
    """One condition: the caller's closed loop, with the other loops running beside it."""
    done = 0
    stop = asyncio.Event()

    async def other_loop(index: int, lane: Lane) -> None:
        nonlocal done
        position = index
        while not stop.is_set():
            request = requests[position % len(requests)]
            position += 1
            await batchers.infer(
                MODEL,
                request,
                user_id=condition.others_user,
                class_count=_CLASS_COUNT,
                time_limit_s=settings.request_timeout_s,
                lane=lane,
            )
            done += 1

    lane = condition.others_lane
    jobs = [asyncio.create_task(other_loop(i, lane)) for i in range(loops)] if lane else []
    started = time.perf_counter()
    try:
        result = await closed_loop(
            _caller(batchers, requests, settings.request_timeout_s), settings
        )
        elapsed = time.perf_counter() - started
        other_images = done
    finally:
        stop.set()
        await asyncio.gather(*jobs, return_exceptions=True)
    for job in jobs:
        if job.done() and not job.cancelled() and job.exception() is not None:
            raise RuntimeError(f"priority {condition.name}: a loop failed: {job.exception()!r}")
    result.require_clean(f"priority {condition.name}")
    return _describe(condition.name, result, other_images=other_images, elapsed_s=elapsed)


def _describe(
    condition: str, result: LoadResult, *, other_images: int, elapsed_s: float
) -> dict[str, Any]:
    latency = latency_summary(result.latencies_ms)
    section = {
        "condition": condition,
        "caller_requests": len(result.latencies_ms),
        "caller_p50_ms": round(latency.p50, 2),
        "caller_p95_ms": round(latency.p95, 2),
        "caller_ips": round(result.throughput, 2),
        # Over the whole condition (warm-up included): the other loops never pause.
        "others_ips": round(other_images / elapsed_s, 2) if elapsed_s > 0 else 0.0,
    }
    logger.info(
        "priority %-9s caller p50 %8.2f ms  p95 %8.2f ms   others %7.2f img/s",
        condition,
        section["caller_p50_ms"],
        section["caller_p95_ms"],
        section["others_ips"],
    )
    return section


def summarize(windows: list[dict[str, Any]], defaults: Defaults) -> dict[str, Any]:
    """The result section from the four windows, with the ratios a reader compares."""
    by = {window["condition"]: window for window in windows}
    one, idle = by["one_line"], by["idle"]

    def ratio(a: float, b: float) -> float | None:
        return round(a / b, 4) if b else None

    return {
        "concurrency": 1,
        "loops": defaults.other_loops,
        "background_share": defaults.background_share,
        "max_queue_per_user": defaults.max_queue_per_user,
        "windows": windows,
        "over_one_line": {
            name: {
                "caller_p50": ratio(by[name]["caller_p50_ms"], one["caller_p50_ms"]),
                "caller_p95": ratio(by[name]["caller_p95_ms"], one["caller_p95_ms"]),
                "others_ips": ratio(by[name]["others_ips"], one["others_ips"]),
            }
            for name in BUSY
        },
        "busy_over_idle_p50": {
            name: ratio(by[name]["caller_p50_ms"], idle["caller_p50_ms"])
            for name in ("one_line", *BUSY)
        },
    }


async def run(
    ctx: StageContext, *, triton_url: str, loops: int | None = None
) -> dict[str, Any] | None:
    """The priority section of the result, or None when the budget does not allow it.
    ``loops``: how many loops run beside the caller (None: twice the batcher's in-flight
    capacity)."""
    settings = LoadSettings(
        concurrency=1,
        warmup_s=min(ctx.config.warmup_s, MAX_WARMUP_S),
        measure_s=ctx.config.measure_s,
        max_requests=ctx.config.max_requests,
        request_timeout_s=ctx.config.request_timeout_s,
    )
    if not ctx.within_budget(STAGE, seconds=len(CONDITIONS) * window_estimate_s(settings)):
        return None
    defaults = Defaults.of_the_service()
    if loops is not None:
        defaults = replace(defaults, other_loops=loops)
    requests = [_request(image) for image in ctx.images]
    executor = ThreadPoolExecutor(defaults.decode_workers, thread_name_prefix="bench-priority")
    batchers = ModelBatchers(
        lambda name: TritonModel(triton_url, model_name=name),
        executor=executor,
        metrics=DetectionMetrics.create(CollectorRegistry()),
        max_batch=defaults.max_batch,
        max_delay_s=0.0,
        request_timeout_s=ctx.config.request_timeout_s,
        max_inflight_batches=defaults.max_inflight_batches,
        max_queue=defaults.max_queue,
        max_queue_per_user=defaults.max_queue_per_user,
        background_share=defaults.background_share,
    )
    batchers.start()
    try:
        windows = [
            await _window(condition, batchers, requests, settings, defaults.other_loops)
            for condition in CONDITIONS
        ]
    finally:
        await batchers.stop()
        await batchers.close()
        executor.shutdown()
    return summarize(windows, defaults)


def markdown(section: Mapping[str, Any]) -> list[str]:
    """The result section as Markdown lines for bench/report.py."""
    ratios = section["over_one_line"]
    rows = [
        f"| {w['condition']} | {w['caller_p50_ms']} | {w['caller_p95_ms']} | {w['others_ips']} |"
        f" {ratios.get(w['condition'], {}).get('caller_p50', '')} |"
        for w in section["windows"]
    ]
    return [
        "## Callers against other work: the micro-batcher at c=1 beside other loops",
        "",
        f"One caller (Detect's lane) alone; beside {section['loops']} loops in its own line and"
        " name (one first-come line, as before lanes); beside them as another user's job work"
        f" in the background lane (share {section['background_share']}); beside them as"
        " another user's Detect calls in the caller's lane (users take turns).",
        "",
        "| window | caller p50 ms | caller p95 ms | others img/s | caller p50 / one line |",
        "| --- | --- | --- | --- | --- |",
        *rows,
        "",
    ]
