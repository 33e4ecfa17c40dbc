"""How many ModelInfer calls carrying a W3C `traceparent` does Triton trace, over gRPC and HTTP?

    .venv/bin/python tools/triton_trace_propagation.py [--rounds 4] [--concurrency 6]

Starts a Triton of its own (the devstack's, its OpenTelemetry mode with ``rate=0``: only calls
that carry a context are traced) exporting to a real OTLP receiver in this process, then sends
rounds of concurrent calls, each with a `traceparent` of its own, once over gRPC and once over
HTTP, and counts the calls whose `InferRequest` span arrived as a child of the given parent.

Why it exists: Triton's gRPC frontend drops some of these contexts. `GrpcServerCarrier::Get`
(`src/grpc/infer_handler.h` in triton-inference-server/server) returns gRPC's
`string_ref::data()`, which is not NUL-terminated, as a C string: the value read runs on
into whatever follows it in memory, fails the W3C parser's 55-character check, and the call
is not traced. The HTTP frontend reads NUL-terminated headers and traces every call. Run
this again after upgrading Triton: when gRPC traces every call, the note in the README's
tracing section and in ADR 0013 can go.
"""

import argparse
import asyncio
import json
import secrets
import struct
import tempfile
from pathlib import Path

import httpx
import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.grpc.aio import InferenceServerClient

from objectvision_devstack.otlp import OtlpReceiver
from objectvision_devstack.triton import LocalTriton

ROOT = Path(__file__).resolve().parents[1]
SERVED_MODEL = ROOT / ".data" / "models" / "yolov8n_served.onnx"
IMAGE = ROOT.parent / "shared" / "images" / "bus.jpg"
MODEL = "yolov8n"
# Triton exports every 500 ms here (devstack's trace arguments); wait well past that.
EXPORT_WAIT_S = 3.0


def _grpc_input(image: bytes) -> grpcclient.InferInput:
    encoded = np.empty((1, 1), dtype=object)
    encoded[0, 0] = image
    tensor = grpcclient.InferInput("images", [1, 1], "BYTES")
    tensor.set_data_from_numpy(encoded)
    return tensor


def _http_request(image: bytes) -> tuple[bytes, dict[str, str]]:
    """KServe v2 over HTTP with Triton's binary tensor extension: a JSON header, then the
    BYTES element (its 4-byte little-endian length, then the file). Built here because
    tritonclient's HTTP client needs its `http` extra (gevent), which nothing else uses."""
    element = struct.pack("<I", len(image)) + image
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "images",
                    "shape": [1, 1],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(element)},
                }
            ]
        }
    ).encode()
    return header + element, {"Inference-Header-Content-Length": str(len(header))}


async def _traced_share(
    *,
    transport: str,
    grpc_client: InferenceServerClient,
    http: httpx.AsyncClient,
    infer_url: str,
    receiver: OtlpReceiver,
    rounds: int,
    concurrency: int,
    image: bytes,
) -> tuple[int, int]:
    """(calls traced, calls sent): a call is traced when Triton's `InferRequest` span arrived
    as a child of the span id its `traceparent` named."""
    body, headers = _http_request(image)
    parents: list[str] = []
    for _ in range(rounds):
        calls = []
        for _ in range(concurrency):
            parent = secrets.token_hex(8)
            parents.append(parent)
            traceparent = f"00-{secrets.token_hex(16)}-{parent}-01"
            if transport == "grpc":
                calls.append(
                    grpc_client.infer(
                        MODEL, [_grpc_input(image)], headers={"traceparent": traceparent}
                    )
                )
            else:
                calls.append(
                    http.post(
                        infer_url, content=body, headers={**headers, "traceparent": traceparent}
                    )
                )
        for answer in await asyncio.gather(*calls):
            if isinstance(answer, httpx.Response):
                answer.raise_for_status()
    await asyncio.sleep(EXPORT_WAIT_S)
    continued = {
        span.parent_id
        for span in receiver.spans()
        if span.service == "triton" and span.name == "InferRequest"
    }
    return sum(parent in continued for parent in parents), len(parents)


async def measure(*, rounds: int, concurrency: int) -> dict[str, tuple[int, int]]:
    image = IMAGE.read_bytes()
    with (
        OtlpReceiver() as receiver,
        tempfile.TemporaryDirectory(prefix="triton-trace-") as data_dir,
    ):
        triton = LocalTriton(
            Path(data_dir), served_model=SERVED_MODEL, trace_url=receiver.http_endpoint
        )
        triton.start()
        try:
            infer_url = f"http://127.0.0.1:{triton.http_port}/v2/models/{MODEL}/infer"
            async with (
                InferenceServerClient(triton.grpc_url) as grpc_client,
                httpx.AsyncClient(timeout=120) as http,
            ):
                # Untraced warm-up: the first inference loads the model's session.
                await grpc_client.infer(MODEL, [_grpc_input(image)])
                results = {}
                for transport in ("grpc", "http"):
                    results[transport] = await _traced_share(
                        transport=transport,
                        grpc_client=grpc_client,
                        http=http,
                        infer_url=infer_url,
                        receiver=receiver,
                        rounds=rounds,
                        concurrency=concurrency,
                        image=image,
                    )
                return results
        finally:
            triton.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=6)
    args = parser.parse_args()
    results = asyncio.run(measure(rounds=args.rounds, concurrency=args.concurrency))
    for transport, (traced, sent) in results.items():
        print(f"{transport}: Triton traced {traced} of {sent} calls that carried a traceparent")


if __name__ == "__main__":
    main()
