"""bench/gpu.py's measurement loop, dry-run on the CPU with ONNX Runtime standing in for the
GPU module (same Forward contract); the GPU itself is only exercised by bench/gpu.sh."""

import pytest

from bench.config import BenchConfig
from bench.gpu import onnxruntime_forward, run
from bench.images import load_images

CONFIG = BenchConfig.preset(quick=True)

pytestmark = pytest.mark.skipif(
    not CONFIG.model.exists() or not CONFIG.images.exists(),
    reason="needs ../shared/models/yolov8n.onnx and ../shared/images",
)


def test_dry_run_measures_model_and_pipeline_and_checks_the_answer():
    images = [i for i in load_images(CONFIG.images) if i.name in {"bus.jpg", "zidane.jpg"}]
    forward = onnxruntime_forward(CONFIG.model, threads=1)
    document = run(
        forward, images, batches=[1, 2], pipeline_batches=[1], seconds=0.01, workers=1, warmup=1
    )
    assert document["problems"] == []
    stages = [(p["stage"], p["batch"]) for p in document["points"]]
    # The best model batch is measured end to end as well (here 1 or 2).
    assert stages[:3] == [("gpu_model", 1), ("gpu_model", 2), ("gpu_pipeline", 1)]
    assert all(p["iterations"] >= 1 and p["throughput_ips"] > 0 for p in document["points"])
