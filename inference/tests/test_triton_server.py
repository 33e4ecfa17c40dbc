"""End to end: the real tritonserver (nvidia-pytriton wheel) serving the CPU flavour over gRPC."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.grpc as grpcclient
from inference_reference import IMAGES, TRITON_ENV, load_letterboxed, served_postprocess

from objectvision_inference.triton import (
    MODEL_NAME,
    build_model_repository,
    tritonserver_command,
    wait_until_ready,
)

pytestmark = pytest.mark.skipif(
    not TRITON_ENV.exists(), reason=f"no Triton env at {TRITON_ENV}: make triton-env"
)
PERSON, BUS = 0, 5
CONCURRENT = 16


@dataclass
class Server:
    grpc_url: str
    log: Path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (graceful unload), then SIGKILL the session, stub processes included."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def server(served_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("triton")
    repo = build_model_repository(workdir / "repository", served_onnx, flavour="cpu")
    grpc_port, http_port, metrics_port = _free_port(), _free_port(), _free_port()
    argv, env = tritonserver_command(
        repo,
        grpc_port=grpc_port,
        http_port=http_port,
        metrics_port=metrics_port,
        triton_env_dir=TRITON_ENV,
    )
    log = workdir / "tritonserver.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            argv, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        try:
            wait_until_ready(http_port, timeout_s=120, process=process)
        except (RuntimeError, TimeoutError) as exc:
            raise AssertionError(f"{exc}\n{log.read_text()[-4000:]}") from exc
        yield Server(grpc_url=f"127.0.0.1:{grpc_port}", log=log)
    finally:
        _stop(process)


def _input(pixels: np.ndarray) -> grpcclient.InferInput:
    tensor = grpcclient.InferInput("images", list(pixels.shape), "UINT8")
    tensor.set_data_from_numpy(pixels)
    return tensor


def _stats(client: grpcclient.InferenceServerClient) -> dict[str, int]:
    (stats,) = client.get_inference_statistics(MODEL_NAME, as_json=True)["model_stats"]
    return {key: int(stats.get(key, 0)) for key in ("inference_count", "execution_count")}


def test_bus_over_grpc(server: Server, served_session: ort.InferenceSession) -> None:
    pixels = load_letterboxed(IMAGES / "bus.jpg")[None]
    with grpcclient.InferenceServerClient(server.grpc_url) as client:
        assert client.is_model_ready(MODEL_NAME)
        result = client.infer(MODEL_NAME, [_input(pixels)])
    candidates = result.as_numpy("detections")
    assert candidates.shape == (1, 1024, 6) and candidates.dtype == np.float32
    (local,) = served_session.run(None, {"images": pixels})
    np.testing.assert_allclose(candidates, local, atol=1e-4)

    detections = served_postprocess(candidates[0], conf=0.25, iou=0.7)
    classes = detections[:, 5].astype(int).tolist()
    assert sorted(classes) == [PERSON] * 4 + [BUS]
    assert detections[detections[:, 5] == BUS][0, 4] == pytest.approx(0.83, abs=0.02)


def test_dynamic_batching_merges_concurrent_requests(
    server: Server, served_session: ort.InferenceSession
) -> None:
    # Alternate two images so a batch split back wrongly shows up as a mismatch.
    images = [load_letterboxed(IMAGES / name)[None] for name in ("bus.jpg", "zidane.jpg")]
    expected = [served_session.run(None, {"images": pixels})[0] for pixels in images]
    done: queue.Queue[tuple[int, object, object]] = queue.Queue()
    with grpcclient.InferenceServerClient(server.grpc_url) as client:
        before = _stats(client)
        for i in range(CONCURRENT):
            client.async_infer(
                MODEL_NAME,
                [_input(images[i % 2])],
                callback=lambda result, error, i=i: done.put((i, result, error)),
            )
        outputs = [done.get(timeout=120) for _ in range(CONCURRENT)]
        after = _stats(client)

    for i, result, error in outputs:
        assert error is None, error
        candidates = result.as_numpy("detections")  # type: ignore[attr-defined]
        np.testing.assert_allclose(candidates, expected[i % 2], atol=1e-4)
    inferences = after["inference_count"] - before["inference_count"]
    executions = after["execution_count"] - before["execution_count"]
    assert inferences == CONCURRENT
    assert executions < inferences, f"no batching: {executions} runs for {inferences} images"
