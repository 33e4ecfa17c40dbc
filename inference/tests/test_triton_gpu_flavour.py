"""The GPU flavour's model.py under the real tritonserver, run on the CPU (no GPU here).

What a GPU box does differently is the device (KIND_GPU, fp16, CUDA graphs, nvJPEG); this
checks the rest as it runs there: the stub's Python has torch and numpy 1.26 (as gpu.sh builds
it), the server comes from the nvidia-pytriton wheel installed elsewhere (``server_site``),
encoded files go in, the requests of one dynamic batch share one padded batch, and the answers
equal the CPU flavour's pipeline.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.grpc as grpcclient
from inference_reference import IMAGES, REPO_ROOT, TRITON_ENV

from objectvision_devstack.processes import free_port
from objectvision_inference import detect_contract as contract
from objectvision_inference.cpu_pipeline import CpuPipeline
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


def _stub_env(root: Path) -> Path:
    """A venv for the stub as bench/gpu.sh makes one on a GPU box: numpy 1.26 (here the Triton
    env's) in front of the torch env's packages, because the 2.51 stub misreads BYTES inputs
    under numpy 2."""
    subprocess.run(["python3", "-m", "venv", "--without-pip", str(root)], check=True)
    probe = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    sites = [
        subprocess.run(
            [str(env / "bin" / "python"), "-c", probe], check=True, text=True, capture_output=True
        ).stdout.strip()
        for env in (root, TRITON_ENV, TORCH_ENV)
    ]
    (Path(sites[0]) / "box-packages.pth").write_text("\n".join(sites[1:]) + "\n")
    return root


def _inputs(files: list[bytes]) -> list[grpcclient.InferInput]:
    encoded = np.empty((len(files), 1), dtype=object)
    for row, data in enumerate(files):
        encoded[row, 0] = data
    tensor = grpcclient.InferInput(contract.IMAGES, list(encoded.shape), "BYTES")
    tensor.set_data_from_numpy(encoded)
    return [tensor]


def _answers(result: grpcclient.InferResult) -> list[contract.ImageResult]:
    return contract.unpack({name: result.as_numpy(name) for name in contract.OUTPUTS})


def test_gpu_model_py_answers_like_the_cpu_flavour(served_onnx: Path, tmp_path: Path) -> None:
    repo = build_model_repository(tmp_path / "repo", served_onnx, flavour="gpu", max_batch=4)
    config = repo / MODEL_NAME / "config.pbtxt"
    config.write_text(config.read_text().replace("kind: KIND_GPU", "kind: KIND_CPU"))
    ports = free_port(), free_port(), free_port()
    argv, env = tritonserver_command(
        repo,
        grpc_port=ports[0],
        http_port=ports[1],
        metrics_port=ports[2],
        triton_env_dir=_stub_env(tmp_path / "stub-env"),
        server_site=find_triton_env(TRITON_ENV).site_packages,
    )
    log = tmp_path / "tritonserver.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            argv, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    files = [(IMAGES / name).read_bytes() for name in ("bus.jpg", "zidane.jpg")]
    session = ort.InferenceSession(str(served_onnx), providers=["CPUExecutionProvider"])
    cpu = CpuPipeline(lambda batch: session.run(None, {"images": batch})[0], max_pixels=40_000_000)
    expected, _ = cpu(files, [contract.ImageOptions()] * 2, [None, None])
    try:
        try:
            wait_until_ready(ports[1], timeout_s=180, process=process)
        except (RuntimeError, TimeoutError) as exc:
            raise AssertionError(f"{exc}\n{log.read_text()[-4000:]}") from exc
        url = f"127.0.0.1:{ports[0]}"
        with grpcclient.InferenceServerClient(url) as client:
            whole = _answers(client.infer(MODEL_NAME, _inputs(files)))

        def one(index: int) -> contract.ImageResult:
            with grpcclient.InferenceServerClient(url) as own:
                return _answers(own.infer(MODEL_NAME, _inputs([files[index % 2]])))[0]

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
    assert "numpy 1.26" in logged
    for got, want in zip(whole, expected, strict=True):
        assert got.status == contract.STATUS_OK and len(got.rows) == len(want.rows)
        np.testing.assert_allclose(got.rows[:, :4], want.rows[:, :4], atol=2.0, rtol=0)
        np.testing.assert_allclose(got.rows[:, 4], want.rows[:, 4], atol=0.03, rtol=0)
        np.testing.assert_array_equal(got.rows[:, 5], want.rows[:, 5])
    for index, answer in enumerate(singles):
        np.testing.assert_allclose(answer.rows, whole[index % 2].rows, atol=1e-3, rtol=0)
