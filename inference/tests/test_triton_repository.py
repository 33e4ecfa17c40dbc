"""Model repository layout, checked-in configs and the tritonserver launch command."""

from __future__ import annotations

from pathlib import Path

import pytest
from inference_reference import REPO_ROOT, TRITON_ENV

from objectvision_inference.triton import (
    TRT_MAX_BATCH,
    build_model_repository,
    config_pbtxt,
    tritonserver_command,
    trt_support_configs,
)

CHECKED_IN = REPO_ROOT / "inference" / "model_repository"


@pytest.mark.parametrize("flavour", ["trt", "cpu", "gpu"])
def test_checked_in_config_matches_generator(flavour: str) -> None:
    text = (CHECKED_IN / flavour / "yolov8n" / "config.pbtxt").read_text()
    assert text == config_pbtxt(flavour)  # type: ignore[arg-type]


def test_checked_in_production_support_models_match_generator() -> None:
    configs = trt_support_configs(max_batch=TRT_MAX_BATCH, class_count=80)
    for name, text in configs.items():
        assert (CHECKED_IN / "trt" / name / "config.pbtxt").read_text() == text
    assert 'backend: "dali"' in configs["yolov8n_preprocess"]
    assert 'platform: "tensorrt_plan"' in configs["yolov8n_engine"]


def test_every_flavour_serves_the_same_contract() -> None:
    def io_lines(text: str) -> list[str]:
        start, end = text.index("input ["), text.index("# Queue delay")
        return text[start:end].splitlines()

    trt, cpu, gpu = (config_pbtxt(flavour) for flavour in ("trt", "cpu", "gpu"))
    assert io_lines(trt) == io_lines(cpu) == io_lines(gpu)
    assert '"images" data_type: TYPE_STRING' in cpu
    for text, pipeline in ((trt, "tensorrt"), (cpu, "onnxruntime"), (gpu, "torch")):
        assert 'backend: "python"' in text
        assert f'{{ key: "pipeline" value: {{ string_value: "{pipeline}" }} }}' in text
    assert "KIND_GPU" in gpu and "KIND_CPU" in cpu
    settings = [line for line in (trt + cpu + gpu).splitlines() if not line.startswith("#")]
    assert not any("preferred_batch_size" in line for line in settings)


def test_cpu_repository_layout(served_onnx: Path, tmp_path: Path) -> None:
    repo = build_model_repository(
        tmp_path / "repo", served_onnx, flavour="cpu", max_batch=4, intra_op_threads=1
    )
    version = repo / "yolov8n" / "1"
    assert (version / "model.onnx").read_bytes() == served_onnx.read_bytes()
    assert "class TritonPythonModel" in (version / "model.py").read_text()
    assert (version / "objectvision_inference" / "cpu_pipeline.py").exists()
    assert not (version / "objectvision_inference" / "torch_pipeline.py").exists()
    config = (repo / "yolov8n" / "config.pbtxt").read_text()
    assert "max_batch_size: 4" in config
    assert '"class_mask" data_type: TYPE_BOOL dims: [ 80 ] optional: true' in config
    assert '{ key: "intra_op_threads" value: { string_value: "1" } }' in config


def test_gpu_repository_layout(served_onnx: Path, tmp_path: Path) -> None:
    repo = build_model_repository(tmp_path / "repo", served_onnx, flavour="gpu", max_batch=48)
    version = repo / "yolov8n" / "1"
    assert (version / "model.npz").exists() and not (version / "model.onnx").exists()
    assert "class BatchRunner" in (version / "objectvision_inference" / "torch_yolo.py").read_text()
    config = (repo / "yolov8n" / "config.pbtxt").read_text()
    assert "max_batch_size: 48" in config and "kind: KIND_GPU" in config
    # Graphs up to the max batch: a full dynamic batch is never split.
    assert '{ key: "graph_batch_sizes" value: { string_value: "1,2,4,8,16,32,48" } }' in config


def test_trt_repository_layout(plain_onnx: Path, served_onnx: Path, tmp_path: Path) -> None:
    engine = tmp_path / "engine.plan"
    engine.write_bytes(b"not a real engine")
    repo = build_model_repository(
        tmp_path / "repo",
        served_onnx,
        flavour="trt",
        engine_path=engine,
        engine_source=plain_onnx,
    )
    version = repo / "yolov8n" / "1"
    assert (version / "objectvision_inference" / "trt_pipeline.py").exists()
    assert (repo / "yolov8n_engine" / "model.onnx").read_bytes() == plain_onnx.read_bytes()
    assert (repo / "yolov8n_engine" / "1" / "model.plan").read_bytes() == b"not a real engine"
    assert (repo / "yolov8n_preprocess" / "config.pbtxt").exists()
    assert "max_batch_size: 64" in (repo / "yolov8n" / "config.pbtxt").read_text()


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
