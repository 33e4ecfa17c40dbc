"""Stage 3, detection-service over gRPC: `Detect` (one image per call) and `DetectStream`
(one stream per worker, one frame in flight per stream).

The service requires the caller identity the gateway would forward: a `Principal` signed
with the stack's SERVICE_TOKEN_SECRET, re-signed for every point (it expires in 5 minutes).
Per point the service's batch-size and queue histograms and Triton's statistics say how
frames were batched and where time went.
"""

import asyncio
import contextlib
import itertools
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import grpc
import httpx
from prometheus_client.parser import text_string_to_metric_families
from tritonclient.grpc.aio import InferenceServerClient

from bench.images import Image
from bench.loadgen import RequestError, Send, WorkerFactory
from bench.stages import StageContext
from bench.stages import triton as triton_stage
from objectvision.v1 import common_pb2, detection_pb2, detection_pb2_grpc
from objectvision_common.identity import principal_metadata

DETECT, STREAM = "detect", "detect_stream"
_CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]
# Histograms of the service (detection_service/metrics.py): cumulative sums and counts.
_SERVICE_SERIES = (
    "detection_batch_size",
    "detection_queue_wait_seconds",
    "detection_inference_seconds",
)
_STREAM_CLOSE_S = 5.0


def _failure(error: grpc.aio.AioRpcError) -> RequestError:
    return RequestError(f"grpc:{error.code().name}", error.details() or "")


def _input(image: Image) -> detection_pb2.ImageInput:
    return detection_pb2.ImageInput(
        data=image.data, filename=image.name, content_type=image.content_type
    )


async def service_metrics(metrics_url: str) -> dict[str, float]:
    """The service's batching histograms (sum and count), read from its /metrics."""
    async with httpx.AsyncClient(timeout=5.0) as http:
        text = (await http.get(metrics_url)).text
    counters: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name in _SERVICE_SERIES:
            for sample in family.samples:
                if sample.name.endswith(("_sum", "_count")):
                    counters[sample.name] = counters.get(sample.name, 0.0) + sample.value
    return counters


def describe(change: dict[str, float]) -> dict[str, Any]:
    """Mean batch the service sent, and mean ms a frame queued / a batch took in Triton."""
    batches = change.get("detection_batch_size_count", 0.0)
    frames = change.get("detection_queue_wait_seconds_count", 0.0)
    service: dict[str, Any] = {
        "service_mean_batch": round(change.get("detection_batch_size_sum", 0.0) / batches, 2)
        if batches
        else None,
        "service_queue_ms": round(
            1000 * change.get("detection_queue_wait_seconds_sum", 0.0) / frames, 2
        )
        if frames
        else None,
        "service_batch_roundtrip_ms": round(
            1000 * change.get("detection_inference_seconds_sum", 0.0) / batches, 2
        )
        if batches
        else None,
    }
    triton_change = {
        k.removeprefix("triton."): v for k, v in change.items() if k.startswith("triton.")
    }
    return {**service, **triton_stage.describe(triton_change)}


def detect_factory(
    stub: "detection_pb2_grpc.DetectionServiceAsyncStub",
    images: list[Image],
    metadata: tuple[tuple[str, str], ...],
    timeout_s: float,
) -> WorkerFactory:
    requests = [detection_pb2.DetectRequest(images=[_input(i)], store=False) for i in images]

    @contextlib.asynccontextmanager
    async def factory(index: int) -> AsyncIterator[Send]:
        order = itertools.islice(itertools.cycle(requests), index % len(requests), None)

        async def send() -> int:
            try:
                await stub.Detect(next(order), metadata=metadata, timeout=timeout_s)
            except grpc.aio.AioRpcError as error:
                raise _failure(error) from None
            return 1

        yield send

    return factory


def stream_factory(
    stub: "detection_pb2_grpc.DetectionServiceAsyncStub",
    frames: Sequence[detection_pb2.ImageInput],
    metadata: tuple[tuple[str, str], ...],
    *,
    opening: detection_pb2.Frame | None = None,
    on_answer: Callable[[detection_pb2.FrameDetections], None] | None = None,
    stride: int = 1,
) -> WorkerFactory:
    """Each worker one stream sending `frames` in order, looped, one frame in flight, worker n
    starting at frame n x `stride`. The first frame of each stream carries `opening` (a stream
    restarted after an error starts afresh, as a caller's would); each answer goes to
    `on_answer`, which may refuse it by raising RequestError."""

    @contextlib.asynccontextmanager
    async def factory(index: int) -> AsyncIterator[Send]:
        order = itertools.islice(itertools.cycle(frames), (index * stride) % len(frames), None)
        sequence = itertools.count(1)
        call: grpc.aio.StreamStreamCall[Any, Any] | None = None

        async def send() -> int:
            nonlocal call
            frame = detection_pb2.Frame(sequence=next(sequence), image=next(order))
            if call is None:
                call = stub.DetectStream(metadata=metadata)
                if opening is not None:
                    frame.MergeFrom(opening)
            try:
                await call.write(frame)
                reply = await call.read()
            except grpc.aio.AioRpcError as error:
                call = None
                raise _failure(error) from None
            except BaseException:
                # Timed out or cancelled mid-frame: the stream's order is lost; start afresh.
                call.cancel()
                call = None
                raise
            if reply is grpc.aio.EOF:
                call = None
                raise RequestError("grpc:EOF", "the server ended the stream")
            assert isinstance(reply, detection_pb2.FrameDetections)
            if reply.error:
                raise RequestError("frame_error", reply.error)
            if on_answer is not None:
                on_answer(reply)
            return 1

        try:
            yield send
        finally:
            if call is not None:
                await close_stream(call)

    return factory


async def close_stream(call: grpc.aio.StreamStreamCall[Any, Any]) -> None:
    """Half-close and read to the end, so the server finishes the stream normally."""
    try:
        async with asyncio.timeout(_STREAM_CLOSE_S):
            await call.done_writing()
            while await call.read() is not grpc.aio.EOF:
                pass
    except (TimeoutError, grpc.aio.AioRpcError):
        call.cancel()


async def _check(
    stub: "detection_pb2_grpc.DetectionServiceAsyncStub",
    image: Image,
    metadata: tuple[tuple[str, str], ...],
) -> None:
    reply = await stub.Detect(
        detection_pb2.DetectRequest(images=[_input(image)], store=False),
        metadata=metadata,
        timeout=60,
    )
    names = {obj.class_name for obj in reply.results[0].objects}
    if image.name == "bus.jpg" and "bus" not in names:
        raise RuntimeError(f"detection-service finds no bus in bus.jpg: {sorted(names)}")


async def run(
    ctx: StageContext,
    *,
    address: str,
    secret: str,
    metrics_url: str,
    triton_url: str,
    involved: list[str],
) -> None:
    principal = common_pb2.Principal(user_id=str(uuid.uuid4()), auth_method="jwt")

    def signed() -> tuple[tuple[str, str], ...]:
        return principal_metadata(principal, secret=secret)

    async with (
        grpc.aio.insecure_channel(address, options=_CHANNEL_OPTIONS) as channel,
        InferenceServerClient(triton_url) as triton,
    ):
        stub = detection_pb2_grpc.DetectionServiceStub(channel)
        await _check(stub, ctx.images[0], signed())

        async def probe() -> dict[str, float]:
            service = await service_metrics(metrics_url)
            server = await triton_stage.statistics(triton)
            return {**service, **{f"triton.{k}": v for k, v in server.items()}}

        variants: list[tuple[str, Callable[[], WorkerFactory]]] = [
            (
                DETECT,
                lambda: detect_factory(stub, ctx.images, signed(), ctx.config.request_timeout_s),
            ),
            (STREAM, lambda: stream_factory(stub, [_input(i) for i in ctx.images], signed())),
        ]
        for stage, make in variants:
            if stage not in ctx.config.stages:
                continue
            for concurrency in ctx.config.concurrencies_for(stage):
                await ctx.measure(
                    stage,
                    concurrency,
                    make(),
                    involved=involved,
                    probe=probe,
                    derive=describe,
                )
