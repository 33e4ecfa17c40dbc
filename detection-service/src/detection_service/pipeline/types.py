"""The detection domain's core types: what a caller asks of detection and what it gets back.

Selection itself (thresholds, class filter, NMS, the cap) runs inside Triton, per image, from
these options (objectvision_inference.detect_contract).

Every domain (drawing, history, jobs, video, exports, the transport) imports them from here and
this module imports nothing of the service, so no two packages import each other for a type.
"""

import functools
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, NotRequired, TypedDict


class StoredOptions(TypedDict):
    """DetectionOptions as `to_json` writes them (a job's params, a stored detection's, the
    result cache's key): the later options only where set, so rows and keys written before
    them keep the JSON they had."""

    confidence: float
    iou: float
    max_detections: int
    class_ids: list[int] | None
    # [class id, score] pairs.
    class_confidence: NotRequired[list[list[float]]]
    tile_size: NotRequired[int]
    tile_overlap: NotRequired[float]
    # Polygons of [x, y] corners.
    regions: NotRequired[list[list[list[float]]]]


@dataclass(frozen=True)
class DetectionOptions:
    """A request's thresholds after defaults are applied; stored with jobs as JSON."""

    confidence: float
    iou: float
    max_detections: int
    class_ids: frozenset[int] | None = None
    # Minimum scores of chosen classes (class id, score), sorted by id, replacing `confidence`
    # for those classes (ADR 0050); none: `confidence` for every class.
    class_confidence: tuple[tuple[int, float], ...] = ()
    # Tiled detection (ADR 0051): a tile's side in pixels (0: the whole image only) and the
    # share of it its neighbours overlap.
    tile_size: int = 0
    tile_overlap: float = 0.0
    # Regions of interest (ADR 0053): polygons whose corners are fractions of the image's
    # size; objects standing outside them all are dropped. Empty: the whole image.
    regions: tuple[tuple[tuple[float, float], ...], ...] = ()

    @property
    def floor(self) -> float:
        """The lowest score any class keeps: what inference is asked for, before each class's
        own minimum is applied to its objects."""
        return min([self.confidence, *(score for _, score in self.class_confidence)])

    @functools.cached_property
    def _minimums(self) -> dict[int, float]:
        return dict(self.class_confidence)

    def keeps(self, class_id: int, score: float) -> bool:
        """Whether an object of `class_id` with `score` passes its class's minimum."""
        return score >= self._minimums.get(class_id, self.confidence)

    def to_json(self) -> StoredOptions:
        value: StoredOptions = {
            "confidence": self.confidence,
            "iou": self.iou,
            "max_detections": self.max_detections,
            "class_ids": sorted(self.class_ids) if self.class_ids is not None else None,
        }
        # Only when set: options without them keep the JSON, and so the result cache's keys,
        # they always had.
        if self.class_confidence:
            value["class_confidence"] = [[i, score] for i, score in self.class_confidence]
        if self.tile_size:
            value["tile_size"] = self.tile_size
            value["tile_overlap"] = self.tile_overlap
        if self.regions:
            value["regions"] = [[[x, y] for x, y in polygon] for polygon in self.regions]
        return value

    @classmethod
    def from_json(cls, value: StoredOptions) -> "DetectionOptions":
        class_ids = value.get("class_ids")
        return cls(
            confidence=float(value["confidence"]),
            iou=float(value["iou"]),
            max_detections=int(value["max_detections"]),
            class_ids=frozenset(class_ids) if class_ids is not None else None,
            class_confidence=tuple(
                (int(i), float(score)) for i, score in value.get("class_confidence", [])
            ),
            tile_size=int(value.get("tile_size", 0)),
            tile_overlap=float(value.get("tile_overlap", 0.0)),
            regions=cls.regions_from_json(value),
        )

    @staticmethod
    def regions_from_json(
        value: Mapping[str, object],
    ) -> tuple[tuple[tuple[float, float], ...], ...]:
        """Only the regions of stored options (`to_json`): a stored detection's, to draw."""
        regions = value.get("regions")
        if not isinstance(regions, list):
            return ()
        return tuple(tuple((float(x), float(y)) for x, y in polygon) for polygon in regions)


@dataclass(frozen=True)
class DetectedObject:
    class_id: int
    class_name: str
    confidence: float
    x1: float
    y1: float
    x2: float
    y2: float
    # The object's id across a tracked video's frames (tracking/); None when not tracked.
    track_id: int | None = None
    # The counting zones it stands in (tracking/zones.py), where the video or stream has any.
    zones: tuple[str, ...] = ()

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> "DetectedObject":
        """From its fields as JSON gives them back (the zones a list)."""
        return cls(**{**fields, "zones": tuple(fields.get("zones", ()))})


@dataclass(frozen=True)
class Timings:
    decode_ms: float
    queue_ms: float
    inference_ms: float
    postprocess_ms: float
    total_ms: float

    def to_json(self) -> dict[str, float]:
        return {key: round(value, 3) for key, value in asdict(self).items()}


@dataclass(frozen=True)
class DetectionResult:
    width: int
    height: int
    objects: list[DetectedObject]
    timings: Timings
    # Answered from the result cache: the same bytes, model version and options ran before.
    cached: bool = False
    # The model and version that answered (history and jobs record them).
    model: str = ""
    model_version: str = ""
