"""inference/scripts/add_efficient_nms.py: the ONNX the production TensorRT engine is built from.

TensorRT is not on these machines, so the plugin node is checked against its documented
interface (a schema registered here from TensorRT's EfficientNMS_TRT documentation, so that
onnx.checker validates its attributes), and everything before it is run with ONNX Runtime
against the plain model on a real photo.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from inference_reference import IMAGES, REPO_ROOT, cpu_session, load_letterboxed, to_plain_input
from onnx import TensorProto, helper
from onnx.defs import OpSchema

from objectvision_inference.triton import (
    TRT_ENGINE_IOU,
    TRT_ENGINE_MAX_DETECTIONS,
    TRT_MAX_BATCH,
    trt_support_configs,
)

SCRIPT = REPO_ROOT / "inference" / "scripts" / "add_efficient_nms.py"
NMS_OP = "EfficientNMS_TRT"
BUS = 5


def _register_efficient_nms_schema() -> None:
    """EfficientNMS_TRT as TensorRT documents it (plugin/efficientNMSPlugin/README.md): the
    checker then refuses a misspelt or mistyped attribute, as the plugin creator would."""
    if onnx.defs.has(NMS_OP, ""):
        return
    float_types = ["tensor(float)", "tensor(float16)"]
    attributes = [
        ("background_class", OpSchema.AttrType.INT),
        ("box_coding", OpSchema.AttrType.INT),
        ("class_agnostic", OpSchema.AttrType.INT),
        ("iou_threshold", OpSchema.AttrType.FLOAT),
        ("max_output_boxes", OpSchema.AttrType.INT),
        ("plugin_version", OpSchema.AttrType.STRING),
        ("score_activation", OpSchema.AttrType.INT),
        ("score_threshold", OpSchema.AttrType.FLOAT),
    ]
    schema = OpSchema(
        NMS_OP,
        "",
        1,
        inputs=[OpSchema.FormalParameter("boxes", "T"), OpSchema.FormalParameter("scores", "T")],
        outputs=[
            OpSchema.FormalParameter("num_detections", "tensor(int32)"),
            OpSchema.FormalParameter("detection_boxes", "T"),
            OpSchema.FormalParameter("detection_scores", "T"),
            OpSchema.FormalParameter("detection_classes", "tensor(int32)"),
        ],
        type_constraints=[("T", float_types, "boxes and scores")],
        attributes=[OpSchema.Attribute(name, kind, required=False) for name, kind in attributes],
    )
    onnx.defs.register_schema(schema)


def _run_script(source: Path, output: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(source), str(output)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _signature(value: onnx.ValueInfoProto) -> tuple[int, list[int | str]]:
    tensor = value.type.tensor_type
    return tensor.elem_type, [d.dim_param or d.dim_value for d in tensor.shape.dim]


@pytest.fixture(scope="module")
def engine_onnx(plain_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("engine") / "model.onnx"
    done = _run_script(plain_onnx, out)
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def engine_model(engine_onnx: Path) -> onnx.ModelProto:
    return onnx.load(str(engine_onnx))


def _nms_node(model: onnx.ModelProto) -> onnx.NodeProto:
    (node,) = [n for n in model.graph.node if n.op_type == NMS_OP]
    return node


def test_graph_passes_the_checker_with_the_plugin_interface(engine_model: onnx.ModelProto) -> None:
    _register_efficient_nms_schema()
    onnx.checker.check_model(engine_model, full_check=False)


def test_io_is_what_the_engine_config_declares(engine_model: onnx.ModelProto) -> None:
    """Triton refuses to load a plan whose tensors differ from yolov8n_engine's config."""
    (image,) = engine_model.graph.input
    batch = image.type.tensor_type.shape.dim[0]
    assert batch.dim_param and not batch.dim_value, "the batch dimension must stay dynamic"
    assert image.name == "images"
    assert _signature(image) == (TensorProto.UINT8, [batch.dim_param, 640, 640, 3])
    outputs = {o.name: _signature(o) for o in engine_model.graph.output}
    most = TRT_ENGINE_MAX_DETECTIONS
    assert outputs == {
        "num_dets": (TensorProto.INT32, [batch.dim_param, 1]),
        "det_boxes": (TensorProto.FLOAT, [batch.dim_param, most, 4]),
        "det_scores": (TensorProto.FLOAT, [batch.dim_param, most]),
        "det_classes": (TensorProto.INT32, [batch.dim_param, most]),
    }
    config = trt_support_configs(max_batch=TRT_MAX_BATCH, class_count=80)["yolov8n_engine"]
    declared = {
        "images": "TYPE_UINT8 dims: [ 640, 640, 3 ]",
        "num_dets": "TYPE_INT32 dims: [ 1 ]",
        "det_boxes": f"TYPE_FP32 dims: [ {most}, 4 ]",
        "det_scores": f"TYPE_FP32 dims: [ {most} ]",
        "det_classes": f"TYPE_INT32 dims: [ {most} ]",
    }
    for name, text in declared.items():
        assert f'name: "{name}" data_type: {text}' in config


def test_nms_node_is_the_plugin_the_python_model_expects(engine_model: onnx.ModelProto) -> None:
    node = _nms_node(engine_model)
    assert node.domain == ""
    assert list(node.output) == ["num_dets", "det_boxes", "det_scores", "det_classes"]
    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    assert attributes == {
        "plugin_version": b"1",
        "background_class": -1,
        "box_coding": 1,
        "class_agnostic": 0,
        "iou_threshold": pytest.approx(TRT_ENGINE_IOU),
        "max_output_boxes": TRT_ENGINE_MAX_DETECTIONS,
        "score_activation": 0,
        "score_threshold": pytest.approx(0.001),
    }


def _up_to_nms(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same graph with the plugin's inputs as its outputs: what ONNX Runtime can run."""
    sub = onnx.ModelProto()
    sub.CopyFrom(model)
    node = _nms_node(sub)
    sub.graph.node.remove(node)
    del sub.graph.output[:]
    sub.graph.output.extend(
        helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in node.input
    )
    return sub


def test_boxes_and_scores_before_nms_match_the_plain_model(
    engine_model: onnx.ModelProto, plain_session: ort.InferenceSession, tmp_path: Path
) -> None:
    """uint8 NHWC in, the plain network, [B, anchors, 4] centre boxes and [B, anchors, 80]
    scores out: the same numbers the plain model gives on float NCHW / 255, at batch 2."""
    sub = tmp_path / "up_to_nms.onnx"
    onnx.save(_up_to_nms(engine_model), str(sub))
    batch = np.stack([load_letterboxed(IMAGES / name) for name in ("bus.jpg", "zidane.jpg")])
    boxes, scores = cpu_session(sub).run(None, {"images": batch})
    (raw,) = plain_session.run(None, {"images": to_plain_input(batch)})
    anchors = raw.transpose(0, 2, 1)
    assert boxes.shape == (2, 8400, 4) and scores.shape == (2, 8400, 80)
    np.testing.assert_allclose(boxes, anchors[..., :4], rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(scores, anchors[..., 4:], rtol=1e-5, atol=1e-5)
    # A real detection, not two arrays of zeros agreeing: the bus in bus.jpg.
    assert scores[0, :, BUS].max() > 0.5


def test_the_output_is_deterministic_for_the_engine_cache(
    plain_onnx: Path, engine_onnx: Path, tmp_path: Path
) -> None:
    """build_engine.sh keys cached plans by this file's sha256: a rerun must not change it."""
    again = tmp_path / "again.onnx"
    assert _run_script(plain_onnx, again).returncode == 0
    assert again.read_bytes() == engine_onnx.read_bytes()


def test_refuses_a_graph_that_is_not_the_plain_export(engine_onnx: Path, tmp_path: Path) -> None:
    done = _run_script(engine_onnx, tmp_path / "twice.onnx")
    assert done.returncode == 2
    assert "plain Ultralytics export" in done.stderr
    assert not (tmp_path / "twice.onnx").exists()
