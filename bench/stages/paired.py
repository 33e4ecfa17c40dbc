"""The c=1 overhead of each layer, measured in pairs so that other load cancels out.

The target "gateway p50 at c=1 minus raw batch-1 p50 <= 15 ms" is a small difference of two
~70 ms numbers measured minutes apart; on a shared machine their drift alone exceeds 15 ms.
Here one round sends the same image through raw (in process), Detect (gRPC) and the gateway
back to back, and the medians of the per-round differences are reported beside the p50s.
"""

import asyncio
import functools
import itertools
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import httpx

from bench.pipeline import PlainDetector
from bench.stages import StageContext, logger
from bench.stages.gateway import ROUTE, caller
from objectvision.v1 import common_pb2, detection_pb2, detection_pb2_grpc
from objectvision_common.identity import principal_metadata

STAGE = "paired"


async def _elapsed_ms(call: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await call()
    return (time.perf_counter() - started) * 1000.0


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


async def run(
    ctx: StageContext, *, rounds: int, address: str, secret: str, gateway_url: str
) -> dict[str, Any] | None:
    """Paired medians, or None when the time budget does not allow the rounds."""
    if not ctx.within_budget(STAGE, seconds=rounds * 0.5 + 5):
        return None
    detector = await asyncio.to_thread(PlainDetector, ctx.config.model)
    metadata = principal_metadata(
        common_pb2.Principal(user_id=str(uuid.uuid4()), auth_method="jwt"), secret=secret
    )
    async with (
        grpc.aio.insecure_channel(address) as channel,
        httpx.AsyncClient(timeout=ctx.config.request_timeout_s) as http,
    ):
        stub = detection_pb2_grpc.DetectionServiceStub(channel)
        route, headers = await caller(http, gateway_url)
        times: dict[str, list[float]] = {"raw": [], "detect": [], "gateway": []}
        images = itertools.cycle(ctx.images)
        for round_ in range(rounds + 1):
            image = next(images)
            request = detection_pb2.DetectRequest(
                images=[detection_pb2.ImageInput(data=image.data, filename=image.name)], store=False
            )
            measured = {
                "raw": await _elapsed_ms(
                    functools.partial(asyncio.to_thread, detector.detect, [image.data])
                ),
                "detect": await _elapsed_ms(
                    functools.partial(stub.Detect, request, metadata=metadata, timeout=60)
                ),
                "gateway": await _elapsed_ms(
                    functools.partial(route.post, http, f"{gateway_url}{ROUTE}", image, headers)
                ),
            }
            if round_:  # the first round warms up
                for name, value in measured.items():
                    times[name].append(value)
    result = {
        "rounds": rounds,
        "p50_ms": {name: _median(values) for name, values in times.items()},
        "detect_minus_raw_ms": _median(
            [d - r for d, r in zip(times["detect"], times["raw"], strict=True)]
        ),
        "gateway_minus_raw_ms": _median(
            [g - r for g, r in zip(times["gateway"], times["raw"], strict=True)]
        ),
        "gateway_minus_detect_ms": _median(
            [g - d for g, d in zip(times["gateway"], times["detect"], strict=True)]
        ),
    }
    logger.info("paired c=1 overhead: %s", result)
    return result
