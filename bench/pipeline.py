"""The plain YOLOv8n ONNX in process: decode, letterbox, ONNX Runtime, decode anchors, NMS.

Why its own copy instead of the served one (objectvision_inference.cpu_pipeline): the raw
stage and the naive baseline must measure the seed's design (plain model, float input, 8,400
anchors decoded in numpy) with no dependency on the path under test. The geometry is the
model's own contract (shared/models/README.md); bench/tests checks that this letterbox gives
the model the same pixels as the served pipeline's.
"""

import ast
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

INPUT_SIZE = 640
PAD_VALUE = 114
CONFIDENCE = 0.25
IOU = 0.7
MAX_DETECTIONS = 300
# Per-class NMS in one pass: each class's boxes are shifted this far apart (Ultralytics).
CLASS_OFFSET = 7680.0


@dataclass(frozen=True)
class Letterbox:
    """Where the original image sits inside the 640x640 model input."""

    width: int
    height: int
    scale: float
    left: int
    top: int


@dataclass(frozen=True)
class Detection:
    class_id: int
    confidence: float
    x1: float
    y1: float
    x2: float
    y2: float


def decode(data: bytes) -> np.ndarray:
    """BGR uint8 HxWx3; ValueError when the bytes are not an image OpenCV can read."""
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("not a decodable image")
    return image


def letterbox(image_bgr: np.ndarray, size: int = INPUT_SIZE) -> tuple[np.ndarray, Letterbox]:
    """BGR HxWx3 -> RGB uint8 [size, size, 3] and its geometry (scale, centred padding)."""
    height, width = image_bgr.shape[:2]
    scale = min(size / height, size / width)
    new_width, new_height = max(1, round(width * scale)), max(1, round(height * scale))
    left, top = (size - new_width) // 2, (size - new_height) // 2
    resized = cv2.resize(image_bgr, (new_width, new_height), interpolation=cv2.INTER_LINEAR)
    canvas = np.full((size, size, 3), PAD_VALUE, dtype=np.uint8)
    canvas[top : top + new_height, left : left + new_width] = resized
    return cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB), Letterbox(width, height, scale, left, top)


def to_tensor(frames: Sequence[np.ndarray]) -> np.ndarray:
    """RGB uint8 [H, W, 3] frames -> float32 [B, 3, H, W] in 0..1, the plain model's input."""
    batch = np.stack(frames).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(batch, dtype=np.float32) / np.float32(255.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy NMS (a box goes when its IoU with a kept one is > iou); kept indices by score."""
    order = np.argsort(-scores, kind="stable")
    areas = (boxes[:, 2] - boxes[:, 0]).clip(0) * (boxes[:, 3] - boxes[:, 1]).clip(0)
    keep: list[int] = []
    while order.size:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        iw = (
            np.minimum(boxes[best, 2], boxes[rest, 2]) - np.maximum(boxes[best, 0], boxes[rest, 0])
        ).clip(0)
        ih = (
            np.minimum(boxes[best, 3], boxes[rest, 3]) - np.maximum(boxes[best, 1], boxes[rest, 1])
        ).clip(0)
        inter = iw * ih
        overlap = inter / (areas[best] + areas[rest] - inter + 1e-9)
        order = rest[overlap <= iou]
    return np.asarray(keep, dtype=np.int64)


def anchors_to_rows(output: np.ndarray) -> np.ndarray:
    """One image's raw [84, N] output -> [N, 6] rows x1, y1, x2, y2, score, class (the
    served model's row layout), score = the best class score, class = its index."""
    anchors = output.T
    scores = anchors[:, 4:]
    class_ids = scores.argmax(axis=1)
    best = scores[np.arange(len(scores)), class_ids]
    cx, cy, w, h = anchors[:, :4].T
    return np.stack(
        [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, best, class_ids.astype(np.float32)],
        axis=1,
    )


def select(
    rows: np.ndarray,
    box: Letterbox,
    *,
    confidence: float = CONFIDENCE,
    iou: float = IOU,
    max_detections: int = MAX_DETECTIONS,
) -> list[Detection]:
    """[N, 6] candidate rows -> detections in original-image pixels: threshold, per-class
    NMS, at most `max_detections`, letterbox undone, clipped to the image."""
    kept = rows[rows[:, 4] >= confidence]
    if not len(kept):
        return []
    xyxy, scores, classes = kept[:, :4], kept[:, 4], kept[:, 5]
    keep = nms(xyxy + classes[:, None] * CLASS_OFFSET, scores, iou)[:max_detections]
    offset = np.array([box.left, box.top, box.left, box.top], dtype=np.float32)
    limits = np.array([box.width, box.height, box.width, box.height], dtype=np.float32)
    mapped = np.clip((xyxy[keep] - offset) / np.float32(box.scale), 0.0, limits)
    return [
        Detection(int(c), float(s), *(float(v) for v in xy))
        for xy, s, c in zip(mapped, scores[keep], classes[keep], strict=True)
    ]


def postprocess(output: np.ndarray, box: Letterbox) -> list[Detection]:
    """One image's [84, 8400] output -> detections in original-image pixels."""
    return select(anchors_to_rows(output), box)


def session(model: Path, *, threads: int | None = None) -> ort.InferenceSession:
    """ONNX Runtime on the CPU with the local Triton's settings (threads = cores, no spinning),
    so in-process and served numbers differ by the serving path, not by runtime tuning."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or len(os.sched_getaffinity(0))
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


def class_names(model: ort.InferenceSession) -> dict[int, str]:
    """Class names from the model's metadata (`names`, a Python dict literal)."""
    text = model.get_modelmeta().custom_metadata_map.get("names", "{}")
    names = ast.literal_eval(text)
    return {int(k): str(v) for k, v in names.items()} if isinstance(names, dict) else {}


class PlainDetector:
    """Bytes in, detections out, at any batch size, all in this process."""

    def __init__(self, model: Path, *, threads: int | None = None) -> None:
        self.session = session(model, threads=threads)
        self.input_name = self.session.get_inputs()[0].name
        self.class_names = class_names(self.session)

    def detect(self, images: Sequence[bytes]) -> list[list[Detection]]:
        prepared = [letterbox(decode(data)) for data in images]
        (output,) = self.session.run(None, {self.input_name: to_tensor([f for f, _ in prepared])})
        return [postprocess(out, box) for out, (_, box) in zip(output, prepared, strict=True)]
