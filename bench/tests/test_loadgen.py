"""The closed loop against fake requests: warm-up excluded, bounds respected, errors counted."""

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

import pytest

from bench.cpu import CpuMeter
from bench.loadgen import LoadSettings, RequestError, Send, closed_loop


def _factory(send: Send):
    @contextlib.asynccontextmanager
    async def factory(_: int) -> AsyncIterator[Send]:
        yield send

    return factory


async def test_window_ends_at_the_request_limit_and_excludes_warm_up():
    calls = 0

    async def send() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.002)
        return 2

    settings = LoadSettings(concurrency=3, warmup_s=0.05, measure_s=30.0, max_requests=25)
    result = await closed_loop(_factory(send), settings)
    assert result.requests == 25
    assert result.errors == 0
    assert result.images == 50
    assert len(result.latencies_ms) == 25
    assert calls > result.requests  # warm-up and drain requests are not counted
    assert result.window_s < 30.0
    assert result.throughput > 0


async def test_failures_are_counted_by_kind_not_raised():
    count = 0

    async def send() -> int:
        nonlocal count
        count += 1
        await asyncio.sleep(0.001)
        if count % 2:
            raise RequestError("grpc:UNAVAILABLE", "Triton is down")
        return 1

    settings = LoadSettings(concurrency=2, warmup_s=0.02, measure_s=30.0, max_requests=20)
    result = await closed_loop(_factory(send), settings)
    assert result.requests == 20
    assert result.errors + len(result.latencies_ms) == 20
    assert set(result.error_kinds) == {"grpc:UNAVAILABLE"}
    assert result.error_examples[0].startswith("grpc:UNAVAILABLE: Triton is down")


async def test_requests_over_their_time_limit_are_timeouts():
    async def send() -> int:
        await asyncio.sleep(10)
        return 1

    settings = LoadSettings(
        concurrency=1, warmup_s=0.0, measure_s=30.0, max_requests=2, request_timeout_s=0.02
    )
    result = await closed_loop(_factory(send), settings)
    assert result.error_kinds == {"timeout": 2}
    assert result.throughput == 0


async def test_a_worker_that_cannot_start_fails_the_point():
    @contextlib.asynccontextmanager
    async def factory(_: int) -> AsyncIterator[Send]:
        raise ConnectionError("no server")
        yield  # pragma: no cover

    settings = LoadSettings(concurrency=2, warmup_s=0.01, measure_s=1.0, max_requests=5)
    with pytest.raises(RuntimeError):
        await closed_loop(factory, settings)


async def test_cpu_is_read_at_the_window_edges():
    async def send() -> int:
        sum(range(20_000))  # a little CPU on this very process
        await asyncio.sleep(0)
        return 1

    meter = CpuMeter()
    meter.add("self", os.getpid(), tree=False)
    settings = LoadSettings(concurrency=1, warmup_s=0.01, measure_s=30.0, max_requests=50)
    result = await closed_loop(_factory(send), settings, meter=meter)
    assert result.cpu_start is not None and result.cpu_end is not None
    spent = CpuMeter.delta(result.cpu_start, result.cpu_end)
    assert set(spent) == {"self"}
    assert spent["self"] >= 0.0
    assert result.cpu_end.system_busy_s >= result.cpu_start.system_busy_s
