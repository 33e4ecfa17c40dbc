"""Synthetic result points, windows and documents for the report, target and stage tests,
and the context a stage test runs a stage in."""

import os
from typing import Any

from bench.config import BenchConfig
from bench.cpu import CpuMeter
from bench.images import Image
from bench.loadgen import LoadResult
from bench.records import Point
from bench.stages import Budget, StageContext
from bench.stages.switching import Window
from bench.stats import summarize


def point(
    stage: str,
    concurrency: int,
    throughput: float,
    p50: float,
    *,
    batch: int = 1,
    errors: int = 0,
    cpu_ms: float = 100.0,
) -> dict[str, Any]:
    """A point as it appears in the result JSON (built through Point, so the shape is real);
    the serving processes spend `cpu_ms` per image."""
    window = 10.0
    serving = "loadgen" if stage == "raw" else stage
    cpu_s = {"loadgen": 0.5, serving: cpu_ms / 1000 * throughput * window}
    return Point(
        stage=stage,
        concurrency=concurrency,
        batch=batch,
        requests=int(throughput * window / batch) + errors,
        images=int(throughput * window),
        errors=errors,
        error_kinds={"grpc:UNAVAILABLE": errors} if errors else {},
        error_examples=["grpc:UNAVAILABLE: down"] if errors else [],
        window_s=window,
        throughput_ips=throughput,
        latency_ms=summarize([p50 * 0.9, p50, p50 * 1.2]),
        cpu_s=cpu_s,
        involved=[serving],
        system_busy_cpu_s=12.0,
        loadavg_1m=1.5,
    ).to_json()


PAIRED = {
    "rounds": 40,
    "p50_ms": {"raw": 60.0, "detect": 66.0, "gateway": 71.0},
    "detect_minus_raw_ms": 6.0,
    "gateway_minus_raw_ms": 11.0,
    "gateway_minus_detect_ms": 5.0,
}


def document(
    points: list[dict[str, Any]], *, quick: bool = True, paired: dict[str, Any] | None = None
) -> dict[str, Any]:
    from bench.targets import ratios

    return {
        "schema_version": 1,
        "started_at": "2026-11-25T12:00:00Z",
        "finished_at": "2026-11-25T12:01:40Z",
        "duration_s": 100.0,
        "machine": {
            "cpu_model": "Test CPU",
            "logical_cores": 2,
            "physical_cores": 1,
            "usable_cores": 2,
            "memory_gib": 8.0,
            "platform": "Linux",
            "python": "3.11.7",
            "packages": {},
            "onnxruntime": "1.32.0",
            "git_revision": "abc1234",
            "quick": quick,
            "loadavg_at_start": [1.0, 1.0, 1.0],
        },
        "config": {
            "stages": ["raw", "gateway", "naive"],
            "raw_batches": [1, 4],
            "concurrencies": [1, 32],
            "warmup_s": 1.0,
            "measure_s": 3.5,
            "max_requests": 400,
            "budget_s": 100.0,
        },
        "points": points,
        "paired": paired,
        "ratios": [r.to_json() for r in ratios(points, paired=paired)],
        "skipped": [{"stage": "triton", "concurrency": None, "reason": "failed: boom"}],
        "notes": [],
    }


def window(condition: str, latencies_ms: list[float], frames: float, seconds: float) -> Window:
    """A measured window of `condition`: one request a latency, `frames` of work."""
    return Window(
        condition,
        LoadResult(
            latencies_ms=latencies_ms,
            images=len(latencies_ms),
            work_images=frames,
            requests=len(latencies_ms),
            window_s=seconds,
        ),
    )


def stage_context(
    config: BenchConfig, images: list[Image], *, budget_s: float | None = None
) -> StageContext:
    """A stage's context as the runner makes it: this process metered as the load
    generator, the budget `config`'s unless `budget_s` is given."""
    meter = CpuMeter()
    meter.add("loadgen", os.getpid(), tree=False)
    return StageContext(
        config=config,
        images=images,
        meter=meter,
        budget=Budget(config.budget_s if budget_s is None else budget_s),
    )
