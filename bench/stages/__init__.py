"""One module per stage; each turns a running target into measured points via `StageContext`."""

import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.config import BenchConfig
from bench.cpu import CpuMeter
from bench.images import Image
from bench.loadgen import LoadSettings, WorkerFactory, closed_loop
from bench.records import Point, Skip

logger = logging.getLogger("bench")

# Cumulative server-side counters read before and after a point (Triton's statistics, the
# detection service's batch-size histogram); the point keeps what `derive` makes of the change.
Probe = Callable[[], Awaitable[dict[str, float]]]
Derive = Callable[[dict[str, float]], dict[str, Any]]

# Allowance per point beyond the longest warm-up and the window: drain, probes, logging.
_POINT_OVERHEAD_S = 5.0


def window_estimate_s(settings: LoadSettings) -> float:
    """The most one point or window measured with `settings` takes: the longest warm-up, the
    window itself and the allowance for drain, probes and logging (for budget checks)."""
    return settings.max_warmup_s + settings.measure_s + _POINT_OVERHEAD_S


class Budget:
    """The run's hard time limit; a point that would not fit is skipped, not started."""

    def __init__(self, seconds: float) -> None:
        self.started = time.monotonic()
        self.deadline = self.started + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def allows(self, seconds: float) -> bool:
        return self.left() >= seconds


@dataclass
class StageContext:
    config: BenchConfig
    images: list[Image]
    meter: CpuMeter
    budget: Budget
    points: list[Point] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    paired: dict[str, Any] | None = None
    # int8 against fp32 through the same path (bench/stages/models.py).
    models: dict[str, Any] | None = None
    # tile_size 640 against the whole image alone on a 4K frame (bench/stages/tiling.py).
    tiling: dict[str, Any] | None = None
    # Tracing on against off through the gateway at c=1 (bench/stages/tracing.py).
    tracing: list[dict[str, Any]] | None = None
    # Result-cache hits against misses through the gateway at c=1 (bench/stages/cache.py).
    cache: dict[str, Any] | None = None
    # A caller beside job work, one line against two lanes (bench/stages/priority.py).
    priority: dict[str, Any] | None = None
    # Tracking and line counting, in process and through DetectStream (stages/tracking.py):
    # {"in_process": ..., "stream": ...}, each None where that part did not run.
    tracking: dict[str, Any] | None = None
    # The live WebSocket against per-frame REST through the gateway (stages/live.py).
    live: dict[str, Any] | None = None
    # The job worker's give-way question against backlogs (stages/scheduling.py).
    scheduling: dict[str, Any] | None = None
    # An event from commit to the stream, NOTIFY against polling (stages/outbox.py).
    outbox: dict[str, Any] | None = None

    def settings(self, concurrency: int) -> LoadSettings:
        return LoadSettings(
            concurrency=concurrency,
            warmup_s=self.config.warmup_s,
            measure_s=self.config.measure_s,
            max_requests=self.config.max_requests,
            request_timeout_s=self.config.request_timeout_s,
        )

    def note(self, text: str) -> None:
        """Something a reader of the results must know (shown in the Markdown)."""
        logger.warning("%s", text)
        self.notes.append(text)

    def skip(self, stage: str, reason: str, concurrency: int | None = None) -> None:
        logger.warning(
            "skipped %s%s: %s", stage, f" c={concurrency}" if concurrency else "", reason
        )
        self.skipped.append(Skip(stage, reason, concurrency))

    def within_budget(self, stage: str, *, seconds: float, concurrency: int | None = None) -> bool:
        """Whether `seconds` more fit in the run's time budget; when they do not, `stage` (or
        its point at `concurrency`) is recorded as skipped, so the caller only returns."""
        if self.budget.allows(seconds):
            return True
        self.skip(stage, "the run's time budget was spent", concurrency)
        return False

    async def measure(
        self,
        stage: str,
        concurrency: int,
        factory: WorkerFactory,
        *,
        involved: Sequence[str],
        batch: int = 1,
        probe: Probe | None = None,
        derive: Derive | None = None,
    ) -> Point | None:
        """One point: warm-up, window, drain; a failure is recorded as a skip, not raised."""
        settings = self.settings(concurrency)
        label = f"b={batch}" if stage == "raw" else f"c={concurrency}"
        if not self.within_budget(
            stage, seconds=window_estimate_s(settings), concurrency=concurrency
        ):
            return None
        try:
            before = await probe() if probe else {}
            result = await closed_loop(factory, settings, meter=self.meter)
            after = await probe() if probe else {}
        except Exception as error:
            logger.exception("%s %s failed", stage, label)
            self.skip(stage, f"failed: {error!r}"[:300], concurrency)
            return None
        change = {key: after[key] - before.get(key, 0.0) for key in after}
        point = Point.from_load(
            stage,
            result,
            concurrency=concurrency,
            batch=batch,
            involved=involved,
            loadavg_1m=os.getloadavg()[0],
            extra=derive(change) if derive else {},
        )
        self.points.append(point)
        logger.info(
            "%-13s %-5s %7.1f img/s  p50 %7.1f ms  p99 %7.1f ms  cpu %s ms/img  errors %d",
            stage,
            label,
            point.throughput_ips,
            point.latency_ms.p50,
            point.latency_ms.p99,
            "-" if point.cpu_s_per_image is None else f"{point.cpu_s_per_image * 1000:.0f}",
            point.errors,
        )
        return point
