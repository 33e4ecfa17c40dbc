"""Counting zones: named regions of the picture and who stands in them (ADR 0042).

A caller names polygons in frame pixels ("queue", "loading bay"); every object of a frame is
in each zone whose polygon holds the bottom centre of its box, the point where a person or a
vehicle stands on the ground, so a person's head reaching over a zone's edge does not put them
in it. Supervision's `PolygonZone` decides that per frame, and its `PolygonZoneAnnotator`
draws each zone with how many are in it on the annotated video.

What a zone is for comes from its objects' membership over the frames: how many tracked
objects visited it, the most in it at once, and how long a visitor stayed. Membership is kept
on each object (`DetectedObject.zones`), stored with its frame, so those are sums over the
committed frames (video/views.py) and a resumed job neither loses nor doubles them.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np

from detection_service.pipeline.types import DetectedObject
from detection_service.tracking.regions import Point, check_inside, check_names, check_numbers
from objectvision_common.errors import InvalidArgument
from objectvision_common.limits import MAX_COUNTING_ZONES, MAX_ZONE_POINTS

_KIND = "counting zone"


@dataclass(frozen=True)
class CountingZone:
    """A named polygon, its points in frame pixels in drawing order."""

    name: str
    polygon: tuple[Point, ...]

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "polygon": [list(point) for point in self.polygon]}

    @classmethod
    def from_json(cls, value: dict[str, object]) -> "CountingZone":
        polygon = value["polygon"]
        assert isinstance(polygon, list)
        return cls(
            name=str(value["name"]),
            polygon=tuple((float(x), float(y)) for x, y in polygon),
        )


@dataclass(frozen=True)
class ZoneCount:
    """Who was in one zone, for one class."""

    zone: str
    class_id: int
    class_name: str
    visited: int
    peak: int
    mean_stay_seconds: float


def checked_zones(
    zones: Sequence[CountingZone], *, tracked: bool, frame_size: tuple[int, int] | None = None
) -> tuple[CountingZone, ...]:
    """The zones if a job or stream may count them; InvalidArgument saying what is wrong.
    With `frame_size` (a probed video's, or a stream frame's), every point must lie inside the
    picture."""
    if not zones:
        return ()
    check_names(_KIND, [zone.name for zone in zones], most=MAX_COUNTING_ZONES, tracked=tracked)
    for zone in zones:
        if not 3 <= len(zone.polygon) <= MAX_ZONE_POINTS:
            raise InvalidArgument(
                f"counting zone {zone.name!r} has {len(zone.polygon)} points;"
                f" a zone has 3 to {MAX_ZONE_POINTS}"
            )
        check_numbers(_KIND, zone.name, zone.polygon)
        # Under a pixel: nothing could ever stand in it.
        if cv2.contourArea(np.array(zone.polygon, dtype=np.float32)) < 1:
            raise InvalidArgument(f"counting zone {zone.name!r} encloses no area")
        # A polygon whose edges cross or touch has no inside its corners agree on: a bow tie
        # drawn by clicking corners out of order would count in lobes nobody meant. Shapely
        # is imported only where zones are given, as tracking.tracker imports its libraries:
        # the realtime role starts without it (the GPU box of bench/gpu.sh).
        import shapely

        if not shapely.LinearRing(zone.polygon).is_simple:
            raise InvalidArgument(
                f"counting zone {zone.name!r} has edges that cross:"
                " give its corners in order around it"
            )
        check_inside(_KIND, zone.name, zone.polygon, frame_size=frame_size)
    return tuple(zones)


class ZoneLocator:
    """Which zones each object of a frame stands in; holds no history, so one serves a
    video's frames in any order, and draws the last frame's occupancy."""

    def __init__(self, zones: Sequence[CountingZone]) -> None:
        # Imported here, as tracking.tracker says why.
        import supervision as sv

        self._detections = sv.Detections
        self.zones = tuple(zones)
        self._polygons = [
            sv.PolygonZone(
                polygon=np.rint(np.array(zone.polygon, dtype=np.float64)).astype(np.int64),
                triggering_anchors=(sv.Position.BOTTOM_CENTER,),
            )
            for zone in self.zones
        ]
        self._annotators = [
            sv.PolygonZoneAnnotator(zone=polygon, color=sv.Color.from_hex("#2dd4bf"), opacity=0.15)
            for polygon in self._polygons
        ]

    def locate(self, objects: Sequence[DetectedObject]) -> list[DetectedObject]:
        """The objects, each with the names of the zones it stands in (in the zones' order)."""
        if not objects:
            for polygon in self._polygons:
                polygon.trigger(self._detections.empty())
            return []
        detections = self._detections(
            xyxy=np.array([(o.x1, o.y1, o.x2, o.y2) for o in objects], dtype=np.float32),
            class_id=np.array([o.class_id for o in objects], dtype=np.int64),
        )
        inside = [polygon.trigger(detections) for polygon in self._polygons]
        return [
            replace(
                obj,
                zones=tuple(
                    zone.name for zone, within in zip(self.zones, inside, strict=True) if within[n]
                ),
            )
            for n, obj in enumerate(objects)
        ]

    def draw(self, canvas: np.ndarray) -> np.ndarray:
        """The zones on `canvas` (in place, and returned), each with its name and how many
        stand in it in the frame located last."""
        for zone, annotator in zip(self.zones, self._annotators, strict=True):
            canvas = annotator.annotate(
                canvas, label=f"{zone.name}: {annotator.zone.current_count}"
            )
        return canvas
