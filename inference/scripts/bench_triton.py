"""Start the local CPU Triton on free loopback ports and time it over gRPC.

Why: shows what dynamic batching does on this machine (batch sizes Triton formed, images/s for
sequential vs concurrent clients) next to ``bench_ort.py``'s in-process numbers. Bounded: a
fixed number of requests, then the server is stopped. Usage (main venv):

    python inference/scripts/bench_triton.py --served SERVED.onnx [--triton-env .venv-triton]
"""

from __future__ import annotations

import argparse
import queue
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import tritonclient.grpc as grpcclient

from objectvision_inference.triton import (
    MODEL_NAME,
    build_model_repository,
    tritonserver_command,
    wait_until_ready,
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _request(pixels: np.ndarray) -> list[grpcclient.InferInput]:
    tensor = grpcclient.InferInput("images", list(pixels.shape), "UINT8")
    tensor.set_data_from_numpy(pixels)
    return [tensor]


def _batch_sizes(client: grpcclient.InferenceServerClient) -> dict[int, int]:
    (stats,) = client.get_inference_statistics(MODEL_NAME, as_json=True)["model_stats"]
    return {
        int(b["batch_size"]): int(b["compute_infer"]["count"]) for b in stats.get("batch_stats", [])
    }


def _bench(url: str, sequential: int, concurrent: int) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (1, 640, 640, 3), dtype=np.uint8)
    with grpcclient.InferenceServerClient(url) as client:
        client.infer(MODEL_NAME, _request(pixels))
        times = []
        for _ in range(sequential):
            start = time.perf_counter()
            client.infer(MODEL_NAME, _request(pixels))
            times.append((time.perf_counter() - start) * 1000.0)
        print(f"sequential: {sequential} requests, median {statistics.median(times):.1f} ms each")

        before = _batch_sizes(client)
        done: queue.Queue[object] = queue.Queue()
        start = time.perf_counter()
        for _ in range(concurrent):
            client.async_infer(
                MODEL_NAME, _request(pixels), callback=lambda result, error: done.put(error)
            )
        errors = [done.get(timeout=300) for _ in range(concurrent)]
        elapsed = time.perf_counter() - start
        after = _batch_sizes(client)
        formed = {size: after[size] - before.get(size, 0) for size in after}
        formed = {size: count for size, count in sorted(formed.items()) if count}
        failed = sum(e is not None for e in errors)
        rate = concurrent / elapsed
        print(f"concurrent: {concurrent} requests in {elapsed:.2f} s ({rate:.1f} img/s)")
        print(f"  errors {failed}, batches formed {{size: count}}: {formed}")


def main() -> None:
    """Build a CPU repository in a temporary folder, serve it, time it, stop the server."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--served", type=Path, required=True)
    parser.add_argument("--triton-env", type=Path, default=Path(".venv-triton"))
    parser.add_argument("--sequential", type=int, default=10)
    parser.add_argument("--concurrent", type=int, default=32)
    parser.add_argument("--max-queue-delay-us", type=int)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        repo = build_model_repository(
            Path(tmp) / "repo",
            args.served,
            flavour="cpu",
            max_queue_delay_us=args.max_queue_delay_us,
        )
        grpc_port, http_port = _free_port(), _free_port()
        argv, env = tritonserver_command(
            repo,
            grpc_port=grpc_port,
            http_port=http_port,
            metrics_port=_free_port(),
            triton_env_dir=args.triton_env,
        )
        with (Path(tmp) / "tritonserver.log").open("wb") as log:
            process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            start = time.perf_counter()
            wait_until_ready(http_port, process=process)
            print(f"tritonserver ready in {time.perf_counter() - start:.1f} s")
            _bench(f"127.0.0.1:{grpc_port}", args.sequential, args.concurrent)
        finally:
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
