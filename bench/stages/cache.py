"""Result cache: the gateway's detect route at c=1 answered from the cache against inference.

One stack, two short windows, one image (the first of the set, bus.jpg) sent over and over:

- miss: detection-service with the result cache off (``RESULT_CACHE_TTL_SECONDS=0``, as the
  benchmark's stack runs so that the other stages measure inference); every answer must say
  ``cached: false``.
- hit: detection-service restarted with the cache on; the first upload is a miss that fills
  the cache (its latency is reported, not timed), and every request after it, warm-up and
  window, must say ``cached: true``. One answer that does not fails the stage: a "hit" window
  that ran inference would measure nothing.

Afterwards detection-service is restarted with the environment it had, so the stages after
this one measure what they did before. Only detection-service restarts (the cache lives in it,
its entries in Redis); the gateway answers 503 until its channel to the new process is up, so
after each restart one upload is retried until it succeeds, the last one before the stage
returns. Reported: p50/p95 of each window and hit/miss ratios, from this one run.
"""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from bench.images import Image
from bench.loadgen import LoadSettings, RequestError, Send, WorkerFactory, closed_loop
from bench.stages import StageContext, logger, window_estimate_s
from bench.stages.gateway import ROUTE, UploadRoute, caller_or_skip, mentions
from bench.stages.http import client
from bench.stages.switching import Window, restart
from bench.stats import summarize as latency_summary
from objectvision_devstack.stack import Stack

STAGE = "cache"
SERVICE = "detection"
TTL_VARIABLE = "RESULT_CACHE_TTL_SECONDS"
CACHE_ON_TTL_S = "3600"
# Short windows: a hit costs milliseconds, so a few seconds give hundreds of answers.
MAX_WARMUP_S = 1.0
MAX_MEASURE_S = 3.0
# Per restart of detection-service (stop, start, readiness), for the budget check.
_SWITCH_ESTIMATE_S = 12.0
# How long the priming upload retries while the gateway reconnects to the restarted service.
_READY_TIMEOUT_S = 30.0


class NotCached(Exception):
    """An answer in the hit window that did not come from the cache."""


def _cache_enabled(env: Mapping[str, str]) -> bool:
    # detection-service's default TTL is 3600 s: only an explicit 0 turns the cache off.
    return env.get(TTL_VARIABLE, "3600").strip() not in {"0", ""}


def _switch(ctx: StageContext, stack: Stack, ttl: str | None) -> None:
    """Restart detection-service with RESULT_CACHE_TTL_SECONDS=`ttl` (None removes it)."""
    restart(ctx, stack=stack, services=(SERVICE,), env={TTL_VARIABLE: ttl})


def checked_factory(
    http: httpx.AsyncClient,
    url: str,
    image: Image,
    *,
    route: UploadRoute,
    headers: Mapping[str, str],
    expect_cached: bool,
    seen: dict[str, int],
) -> WorkerFactory:
    """Workers that upload `image` again and again and check each answer's `cached` flag;
    a wrong one is a failed request of kind `cache:unexpected-miss` (or `-hit`), and counted
    in `seen` (``answers``, ``wrong``) whether it fell in the warm-up or the window."""

    @contextlib.asynccontextmanager
    async def factory(index: int) -> AsyncIterator[Send]:
        async def send() -> int:
            body = await route.post(http, url, image, headers)
            seen["answers"] += 1
            if body.get("cached") is not expect_cached:
                seen["wrong"] += 1
                kind = "unexpected-miss" if expect_cached else "unexpected-hit"
                raise RequestError(f"cache:{kind}", f"cached={body.get('cached')!r}")
            return 1

        yield send

    return factory


async def _prime(
    http: httpx.AsyncClient, url: str, image: Image, route: UploadRoute, headers: Mapping[str, str]
) -> tuple[dict[str, Any], float]:
    """The first upload after a restart (retried while the gateway reconnects): its answer
    and latency in ms."""
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while True:
        started = time.perf_counter()
        try:
            body = await route.post(http, url, image, headers)
        except RequestError as error:
            if time.monotonic() > deadline:
                raise RuntimeError(f"cache stage: the route did not answer: {error}") from None
            await asyncio.sleep(0.5)
            continue
        return body, (time.perf_counter() - started) * 1000


def summarize(
    windows: list[Window], *, image: str, first_miss_ms: float, first_cached: bool
) -> dict[str, Any]:
    """The result section from the miss and hit windows."""
    by = {w.condition: w for w in windows}
    miss, hit = by["miss"].result, by["hit"].result
    miss_lat, hit_lat = latency_summary(miss.latencies_ms), latency_summary(hit.latencies_ms)
    return {
        "concurrency": 1,
        "image": image,
        "requests": {"miss": len(miss.latencies_ms), "hit": len(hit.latencies_ms)},
        # The upload that filled the cache (not timed in a window): a miss, as it must be.
        "first_request": {"cached": first_cached, "ms": round(first_miss_ms, 2)},
        "hits_verified": True,
        "throughput_ips": {
            "miss": round(miss.throughput, 2),
            "hit": round(hit.throughput, 2),
        },
        "p50_ms": {"miss": round(miss_lat.p50, 2), "hit": round(hit_lat.p50, 2)},
        "p95_ms": {"miss": round(miss_lat.p95, 2), "hit": round(hit_lat.p95, 2)},
        "hit_over_miss": {
            "p50": round(hit_lat.p50 / miss_lat.p50, 4),
            "p95": round(hit_lat.p95 / miss_lat.p95, 4),
            "throughput": round(hit.throughput / miss.throughput, 4),
        },
    }


def _settings(ctx: StageContext) -> LoadSettings:
    return LoadSettings(
        concurrency=1,
        warmup_s=min(ctx.config.warmup_s, MAX_WARMUP_S),
        measure_s=min(ctx.config.measure_s, MAX_MEASURE_S),
        max_requests=ctx.config.max_requests,
        request_timeout_s=ctx.config.request_timeout_s,
    )


async def _window(
    condition: str,
    ctx: StageContext,
    url: str,
    image: Image,
    route: UploadRoute,
    headers: Mapping[str, str],
) -> Window:
    seen = {"answers": 0, "wrong": 0}
    async with client(1, ctx.config.request_timeout_s) as pool:
        factory = checked_factory(
            pool,
            url,
            image,
            route=route,
            headers=headers,
            expect_cached=condition == "hit",
            seen=seen,
        )
        result = await closed_loop(factory, _settings(ctx))
    if seen["wrong"]:
        raise NotCached(
            f"cache {condition} window: {seen['wrong']} of {seen['answers']} answers said"
            f" cached={'false' if condition == 'hit' else 'true'} ({dict(result.error_kinds)})"
        )
    result.require_clean(f"cache {condition}")
    window = Window(condition, result)
    logger.info(
        "cache %-4s c=1 %7.1f img/s  p50 %7.2f ms  (%d answers checked)",
        condition,
        result.throughput,
        window.p50_ms,
        seen["answers"],
    )
    return window


async def run(ctx: StageContext, *, stack: Stack) -> dict[str, Any] | None:
    """The cache section of the result, or None when skipped (quick, budget, route missing)."""
    if ctx.config.quick:
        # Two restarts of detection-service cost more than the quick run can spare.
        ctx.skip(STAGE, "measured by the full run (make bench), not the quick one")
        return None
    settings = _settings(ctx)
    windows_s = 2 * window_estimate_s(settings)
    if not ctx.within_budget(STAGE, seconds=windows_s + 3 * _SWITCH_ESTIMATE_S):
        return None
    base_url = stack.gateway_url
    url = f"{base_url}{ROUTE}"
    image = ctx.images[0]
    resolved = await caller_or_skip(ctx, stage=STAGE, base_url=base_url)
    if resolved is None:
        return None
    route, headers = resolved
    original = stack.env.get(TTL_VARIABLE)
    # With the cache off until now nothing can have filled it: the first upload must miss.
    was_off = not _cache_enabled(stack.env)
    windows: list[Window] = []
    try:
        async with httpx.AsyncClient(timeout=ctx.config.request_timeout_s) as http:
            if _cache_enabled(stack.env):
                logger.info("cache stage: restarting %s with the result cache off", SERVICE)
                await asyncio.to_thread(_switch, ctx, stack, "0")
            answer, _ = await _prime(http, url, image, route, headers)
            if image.name == "bus.jpg" and not mentions(answer, "bus"):
                raise RuntimeError(f"the gateway finds no bus in bus.jpg: {str(answer)[:300]}")
            windows.append(await _window("miss", ctx, url, image, route, headers))
            logger.info("cache stage: restarting %s with the result cache on", SERVICE)
            await asyncio.to_thread(_switch, ctx, stack, CACHE_ON_TTL_S)
            first, first_ms = await _prime(http, url, image, route, headers)
            if was_off and first.get("cached") is not False:
                raise NotCached(f"the first upload with the cache on said cached={first!r:.200}")
            windows.append(await _window("hit", ctx, url, image, route, headers))
    finally:
        if stack.env.get(TTL_VARIABLE) != original:
            logger.info("cache stage: restarting %s with %s=%s", SERVICE, TTL_VARIABLE, original)
            await asyncio.to_thread(_switch, ctx, stack, original)
            # The gateway answers 503 until its channel to the new process is up: wait for
            # that here, not in the next stage's first request.
            async with httpx.AsyncClient(timeout=ctx.config.request_timeout_s) as http:
                await _prime(http, url, image, route, headers)
    return summarize(
        windows,
        image=image.name,
        first_miss_ms=first_ms,
        first_cached=bool(first.get("cached")),
    )


def markdown(section: Mapping[str, Any]) -> list[str]:
    """The result section as Markdown lines for bench/report.py."""
    p50, p95, ratio = section["p50_ms"], section["p95_ms"], section["hit_over_miss"]
    ips, requests = section["throughput_ips"], section["requests"]
    return [
        "## Result cache: gateway POST /api/v1/detect/image, c=1, miss against hit",
        "",
        f"The same image ({section['image']}) uploaded again and again. Miss (cache off,"
        f" {requests['miss']} requests): p50 {p50['miss']} ms, p95 {p95['miss']} ms,"
        f" {ips['miss']} img/s. Hit (cache on, {requests['hit']} requests, every answer"
        f" `cached: true`): p50 {p50['hit']} ms, p95 {p95['hit']} ms, {ips['hit']} img/s."
        f" Hit/miss: p50 {ratio['p50']}, p95 {ratio['p95']}; first upload with the cache"
        f" on {section['first_request']['ms']} ms.",
        "",
    ]
