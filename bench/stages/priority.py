"""Callers against job work: one caller's latency while a job keeps the micro-batcher busy.

The detection service's micro-batcher (detection_service/pipeline/batcher.py) is driven in
this process against the stack's Triton, as the service builds it, in three windows:

- idle: one caller (c=1, Detect's path: the interactive lane) and nothing else;
- one line: the same caller while ``JOB_WORKERS x DETECT_MAX_BATCH`` job loops (the items a
  job worker has in flight) submit images in the same lane, which is how every image queued
  before lanes existed;
- two lanes: the same job loops in the background lane (ADR 0028), as job items and video
  frames are now sent, with the service's default ``DETECT_BACKGROUND_SHARE``.

Reported per window: the caller's p50/p95 and images/s, the job loops' images/s over the
window, and the ratios two lanes / one line and busy / idle, from this one run. The batcher
runs in process rather than through a running job so that the job's load is the same in the
two busy windows (a real job would finish, or be at a different point, by the second).
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

STAGE = "priority"
MODEL = "yolov8n"
CONDITIONS = ("idle", "one_line", "two_lanes")
# The job loops' lane in each busy window.
_JOB_LANE = {"one_line": Lane.INTERACTIVE, "two_lanes": Lane.BACKGROUND}
_CLASS_COUNT = 80
# Short windows: the stage runs last in `make bench`, within its ten minutes.
MAX_WARMUP_S = 1.0
MAX_MEASURE_S = 6.0


@dataclass(frozen=True)
class Defaults:
    """The detection service's own settings for what the stage builds (its defaults)."""

    max_batch: int
    max_inflight_batches: int
    max_queue: int
    background_share: float
    job_loops: int
    decode_workers: int

    @classmethod
    def of_the_service(cls) -> "Defaults":
        def default(name: str) -> Any:
            return DetectionSettings.model_fields[name].get_default(call_default_factory=True)

        return cls(
            max_batch=default("detect_max_batch"),
            max_inflight_batches=default("detect_max_inflight_batches"),
            max_queue=default("detect_max_queue"),
            background_share=default("detect_background_share"),
            # Each job worker keeps DETECT_MAX_BATCH items in flight (server.py).
            job_loops=default("job_workers") * default("detect_max_batch"),
            decode_workers=default("decode_workers"),
        )


def _request(image: Image) -> ImageRequest:
    header = read_header(image.data)
    return ImageRequest(
        data=image.data,
        width=header.width,
        height=header.height,
        confidence=0.25,
        iou=0.7,
        max_detections=300,
        class_ids=None,
    )


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
            await batchers.infer(MODEL, request, class_count=_CLASS_COUNT, time_limit_s=timeout_s)
            return 1

        yield send

    return factory


async def _window(
    condition: str,
    batchers: ModelBatchers,
    requests: list[ImageRequest],
    settings: LoadSettings,
    job_loops: int,
) -> dict[str, Any]:
    """One condition: the caller's closed loop, with the job loops running beside it."""
    done = 0
    stop = asyncio.Event()

    async def job_loop(index: int) -> None:
        nonlocal done
        position = index
        while not stop.is_set():
            request = requests[position % len(requests)]
            position += 1
            await batchers.infer(
                MODEL,
                request,
                class_count=_CLASS_COUNT,
                time_limit_s=settings.request_timeout_s,
                lane=_JOB_LANE[condition],
            )
            done += 1

    jobs = (
        [asyncio.create_task(job_loop(i)) for i in range(job_loops)]
        if condition in _JOB_LANE
        else []
    )
    started = time.perf_counter()
    try:
        result = await closed_loop(
            _caller(batchers, requests, settings.request_timeout_s), settings
        )
        elapsed = time.perf_counter() - started
        job_images = done
    finally:
        stop.set()
        await asyncio.gather(*jobs, return_exceptions=True)
    for job in jobs:
        if job.done() and not job.cancelled() and job.exception() is not None:
            raise RuntimeError(f"priority {condition}: a job loop failed: {job.exception()!r}")
    result.require_clean(f"priority {condition}")
    return _describe(condition, result, job_images=job_images, elapsed_s=elapsed)


def _describe(
    condition: str, result: LoadResult, *, job_images: int, elapsed_s: float
) -> dict[str, Any]:
    latency = latency_summary(result.latencies_ms)
    section = {
        "condition": condition,
        "caller_requests": len(result.latencies_ms),
        "caller_p50_ms": round(latency.p50, 2),
        "caller_p95_ms": round(latency.p95, 2),
        "caller_ips": round(result.throughput, 2),
        # Over the whole condition (warm-up included): the job loops never pause.
        "job_ips": round(job_images / elapsed_s, 2) if elapsed_s > 0 else 0.0,
    }
    logger.info(
        "priority %-9s caller p50 %8.2f ms  p95 %8.2f ms   job loops %7.2f img/s",
        condition,
        section["caller_p50_ms"],
        section["caller_p95_ms"],
        section["job_ips"],
    )
    return section


def summarize(windows: list[dict[str, Any]], defaults: Defaults) -> dict[str, Any]:
    """The result section from the three windows, with the ratios a reader compares."""
    by = {window["condition"]: window for window in windows}
    idle, one, two = by["idle"], by["one_line"], by["two_lanes"]

    def ratio(a: float, b: float) -> float | None:
        return round(a / b, 4) if b else None

    return {
        "concurrency": 1,
        "job_loops": defaults.job_loops,
        "background_share": defaults.background_share,
        "windows": windows,
        "two_lanes_over_one_line": {
            "caller_p50": ratio(two["caller_p50_ms"], one["caller_p50_ms"]),
            "caller_p95": ratio(two["caller_p95_ms"], one["caller_p95_ms"]),
            "job_ips": ratio(two["job_ips"], one["job_ips"]),
        },
        "busy_over_idle_p50": {
            "one_line": ratio(one["caller_p50_ms"], idle["caller_p50_ms"]),
            "two_lanes": ratio(two["caller_p50_ms"], idle["caller_p50_ms"]),
        },
    }


async def run(
    ctx: StageContext, *, triton_url: str, job_loops: int | None = None
) -> dict[str, Any] | None:
    """The priority section of the result, or None when the budget does not allow it.
    ``job_loops``: how many job loops run beside the caller (None: as many as the service's
    job workers keep in flight)."""
    settings = LoadSettings(
        concurrency=1,
        warmup_s=min(ctx.config.warmup_s, MAX_WARMUP_S),
        measure_s=min(ctx.config.measure_s, MAX_MEASURE_S),
        max_requests=ctx.config.max_requests,
        request_timeout_s=ctx.config.request_timeout_s,
    )
    if not ctx.within_budget(STAGE, seconds=len(CONDITIONS) * window_estimate_s(settings)):
        return None
    defaults = Defaults.of_the_service()
    if job_loops is not None:
        defaults = replace(defaults, job_loops=job_loops)
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
        background_share=defaults.background_share,
    )
    batchers.start()
    try:
        windows = [
            await _window(condition, batchers, requests, settings, defaults.job_loops)
            for condition in CONDITIONS
        ]
    finally:
        await batchers.stop()
        await batchers.close()
        executor.shutdown()
    return summarize(windows, defaults)


def markdown(section: Mapping[str, Any]) -> list[str]:
    """The result section as Markdown lines for bench/report.py."""
    rows = [
        f"| {w['condition']} | {w['caller_p50_ms']} | {w['caller_p95_ms']} | {w['job_ips']} |"
        for w in section["windows"]
    ]
    ratios, busy = section["two_lanes_over_one_line"], section["busy_over_idle_p50"]
    return [
        "## Callers against job work: the micro-batcher at c=1 beside job loops",
        "",
        f"One caller (Detect's lane) alone, then beside {section['job_loops']} job loops in the"
        " same line (before lanes), then with the job loops in the background lane (share"
        f" {section['background_share']}).",
        "",
        "| window | caller p50 ms | caller p95 ms | job loops img/s |",
        "| --- | --- | --- | --- |",
        *rows,
        "",
        f"Two lanes / one line: caller p50 {ratios['caller_p50']}, p95 {ratios['caller_p95']},"
        f" job img/s {ratios['job_ips']}. Busy / idle caller p50: one line"
        f" {busy['one_line']}, two lanes {busy['two_lanes']}.",
        "",
    ]
