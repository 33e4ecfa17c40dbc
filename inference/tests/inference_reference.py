"""Test helpers: data paths and reference Ultralytics-style pre/post-processing in numpy.

Follows /work/shared/models/README.md: letterbox, per-anchor argmax class, confidence filter,
per-class NMS (IoU 0.7), at most 300 boxes. Kept independent of the served graph's decoding so
the equivalence test compares two separate implementations.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("OBJECTVISION_SHARED_DIR", REPO_ROOT.parent / "shared"))
PLAIN_MODEL = Path(os.environ.get("MODEL_PATH", SHARED / "models" / "yolov8n.onnx"))
IMAGES = SHARED / "images"
TRITON_ENV = Path(os.environ.get("OBJECTVISION_TRITON_ENV", REPO_ROOT / ".venv-triton"))
SIZE = 640
PAD_VALUE = 114
# Ultralytics offsets boxes by class * max_wh so that one NMS pass never suppresses across classes.
MAX_WH = 7680.0


def letterbox(image_bgr: np.ndarray, size: int = SIZE) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Return (RGB uint8 [size, size, 3], scale r, (left, top) padding) as the model was trained."""
    h, w = image_bgr.shape[:2]
    r = min(size / h, size / w)
    new_w, new_h = round(w * r), round(h * r)
    resized = cv2.resize(image_bgr, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    left, top = (size - new_w) // 2, (size - new_h) // 2
    canvas = np.full((size, size, 3), PAD_VALUE, dtype=np.uint8)
    canvas[top : top + new_h, left : left + new_w] = resized
    return np.ascontiguousarray(canvas[..., ::-1]), r, (left, top)


def load_letterboxed(path: str | Path) -> np.ndarray:
    """Read an image file and letterbox it to the served model's uint8 NHWC RGB input."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(path)
    return letterbox(image)[0]


def to_plain_input(letterboxed: np.ndarray) -> np.ndarray:
    """uint8 [B, H, W, 3] RGB -> the plain model's float32 [B, 3, H, W] 0..1."""
    return letterboxed.transpose(0, 3, 1, 2).astype(np.float32) / 255.0


def cpu_session(path: str | Path) -> ort.InferenceSession:
    """An ONNX Runtime CPU session on all cores (the tests run one model at a time)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = len(os.sched_getaffinity(0))
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy NMS (torchvision semantics: drop boxes with IoU > iou); return kept indices."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1).clip(0) * (y2 - y1).clip(0)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        iw = (np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest])).clip(0)
        ih = (np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest])).clip(0)
        inter = iw * ih
        overlap = inter / (areas[i] + areas[rest] - inter + 1e-9)
        order = rest[overlap <= iou]
    return np.array(keep, dtype=np.int64)


def per_class_nms(rows: np.ndarray, iou: float = 0.7, max_det: int = 300) -> np.ndarray:
    """NMS per class on [N, 6] rows (x1, y1, x2, y2, score, class); return kept rows by score."""
    if not len(rows):
        return rows.reshape(0, 6)
    offset = rows[:, 5:6] * MAX_WH
    keep = nms(rows[:, :4] + offset, rows[:, 4], iou)[:max_det]
    return rows[keep]


def reference_postprocess(
    raw: np.ndarray, conf: float = 0.25, iou: float = 0.7, max_det: int = 300
) -> np.ndarray:
    """Plain model output [84, 8400] -> final [N, 6] detections in letterbox pixels."""
    pred = raw.T
    cx, cy, w, h = pred[:, 0], pred[:, 1], pred[:, 2], pred[:, 3]
    scores = pred[:, 4:]
    cls = scores.argmax(1)
    score = scores.max(1)
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    rows = np.concatenate([xyxy, score[:, None], cls[:, None].astype(np.float32)], axis=1)
    return per_class_nms(rows[score >= conf], iou, max_det)


def served_postprocess(
    detections: np.ndarray, conf: float = 0.25, iou: float = 0.7, max_det: int = 300
) -> np.ndarray:
    """Served model output [K, 6] -> final [N, 6] detections: what the service does per request."""
    return per_class_nms(detections[detections[:, 4] >= conf], iou, max_det)
