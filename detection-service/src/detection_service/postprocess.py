"""What a caller asks of detection and what it gets back, as the domain sees them.

Selection itself (thresholds, class filter, NMS, the cap) runs inside Triton, per image, from
these options (objectvision_inference.detect_contract).
"""

from dataclasses import dataclass


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
