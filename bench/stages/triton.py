"""Stage 2, Triton alone: the encoded-image contract over gRPC, one file per request.

Each request carries the file's bytes as uploaded (decoding, letterbox, network and NMS run
inside Triton). What the detection service adds on top (header checks, batching, its own
gRPC) is the difference between this stage and the next. Per point the server's own
statistics say how requests were batched and where its time went, and the bytes each image
put on the wire are counted against the file's size.
"""

import contextlib
import itertools
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.grpc.aio import InferenceServerClient
from tritonclient.utils import InferenceServerException

from bench.loadgen import RequestError, Send
from bench.stages import StageContext

STAGE = "triton"
MODEL = "yolov8n"
INPUT, OUTPUT, COUNTS = "images", "detections", "counts"
BUS_CLASS = 5
_CHANNEL_ARGS = [
    ("grpc.max_send_message_length", 256 * 1024 * 1024),
    ("grpc.max_receive_message_length", 256 * 1024 * 1024),
]


def _input(data: bytes) -> grpcclient.InferInput:
    encoded = np.empty((1, 1), dtype=object)
    encoded[0, 0] = data
    tensor = grpcclient.InferInput(INPUT, [1, 1], "BYTES")
    tensor.set_data_from_numpy(encoded)
    return tensor


def wire_bytes(tensor: grpcclient.InferInput) -> int:
    """What the image input puts on the wire (tritonclient's raw content: the file and its
    4-byte length prefix)."""
    return len(tensor._get_content() or b"")


async def statistics(client: InferenceServerClient) -> dict[str, float]:
    """Triton's cumulative counters for the model: requests, executions, time per phase."""
    reply = await client.get_inference_statistics(MODEL, as_json=True)
    (stats,) = reply["model_stats"]
    counters: dict[str, float] = {
        "inference_count": float(stats.get("inference_count", 0)),
        "execution_count": float(stats.get("execution_count", 0)),
    }
    for phase, value in stats.get("inference_stats", {}).items():
        counters[f"{phase}_ns"] = float(value.get("ns", 0))
        counters[f"{phase}_count"] = float(value.get("count", 0))
    for batch in stats.get("batch_stats", []):
        counters[f"batch_{batch['batch_size']}"] = float(batch["compute_infer"].get("count", 0))
    return counters


def describe(change: dict[str, float]) -> dict[str, Any]:
    """Mean batch Triton formed and mean ms per request in its queue and in the model."""
    requests = change.get("success_count", 0.0)
    executions = change.get("execution_count", 0.0)
    batches = {
        key.removeprefix("batch_"): int(value)
        for key, value in sorted(change.items(), key=lambda kv: kv[0])
        if key.startswith("batch_") and value
    }
    per_request = {
        f"triton_{phase}_ms": round(change.get(f"{phase}_ns", 0.0) / requests / 1e6, 2)
        for phase in ("queue", "compute_input", "compute_infer", "compute_output")
        if requests
    }
    return {
        "triton_mean_batch": round(change.get("inference_count", 0.0) / executions, 2)
        if executions
        else None,
        "triton_batches": batches,
        **per_request,
    }


def _finds_bus(rows: np.ndarray, count: int) -> bool:
    rows = rows.reshape(-1, 6)[:count]
    return bool(((rows[:, 4] >= 0.25) & (rows[:, 5] == BUS_CLASS)).any())


async def run(ctx: StageContext, *, url: str, involved: list[str]) -> None:
    frames = [_input(image.data) for image in ctx.images]
    sent = sum(wire_bytes(frame) for frame in frames)
    uploaded = sum(len(image.data) for image in ctx.images)
    ctx.notes.append(
        f"triton: {sent / len(frames):.0f} bytes sent per image for {uploaded / len(frames):.0f}"
        " bytes uploaded (the file itself, plus a 4-byte length prefix)"
    )
    outputs = [grpcclient.InferRequestedOutput(OUTPUT), grpcclient.InferRequestedOutput(COUNTS)]
    async with InferenceServerClient(url, channel_args=_CHANNEL_ARGS) as client:
        answer = await client.infer(MODEL, [frames[0]], outputs=outputs)
        count = int(answer.as_numpy(COUNTS).reshape(-1)[0])
        if not _finds_bus(answer.as_numpy(OUTPUT), count):
            raise RuntimeError(f"Triton finds no bus in {ctx.images[0].name}: wrong model?")

        @contextlib.asynccontextmanager
        async def factory(index: int) -> AsyncIterator[Send]:
            order = itertools.islice(itertools.cycle(frames), index % len(frames), None)

            async def send() -> int:
                try:
                    await client.infer(MODEL, [next(order)], outputs=outputs)
                except InferenceServerException as error:
                    raise RequestError(f"triton:{error.status()}", error.message()) from None
                return 1

            yield send

        async def probe() -> dict[str, float]:
            return await statistics(client)

        for concurrency in ctx.config.concurrencies_for(STAGE):
            await ctx.measure(
                STAGE, concurrency, factory, involved=involved, probe=probe, derive=describe
            )
