"""The native PyTorch YOLOv8n (torch_yolo) against the served ONNX graph, on the CPU in fp32.

Both run on the same real images (bus.jpg, zidane.jpg, coco8): the PyTorch module with the
weights it reads from the ONNX file, the served graph under ONNX Runtime as prepare_model
builds it. Needs torch (``make test-torch`` builds ``.venv-torch``); skipped without it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from inference_reference import IMAGES, load_letterboxed
from onnx import numpy_helper

torch = pytest.importorskip("torch")

from objectvision_inference import prepare_model, torch_yolo  # noqa: E402

BUS, PERSON = 5, 0
# Measured on the development CPU: boxes differ by <= 0.001 px, scores by <= 1e-5.
BOX_TOL_PX = 0.05
SCORE_TOL = 1e-3
# Rows at or above this score are matched one by one (below it, near-equal scores may swap).
MATCH_SCORE = 0.01


def _image_paths() -> list[Path]:
    paths = [IMAGES / "bus.jpg", IMAGES / "zidane.jpg"]
    paths += sorted((IMAGES / "coco8" / "images").rglob("*.jpg"))
    missing = [p for p in paths if not p.exists()]
    if missing:
        pytest.fail(f"images missing: {missing}")
    return paths


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    """uint8 [10, 640, 640, 3], letterboxed RGB: bus.jpg, zidane.jpg, then coco8."""
    return np.stack([load_letterboxed(p) for p in _image_paths()])


@pytest.fixture(scope="module")
def served_model(served_onnx: Path) -> torch_yolo.ServedModel:
    return torch_yolo.load_served_model(served_onnx)


@pytest.fixture(scope="module")
def onnx_rows(served_session: ort.InferenceSession, frames: np.ndarray) -> np.ndarray:
    (rows,) = served_session.run([prepare_model.OUTPUT_NAME], {prepare_model.INPUT_NAME: frames})
    return rows


@pytest.fixture(scope="module")
def torch_rows(served_model: torch_yolo.ServedModel, frames: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return served_model(torch.from_numpy(frames)).numpy()


def _match(expected: np.ndarray, actual: np.ndarray) -> tuple[float, float, int]:
    """Pair every expected row scoring >= MATCH_SCORE with the actual row of the same class
    nearest in box and score (a few positions either way: near-ties may swap); return the
    largest box and score differences and how many rows were paired."""
    worst_box = worst_score = 0.0
    paired = 0
    for i, row in enumerate(expected):
        if row[4] < MATCH_SCORE:
            break
        window = actual[max(0, i - 8) : i + 9]
        same = window[window[:, 5] == row[5]]
        assert len(same), f"row {i} (class {row[5]:.0f}, score {row[4]:.4f}) has no partner"
        cost = np.abs(same[:, :4] - row[:4]).max(axis=1) + np.abs(same[:, 4] - row[4])
        partner = same[int(cost.argmin())]
        worst_box = max(worst_box, float(np.abs(partner[:4] - row[:4]).max()))
        worst_score = max(worst_score, float(abs(partner[4] - row[4])))
        paired += 1
    return worst_box, worst_score, paired


def test_constants_mirror_prepare_model() -> None:
    assert torch_yolo.INPUT_NAME == prepare_model.INPUT_NAME
    assert torch_yolo.OUTPUT_NAME == prepare_model.OUTPUT_NAME
    assert torch_yolo.DEFAULT_TOP_K == prepare_model.DEFAULT_TOP_K
    assert torch_yolo.DEFAULT_MIN_SCORE == prepare_model.DEFAULT_MIN_SCORE
    assert torch_yolo.SERVED_METADATA_KEY == prepare_model.SERVED_METADATA_KEY
    assert torch_yolo.SERVED_PREFIX == prepare_model._PREFIX


def test_anchor_and_stride_buffers_equal_the_exported_constants(plain_onnx: Path) -> None:
    model = onnx.load(str(plain_onnx))
    constants = {tuple(init.dims): numpy_helper.to_array(init) for init in model.graph.initializer}
    detect = torch_yolo.build_yolov8(torch_yolo.read_onnx(plain_onnx)[0]).model[22]
    np.testing.assert_array_equal(detect.anchors.numpy(), constants[(1, 2, 8400)])
    np.testing.assert_array_equal(detect.strides.numpy(), constants[(1, 8400)])


def test_plain_and_served_files_give_the_same_weights(plain_onnx: Path, served_onnx: Path):
    plain, _ = torch_yolo.read_onnx(plain_onnx)
    served, metadata = torch_yolo.read_onnx(served_onnx)
    assert plain.keys() == served.keys()
    assert all(np.array_equal(plain[k], served[k]) for k in plain)
    assert torch_yolo.served_settings(metadata) == (1024, 0.001)


def test_candidates_match_the_served_onnx_graph(onnx_rows: np.ndarray, torch_rows: np.ndarray):
    assert torch_rows.shape == onnx_rows.shape == (10, 1024, 6)
    assert torch_rows.dtype == np.float32
    report = []
    for index, (expected, actual) in enumerate(zip(onnx_rows, torch_rows, strict=True)):
        # Same contract: sorted by score, zero rows (below min_score) only at the end.
        scores = actual[:, 4]
        assert (np.diff(scores) <= 0).all()
        assert (actual[scores == 0] == 0).all()
        assert abs(int((expected[:, 4] > 0).sum()) - int((scores > 0).sum())) <= 2
        # Sorted score lists agree whatever the order of near-equal rows.
        assert np.abs(np.sort(expected[:, 4]) - np.sort(scores)).max() <= SCORE_TOL
        # The ten best candidates are the same classes in the same order.
        np.testing.assert_array_equal(actual[:10, 5], expected[:10, 5])
        box, score, paired = _match(expected, actual)
        assert box <= BOX_TOL_PX and score <= SCORE_TOL, (index, box, score)
        assert paired >= 10
        report.append((index, paired, box, score))
    worst = np.array([r[2:] for r in report]).max(axis=0)
    print(
        f"\nrows paired: {sum(r[1] for r in report)}; max |box| {worst[0]:.2e} px, "
        f"max |score| {worst[1]:.2e}"
    )


def test_bus_jpg_yields_a_bus_and_people(torch_rows: np.ndarray) -> None:
    confident = torch_rows[0][torch_rows[0][:, 4] >= 0.25]
    classes = set(confident[:, 5].astype(int).tolist())
    assert {BUS, PERSON} <= classes, classes


def test_batch_runner_pads_and_chunks_like_plain_calls(
    served_model: torch_yolo.ServedModel, frames: np.ndarray, torch_rows: np.ndarray
) -> None:
    runner = torch_yolo.BatchRunner(served_model, [1, 2, 4])
    assert not runner.graphs_enabled
    images = torch.from_numpy(frames[:5])
    # 3 images ride in the batch-4 buffer; 5 run as 4 + 1.
    np.testing.assert_allclose(runner(images[:3]).numpy(), torch_rows[:3], atol=1e-3, rtol=0)
    np.testing.assert_allclose(runner(images).numpy(), torch_rows[:5], atol=1e-3, rtol=0)
    # Requests of one dynamic batch go in as parts, copied into one buffer.
    parts = runner([images[:2], images[2:3]]).numpy()
    np.testing.assert_allclose(parts, torch_rows[:3], atol=1e-3, rtol=0)
    assert torch_yolo.padded_size(3, runner.sizes) == 4
    with pytest.raises(ValueError, match="larger"):
        torch_yolo.padded_size(5, runner.sizes)


def test_fp16_finds_the_same_objects(served_onnx: Path, frames: np.ndarray, torch_rows):
    half = torch_yolo.load_served_model(served_onnx, half=True)
    with torch.inference_mode():
        rows = half(torch.from_numpy(frames[:1])).numpy()[0]
    assert rows.dtype == np.float32
    for row in torch_rows[0][torch_rows[0][:, 4] >= 0.5]:
        same = rows[rows[:, 5] == row[5]]
        nearest = np.abs(same[:, :4] - row[:4]).max(axis=1)
        best = int(nearest.argmin())
        assert nearest[best] <= 2.0 and abs(same[best, 4] - row[4]) <= 0.03, (row, same[best])


def test_export_captures_the_whole_graph(served_model: torch_yolo.ServedModel, frames):
    """torch.export traces without graph breaks only when nothing syncs data to the host
    (.item(), .tolist(), tensor-valued split sizes): what CUDA graph capture needs too."""
    images = torch.from_numpy(frames[:1])
    exported = torch.export.export(served_model, (images,))
    with torch.inference_mode():
        np.testing.assert_array_equal(
            exported.module()(images).numpy(), served_model(images).numpy()
        )
