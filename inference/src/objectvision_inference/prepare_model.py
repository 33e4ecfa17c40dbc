"""Turn the plain YOLOv8 ONNX export into the graph that Triton serves.

The plain model takes float32 NCHW 0..1 and returns raw ``[B, 84, 8400]`` anchors: 67 MB of
float32 in and out per batch of 8 that would cross the wire and then be decoded in Python. The
served graph moves that work into the model so that the network carries uint8 pixels in
(1.2 MB/image) and a fixed top-K candidate list out (24 KB/image):

* input ``images``: UINT8 ``[B, 640, 640, 3]``, letterboxed RGB (the service letterboxes),
  cast / divided by 255 / transposed to NCHW in the graph;
* output ``detections``: FP32 ``[B, K, 6]`` = x1, y1, x2, y2 (letterbox pixels), score,
  class id; score = max of the 80 class scores, class = its argmax (Ultralytics: one class
  per anchor); rows sorted by score descending; rows whose score is below ``min_score`` are
  all zeros, so a zero score marks padding.

Per-class NMS stays in the service: the IoU / confidence / class filter of each request
cannot vary inside one dynamically batched NMS op, and NMS over <= K rows is cheap.

Only ops that both ONNX Runtime and the TensorRT ONNX parser support are used: Cast, Div,
Transpose, Slice, ReduceMax, ArgMax, Sub, Add, Mul, Concat, TopK, Expand,
GatherElements, GreaterOrEqual, Where.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, compose, helper, numpy_helper

INPUT_NAME = "images"
OUTPUT_NAME = "detections"
DEFAULT_TOP_K = 1024
DEFAULT_MIN_SCORE = 0.001
# TensorRT's TopK layer accepts K <= 3840; keeping the limit here keeps one served graph valid
# for both the ONNX Runtime (local) and TensorRT (production) flavours.
MAX_TOP_K = 3840
SERVED_METADATA_KEY = "objectvision_served"

_PREFIX = "yolo/"
_BATCH = "batch"
# The opset the pre/post graphs are written for (ReduceMax takes ``axes`` as an attribute up
# to 17). A newer export is declared at 17 when every op it uses means the same there.
SERVED_OPSET = 17
# Ops whose opset 18-20 versions only added attributes or types these exports do not use.
_DOWNGRADABLE_OPS = frozenset(
    {
        "Add", "Cast", "Concat", "Conv", "ConvInteger", "Div", "DynamicQuantizeLinear",
        "MaxPool", "Mul", "Reshape", "Resize", "Sigmoid", "Slice", "Softmax", "Split", "Sub",
        "Transpose",
    }
)  # fmt: skip
_ATTRIBUTES_SINCE_18 = frozenset(
    {"num_outputs", "antialias", "keep_aspect_ratio_policy", "axes", "saturate"}
)


def _core_shape(model: onnx.ModelProto) -> tuple[int, int, int, int]:
    """Return (height, width, classes, anchors) of the plain model, checking its I/O layout."""
    (inp,) = model.graph.input
    (out,) = model.graph.output
    in_dims = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    out_dims = [d.dim_value for d in out.type.tensor_type.shape.dim]
    if len(in_dims) != 4 or in_dims[1] != 3 or not in_dims[2] or not in_dims[3]:
        raise ValueError(f"expected a [B, 3, H, W] input, got dims {in_dims}")
    if len(out_dims) != 3 or out_dims[1] <= 4 or not out_dims[2]:
        raise ValueError(f"expected a [B, 4 + classes, anchors] output, got dims {out_dims}")
    return in_dims[2], in_dims[3], out_dims[1] - 4, out_dims[2]


def _onnx_opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def normalise_export(model: onnx.ModelProto) -> onnx.ModelProto:
    """A plain export the wrapper can take: batch axis dynamic and default opset <= 17.

    Why: Ultralytics exports quantized by ONNX Runtime (``yolov8n_int8.onnx``) come with a
    batch of 1 fixed in the input, in the head's Reshape constants and in ``value_info``, and
    at opset 20, where the pre/post graphs' ReduceMax would need another form. The batch
    becomes ``batch`` (a Reshape of activations keeps its first dimension with 0), and the
    opset is declared 17 only when every op the graph uses means the same there; anything else
    is refused rather than silently changed.
    """
    model = onnx.ModelProto.FromString(model.SerializeToString())
    if _onnx_opset(model) > SERVED_OPSET:
        for node in model.graph.node:
            added = {a.name for a in node.attribute} & _ATTRIBUTES_SINCE_18
            if (
                node.domain not in ("", "ai.onnx")
                or node.op_type not in _DOWNGRADABLE_OPS
                or (added and node.op_type != "Reshape")
            ):
                raise ValueError(
                    f"opset {_onnx_opset(model)} export uses {node.op_type} {sorted(added)}:"
                    f" export it at opset <= {SERVED_OPSET}"
                )
        for opset in model.opset_import:
            if opset.domain in ("", "ai.onnx"):
                opset.version = SERVED_OPSET
    graph = model.graph
    first = graph.input[0].type.tensor_type.shape.dim[0]
    if first.dim_value == 1:
        for value in (*graph.input, *graph.output):
            dim = value.type.tensor_type.shape.dim[0]
            dim.Clear()
            dim.dim_param = _BATCH
        initializers = {init.name: init for init in graph.initializer}
        for node in graph.node:
            if node.op_type != "Reshape" or node.input[0] in initializers:
                continue
            shape = initializers.get(node.input[1])
            if shape is None:
                continue
            values = numpy_helper.to_array(shape).copy()
            if values.size and values[0] == 1:
                values[0] = 0  # copy the batch dimension of the input (allowzero = 0)
                shape.CopyFrom(numpy_helper.from_array(values, shape.name))
        del graph.value_info[:]
    return model


def _node(op: str, inputs: list[str], output: str, **attrs: object) -> onnx.NodeProto:
    """A node named after its output, so TensorRT layers and ORT profiles read pre/... post/...

    The attributes are added apart from make_node's keywords, which also has `name`,
    `doc_string`, `domain` and `overload` parameters an attribute could otherwise land in."""
    node = helper.make_node(op, inputs, [output], name=output)
    node.attribute.extend(helper.make_attribute(key, value) for key, value in sorted(attrs.items()))
    return node


def _graph_model(graph: onnx.GraphProto, like: onnx.ModelProto) -> onnx.ModelProto:
    """Wrap a graph in a model with the IR version and opsets of ``like`` (compose needs it)."""
    model = helper.make_model(graph, opset_imports=list(like.opset_import))
    model.ir_version = like.ir_version
    return model


def _preprocess_model(height: int, width: int, like: onnx.ModelProto) -> onnx.ModelProto:
    """uint8 NHWC RGB -> float32 NCHW 0..1: exactly ``x.astype(float32) / 255`` (Ultralytics)."""
    nodes = [
        _node("Cast", [INPUT_NAME], "pre/float", to=TensorProto.FLOAT),
        _node("Div", ["pre/float", "pre/255"], "pre/scaled"),
        _node("Transpose", ["pre/scaled"], "pre/nchw", perm=[0, 3, 1, 2]),
    ]
    graph = helper.make_graph(
        nodes,
        "objectvision_preprocess",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, [_BATCH, height, width, 3])],
        [helper.make_tensor_value_info("pre/nchw", TensorProto.FLOAT, [_BATCH, 3, height, width])],
        initializer=[numpy_helper.from_array(np.array(255.0, dtype=np.float32), "pre/255")],
    )
    return _graph_model(graph, like)


def _postprocess_model(
    num_classes: int, num_anchors: int, top_k: int, min_score: float, like: onnx.ModelProto
) -> onnx.ModelProto:
    """Raw ``[B, 4 + C, A]`` anchors -> ``[B, K, 6]`` top-K (x1, y1, x2, y2, score, class) rows."""

    def const(name: str, values: list[int] | list[float], dtype: type) -> onnx.TensorProto:
        return numpy_helper.from_array(np.array(values, dtype=dtype), name)

    inits = [
        const("post/s0", [0], np.int64),
        const("post/s2", [2], np.int64),
        const("post/s4", [4], np.int64),
        const("post/send", [4 + num_classes], np.int64),
        const("post/axis1", [1], np.int64),
        const("post/k", [top_k], np.int64),
        const("post/expand6", [1, 6, 1], np.int64),
        numpy_helper.from_array(np.array(0.5, dtype=np.float32), "post/half"),
        numpy_helper.from_array(np.array(min_score, dtype=np.float32), "post/min_score"),
        numpy_helper.from_array(np.array(0.0, dtype=np.float32), "post/zero"),
    ]
    nodes = [
        # cx, cy, w, h -> x1, y1, x2, y2 (Ultralytics xywh2xyxy: centre -/+ half size).
        _node("Slice", ["raw", "post/s0", "post/s2", "post/axis1"], "post/xy"),
        _node("Slice", ["raw", "post/s2", "post/s4", "post/axis1"], "post/wh"),
        _node("Mul", ["post/wh", "post/half"], "post/half_wh"),
        _node("Sub", ["post/xy", "post/half_wh"], "post/x1y1"),
        _node("Add", ["post/xy", "post/half_wh"], "post/x2y2"),
        # One class per anchor: score = max class score, class = its (first) argmax.
        _node("Slice", ["raw", "post/s4", "post/send", "post/axis1"], "post/cls"),
        _node("ReduceMax", ["post/cls"], "post/score", axes=[1], keepdims=1),
        _node("ArgMax", ["post/cls"], "post/class_i64", axis=1, keepdims=1),
        _node("Cast", ["post/class_i64"], "post/class", to=TensorProto.FLOAT),
        _node(
            "Concat",
            ["post/x1y1", "post/x2y2", "post/score", "post/class"],
            "post/rows",
            axis=1,
        ),
        # Top-K anchors by score (sorted, ties keep the lower anchor index first).
        helper.make_node(
            "TopK",
            ["post/score", "post/k"],
            ["post/top_score", "post/top_idx"],
            name="post/topk",
            axis=2,
            largest=1,
            sorted=1,
        ),
        _node("Expand", ["post/top_idx", "post/expand6"], "post/gather_idx"),
        _node("GatherElements", ["post/rows", "post/gather_idx"], "post/top_rows", axis=2),
        # Rows below min_score become all-zero padding, so "score == 0" means "no candidate".
        _node("GreaterOrEqual", ["post/top_score", "post/min_score"], "post/keep"),
        _node("Where", ["post/keep", "post/top_rows", "post/zero"], "post/kept"),
        _node("Transpose", ["post/kept"], OUTPUT_NAME, perm=[0, 2, 1]),
    ]
    graph = helper.make_graph(
        nodes,
        "objectvision_postprocess",
        [
            helper.make_tensor_value_info(
                "raw", TensorProto.FLOAT, [_BATCH, 4 + num_classes, num_anchors]
            )
        ],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [_BATCH, top_k, 6])],
        initializer=inits,
    )
    return _graph_model(graph, like)


def build_served_model(
    plain: onnx.ModelProto, *, top_k: int = DEFAULT_TOP_K, min_score: float = DEFAULT_MIN_SCORE
) -> onnx.ModelProto:
    """Wrap the plain YOLOv8 model with in-graph preprocessing and top-K decoding.

    ``plain`` must have one ``[B, 3, H, W]`` float input and one ``[B, 4 + C, A]`` output, as
    Ultralytics exports them. Metadata (``names``, ``stride``, ``imgsz`` ...) is carried over and
    ``objectvision_served`` describes the served I/O as JSON.
    """
    plain = normalise_export(plain)
    height, width, num_classes, num_anchors = _core_shape(plain)
    if not 1 <= top_k <= min(num_anchors, MAX_TOP_K):
        raise ValueError(f"top_k must be in 1..{min(num_anchors, MAX_TOP_K)}, got {top_k}")
    if not 0.0 <= min_score < 1.0:
        raise ValueError(f"min_score must be in [0, 1), got {min_score}")

    core = compose.add_prefix(plain, _PREFIX)
    core_in = core.graph.input[0].name
    core_out = core.graph.output[0].name
    pre = _preprocess_model(height, width, core)
    post = _postprocess_model(num_classes, num_anchors, top_k, min_score, core)

    served = compose.merge_models(pre, core, io_map=[("pre/nchw", core_in)])
    served = compose.merge_models(served, post, io_map=[(core_out, "raw")])
    served.graph.name = "objectvision_yolov8_served"
    served.producer_name = "objectvision-prepare-model"
    served.producer_version = "1"
    served.doc_string = plain.doc_string

    props = {p.key: p.value for p in plain.metadata_props}
    props[SERVED_METADATA_KEY] = json.dumps(
        {
            "input": {
                "name": INPUT_NAME,
                "dtype": "uint8",
                "shape": [-1, height, width, 3],
                "layout": "NHWC",
                "color": "RGB",
                "letterbox_pad": 114,
            },
            "output": {
                "name": OUTPUT_NAME,
                "dtype": "float32",
                "shape": [-1, top_k, 6],
                "columns": ["x1", "y1", "x2", "y2", "score", "class_id"],
            },
            "top_k": top_k,
            "min_score": min_score,
        },
        sort_keys=True,
    )
    del served.metadata_props[:]
    helper.set_model_props(served, props)
    onnx.checker.check_model(served)
    return served


def prepare_model(
    plain_path: str | Path,
    served_path: str | Path,
    *,
    top_k: int = DEFAULT_TOP_K,
    min_score: float = DEFAULT_MIN_SCORE,
) -> Path:
    """Read the plain ONNX file, write the served ONNX file and return its path."""
    served = build_served_model(onnx.load(str(plain_path)), top_k=top_k, min_score=min_score)
    out = Path(served_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    onnx.save(served, str(tmp))
    tmp.replace(out)
    return out


def main(argv: list[str] | None = None) -> int:
    """Console entry point ``objectvision-prepare-model``."""
    parser = argparse.ArgumentParser(
        prog="objectvision-prepare-model",
        description="Write the served ONNX (uint8 NHWC in, top-K [B, K, 6] candidates out).",
    )
    parser.add_argument(
        "--source", type=Path, required=True, help="plain Ultralytics YOLOv8 ONNX export"
    )
    parser.add_argument("--output", type=Path, required=True, help="where to write the served ONNX")
    parser.add_argument("--top-k", type=int, default=DEFAULT_TOP_K, help="candidate rows (K)")
    parser.add_argument(
        "--min-score",
        type=float,
        default=DEFAULT_MIN_SCORE,
        help="rows scoring below this are zeroed (0 keeps all K anchors)",
    )
    args = parser.parse_args(argv)
    out = prepare_model(args.source, args.output, top_k=args.top_k, min_score=args.min_score)
    print(f"wrote {out} (top_k={args.top_k}, min_score={args.min_score})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
