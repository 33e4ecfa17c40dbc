"""int8 against fp32 through the same path: detection-service gRPC `Detect`, one image per
call, the model chosen per request (`DetectionParams.model`), everything else equal.

Why ratios from one run, measured in alternation: two numbers taken minutes apart on a shared
2-core machine drift more than the difference between the models. So c=1 latency is taken in
rounds that send the same image to both models back to back (the order alternates, so neither
always runs on a warmer cache), and throughput in alternating windows (fp32, int8, fp32, int8)
at one concurrency; the ratios divide int8's figure by fp32's.
"""

import contextlib
import dataclasses
import itertools
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc

from bench.images import Image
from bench.loadgen import RequestError, Send, WorkerFactory, closed_loop
from bench.stages import StageContext, logger
from bench.stats import ratio, summarize
from objectvision.v1 import common_pb2, detection_pb2, detection_pb2_grpc
from objectvision_common.identity import principal_metadata

STAGE = "models"
FP32, INT8 = "yolov8n", "yolov8n-int8"
_CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]
# Windows per model; alternating halves drift between the two. Together they last the
# configured window, so the stage adds about 2 x (warm-ups + window) to a run.
_WINDOWS = 2
# Seconds a c=1 round (two images, one per model) takes at most on the 2-core machine.
_ROUND_S = 0.5
_DRAIN_S = 3.0


def _request(image: Image, model: str) -> detection_pb2.DetectRequest:
    return detection_pb2.DetectRequest(
        images=[detection_pb2.ImageInput(data=image.data, filename=image.name)],
        params=detection_pb2.DetectionParams(model=model),
        store=False,
    )


def _factory(
    stub: "detection_pb2_grpc.DetectionServiceAsyncStub",
    images: list[Image],
    model: str,
    metadata: tuple[tuple[str, str], ...],
    timeout_s: float,
) -> WorkerFactory:
    requests = [_request(image, model) for image in images]

    @contextlib.asynccontextmanager
    async def factory(index: int) -> AsyncIterator[Send]:
        order = itertools.islice(itertools.cycle(requests), index % len(requests), None)

        async def send() -> int:
            try:
                reply = await stub.Detect(next(order), metadata=metadata, timeout=timeout_s)
            except grpc.aio.AioRpcError as error:
                raise RequestError(f"grpc:{error.code().name}", error.details() or "") from None
            if reply.results[0].model != model:
                raise RequestError("wrong_model", f"asked {model}, {reply.results[0].model} ran")
            return 1

        yield send

    return factory


async def run(
    ctx: StageContext, *, address: str, secret: str, rounds: int, concurrency: int
) -> dict[str, Any] | None:
    """The comparison, or None when a model is not served or the budget is spent."""
    full = ctx.settings(concurrency)
    settings = dataclasses.replace(full, measure_s=full.measure_s / _WINDOWS)
    needed = rounds * _ROUND_S + 2 * _WINDOWS * (settings.max_warmup_s + settings.measure_s)
    needed += 2 * _WINDOWS * _DRAIN_S
    if not ctx.within_budget(STAGE, seconds=needed):
        return None
    principal = common_pb2.Principal(user_id=str(uuid.uuid4()), auth_method="jwt")

    def signed() -> tuple[tuple[str, str], ...]:
        return principal_metadata(principal, secret=secret)

    async with grpc.aio.insecure_channel(address, options=_CHANNEL_OPTIONS) as channel:
        stub = detection_pb2_grpc.DetectionServiceStub(channel)
        listed = await stub.ListModels(
            detection_pb2.ListModelsRequest(), metadata=signed(), timeout=30
        )
        ready = {model.name for model in listed.models if model.ready}
        if not {FP32, INT8} <= ready:
            ctx.skip(STAGE, f"needs {FP32} and {INT8} ready; the stack serves {sorted(ready)}")
            return None
        precision = {model.name: model.precision for model in listed.models}

        # c=1, paired rounds on the same image.
        latencies: dict[str, list[float]] = {FP32: [], INT8: []}
        images = itertools.cycle(ctx.images)
        metadata = signed()
        for round_ in range(rounds + 1):
            image = next(images)
            order = (FP32, INT8) if round_ % 2 else (INT8, FP32)
            for model in order:
                started = time.perf_counter()
                await stub.Detect(_request(image, model), metadata=metadata, timeout=60)
                if round_:  # the first round warms both models up
                    latencies[model].append((time.perf_counter() - started) * 1000)

        # Throughput at one concurrency, in alternating windows.
        images_done = {FP32: 0, INT8: 0}
        window_s = {FP32: 0.0, INT8: 0.0}
        loaded: dict[str, list[float]] = {FP32: [], INT8: []}
        errors = {FP32: 0, INT8: 0}
        for _ in range(_WINDOWS):
            for model in (FP32, INT8):
                factory = _factory(stub, ctx.images, model, signed(), settings.request_timeout_s)
                result = await closed_loop(factory, settings, meter=ctx.meter)
                images_done[model] += result.images
                window_s[model] += result.window_s
                loaded[model] += result.latencies_ms
                errors[model] += result.errors

    throughput = {
        model: round(images_done[model] / window_s[model], 2) if window_s[model] else None
        for model in (FP32, INT8)
    }
    p50_c1 = {model: round(statistics.median(values), 2) for model, values in latencies.items()}
    p50_loaded = {
        model: round(summarize(values).p50, 2) if values else None
        for model, values in loaded.items()
    }
    found = {
        "models": {FP32: precision.get(FP32, ""), INT8: precision.get(INT8, "")},
        "path": "detection-service gRPC Detect, 1 image per call, result cache off",
        "rounds": rounds,
        "p50_ms_c1": p50_c1,
        "concurrency": concurrency,
        "throughput_ips": throughput,
        "p50_ms": p50_loaded,
        "errors": errors,
        "int8_over_fp32": {
            "p50_c1": ratio(p50_c1[INT8], p50_c1[FP32]),
            "throughput": ratio(throughput[INT8], throughput[FP32]),
            "p50": ratio(p50_loaded[INT8], p50_loaded[FP32]),
        },
    }
    logger.info("int8 vs fp32: %s", found)
    return found
