"""The GPU flavour's model.py under the real tritonserver, run on the CPU (no GPU here).

What a GPU box does differently is only the device (KIND_GPU, fp16, CUDA graphs); this checks
the rest as it runs there: the stub's Python is a torch venv with numpy 2 (``.venv-torch``)
and the server comes from the nvidia-pytriton wheel installed elsewhere (``server_site``,
here the Triton env's site-packages), tensors cross the stub as DLPack, the requests of one
dynamic batch share one padded batch, and the answers equal the served ONNX graph's.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.grpc as grpcclient
from inference_reference import IMAGES, REPO_ROOT, TRITON_ENV, load_letterboxed

from objectvision_inference.triton import (
    MODEL_NAME,
    build_model_repository,
    find_triton_env,
    tritonserver_command,
    wait_until_ready,
)

TORCH_ENV = Path(os.environ.get("OBJECTVISION_TORCH_ENV", REPO_ROOT / ".venv-torch"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (TRITON_ENV / "bin" / "python").exists() or not (TORCH_ENV / "bin" / "python").exists(),
        reason="needs the Triton env (make triton-env) and the torch env (make torch-env)",
    ),
]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _input(pixels: np.ndarray) -> grpcclient.InferInput:
    tensor = grpcclient.InferInput("images", list(pixels.shape), "UINT8")
    tensor.set_data_from_numpy(pixels)
    return tensor


def test_gpu_model_py_answers_like_the_served_graph(
    served_onnx: Path, served_session: ort.InferenceSession, tmp_path: Path
) -> None:
    repo = build_model_repository(tmp_path / "repo", served_onnx, flavour="gpu", max_batch=4)
    config = repo / MODEL_NAME / "config.pbtxt"
    text = config.read_text().replace("kind: KIND_GPU", "kind: KIND_CPU")
    # fp32: fp16 convolutions are slow on a CPU, and fp32 must equal the ONNX graph.
    fp16 = '"fp16" value: { string_value: "%s" }'
    text = text.replace(fp16 % "1", fp16 % "0")
    config.write_text(text)
    ports = _free_port(), _free_port(), _free_port()
    argv, env = tritonserver_command(
        repo,
        grpc_port=ports[0],
        http_port=ports[1],
        metrics_port=ports[2],
        triton_env_dir=TORCH_ENV,
        server_site=find_triton_env(TRITON_ENV).site_packages,
    )
    log = tmp_path / "tritonserver.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            argv, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        try:
            wait_until_ready(ports[1], timeout_s=180, process=process)
        except (RuntimeError, TimeoutError) as exc:
            raise AssertionError(f"{exc}\n{log.read_text()[-4000:]}") from exc
        frames = np.stack([load_letterboxed(IMAGES / n) for n in ("bus.jpg", "zidane.jpg")])
        (expected,) = served_session.run(None, {"images": frames})
        url = f"127.0.0.1:{ports[0]}"
        with grpcclient.InferenceServerClient(url) as client:
            whole = client.infer(MODEL_NAME, [_input(frames)]).as_numpy("detections")

        def one(index: int) -> np.ndarray:
            with grpcclient.InferenceServerClient(url) as own:
                pixels = frames[index % 2][None]
                return own.infer(MODEL_NAME, [_input(pixels)]).as_numpy("detections")

        with ThreadPoolExecutor(6) as pool:
            singles = list(pool.map(one, range(6)))
    finally:
        if process.poll() is None:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    logged = log.read_text()
    assert "cuda_graphs=False for batch sizes [1, 2, 4]" in logged
    assert "numpy 2." in logged, "the stub should run with the torch env's numpy 2"
    assert whole.shape == (2, 1024, 6) and whole.dtype == np.float32
    np.testing.assert_allclose(whole[..., :4], expected[..., :4], atol=0.05, rtol=0)
    np.testing.assert_allclose(whole[..., 4], expected[..., 4], atol=1e-3, rtol=0)
    np.testing.assert_array_equal(whole[:, :10, 5], expected[:, :10, 5])
    for index, rows in enumerate(singles):
        np.testing.assert_allclose(rows[0], whole[index % 2], atol=1e-3, rtol=0)
