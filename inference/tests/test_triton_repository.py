"""Model repository layout, checked-in configs and the tritonserver launch command."""

from __future__ import annotations

from pathlib import Path

import pytest
from inference_reference import REPO_ROOT, TRITON_ENV

from objectvision_inference.prepare_model import DEFAULT_TOP_K
from objectvision_inference.triton import (
    build_model_repository,
    config_pbtxt,
    served_top_k,
    tritonserver_command,
)

CHECKED_IN = REPO_ROOT / "inference" / "model_repository"


@pytest.mark.parametrize("flavour", ["trt", "cpu", "gpu"])
def test_checked_in_config_matches_generator(flavour: str) -> None:
    text = (CHECKED_IN / flavour / "yolov8n" / "config.pbtxt").read_text()
    assert text == config_pbtxt(flavour, top_k=DEFAULT_TOP_K)  # type: ignore[arg-type]


def test_every_flavour_serves_the_same_io() -> None:
    def io_lines(text: str) -> list[str]:
        start, end = text.index("input ["), text.index("# Queue delay")
        return text[start:end].splitlines()

    trt = config_pbtxt("trt", top_k=DEFAULT_TOP_K)
    cpu = config_pbtxt("cpu", top_k=DEFAULT_TOP_K)
    gpu = config_pbtxt("gpu", top_k=DEFAULT_TOP_K)
    assert io_lines(trt) == io_lines(cpu) == io_lines(gpu)
    assert 'platform: "tensorrt_plan"' in trt and "KIND_GPU" in trt
    assert 'backend: "python"' in cpu and "KIND_CPU" in cpu
    assert 'backend: "python"' in gpu and "KIND_GPU" in gpu
    settings = [line for line in (trt + cpu + gpu).splitlines() if not line.startswith("#")]
    assert not any("preferred_batch_size" in line for line in settings)


def test_cpu_repository_layout(served_onnx: Path, tmp_path: Path) -> None:
    repo = build_model_repository(
        tmp_path / "repo", served_onnx, flavour="cpu", max_batch=4, intra_op_threads=1
    )
    model = repo / "yolov8n"
    assert (model / "1" / "model.onnx").read_bytes() == served_onnx.read_bytes()
    assert "class TritonPythonModel" in (model / "1" / "model.py").read_text()
    config = (model / "config.pbtxt").read_text()
    assert "max_batch_size: 4" in config
    assert f"dims: [ {served_top_k(served_onnx)}, 6 ]" in config
    assert '{ key: "intra_op_threads" value: { string_value: "1" } }' in config


def test_gpu_repository_layout(served_onnx: Path, tmp_path: Path) -> None:
    repo = build_model_repository(tmp_path / "repo", served_onnx, flavour="gpu", max_batch=48)
    version = repo / "yolov8n" / "1"
    assert (version / "model.onnx").read_bytes() == served_onnx.read_bytes()
    assert "class TritonPythonModel" in (version / "model.py").read_text()
    assert "class BatchRunner" in (version / "torch_yolo.py").read_text()
    config = (repo / "yolov8n" / "config.pbtxt").read_text()
    assert "max_batch_size: 48" in config and "kind: KIND_GPU" in config
    # Graphs up to the max batch: a full dynamic batch is never split.
    assert '{ key: "graph_batch_sizes" value: { string_value: "1,2,4,8,16,32,48" } }' in config


def test_trt_repository_layout(served_onnx: Path, tmp_path: Path) -> None:
    engine = tmp_path / "engine.plan"
    engine.write_bytes(b"not a real engine")
    repo = build_model_repository(tmp_path / "repo", served_onnx, flavour="trt", engine_path=engine)
    model = repo / "yolov8n"
    assert (model / "model.onnx").exists()
    assert (model / "1" / "model.plan").read_bytes() == b"not a real engine"
    assert not (model / "1" / "model.py").exists()
    assert "max_batch_size: 64" in (model / "config.pbtxt").read_text()


def test_rejects_a_plain_model(plain_onnx: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="detections"):
        build_model_repository(tmp_path / "repo", plain_onnx)


@pytest.mark.skipif(not TRITON_ENV.exists(), reason="no Triton env: make triton-env")
def test_command_binds_loopback_and_uses_the_triton_env(tmp_path: Path) -> None:
    argv, env = tritonserver_command(
        tmp_path,
        grpc_port=18001,
        http_port=18000,
        metrics_port=18002,
        triton_env_dir=TRITON_ENV,
        base_env={"PATH": "/usr/bin", "PYTHONPATH": "/app/venv/site-packages"},
    )
    assert Path(argv[0]).name == "tritonserver" and Path(argv[0]).exists()
    for flag in (
        f"--model-repository={tmp_path.resolve()}",
        "--grpc-address=127.0.0.1",
        "--grpc-port=18001",
        "--http-address=127.0.0.1",
        "--http-port=18000",
        "--metrics-address=127.0.0.1",
        "--metrics-port=18002",
        "--model-control-mode=none",
    ):
        assert flag in argv
    backends = Path(next(a for a in argv if a.startswith("--backend-directory=")).split("=", 1)[1])
    assert (backends / "python" / "triton_python_backend_stub").exists()
    assert env["PATH"].split(":")[0] == str(TRITON_ENV.resolve() / "bin")
    assert "PYTHONPATH" not in env
    assert "nvidia_pytriton.libs" in env["LD_LIBRARY_PATH"]
