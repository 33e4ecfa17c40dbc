"""The int8 export (``yolov8n_int8.onnx``) as `make model` prepares it for ``yolov8n-int8``.

ONNX Runtime's quantizer left it with a batch of 1 fixed and at opset 20; the served graph
must take any batch and agree with the fp32 graph on the sample images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from inference_reference import IMAGES, SHARED, cpu_session

from objectvision_inference import detect_contract as contract
from objectvision_inference.cpu_pipeline import CpuPipeline
from objectvision_inference.prepare_model import SERVED_OPSET
from objectvision_inference.prepare_model import main as prepare_main
from objectvision_inference.triton import INT8_MODEL_NAME, config_pbtxt

INT8_MODEL = SHARED / "models" / "yolov8n_int8.onnx"


@pytest.fixture(scope="module")
def served_int8(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not INT8_MODEL.exists():
        raise FileNotFoundError(f"{INT8_MODEL} missing (set OBJECTVISION_SHARED_DIR)")
    out = tmp_path_factory.mktemp("int8") / "yolov8n-int8_served.onnx"
    assert prepare_main(["--source", str(INT8_MODEL), "--output", str(out)]) == 0
    return out


def _pipeline(path: Path) -> CpuPipeline:
    session = cpu_session(path)
    name = session.get_inputs()[0].name
    return CpuPipeline(lambda batch: session.run(None, {name: batch})[0], max_pixels=40_000_000)


def test_the_served_int8_graph_takes_any_batch_at_opset_17(served_int8: Path) -> None:
    model = onnx.load(str(served_int8))
    assert {o.version for o in model.opset_import if o.domain in ("", "ai.onnx")} == {SERVED_OPSET}
    (first,) = model.graph.input
    assert first.type.tensor_type.shape.dim[0].dim_param == "batch"
    assert "ConvInteger" in {node.op_type for node in model.graph.node}
    data = (IMAGES / "bus.jpg").read_bytes()
    options = contract.ImageOptions(confidence=0.25, iou=0.7, max_detections=300)
    results, _ = _pipeline(served_int8)([data] * 3, [options] * 3, [None] * 3)
    assert [r.status for r in results] == [contract.STATUS_OK] * 3


def test_int8_finds_what_fp32_finds(served_int8: Path, served_onnx: Path) -> None:
    """Same classes, boxes within IoU 0.9 and scores within 0.03 for objects fp32 is sure of
    (>= 0.5; near the threshold a small change decides whether a partial person is kept)."""
    options = contract.ImageOptions(confidence=0.25, iou=0.7, max_detections=300)
    fp32, int8 = _pipeline(served_onnx), _pipeline(served_int8)
    for name in ("bus.jpg", "zidane.jpg"):
        data = (IMAGES / name).read_bytes()
        (want,), _ = fp32([data], [options], [None])
        (got,), _ = int8([data], [options], [None])
        sure = want.rows[want.rows[:, 4] >= 0.5]
        assert len(sure) >= 2, name
        for row in sure:
            same = got.rows[got.rows[:, 5] == row[5]]
            ious = [_iou(row[:4], other[:4]) for other in same]
            best = int(np.argmax(ious))
            assert ious[best] >= 0.9, (name, row, same[best])
            assert abs(same[best][4] - row[4]) <= 0.03, (name, row, same[best])


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def test_the_int8_config_describes_itself_for_the_catalog() -> None:
    text = config_pbtxt("cpu", model_name=INT8_MODEL_NAME, precision="int8", network_batch=1)
    assert f'name: "{INT8_MODEL_NAME}"' in text
    for key, value in (
        ("precision", "int8"),
        ("task", "detect"),
        ("input_size", "640"),
        ("device", "cpu"),
        ("network_batch", "1"),
    ):
        assert f'{{ key: "{key}" value: {{ string_value: "{value}" }} }}' in text
    assert '\\"person\\",\\"bicycle\\"' in text
