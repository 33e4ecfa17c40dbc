"""The targets read the right points and say met, missed or not measured."""

import pytest

from bench.targets import ratios, saturation
from bench.tests.factories import PAIRED, point


def _by_key(points):
    return {r.key: r for r in ratios(points)}


def test_every_target_is_not_measured_without_points():
    for ratio in ratios([]):
        assert ratio.value is None
        assert ratio.met is None


def test_ratios_from_one_run():
    points = [
        point("raw", 1, 20.0, 50.0),
        point("raw", 1, 24.0, 160.0, batch=4),
        point("detect", 1, 15.0, 60.0),
        point("detect", 32, 21.0, 1500.0),
        point("detect_stream", 32, 18.0, 1700.0),
        point("gateway", 1, 14.0, 62.0),
        point("gateway", 32, 19.0, 1600.0),
        point("naive", 32, 10.0, 3000.0),
    ]
    found = _by_key(points)
    assert saturation(points, "raw")["batch"] == 4
    assert found["detect_vs_raw"].value == pytest.approx(21.0 / 24.0)
    assert found["detect_vs_raw"].met is True
    assert found["detect_stream_vs_raw"].value == pytest.approx(18.0 / 24.0)
    assert found["detect_stream_vs_raw"].met is False
    assert found["gateway_vs_raw"].value == pytest.approx(19.0 / 24.0)
    assert found["gateway_vs_raw"].met is True
    assert found["gateway_overhead_ms"].value == pytest.approx(12.0)
    assert found["gateway_overhead_ms"].met is True
    assert found["gateway_vs_naive_c32"].value == pytest.approx(1.9)
    assert found["gateway_vs_naive_c32"].met is True


def test_overhead_compares_with_raw_batch_one_not_the_best_batch():
    points = [
        point("raw", 1, 20.0, 50.0),
        point("raw", 1, 30.0, 40.0, batch=8),
        point("gateway", 1, 10.0, 80.0),
    ]
    overhead = _by_key(points)["gateway_overhead_ms"]
    assert overhead.value == pytest.approx(30.0)
    assert overhead.met is False


def test_naive_comparison_falls_back_to_the_highest_common_concurrency_and_says_so():
    points = [
        point("gateway", 16, 12.0, 900.0),
        point("naive", 16, 10.0, 1000.0),
        point("naive", 64, 9.0, 5000.0),
    ]
    ratio = _by_key(points)["gateway_vs_naive_c32"]
    assert ratio.value == pytest.approx(1.2)
    assert "c=16" in ratio.detail and "not measured in both" in ratio.detail


def test_points_without_images_do_not_count():
    points = [point("raw", 1, 20.0, 50.0), point("detect", 1, 0.0, 0.0, errors=5)]
    assert _by_key(points)["detect_vs_raw"].value is None


def test_paired_overhead_comes_from_the_paired_rounds():
    ratio = {r.key: r for r in ratios([], paired=PAIRED)}["gateway_overhead_paired_ms"]
    assert ratio.value == 11.0
    assert ratio.met is True
    assert "40 rounds" in ratio.detail


def test_cpu_normalised_ratios_compare_cpu_per_image():
    points = [
        point("raw", 1, 10.0, 50.0, batch=8, cpu_ms=100.0),
        point("detect", 32, 5.0, 900.0, cpu_ms=125.0),  # slowed by other load, CPU-bound anyway
        point("gateway", 32, 5.0, 900.0, cpu_ms=125.0),
        point("naive", 32, 8.0, 900.0, cpu_ms=110.0),
    ]
    found = _by_key(points)
    assert found["detect_vs_raw"].value == pytest.approx(0.5)
    assert found["detect_vs_raw"].cpu_normalised == pytest.approx(0.8)
    assert found["gateway_vs_naive_c32"].cpu_normalised == pytest.approx(110 / 125)
    assert found["gateway_overhead_ms"].cpu_normalised is None
