"""The GPU pipeline's code (torch_pipeline) gives the CPU pipeline's answers, run on the CPU.

Same encoded files in, through each pipeline end to end: decode, letterbox, network, per-image
options, NMS, mapping to original pixels. On this machine the torch pipeline falls back to
OpenCV decoding and ``greedy_nms`` (torchvision's compiled ops are CUDA builds); the GPU run of
``bench/gpu.sh`` checks nvJPEG and ``batched_nms`` the same way. Needs torch (``make test-torch``).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
from inference_reference import IMAGES

torch = pytest.importorskip("torch")

from objectvision_inference import detect_contract as contract  # noqa: E402
from objectvision_inference import torch_yolo  # noqa: E402
from objectvision_inference.cpu_pipeline import CpuPipeline  # noqa: E402
from objectvision_inference.torch_pipeline import TorchPipeline, greedy_nms  # noqa: E402
from objectvision_inference.triton import export_weights  # noqa: E402

MAX_PIXELS = 40_000_000
BUS, PERSON = 5, 0


def _files() -> list[bytes]:
    paths = [IMAGES / "bus.jpg", IMAGES / "zidane.jpg"]
    paths += sorted((IMAGES / "coco8" / "images").rglob("*.jpg"))
    return [p.read_bytes() for p in paths]


@pytest.fixture(scope="module")
def cpu(served_onnx: Path) -> CpuPipeline:
    session = ort.InferenceSession(str(served_onnx), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return CpuPipeline(lambda batch: session.run(None, {name: batch})[0], max_pixels=MAX_PIXELS)


@pytest.fixture(scope="module")
def gpu_code(served_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> TorchPipeline:
    weights = export_weights(served_onnx, tmp_path_factory.mktemp("w") / "model.npz")
    model = torch_yolo.load_served_model(weights)
    return TorchPipeline(torch_yolo.BatchRunner(model, [1, 4, 16]), max_pixels=MAX_PIXELS)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_same_objects_as_the_cpu_pipeline_on_every_shared_image(
    cpu: CpuPipeline, gpu_code: TorchPipeline
) -> None:
    files = _files()
    options = [contract.ImageOptions()] * len(files)
    expected, _ = cpu(files, options, [None] * len(files))
    answered, stage_ms = gpu_code(files, options, [None] * len(files))
    assert len(stage_ms) == 3 and all(ms >= 0 for ms in stage_ms)
    for reference, result in zip(expected, answered, strict=True):
        assert result.status == contract.STATUS_OK
        assert (result.width, result.height) == (reference.width, reference.height)
        assert len(result.rows) == len(reference.rows)
        for want, got in zip(reference.rows, result.rows, strict=True):
            assert int(got[5]) == int(want[5])
            assert _iou(want[:4], got[:4]) >= 0.9
            assert abs(got[4] - want[4]) <= 0.03


def test_each_image_keeps_its_own_options_within_one_batch(gpu_code: TorchPipeline) -> None:
    bus = (IMAGES / "bus.jpg").read_bytes()
    only_buses = np.zeros(80, dtype=bool)
    only_buses[BUS] = True
    options = [
        contract.ImageOptions(),
        contract.ImageOptions(class_mask=only_buses),
        contract.ImageOptions(max_detections=2),
        contract.ImageOptions(confidence=0.99),
    ]
    results, _ = gpu_code([bus] * 4, options, [None] * 4)
    everything, buses, two, none = (r.rows for r in results)
    assert {int(c) for c in everything[:, 5]} == {PERSON, BUS}
    assert len(buses) == 1 and int(buses[0, 5]) == BUS
    assert len(two) == 2 and np.allclose(two, everything[:2])
    assert len(none) == 0


def test_unreadable_oversized_and_misdescribed_files_are_refused_alone(
    gpu_code: TorchPipeline,
) -> None:
    bus = (IMAGES / "bus.jpg").read_bytes()
    big = cv2.imencode(".png", np.zeros((4100, 2500, 3), dtype=np.uint8))[1].tobytes()
    small = TorchPipeline(gpu_code.runner, max_pixels=10_000_000)
    results, _ = small(
        [b"not an image", big, bus, bus],
        [contract.ImageOptions()] * 4,
        [None, None, (16, 16), (810, 1080)],
    )
    assert [r.status for r in results] == [
        contract.STATUS_UNDECODABLE,
        contract.STATUS_TOO_LARGE,
        contract.STATUS_SIZE_MISMATCH,
        contract.STATUS_OK,
    ]
    assert len(results[3].rows) >= 5


def test_greedy_nms_matches_the_numpy_reference_on_random_boxes() -> None:
    generator = np.random.default_rng(7)
    corners = generator.uniform(0, 600, size=(300, 2)).astype(np.float32)
    sizes = generator.uniform(5, 120, size=(300, 2)).astype(np.float32)
    boxes = np.concatenate([corners, corners + sizes], axis=1)
    scores = generator.uniform(0, 1, size=300).astype(np.float32)
    groups = generator.integers(0, 3, size=300)
    shifted = boxes + groups[:, None].astype(np.float32) * contract.CLASS_OFFSET
    want = contract.nms(shifted, scores, 0.5)
    got = greedy_nms(
        torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(groups), 0.5
    )
    assert got.tolist() == want.tolist()


def test_mixed_thresholds_in_one_batch_give_the_cpu_pipelines_answers(
    cpu: CpuPipeline, gpu_code: TorchPipeline
) -> None:
    zidane = (IMAGES / "zidane.jpg").read_bytes()
    bus = (IMAGES / "bus.jpg").read_bytes()
    options = [
        contract.ImageOptions(iou=0.3, confidence=0.2),
        contract.ImageOptions(iou=0.9, max_detections=3),
        contract.ImageOptions(iou=0.5),
    ]
    files = [zidane, bus, bus]
    want, _ = cpu(files, options, [None] * 3)
    got, _ = gpu_code(files, options, [None] * 3)
    for reference, result in zip(want, got, strict=True):
        assert len(result.rows) == len(reference.rows) > 0
        np.testing.assert_array_equal(result.rows[:, 5], reference.rows[:, 5])
        # The device letterbox resizes a little differently from OpenCV's: boxes move by a
        # pixel or two in original pixels, well inside the parity rule.
        for want_row, got_row in zip(reference.rows, result.rows, strict=True):
            assert _iou(want_row[:4], got_row[:4]) >= 0.9
            assert abs(got_row[4] - want_row[4]) <= 0.03
