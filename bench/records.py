"""What one measured point is, and how a run's points become the result document.

The document's shape is pinned by `bench/result.schema.json` (checked in bench/tests), so
the Markdown, the plot and anyone comparing two runs read the same fields.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.cpu import CpuMeter
from bench.loadgen import LoadResult
from bench.stats import LatencySummary, summarize

SCHEMA_VERSION = 1
LOADGEN = "loadgen"

STAGES = (
    "raw",
    "triton",
    "detect",
    "detect_stream",
    "gateway",
    "naive",
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
STAGE_TITLES = {
    "raw": "raw: in-process decode + letterbox + ONNX Runtime + NMS (plain model)",
    "triton": "Triton alone (gRPC, encoded files in, boxes out)",
    "detect": "detection-service gRPC Detect (1 image/call)",
    "detect_stream": "detection-service gRPC DetectStream (1 stream/worker)",
    "gateway": "gateway POST /api/v1/detect/image (multipart)",
    "naive": "naive baseline (FastAPI, ORT batch 1 per request)",
    "models": "yolov8n-int8 against yolov8n (fp32) through gRPC Detect, as ratios",
    "tiling": "tile_size 640 against the whole image alone on a 4K frame through gRPC Detect",
    "tracing": "tracing on against off through the gateway at c=1, as ratios",
    "cache": "result cache hit against miss through the gateway at c=1, as ratios",
    "priority": "a caller at c=1 beside job work, one line against two lanes, as ratios",
    "tracking": "tracking and 2 counting lines, in process and through DetectStream, as ratios",
    "live": "the live WebSocket against a REST request a frame through the gateway, as ratios",
    "scheduling": "the job worker's give-way question against backlogs of pending jobs",
    "outbox": "an event from commit to the events stream, relay woken by NOTIFY against polling",
}


def _finite(value: float | None, digits: int = 4) -> float | None:
    if value is None or math.isnan(value) or math.isinf(value):
        return None
    return round(value, digits)


@dataclass
class Point:
    """One stage at one concurrency (or, for raw, one batch size)."""

    stage: str
    concurrency: int
    batch: int
    requests: int
    images: int
    errors: int
    error_kinds: dict[str, int]
    error_examples: list[str]
    window_s: float
    throughput_ips: float
    latency_ms: LatencySummary
    cpu_s: dict[str, float]
    involved: list[str]
    system_busy_cpu_s: float
    loadavg_1m: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def work_images(self) -> float:
        """Images' worth of work done inside the window (throughput x window)."""
        return self.throughput_ips * self.window_s

    @property
    def cpu_s_per_image(self) -> float | None:
        """CPU of the processes that serve this stage, per image processed in the window."""
        if self.work_images <= 0:
            return None
        return sum(self.cpu_s.get(name, 0.0) for name in self.involved) / self.work_images

    @property
    def loadgen_cpu_s_per_image(self) -> float | None:
        if self.work_images <= 0 or LOADGEN in self.involved or LOADGEN not in self.cpu_s:
            return None
        return self.cpu_s[LOADGEN] / self.work_images

    @property
    def other_cpu_s(self) -> float:
        """Busy CPU on the machine that none of our processes used: other people's load."""
        return max(0.0, self.system_busy_cpu_s - sum(self.cpu_s.values()))

    @classmethod
    def from_load(
        cls,
        stage: str,
        result: LoadResult,
        *,
        concurrency: int,
        batch: int,
        involved: Sequence[str],
        loadavg_1m: float,
        extra: Mapping[str, Any] | None = None,
    ) -> "Point":
        cpu: dict[str, float] = {}
        busy = 0.0
        if result.cpu_start is not None and result.cpu_end is not None:
            cpu = CpuMeter.delta(result.cpu_start, result.cpu_end)
            busy = result.cpu_end.system_busy_s - result.cpu_start.system_busy_s
        return cls(
            stage=stage,
            concurrency=concurrency,
            batch=batch,
            requests=result.requests,
            images=result.images,
            errors=result.errors,
            error_kinds=dict(result.error_kinds),
            error_examples=list(result.error_examples),
            window_s=result.window_s,
            throughput_ips=result.throughput,
            latency_ms=summarize(result.latencies_ms),
            cpu_s=cpu,
            involved=list(involved),
            system_busy_cpu_s=busy,
            loadavg_1m=loadavg_1m,
            extra=dict(extra or {}),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "concurrency": self.concurrency,
            "batch": self.batch,
            "requests": self.requests,
            "images": self.images,
            "errors": self.errors,
            "error_kinds": self.error_kinds,
            "error_examples": self.error_examples,
            "window_s": round(self.window_s, 3),
            "throughput_ips": round(self.throughput_ips, 3),
            "latency_ms": self.latency_ms.to_json(),
            "cpu_s": {name: round(secs, 3) for name, secs in sorted(self.cpu_s.items())},
            "involved": self.involved,
            "cpu_s_per_image": _finite(self.cpu_s_per_image),
            "loadgen_cpu_s_per_image": _finite(self.loadgen_cpu_s_per_image),
            "system_busy_cpu_s": round(self.system_busy_cpu_s, 3),
            "other_cpu_s": round(self.other_cpu_s, 3),
            "loadavg_1m": round(self.loadavg_1m, 2),
            "extra": self.extra,
        }


@dataclass(frozen=True)
class Skip:
    """A stage or point that did not run, and why (so a missing row is never silent)."""

    stage: str
    reason: str
    concurrency: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"stage": self.stage, "concurrency": self.concurrency, "reason": self.reason}
