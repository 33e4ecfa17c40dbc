"""bench/gpu_encoded.py's service stage on the CPU: detection-service's realtime role started
as the GPU script starts it, in front of the test suite's Triton, measured by the same load
processes with the same gRPC calls.

Why in make test: device time is scarce and the box has no registry, so the script that runs
there must not break unnoticed between device sessions (`make gpu-dry-run` runs all of it, in
ten minutes, but only when asked)."""

from pathlib import Path

import pytest

from bench.config import REPOSITORY, BenchConfig
from bench.gpu_encoded import (
    RealtimeService,
    encoded_inputs,
    measure_point,
    triton_breakdown,
    triton_counters,
)
from objectvision_devstack.pytest_plugin import served_model_path
from objectvision_devstack.triton import LocalTriton, settled_statistics

IMAGES = BenchConfig.preset(quick=True).images

pytestmark = pytest.mark.skipif(not IMAGES.exists(), reason="needs ../shared/images")


@pytest.mark.parametrize("mode", ["service", "stream"])
def test_the_service_stage_measures_the_realtime_role(
    mode: str, triton: LocalTriton, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The load processes are spawned and start from this process's sys.path; gpu.sh has the
    # repository on it (PYTHONPATH), pytest's importlib mode does not.
    monkeypatch.syspath_prepend(str(REPOSITORY))
    served = served_model_path().resolve()
    images = [(IMAGES / name).read_bytes() for name in ("bus.jpg", "zidane.jpg")]
    service = RealtimeService(triton.grpc_url, served, tmp_path, processes=1)
    try:
        service.start(timeout_s=120)
        point = measure_point(
            mode,
            service.url,
            served,
            images,
            concurrency=2,
            processes=1,
            warmup_s=0.5,
            measure_s=1.5,
        )
    finally:
        service.stop()
    assert point["stage"] == mode
    assert point["errors"] == 0, point["error_examples"]
    assert point["images"] >= 1 and point["p50_ms"] > 0, service.tail(2000)
    # Every answered image went whole over the wire, as uploaded.
    assert point["image_bytes_sent"] >= point["images"] * min(map(len, images))


def test_triton_s_own_counters_say_where_a_request_s_time_went(triton: LocalTriton) -> None:
    """The script reads Triton's statistics before and after each point: requests, batches,
    and per request the time in the server, its queue and the model's phases."""
    import tritonclient.grpc as grpcclient

    image = (IMAGES / "bus.jpg").read_bytes()
    before = settled_statistics(lambda: triton_counters(triton.grpc_url))
    client = grpcclient.InferenceServerClient(triton.grpc_url)
    try:
        for _ in range(2):
            client.infer("yolov8n", encoded_inputs(image))
    finally:
        client.close()
    after = settled_statistics(
        lambda: triton_counters(triton.grpc_url),
        enough=lambda now: now["requests"] >= before["requests"] + 2,
    )
    spent = triton_breakdown(before, after)

    assert spent["requests"] == 2
    assert 1 <= spent["executions"] <= 2
    assert spent["images_per_execution"] >= 1
    assert spent["request_ms"] > 0
    phases = spent["queue_ms"] + spent["compute_input_ms"] + spent["compute_infer_ms"]
    assert 0 < phases + spent["compute_output_ms"] <= spent["request_ms"] + 0.001
