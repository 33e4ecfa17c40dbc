"""The performance targets, computed from one run's points (never across runs).

Works on the result document's JSON points, so a stored result can be re-judged or
re-rendered without re-running anything.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

JsonPoint = Mapping[str, Any]


@dataclass(frozen=True)
class Ratio:
    key: str
    description: str
    value: float | None
    target: float
    comparison: str  # "ge": value must be >= target; "le": <=
    detail: str
    # The same comparison in images per CPU-second of the serving processes: what the ratio
    # would be on a dedicated, CPU-bound machine, unmoved by other people's load.
    cpu_normalised: float | None = None

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        return self.value >= self.target if self.comparison == "ge" else self.value <= self.target

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "description": self.description,
            "value": None if self.value is None else round(self.value, 4),
            "target": self.target,
            "comparison": self.comparison,
            "met": self.met,
            "detail": self.detail,
            "cpu_normalised": None
            if self.cpu_normalised is None
            else round(self.cpu_normalised, 4),
        }


def _of(points: Sequence[JsonPoint], stage: str) -> list[JsonPoint]:
    return [p for p in points if p["stage"] == stage and p["images"] > 0]


def saturation(points: Sequence[JsonPoint], stage: str) -> JsonPoint | None:
    """The stage's highest-throughput point: its saturation (for raw, its best batch)."""
    candidates = _of(points, stage)
    return max(candidates, key=lambda p: p["throughput_ips"]) if candidates else None


def at(
    points: Sequence[JsonPoint], stage: str, *, concurrency: int, batch: int = 1
) -> JsonPoint | None:
    for point in _of(points, stage):
        if point["concurrency"] == concurrency and point["batch"] == batch:
            return point
    return None


def _where(point: JsonPoint) -> str:
    if point["stage"] == "raw":
        return f"batch {point['batch']}"
    return f"c={point['concurrency']}"


def _efficiency(served: JsonPoint, baseline: JsonPoint) -> float | None:
    """baseline CPU per image / served CPU per image (None when either is unknown)."""
    if not served.get("cpu_s_per_image") or not baseline.get("cpu_s_per_image"):
        return None
    return float(baseline["cpu_s_per_image"]) / float(served["cpu_s_per_image"])


def _throughput_ratio(
    points: Sequence[JsonPoint], key: str, stage: str, target: float, description: str
) -> Ratio:
    served, raw = saturation(points, stage), saturation(points, "raw")
    if served is None or raw is None:
        missing = stage if served is None else "raw"
        return Ratio(key, description, None, target, "ge", f"not measured: no {missing} points")
    value = served["throughput_ips"] / raw["throughput_ips"]
    detail = (
        f"{served['throughput_ips']:.1f} img/s ({_where(served)}) / "
        f"{raw['throughput_ips']:.1f} img/s (raw {_where(raw)})"
    )
    return Ratio(key, description, value, target, "ge", detail, _efficiency(served, raw))


def _overhead(points: Sequence[JsonPoint]) -> Ratio:
    description = "gateway p50 at concurrency 1 minus raw batch-1 p50 (ms)"
    gateway, raw = at(points, "gateway", concurrency=1), at(points, "raw", concurrency=1)
    if gateway is None or raw is None or raw["latency_ms"]["p50"] is None:
        return Ratio("gateway_overhead_ms", description, None, 15.0, "le", "not measured")
    value = gateway["latency_ms"]["p50"] - raw["latency_ms"]["p50"]
    detail = f"{gateway['latency_ms']['p50']:.1f} ms - {raw['latency_ms']['p50']:.1f} ms"
    return Ratio("gateway_overhead_ms", description, value, 15.0, "le", detail)


def _paired_overhead(paired: Mapping[str, Any] | None) -> Ratio:
    description = "same, paired: median of per-round gateway minus raw (ms), c=1"
    if not paired:
        return Ratio("gateway_overhead_paired_ms", description, None, 15.0, "le", "not measured")
    detail = (
        f"{paired['rounds']} rounds; detect - raw {paired['detect_minus_raw_ms']:.1f} ms,"
        f" gateway - detect {paired['gateway_minus_detect_ms']:.1f} ms"
    )
    return Ratio(
        "gateway_overhead_paired_ms",
        description,
        paired["gateway_minus_raw_ms"],
        15.0,
        "le",
        detail,
    )


def _versus_naive(points: Sequence[JsonPoint], concurrency: int = 32) -> Ratio:
    key, target = "gateway_vs_naive_c32", 1.5
    description = f"gateway / naive throughput at concurrency {concurrency}"
    gateway = {p["concurrency"]: p for p in _of(points, "gateway")}
    naive = {p["concurrency"]: p for p in _of(points, "naive")}
    common = sorted(set(gateway) & set(naive))
    if not common:
        return Ratio(key, description, None, target, "ge", "not measured")
    used = concurrency if concurrency in common else common[-1]
    value = gateway[used]["throughput_ips"] / naive[used]["throughput_ips"]
    detail = (
        f"{gateway[used]['throughput_ips']:.1f} / {naive[used]['throughput_ips']:.1f} img/s"
        f" at c={used}"
    )
    if used != concurrency:
        detail += f" (c={concurrency} not measured in both; highest common concurrency used)"
    return Ratio(
        key, description, value, target, "ge", detail, _efficiency(gateway[used], naive[used])
    )


def ratios(points: Sequence[JsonPoint], *, paired: Mapping[str, Any] | None = None) -> list[Ratio]:
    """Every target the project tracks, in the order the README lists them; the c=1
    overhead also from the paired measurement, which other load cannot skew."""
    return [
        _throughput_ratio(
            points,
            "detect_vs_raw",
            "detect",
            0.85,
            "detection gRPC Detect at saturation / raw best-batch throughput",
        ),
        _throughput_ratio(
            points,
            "detect_stream_vs_raw",
            "detect_stream",
            0.85,
            "detection gRPC DetectStream at saturation / raw best-batch throughput",
        ),
        _throughput_ratio(
            points,
            "gateway_vs_raw",
            "gateway",
            0.75,
            "gateway at saturation / raw best-batch throughput",
        ),
        _overhead(points),
        _paired_overhead(paired),
        _versus_naive(points),
    ]
