"""Percentiles match numpy's default definition; prorated throughput counts partial requests."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.stats import images_in_window, percentile, ratio, summarize

latencies = st.lists(
    st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=200,
)


@given(latencies, st.floats(min_value=0, max_value=100))
def test_percentile_matches_numpy_linear(values, q):
    assert percentile(values, q) == pytest.approx(
        float(np.percentile(values, q)), rel=1e-9, abs=1e-9
    )


def test_percentile_of_known_values():
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 0) == 10.0
    assert percentile(values, 50) == 25.0
    assert percentile(values, 100) == 40.0
    assert percentile([7.0], 99) == 7.0


def test_percentile_of_nothing_is_nan_not_zero():
    assert math.isnan(percentile([], 50))


@pytest.mark.parametrize("q", [-1, 100.5])
def test_percentile_refuses_out_of_range(q):
    with pytest.raises(ValueError):
        percentile([1.0], q)


def test_summary_of_nothing_serialises_as_nulls():
    summary = summarize([])
    assert summary.count == 0
    assert summary.to_json() == {
        "count": 0,
        "mean": None,
        "p50": None,
        "p95": None,
        "p99": None,
        "max": None,
    }


def test_summary_fields():
    summary = summarize([1.0, 2.0, 3.0, 4.0, 100.0])
    assert summary.count == 5
    assert summary.mean == pytest.approx(22.0)
    assert summary.p50 == 3.0
    assert summary.max == 100.0
    assert summary.p95 <= summary.p99 <= summary.max


def test_images_in_window_prorates_requests_across_the_edges():
    requests = [
        (0.0, 1.0, 1),  # wholly before the window
        (1.0, 3.0, 1),  # half inside
        (2.0, 4.0, 2),  # wholly inside: 2 images
        (4.0, 6.0, 1),  # half inside
        (6.0, 7.0, 1),  # wholly after
    ]
    assert images_in_window(requests, 2.0, 5.0) == pytest.approx(0.5 + 2 + 0.5)


def test_images_in_window_of_a_steady_closed_loop_is_concurrency_over_latency():
    # 4 workers, 0.3 s per request, staggered: 4 / 0.3 images/s whatever the window edges.
    latency, workers = 0.3, 4
    requests = [
        (w * latency / workers + k * latency, w * latency / workers + (k + 1) * latency, 1)
        for w in range(workers)
        for k in range(100)
    ]
    start, end = 1.234, 7.89
    rate = images_in_window(requests, start, end) / (end - start)
    assert rate == pytest.approx(workers / latency, rel=1e-6)


def test_a_ratio_is_rounded_and_missing_where_a_side_measured_nothing():
    assert ratio(2.0, 3.0) == 0.667
    assert ratio(None, 3.0) is None
    assert ratio(2.0, 0.0) is None
