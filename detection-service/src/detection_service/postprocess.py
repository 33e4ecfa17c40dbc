"""From the served model's top-K candidate rows to the objects a caller asked for.

The served graph returns, per image, K rows of x1, y1, x2, y2 (model-input pixels), score,
class id, sorted by score with zero-score padding. What varies per request stays here: the
confidence threshold, the class filter, per-class NMS at the request's IoU and the cap on
the number of objects. Pure numpy, no I/O.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from detection_service.imaging.letterbox import Letterbox

# Ultralytics shifts each class's boxes this far apart so one NMS pass never suppresses across
# classes; larger than any model-input coordinate.
CLASS_OFFSET = 7680.0


@dataclass(frozen=True)
class DetectionOptions:
    """A request's thresholds after defaults are applied; stored with jobs as JSON."""

    confidence: float
    iou: float
    max_detections: int
    class_ids: frozenset[int] | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "confidence": self.confidence,
            "iou": self.iou,
            "max_detections": self.max_detections,
            "class_ids": sorted(self.class_ids) if self.class_ids is not None else None,
        }

    @classmethod
    def from_json(cls, value: dict[str, object]) -> "DetectionOptions":
        class_ids = value.get("class_ids")
        return cls(
            confidence=float(value["confidence"]),  # type: ignore[arg-type]
            iou=float(value["iou"]),  # type: ignore[arg-type]
            max_detections=int(value["max_detections"]),  # type: ignore[call-overload]
            class_ids=frozenset(class_ids) if isinstance(class_ids, list) else None,
        )


@dataclass(frozen=True)
class DetectedObject:
    class_id: int
    class_name: str
    confidence: float
    x1: float
    y1: float
    x2: float
    y2: float


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one [4] box against [N, 4] boxes (x1, y1, x2, y2)."""
    iw = (np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])).clip(0)
    ih = (np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])).clip(0)
    inter = iw * ih
    area = (box[2] - box[0]).clip(0) * (box[3] - box[1]).clip(0)
    areas = (boxes[:, 2] - boxes[:, 0]).clip(0) * (boxes[:, 3] - boxes[:, 1]).clip(0)
    return inter / (area + areas - inter + 1e-9)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy NMS, torchvision semantics (a box goes when its IoU with a kept one is > iou).

    Returns kept indices, highest score first; equal scores keep the lower index first.
    """
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        order = rest[box_iou(boxes[best], boxes[rest]) <= iou]
    return np.asarray(keep, dtype=np.int64)


def select(rows: np.ndarray, options: DetectionOptions) -> np.ndarray:
    """[K, 6] candidate rows -> [N, 6] kept rows, by score descending."""
    rows = rows.reshape(-1, 6)
    mask = (rows[:, 4] >= options.confidence) & (rows[:, 4] > 0)
    if options.class_ids is not None:
        wanted = np.fromiter(options.class_ids, dtype=np.float32, count=len(options.class_ids))
        mask &= np.isin(rows[:, 5], wanted)
    candidates = rows[mask]
    if not len(candidates):
        return candidates
    shifted = candidates[:, :4] + candidates[:, 5:6] * CLASS_OFFSET
    keep = nms(shifted, candidates[:, 4], options.iou)[: options.max_detections]
    return candidates[keep]


def to_objects(
    kept: np.ndarray, box: Letterbox, class_names: Sequence[str]
) -> list[DetectedObject]:
    """Kept rows in model-input pixels -> objects in original-image pixels."""
    if not len(kept):
        return []
    mapped = box.to_original(kept[:, :4])
    objects = []
    for (x1, y1, x2, y2), score, class_value in zip(
        mapped.tolist(), kept[:, 4].tolist(), kept[:, 5].tolist(), strict=True
    ):
        class_id = int(class_value)
        name = class_names[class_id] if 0 <= class_id < len(class_names) else str(class_id)
        objects.append(DetectedObject(class_id, name, float(score), x1, y1, x2, y2))
    return objects
