"""Turn the plain Ultralytics yolov8n.onnx into the graph the production TensorRT engine is
built from (``yolov8n_engine``, see objectvision_inference.trt_pipeline).

Usage: add_efficient_nms.py PLAIN_ONNX ENGINE_ONNX

Why the engine takes uint8 NHWC: DALI's letterbox (``yolov8n_preprocess``) hands its RGB
``[B, 640, 640, 3]`` uint8 batch to the engine on the GPU; casting, transposing and scaling in
the graph lets TensorRT fuse them into the first convolution instead of a separate kernel
writing four times the bytes.

Why NMS in the engine (TensorRT's EfficientNMS_TRT plugin): 8400 anchors x 80 classes per image
would otherwise leave the GPU as 2.7 MB of float32; the plugin keeps at most 300 boxes per
image on the device, per class (not class-agnostic), at the contract's default IoU. The Python
model applies each request's own options to those rows afterwards.

The plugin node has domain "": TensorRT's ONNX parser imports any op it does not know by
looking its op type up in the plugin registry, with ``plugin_version`` choosing the creator.
Only the ``onnx`` package is needed, because this runs in the TensorRT image before trtexec.
The output is a pure function of the input (no timestamps), so its sha256 can key the engine
cache (build_engine.sh).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

INPUT_NAME = "images"
OUTPUT_NAMES = ("num_dets", "det_boxes", "det_scores", "det_classes")
NMS_OP = "EfficientNMS_TRT"
# objectvision_inference.triton's TRT_ENGINE_IOU and TRT_ENGINE_MAX_DETECTIONS must agree: the
# Python model trusts that the engine never suppressed with a lower IoU than this.
IOU_THRESHOLD = 0.7
MAX_OUTPUT_BOXES = 300
# The lowest confidence a request may ask for; below it a box can never be answered.
SCORE_THRESHOLD = 0.001
METADATA_KEY = "objectvision_engine"
PRODUCER = "objectvision-add-efficient-nms"

_BATCH = "batch"
# The plain graph's input, renamed: its float NCHW 0..1 tensor is now computed in the graph.
_CORE_INPUT = "pre/nchw"


def _node(op: str, inputs: list[str], output: str, **attrs: object) -> onnx.NodeProto:
    """A node named after its output, so TensorRT's layer names read pre/... and nms/..."""
    return helper.make_node(op, inputs, [output], name=output, **attrs)


def _int64s(name: str, values: list[int]) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def plain_layout(model: onnx.ModelProto) -> tuple[int, int, int, int]:
    """(height, width, classes, anchors) of a plain export; ValueError for anything else (a
    graph this script already rewrote included), so a wrong file never reaches trtexec."""
    if len(model.graph.input) != 1 or len(model.graph.output) != 1:
        raise ValueError("expected one input and one output (the plain Ultralytics export)")
    (inp,) = model.graph.input
    (out,) = model.graph.output
    in_type, out_type = inp.type.tensor_type, out.type.tensor_type
    in_dims = [d.dim_value for d in in_type.shape.dim]
    out_dims = [d.dim_value for d in out_type.shape.dim]
    if in_type.elem_type != TensorProto.FLOAT or len(in_dims) != 4 or in_dims[1] != 3:
        raise ValueError(f"expected a float32 [B, 3, H, W] input, got {inp.name} dims {in_dims}")
    if not in_dims[2] or not in_dims[3]:
        raise ValueError(f"expected a fixed input height and width, got dims {in_dims}")
    if out_type.elem_type != TensorProto.FLOAT or len(out_dims) != 3 or out_dims[1] <= 4:
        raise ValueError(f"expected a float32 [B, 4 + classes, anchors] output, got {out_dims}")
    if not out_dims[2]:
        raise ValueError(f"expected a fixed anchor count, got dims {out_dims}")
    return in_dims[2], in_dims[3], out_dims[1] - 4, out_dims[2]


def build_engine_model(plain: onnx.ModelProto) -> onnx.ModelProto:
    """The engine graph: uint8 NHWC ``images`` -> the plain network -> EfficientNMS_TRT."""
    height, width, classes, anchors = plain_layout(plain)
    core_in = plain.graph.input[0].name
    core_out = plain.graph.output[0].name

    core_nodes = []
    for original in plain.graph.node:
        node = onnx.NodeProto()
        node.CopyFrom(original)
        renamed = [_CORE_INPUT if name == core_in else name for name in node.input]
        del node.input[:]
        node.input.extend(renamed)
        core_nodes.append(node)

    pre = [
        _node("Cast", [INPUT_NAME], "pre/float", to=TensorProto.FLOAT),
        _node("Transpose", ["pre/float"], "pre/nchw_255", perm=[0, 3, 1, 2]),
        # x / 255 exactly as Ultralytics scales, not x * (1 / 255): the same float32 values.
        _node("Div", ["pre/nchw_255", "pre/255"], _CORE_INPUT),
    ]
    post = [
        _node("Transpose", [core_out], "nms/anchors", perm=[0, 2, 1]),
        _node("Slice", ["nms/anchors", "nms/s0", "nms/s4", "nms/axis2"], "nms/boxes"),
        _node("Slice", ["nms/anchors", "nms/s4", "nms/send", "nms/axis2"], "nms/scores"),
        helper.make_node(
            NMS_OP,
            ["nms/boxes", "nms/scores"],
            list(OUTPUT_NAMES),
            name="nms/efficient_nms",
            domain="",
            plugin_version="1",
            background_class=-1,
            # cx, cy, w, h as the network emits them; the plugin writes x1, y1, x2, y2.
            box_coding=1,
            class_agnostic=0,
            iou_threshold=IOU_THRESHOLD,
            max_output_boxes=MAX_OUTPUT_BOXES,
            # The class scores are already sigmoided inside the network.
            score_activation=0,
            score_threshold=SCORE_THRESHOLD,
        ),
    ]
    initializers = [
        numpy_helper.from_array(np.array(255.0, dtype=np.float32), "pre/255"),
        _int64s("nms/s0", [0]),
        _int64s("nms/s4", [4]),
        _int64s("nms/send", [4 + classes]),
        _int64s("nms/axis2", [2]),
    ]
    signatures = (
        (TensorProto.INT32, [_BATCH, 1]),
        (TensorProto.FLOAT, [_BATCH, MAX_OUTPUT_BOXES, 4]),
        (TensorProto.FLOAT, [_BATCH, MAX_OUTPUT_BOXES]),
        (TensorProto.INT32, [_BATCH, MAX_OUTPUT_BOXES]),
    )
    outputs = [
        helper.make_tensor_value_info(name, dtype, dims)
        for name, (dtype, dims) in zip(OUTPUT_NAMES, signatures, strict=True)
    ]
    graph = helper.make_graph(
        pre + core_nodes + post,
        "objectvision_yolov8_engine",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, [_BATCH, height, width, 3])],
        outputs,
        initializer=list(plain.graph.initializer) + initializers,
        value_info=[
            helper.make_tensor_value_info("nms/boxes", TensorProto.FLOAT, [_BATCH, anchors, 4]),
            helper.make_tensor_value_info(
                "nms/scores", TensorProto.FLOAT, [_BATCH, anchors, classes]
            ),
        ],
    )
    model = helper.make_model(graph, opset_imports=list(plain.opset_import))
    model.ir_version = plain.ir_version
    model.producer_name = PRODUCER
    model.producer_version = "1"
    model.doc_string = plain.doc_string
    props = {p.key: p.value for p in plain.metadata_props}
    props[METADATA_KEY] = json.dumps(
        {
            "input": {"name": INPUT_NAME, "dtype": "uint8", "shape": [-1, height, width, 3]},
            "outputs": list(OUTPUT_NAMES),
            "iou_threshold": IOU_THRESHOLD,
            "score_threshold": SCORE_THRESHOLD,
            "max_output_boxes": MAX_OUTPUT_BOXES,
        },
        sort_keys=True,
    )
    helper.set_model_props(model, props)
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plain", type=Path, help="the plain Ultralytics yolov8n.onnx")
    parser.add_argument("output", type=Path, help="where to write the engine's ONNX")
    args = parser.parse_args(argv)
    try:
        model = build_engine_model(onnx.load(str(args.plain)))
    except ValueError as error:
        print(f"add_efficient_nms: {args.plain}: {error}", file=sys.stderr)
        return 2
    args.output.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(args.output))
    print(f"add_efficient_nms: wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
