"""Latency percentiles and summaries, computed the same way for every stage."""

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks.

    Same definition as numpy's default ("linear"), so numbers can be checked with numpy;
    NaN for no values, because a missing latency must not read as zero.
    """
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile {q} is outside 0..100")
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    fraction = rank - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


@dataclass(frozen=True)
class LatencySummary:
    """Milliseconds; NaN fields (written as null) when no request completed."""

    count: int
    mean: float
    p50: float
    p95: float
    p99: float
    max: float

    def to_json(self) -> dict[str, float | int | None]:
        return {
            key: (None if isinstance(value, float) and math.isnan(value) else round(value, 3))
            for key, value in asdict(self).items()
        }


def summarize(latencies_ms: Sequence[float]) -> LatencySummary:
    """Count, mean, p50/p95/p99 and max of one point's successful requests."""
    if not latencies_ms:
        return LatencySummary(0, math.nan, math.nan, math.nan, math.nan, math.nan)
    return LatencySummary(
        count=len(latencies_ms),
        mean=sum(latencies_ms) / len(latencies_ms),
        p50=percentile(latencies_ms, 50),
        p95=percentile(latencies_ms, 95),
        p99=percentile(latencies_ms, 99),
        max=max(latencies_ms),
    )


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """`numerator` over `denominator` to three places, as a stage compares two of its runs
    (int8 over fp32, tracked over untracked); None where either is missing or zero, since a
    run that measured nothing has no ratio to report."""
    if not numerator or not denominator:
        return None
    return round(numerator / denominator, 3)


def images_in_window(
    requests: Iterable[tuple[float, float, int]], start: float, end: float
) -> float:
    """Images processed inside [start, end]: each successful request (began, finished,
    images) counts in proportion to the part of its life inside the window.

    Why not just count completions: in a closed loop at high concurrency, requests finish in
    waves (a batch of 8 returns together); with a window only a few latencies long, a plain
    count jumps by a whole wave depending on where the window's edges fall. Prorating makes
    the estimate smooth and unbiased in steady state.
    """
    total = 0.0
    for began, finished, images in requests:
        duration = finished - began
        overlap = min(finished, end) - max(began, start)
        if overlap <= 0:
            continue
        total += images * (overlap / duration if duration > 0 else 1.0)
    return total


def share(value: float | None) -> str:
    """A fraction as a percentage for a report (`12.5%`); `-` where there is none."""
    return "-" if value is None else f"{value:.1%}"
